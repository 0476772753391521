package store

import (
	"context"
	"fmt"

	"github.com/lib/pq"

	"example.com/gateway/auth"
	"example.com/gateway/gateway"
)

// ClaimFilter narrows a member's claims; zero fields do not filter.
type ClaimFilter struct {
	Types  []gateway.ClaimType // any of these
	Status gateway.ClaimStatus
	// The service period [ServiceStart, ServiceEnd] overlaps [From, To];
	// either end may be open (zero).
	From, To gateway.Date
}

func (f ClaimFilter) types() []string {
	out := make([]string, len(f.Types))
	for i, t := range f.Types {
		out[i] = string(t)
	}
	return out
}

// claimColumns selects a claim row aliased r. Money columns are NULL unless
// $9 (the scope's Money) is true: Provider Access never receives amounts
// (42 CFR 422.121(a)(2) excludes provider remittances and enrollee
// cost-sharing), not even into memory.
const claimColumns = `r.id, r.member_id, r.identifier, r.type, r.status, r.outcome, r.service_start,
  r.service_end, r.created, r.processed, r.coverage_id, r.billing_organization_id,
  r.rendering_practitioner_id, r.facility_name, r.place_of_service, r.type_of_bill, r.drg,
  r.in_network, r.sensitive, r.last_updated,
  CASE WHEN $9::boolean THEN r.total_submitted END AS total_submitted,
  CASE WHEN $9::boolean THEN r.total_allowed END AS total_allowed,
  CASE WHEN $9::boolean THEN r.total_paid END AS total_paid,
  CASE WHEN $9::boolean THEN r.payment_amount END AS payment_amount,
  CASE WHEN $9::boolean THEN r.payment_date END AS payment_date,
  CASE WHEN $9::boolean THEN r.payment_adjustment END AS payment_adjustment,
  CASE WHEN $9::boolean THEN r.copay END AS copay,
  CASE WHEN $9::boolean THEN r.coinsurance END AS coinsurance,
  CASE WHEN $9::boolean THEN r.deductible END AS deductible,
  CASE WHEN $9::boolean THEN r.noncovered END AS noncovered,
  CASE WHEN $9::boolean THEN r.member_liability END AS member_liability`

// claimVisible is the row policy of a claim aliased r: no sensitive claim
// and no service before the floor for Provider Access.
var claimVisible = sensitiveVisible + ` AND ` + claimDOSVisible

// claimsByMembersSQL reads up to $17 claims of each member in $10, newest
// service first, in one statement: the LATERAL subquery walks each member's
// claims_member_service index and stops at the LIMIT.
var claimsByMembersSQL = `
SELECT c.*
FROM members m
CROSS JOIN LATERAL (
  SELECT ` + claimColumns + `
  FROM claims r
  WHERE r.member_id = m.id AND ` + claimVisible + `
    AND ($11::text[] IS NULL OR r.type = ANY($11::text[]))
    AND ($12::text IS NULL OR r.status = $12::text)
    AND ($13::date IS NULL OR coalesce(r.service_end, r.service_start) >= $13::date)
    AND ($14::date IS NULL OR r.service_start <= $14::date)
    AND ($15::date IS NULL OR r.service_start < $15::date
         OR (r.service_start = $15::date AND r.id > $16::uuid))
  ORDER BY r.service_start DESC, r.id
  LIMIT $17
) c
WHERE m.id = ANY($10::uuid[]) AND ` + memberVisible + `
ORDER BY c.member_id, c.service_start DESC, c.id`

// ClaimsByMembers returns, for each of memberIDs that p may read, one page
// of its claims matching f (newest service date first), in one statement
// whatever the number of members. Members p may not read, or without
// claims, get an empty page. The same page (first, after) applies to every
// member. Returns BAD_USER_INPUT for a cursor that is not one of this list.
func (db *DB) ClaimsByMembers(ctx context.Context, p auth.Principal, memberIDs []string, f ClaimFilter, page Page) (map[string]*Paged[*gateway.Claim], error) {
	afterDate, afterID, err := parseDateIDCursor(page.After, "c")
	if err != nil {
		return nil, err
	}
	ids := uuids(memberIDs)
	s := db.ScopeFor(p)
	args := scopeArgsWith(s, s.Money, pq.Array(ids), argArray(f.types()), argString(string(f.Status)),
		argDate(f.From), argDate(f.To), afterDate, afterID, page.First+1)
	var rows []claimRow
	if err := db.selectPrepared(ctx, &rows, claimsByMembersSQL, args...); err != nil {
		return nil, err
	}
	claims := make([]*gateway.Claim, len(rows))
	for i := range rows {
		claims[i] = rows[i].claim()
	}
	pages := pagesByMember(ids, claims, page,
		func(c *gateway.Claim) string { return c.MemberID },
		func(c *gateway.Claim) string { return pageCursor("c", c.ServiceStart.String(), c.ID) })
	recordPages(ctx, ids, pages, "ExplanationOfBenefit")
	return pages, nil
}

// pagesByMember splits rows, ordered by member and then by the list's
// order with at most page.First+1 rows per member, into one page per
// requested member (empty pages included).
func pagesByMember[T any](memberIDs []string, rows []T, page Page, memberOf, cursorOf func(T) string) map[string]*Paged[T] {
	pages := make(map[string]*Paged[T], len(memberIDs))
	for _, id := range memberIDs {
		pages[id] = &Paged[T]{HasPreviousPage: page.After != ""}
	}
	for _, row := range rows {
		pg := pages[memberOf(row)]
		if pg == nil {
			continue // not requested: cannot happen, the SQL filters on the ids
		}
		if len(pg.Items) == page.First {
			pg.HasNextPage = true
			continue
		}
		pg.Items = append(pg.Items, row)
		pg.Cursors = append(pg.Cursors, cursorOf(row))
	}
	return pages
}

// recordPages records the audit reads of a batch of pages.
func recordPages[T any](ctx context.Context, memberIDs []string, pages map[string]*Paged[T], resourceType string) {
	counts := make(map[string]int, len(pages))
	for id, pg := range pages {
		if len(pg.Items) > 0 {
			counts[id] = len(pg.Items)
		}
	}
	recordByMember(ctx, memberIDs, counts, resourceType)
}

// claimChildren reads the child rows (lines, diagnoses, procedures) of
// the claims in the uuid[] parameter ids that the scope lets through. It
// joins each claim r to its member m and applies the whole policy again,
// so a child row is returned only when its claim would be; the policy is
// evaluated once per claim, and the children of each claim are read
// through their primary key: OFFSET 0 keeps PostgreSQL from flattening the
// LATERAL subquery into a hash join over the whole child table, which it
// prefers on small tables and which costs milliseconds instead of tens of
// microseconds.
// columns are the child's, aliased x.
func claimChildren(columns, table, ids string) string {
	return `
SELECT ` + columns + `
FROM claims r
JOIN members m ON m.id = r.member_id
CROSS JOIN LATERAL (SELECT * FROM ` + table + ` c WHERE c.claim_id = r.id OFFSET 0) x
WHERE r.id = ANY(` + ids + `::uuid[]) AND ` + memberVisible + ` AND ` + claimVisible + `
ORDER BY x.claim_id, x.sequence`
}

var linesByClaimsSQL = claimChildren(`x.claim_id, x.sequence, x.service_date, x.product_code, x.product_system,
  x.product_display, x.modifiers, x.quantity, x.revenue_code, x.place_of_service, x.denial_reason,
  CASE WHEN $9::boolean THEN x.submitted END AS submitted,
  CASE WHEN $9::boolean THEN x.allowed END AS allowed,
  CASE WHEN $9::boolean THEN x.paid END AS paid,
  CASE WHEN $9::boolean THEN x.copay END AS copay,
  CASE WHEN $9::boolean THEN x.coinsurance END AS coinsurance,
  CASE WHEN $9::boolean THEN x.deductible END AS deductible,
  CASE WHEN $9::boolean THEN x.member_liability END AS member_liability`, "claim_lines", "$10")

// claimRow scans a claim; its amounts go through moneyCol (see there).
// sqlx maps a column to the shallowest field with its name, so these
// fields take the amounts' columns from the embedded Claim's.
type claimRow struct {
	gateway.Claim
	TotalSubmitted  moneyCol `db:"total_submitted"`
	TotalAllowed    moneyCol `db:"total_allowed"`
	TotalPaid       moneyCol `db:"total_paid"`
	PaymentAmount   moneyCol `db:"payment_amount"`
	PaymentAdjust   moneyCol `db:"payment_adjustment"`
	Copay           moneyCol `db:"copay"`
	Coinsurance     moneyCol `db:"coinsurance"`
	Deductible      moneyCol `db:"deductible"`
	NonCovered      moneyCol `db:"noncovered"`
	MemberLiability moneyCol `db:"member_liability"`
}

// claim returns the scanned claim, its amounts in one allocation (none
// when no amount was read, as for Provider Access).
func (r *claimRow) claim() *gateway.Claim {
	c := &r.Claim
	cols := [...]struct {
		dst **gateway.Money
		col moneyCol
	}{
		{&c.TotalSubmitted, r.TotalSubmitted}, {&c.TotalAllowed, r.TotalAllowed}, {&c.TotalPaid, r.TotalPaid},
		{&c.PaymentAmount, r.PaymentAmount}, {&c.PaymentAdjust, r.PaymentAdjust}, {&c.Copay, r.Copay},
		{&c.Coinsurance, r.Coinsurance}, {&c.Deductible, r.Deductible}, {&c.NonCovered, r.NonCovered},
		{&c.MemberLiability, r.MemberLiability},
	}
	placeAmounts(cols[:])
	return c
}

// placeAmounts points each dst at its column's amount, all of them in one
// array, or leaves them nil (NULL).
func placeAmounts(cols []struct {
	dst **gateway.Money
	col moneyCol
}) {
	n := 0
	for _, m := range cols {
		if m.col.valid {
			n++
		}
	}
	if n == 0 {
		return
	}
	amounts := make([]gateway.Money, n)
	for _, m := range cols {
		if m.col.valid {
			amounts[0] = m.col.cents
			*m.dst = &amounts[0]
			amounts = amounts[1:]
		}
	}
}

// claimLineRow scans a line with its text[] of modifiers and its amounts
// through moneyCol.
type claimLineRow struct {
	gateway.ClaimLine
	Mods            pq.StringArray `db:"modifiers"`
	Submitted       moneyCol       `db:"submitted"`
	Allowed         moneyCol       `db:"allowed"`
	Paid            moneyCol       `db:"paid"`
	Copay           moneyCol       `db:"copay"`
	Coinsurance     moneyCol       `db:"coinsurance"`
	Deductible      moneyCol       `db:"deductible"`
	MemberLiability moneyCol       `db:"member_liability"`
}

// line returns the scanned line, its amounts in one allocation.
func (r *claimLineRow) line() *gateway.ClaimLine {
	l := &r.ClaimLine
	l.Modifiers = r.Mods
	cols := [...]struct {
		dst **gateway.Money
		col moneyCol
	}{
		{&l.Submitted, r.Submitted}, {&l.Allowed, r.Allowed}, {&l.Paid, r.Paid}, {&l.Copay, r.Copay},
		{&l.Coinsurance, r.Coinsurance}, {&l.Deductible, r.Deductible}, {&l.MemberLiability, r.MemberLiability},
	}
	placeAmounts(cols[:])
	return l
}

// moneyCol scans a numeric(12,2) amount, or NULL, without the two
// allocations per value of scanning into a *gateway.Money (a new Money and
// a string of the column's bytes); the amounts of a row are then placed in
// one array (placeAmounts).
type moneyCol struct {
	cents gateway.Money
	valid bool
}

func (m *moneyCol) Scan(src any) error {
	b, ok := src.([]byte)
	if !ok {
		if src == nil {
			*m = moneyCol{}
			return nil
		}
		var v gateway.Money
		if err := v.Scan(src); err != nil {
			return err
		}
		*m = moneyCol{v, true}
		return nil
	}
	cents, ok := parseCents(b)
	if !ok {
		return fmt.Errorf("store: invalid amount %q", b)
	}
	*m = moneyCol{cents, true}
	return nil
}

// parseCents parses PostgreSQL's text form of a numeric with at most two
// decimals ("-1234.5", "900.00", "7") into cents.
func parseCents(b []byte) (gateway.Money, bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	var cents int64
	digits, decimals, dot := 0, 0, false
	for _, c := range b {
		switch {
		case c == '.' && !dot:
			dot = true
		case c >= '0' && c <= '9' && decimals < 2:
			cents = cents*10 + int64(c-'0')
			digits++
			if dot {
				decimals++
			}
		default:
			return 0, false
		}
	}
	if digits == 0 {
		return 0, false
	}
	for ; decimals < 2; decimals++ {
		cents *= 10
	}
	if neg {
		cents = -cents
	}
	return gateway.Money(cents), true
}

// LinesByClaims returns the lines of each of claimIDs that p may read, in
// sequence order, in one statement. Claims p may not read have no lines.
// Lines are part of the claim's read: they are not audited separately.
func (db *DB) LinesByClaims(ctx context.Context, p auth.Principal, claimIDs []string) (map[string][]*gateway.ClaimLine, error) {
	s := db.ScopeFor(p)
	st, err := db.preparedRead(ctx, linesByClaimsSQL)
	if err != nil {
		return nil, err
	}
	rows, err := st.QueryxContext(ctx, scopeArgsWith(s, s.Money, pq.Array(uuids(claimIDs)))...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make(map[string][]*gateway.ClaimLine, len(claimIDs))
	for rows.Next() {
		row := new(claimLineRow)
		if err := rows.StructScan(row); err != nil {
			return nil, err
		}
		line := row.line()
		out[line.ClaimID] = append(out[line.ClaimID], line)
	}
	return out, rows.Err()
}

var diagnosesByClaimsSQL = claimChildren(
	`x.claim_id, x.sequence, x.code, x.system, x.display, x.type, x.present_on_admission`, "claim_diagnoses", "$9")

// DiagnosesByClaims returns the diagnoses of each of claimIDs that p may
// read, in sequence order, in one statement.
func (db *DB) DiagnosesByClaims(ctx context.Context, p auth.Principal, claimIDs []string) (map[string][]*gateway.ClaimDiagnosis, error) {
	var rows []*gateway.ClaimDiagnosis
	args := scopeArgsWith(db.ScopeFor(p), pq.Array(uuids(claimIDs)))
	if err := db.selectPrepared(ctx, &rows, diagnosesByClaimsSQL, args...); err != nil {
		return nil, err
	}
	return groupRowsBy(rows, func(d *gateway.ClaimDiagnosis) string { return d.ClaimID }), nil
}

var proceduresByClaimsSQL = claimChildren(
	`x.claim_id, x.sequence, x.code, x.system, x.display, x.performed_on`, "claim_procedures", "$9")

// ProceduresByClaims returns the procedures of each of claimIDs that p may
// read, in sequence order, in one statement.
func (db *DB) ProceduresByClaims(ctx context.Context, p auth.Principal, claimIDs []string) (map[string][]*gateway.ClaimProcedure, error) {
	var rows []*gateway.ClaimProcedure
	args := scopeArgsWith(db.ScopeFor(p), pq.Array(uuids(claimIDs)))
	if err := db.selectPrepared(ctx, &rows, proceduresByClaimsSQL, args...); err != nil {
		return nil, err
	}
	return groupRowsBy(rows, func(x *gateway.ClaimProcedure) string { return x.ClaimID }), nil
}

// groupRowsBy groups rows by key, keeping their order.
func groupRowsBy[T any](rows []T, key func(T) string) map[string][]T {
	out := map[string][]T{}
	for _, r := range rows {
		k := key(r)
		out[k] = append(out[k], r)
	}
	return out
}
