package store

import (
	"context"

	"github.com/lib/pq"

	"example.com/gateway/auth"
	"example.com/gateway/gateway"
)

// PriorAuthorizationFilter narrows a member's prior authorizations.
type PriorAuthorizationFilter struct {
	Statuses []gateway.PriorAuthorizationStatus // any of these; empty: all
}

func (f PriorAuthorizationFilter) statuses() []string {
	out := make([]string, len(f.Statuses))
	for i, s := range f.Statuses {
		out[i] = string(s)
	}
	return out
}

// priorAuthVisible is the row policy of a prior authorization aliased r:
// no sensitive ones, none requested before the date-of-service floor, and
// no drug prior authorizations for Provider Access ($10): CMS-0057-F
// excludes drugs from the Provider Access API's prior authorization data
// (42 CFR 422.121(a)(2)).
var priorAuthVisible = sensitiveVisible + ` AND ` + priorAuthDOSVisible +
	` AND ($10::boolean = false OR r.drug = false)`

// priorAuthsByMembersSQL reads up to $14 prior authorizations of each member
// in $9, newest request first, in one statement.
var priorAuthsByMembersSQL = `
SELECT x.*
FROM members m
CROSS JOIN LATERAL (
  SELECT r.id, r.member_id, r.identifier, r.status, r.drug, r.service_category, r.requested_on,
    r.decided_on, r.authorized_start, r.authorized_end, r.last_status_change,
    r.requesting_practitioner_id, r.organization_id, r.denial_reason_code, r.denial_reason,
    r.sensitive, r.last_updated
  FROM prior_authorizations r
  WHERE r.member_id = m.id AND ` + priorAuthVisible + `
    AND ($11::text[] IS NULL OR r.status = ANY($11::text[]))
    AND ($12::date IS NULL OR r.requested_on < $12::date
         OR (r.requested_on = $12::date AND r.id > $13::uuid))
  ORDER BY r.requested_on DESC, r.id
  LIMIT $14
) x
WHERE m.id = ANY($9::uuid[]) AND ` + memberVisible + `
ORDER BY x.member_id, x.requested_on DESC, x.id`

// PriorAuthorizationsByMembers returns, for each of memberIDs that p may
// read, one page of its prior authorizations matching f (newest request
// first), in one statement: pending, approved and denied with their denial
// reasons; never drug prior authorizations for Provider Access. Returns
// BAD_USER_INPUT for a cursor that is not one of this list.
func (db *DB) PriorAuthorizationsByMembers(ctx context.Context, p auth.Principal, memberIDs []string, f PriorAuthorizationFilter, page Page) (map[string]*Paged[*gateway.PriorAuthorization], error) {
	afterDate, afterID, err := parseDateIDCursor(page.After, "p")
	if err != nil {
		return nil, err
	}
	ids := uuids(memberIDs)
	s := db.ScopeFor(p)
	args := scopeArgsWith(s, pq.Array(ids), s.ExcludeDrugPA, argArray(f.statuses()), afterDate, afterID, page.First+1)
	var rows []*gateway.PriorAuthorization
	if err := db.selectPrepared(ctx, &rows, priorAuthsByMembersSQL, args...); err != nil {
		return nil, err
	}
	pages := pagesByMember(ids, rows, page,
		func(a *gateway.PriorAuthorization) string { return a.MemberID },
		func(a *gateway.PriorAuthorization) string { return pageCursor("p", a.RequestedOn.String(), a.ID) })
	recordPages(ctx, ids, pages, "ExplanationOfBenefit")
	return pages, nil
}

// itemsByPriorAuthsSQL reads the items of the prior authorizations in $11
// that the scope lets through (the whole policy again, once per prior
// authorization; items through their primary key). The submitted amount is
// NULL unless $9 (Money); $10 excludes drug prior authorizations.
var itemsByPriorAuthsSQL = `
SELECT i.prior_authorization_id, i.sequence, i.product_code, i.product_system, i.product_display,
  i.quantity_requested, i.quantity_approved, i.quantity_used, i.status, i.denial_reason,
  CASE WHEN $9::boolean THEN i.submitted END AS submitted
FROM prior_authorizations r
JOIN members m ON m.id = r.member_id
CROSS JOIN LATERAL (SELECT * FROM prior_authorization_items c WHERE c.prior_authorization_id = r.id OFFSET 0) i
WHERE r.id = ANY($11::uuid[]) AND ` + memberVisible + ` AND ` + priorAuthVisible + `
ORDER BY i.prior_authorization_id, i.sequence`

// ItemsByPriorAuthorizations returns the items of each of ids that p may
// read, in sequence order, in one statement. They are part of the prior
// authorization's read: not audited separately.
func (db *DB) ItemsByPriorAuthorizations(ctx context.Context, p auth.Principal, ids []string) (map[string][]*gateway.PriorAuthorizationItem, error) {
	s := db.ScopeFor(p)
	var rows []*gateway.PriorAuthorizationItem
	args := scopeArgsWith(s, s.Money, s.ExcludeDrugPA, pq.Array(uuids(ids)))
	if err := db.selectPrepared(ctx, &rows, itemsByPriorAuthsSQL, args...); err != nil {
		return nil, err
	}
	return groupRowsBy(rows, func(i *gateway.PriorAuthorizationItem) string { return i.PriorAuthorizationID }), nil
}
