package store

import (
	"example.com/gateway/auth"
)

// The policy's MemberScope in SQL. Every member read binds the scope as its
// first eight parameters (scopeArgs) and filters with memberVisible over a
// members row aliased m, and with the row predicates over the data row.
// lib/pq sends unnamed statements, so each query is planned with the actual
// parameter values and the branches of other modes fold away.
//
//	$1 mode  $2 org  $3 sandbox  $4 member  $5 today  $6 upcoming days
//	$7 exclude sensitive  $8 minimum date of service
const memberVisible = `(
  $1::text = 'ALL'
  OR (m.sandbox = $3::boolean AND (
       ($1::text = 'PATIENT' AND m.id = $4::uuid)
    OR ($1::text = 'PROVIDER'
        -- in-network only (42 CFR 422.121(a)(2)); sandbox data counts as in-network
        AND EXISTS (SELECT 1 FROM organizations o WHERE o.id = $2::uuid AND (o.in_network OR $3::boolean))
        -- attributed, ACTIVE or UPCOMING (DESIGN.md §1 rule 3)
        AND EXISTS (SELECT 1 FROM attributions a
                    WHERE a.member_id = m.id AND a.organization_id = $2::uuid
                      AND a.ended_at IS NULL AND a.sandbox = $3::boolean
                      AND a.period_start <= $5::date + $6::int
                      AND (a.period_end IS NULL OR a.period_end >= $5::date))
        -- not opted out, checked on every read (§pdex-358, 42 CFR 422.121(a)(4))
        AND NOT EXISTS (SELECT 1 FROM provider_access_opt_outs x WHERE x.member_id = m.id))
  ))
)`

// rowVisible filters a member-data row aliased r: sensitive rows are withheld
// (42 CFR 422.121(a)(2)(iii)) and, for the date of service column dos,
// anything before the floor (42 CFR 422.121(a)(2): from 2016-01-01).
const sensitiveVisible = `($7::boolean = false OR r.sensitive = false)`

// The date of service of a claim and of a prior authorization for the 2016
// floor (42 CFR 422.121(a)(2)): a claim counts when any day of its service
// period is on or after the floor, a prior authorization when its authorized
// period (or, undecided, its request) reaches it. GraphQL and export share
// these, so both paths withhold exactly the same rows.
const (
	claimDOSVisible     = `($8::date IS NULL OR coalesce(r.service_end, r.service_start) >= $8::date)`
	priorAuthDOSVisible = `($8::date IS NULL OR coalesce(r.authorized_end, r.authorized_start, r.requested_on) >= $8::date)`
)

// dosVisible returns the date-of-service predicate for column col.
func dosVisible(col string) string {
	return `($8::date IS NULL OR ` + col + ` >= $8::date)`
}

// scopeArgs returns the eight scope parameters of memberVisible.
func scopeArgs(s auth.MemberScope) []any {
	var org, member, minDOS any
	if s.OrgID != "" {
		org = s.OrgID
	}
	if s.MemberID != "" {
		member = s.MemberID
	}
	if !s.MinServiceDate.IsZero() {
		minDOS = s.MinServiceDate
	}
	return []any{string(s.Mode), org, s.Sandbox, member, s.Today, s.UpcomingDays, s.ExcludeSensitive, minDOS}
}

// ScopeFor returns the member scope of p as of the store's today.
func (db *DB) ScopeFor(p auth.Principal) auth.MemberScope {
	return p.MemberScope(db.today(), db.UpcomingDays)
}
