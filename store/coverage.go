package store

import (
	"context"

	"github.com/lib/pq"

	"example.com/gateway/auth"
	"example.com/gateway/gateway"
)

const coverageByMembersSQL = `
SELECT r.id, r.member_id, r.identifier, r.status, r.type_code, r.type_display, r.plan_name,
  r.group_number, r.relationship, r.payer_name, r.period_start, r.period_end, r.last_updated
FROM members m
CROSS JOIN LATERAL (SELECT * FROM coverages c WHERE c.member_id = m.id OFFSET 0) r -- by index, per member
WHERE m.id = ANY($7::uuid[]) AND ` + memberVisible + `
ORDER BY r.member_id, r.period_start DESC NULLS LAST, r.id`

// CoverageByMembers returns the coverages of each of memberIDs that p may
// read (latest period first), in one statement.
func (db *DB) CoverageByMembers(ctx context.Context, p auth.Principal, memberIDs []string) (map[string][]*gateway.Coverage, error) {
	ids := uuids(memberIDs)
	var rows []*gateway.Coverage
	if err := db.selectPrepared(ctx, &rows, coverageByMembersSQL, memberArgsWith(db.ScopeFor(p), pq.Array(ids))...); err != nil {
		return nil, err
	}
	out := groupRowsBy(rows, func(c *gateway.Coverage) string { return c.MemberID })
	recordLists(ctx, ids, out, "Coverage")
	return out, nil
}

// attributionsByMembersSQL lists attributions of visible members. Provider
// Access sees only its own organization's, of its own data set ($2, $3);
// the other scopes see every attribution of the members they may read.
const attributionsByMembersSQL = `
SELECT a.id, a.member_id, a.organization_id, a.practitioner_id, a.period_start, a.period_end,
  a.source, a.ended_at, a.sandbox, a.created_at, a.last_updated
FROM members m
CROSS JOIN LATERAL (SELECT * FROM attributions c WHERE c.member_id = m.id OFFSET 0) a -- by index, per member
WHERE m.id = ANY($7::uuid[]) AND ` + memberVisible + `
  AND ($1::text <> 'PROVIDER' OR (a.organization_id = $2::uuid AND a.sandbox = $3::boolean))
ORDER BY a.member_id, a.period_start DESC, a.id`

// AttributionsByMembers returns the attributions of each of memberIDs that
// p may read, in one statement (latest period first). Their status is the
// policy's (auth.AttributionStatusOf), computed by the caller.
func (db *DB) AttributionsByMembers(ctx context.Context, p auth.Principal, memberIDs []string) (map[string][]*gateway.Attribution, error) {
	ids := uuids(memberIDs)
	var rows []*gateway.Attribution
	if err := db.selectPrepared(ctx, &rows, attributionsByMembersSQL, memberArgsWith(db.ScopeFor(p), pq.Array(ids))...); err != nil {
		return nil, err
	}
	out := groupRowsBy(rows, func(a *gateway.Attribution) string { return a.MemberID })
	recordLists(ctx, ids, out, "Group")
	return out, nil
}

// recordLists records the audit reads of a batch of plain lists.
func recordLists[T any](ctx context.Context, memberIDs []string, lists map[string][]T, resourceType string) {
	counts := make(map[string]int, len(lists))
	for id, l := range lists {
		counts[id] = len(l)
	}
	recordByMember(ctx, memberIDs, counts, resourceType)
}
