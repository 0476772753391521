package store

import (
	"context"
	"encoding/base64"
	"strconv"
	"strings"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"example.com/gateway/auth"
	"example.com/gateway/gateway"
)

// Member reads, and what every paged member-data read shares: pages,
// cursors and the audit records of reads that found nothing.
//
// Audit resource types (one AuditLog entry per member and type): Patient
// for the member itself; ExplanationOfBenefit for claims and for prior
// authorizations (both are EOBs in FHIR: CARIN BB and PDex Prior
// Authorization); Encounter; Coverage; Group for attributions (Da Vinci
// ATR); the FHIR type of each clinical resource.

// Page sizes of Relay connections (DESIGN.md §4: first above 100 is
// BAD_USER_INPUT).
const (
	DefaultPageSize = 20
	MaxPageSize     = 100
)

// Page asks for one page of a keyset-ordered list: at most First items after
// the item whose cursor is After ("" = from the start).
type Page struct {
	First int
	After string
}

// NewPage validates Relay's first and after (nil: absent). Returns
// BAD_USER_INPUT when first is negative or above MaxPageSize.
func NewPage(first *int, after *string) (Page, error) {
	p := Page{First: DefaultPageSize}
	if first != nil {
		if *first < 0 || *first > MaxPageSize {
			return Page{}, &gateway.Error{Code: gateway.CodeInvalid, Path: "first",
				Message: "first must be between 0 and 100"}
		}
		p.First = *first
	}
	if after != nil {
		p.After = *after
	}
	return p, nil
}

// Paged is one page of a list: the items in order, the opaque cursor of
// each, and whether more follow.
type Paged[T any] struct {
	Items           []T
	Cursors         []string
	HasNextPage     bool
	HasPreviousPage bool // the page starts after a cursor
}

// pageCursor formats an opaque cursor: base64url of a kind letter and the
// keyset tuple. Cursors carry surrogate keys and dates, never names.
func pageCursor(kind string, parts ...string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(kind + "|" + strings.Join(parts, "|")))
}

// parseCursor returns the n parts of a cursor of kind, or BAD_USER_INPUT.
func parseCursor(s, kind string, n int) ([]string, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		parts := strings.Split(string(b), "|")
		if len(parts) == n+1 && parts[0] == kind {
			return parts[1:], nil
		}
	}
	return nil, errBadCursor
}

var errBadCursor = &gateway.Error{Code: gateway.CodeInvalid, Path: "after", Message: "after is not a cursor of this list"}

// isUUID reports whether s is a UUID; the IDs of member data are. Any
// other string cannot name a row, and must not reach a ::uuid cast.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if c != '-' {
				return false
			}
		case !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'):
			return false
		}
	}
	return true
}

// uuidCursorPart parses the id part of a cursor.
func uuidCursorPart(s string) (string, error) {
	if !isUUID(s) {
		return "", errBadCursor
	}
	return s, nil
}

// parseDateIDCursor parses a (date, id) keyset cursor of kind; both are
// nil for the first page.
func parseDateIDCursor(after, kind string) (date, id any, err error) {
	if after == "" {
		return nil, nil, nil
	}
	parts, err := parseCursor(after, kind, 2)
	if err != nil {
		return nil, nil, err
	}
	d, err := gateway.ParseDate(parts[0])
	if err != nil {
		return nil, nil, errBadCursor
	}
	if id, err = uuidCursorPart(parts[1]); err != nil {
		return nil, nil, err
	}
	return d, id, nil
}

// uuids keeps the valid UUIDs of ids.
func uuids(ids []string) []string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if isUUID(id) {
			out = append(out, id)
		}
	}
	return out
}

// recordNone records a read of no resource of resourceType for members
// whose other data this request already read (so the member is known to be
// visible): "member X has no claims" is a read too. Members not yet in the
// log are skipped, so nothing is recorded for a member the principal may
// not see.
func recordNone(ctx context.Context, memberIDs []string, resourceType string) {
	l, _ := ctx.Value(auditKey{}).(*AuditLog)
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, id := range memberIDs {
		if m := l.reads[id]; m != nil {
			m[resourceType] += 0
		}
	}
}

// recordByMember records the reads of a batch: n resources of resourceType
// for each member in counts, and none for the other requested members.
func recordByMember(ctx context.Context, memberIDs []string, counts map[string]int, resourceType string) {
	var empty []string
	for _, id := range memberIDs {
		if n, ok := counts[id]; ok {
			recordRead(ctx, id, resourceType, n)
		} else {
			empty = append(empty, id)
		}
	}
	recordNone(ctx, empty, resourceType)
}

// scopeArgsWith returns the scope parameters $1..$8 followed by args, which
// are $9 on, for statements that read member-data rows (memberVisible and
// the row predicates).
func scopeArgsWith(s auth.MemberScope, args ...any) []any {
	return append(scopeArgs(s), args...)
}

// memberArgsWith returns the parameters of memberVisible alone, $1..$6,
// followed by args, which are $7 on, for statements with no row predicate
// (members, coverage, attributions): PostgreSQL refuses a parameter that a
// statement never uses, since it cannot infer its type.
func memberArgsWith(s auth.MemberScope, args ...any) []any {
	return append(scopeArgs(s)[:6], args...)
}

// argString is NULL for "".
func argString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// argDate is NULL for the zero Date.
func argDate(d gateway.Date) any {
	if d.IsZero() {
		return nil
	}
	return d
}

// argArray is NULL for an empty list, else a text[] parameter.
func argArray(ss []string) any {
	if len(ss) == 0 {
		return nil
	}
	return pq.Array(ss)
}

// preparedReads caches, per database, the prepared statement of each
// member-data read. The policy makes these statements long (memberVisible),
// and planning them costs PostgreSQL more than running them; a prepared
// statement is planned once per connection and then reuses its plan
// (PostgreSQL's plan cache switches to a generic plan when it costs no more
// than the custom ones). database/sql prepares each statement on each pool
// connection as needed.

// preparedRead returns the prepared statement of query on db.
func (db *DB) preparedRead(ctx context.Context, query string) (*sqlx.Stmt, error) {
	if st, ok := db.stmts.Load(query); ok {
		return st.(*sqlx.Stmt), nil
	}
	st, err := db.PreparexContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if prev, loaded := db.stmts.LoadOrStore(query, st); loaded {
		st.Close()
		return prev.(*sqlx.Stmt), nil
	}
	return st, nil
}

// selectPrepared runs a prepared read into dest (a pointer to a slice).
func (db *DB) selectPrepared(ctx context.Context, dest any, query string, args ...any) error {
	st, err := db.preparedRead(ctx, query)
	if err != nil {
		return err
	}
	return st.SelectContext(ctx, dest, args...)
}

// getPrepared runs a prepared read of one row into dest.
func (db *DB) getPrepared(ctx context.Context, dest any, query string, args ...any) error {
	st, err := db.preparedRead(ctx, query)
	if err != nil {
		return err
	}
	return st.GetContext(ctx, dest, args...)
}

// MemberFilter narrows a member list; zero fields do not filter.
type MemberFilter struct {
	// Name: each word must be the start of the family or the given name,
	// case-insensitively.
	Name       string
	Identifier string // exact
	BirthDate  gateway.Date
}

// namePrefixes returns the LIKE patterns of f.Name, one per word, with the
// LIKE metacharacters escaped.
func (f MemberFilter) namePrefixes() []string {
	var out []string
	for _, w := range strings.Fields(strings.ToLower(f.Name)) {
		w = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(w)
		out = append(out, w+"%")
	}
	return out
}

const memberColumns = `m.id, m.member_identifier, m.given_name, m.family_name, m.birth_date, m.gender,
  m.address_line, m.city, m.state, m.postal_code, m.phone, m.sandbox, m.last_updated`

// Member lists without a filter are prepared statements (preparedRead). A
// filtered list is written from the filters set (memberFilterWhere) and
// sent unprepared: lib/pq's unnamed statement is planned with the actual
// values, a custom plan, and only a custom plan can turn
// lower(name) LIKE 'wi%' into a range over the name prefix indexes
// (migration 0008). A generic plan of optional clauses ($n IS NULL OR …)
// tested every member visible to the scope instead (100-250 ms at 100,000
// members for a large organization).

// isZero reports whether f filters nothing.
func (f MemberFilter) isZero() bool {
	return f.Identifier == "" && f.BirthDate.IsZero() && len(f.namePrefixes()) == 0
}

// memberFilterWhere returns the clauses of the filters set in f, bound as
// parameters appended to args (which hold memberVisible's $1..$6), and the
// extended args. Each word of the name is a clause of its own, so every
// word must match the family or the given name.
func memberFilterWhere(f MemberFilter, args []any) (string, []any) {
	var b strings.Builder
	param := func(v any, typ string) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args)) + "::" + typ
	}
	if f.Identifier != "" {
		b.WriteString("\n  AND m.member_identifier = " + param(f.Identifier, "text"))
	}
	if !f.BirthDate.IsZero() {
		b.WriteString("\n  AND m.birth_date = " + param(f.BirthDate, "date"))
	}
	for _, prefix := range f.namePrefixes() {
		n := param(prefix, "text")
		b.WriteString("\n  AND (lower(m.family_name) LIKE " + n + " OR lower(m.given_name) LIKE " + n + ")")
	}
	return b.String(), args
}

const membersPageSQL = `
SELECT ` + memberColumns + `
FROM members m
WHERE ` + memberVisible + `
  AND ($7::uuid IS NULL OR m.id > $7::uuid)
ORDER BY m.id
LIMIT $8`

// MembersPage returns a page of the members p may read that match f, in id
// order. Returns BAD_USER_INPUT for a cursor that is not one of this list.
func (db *DB) MembersPage(ctx context.Context, p auth.Principal, f MemberFilter, page Page) (Paged[*gateway.Member], error) {
	var after any
	if page.After != "" {
		parts, err := parseCursor(page.After, "m", 1)
		if err != nil {
			return Paged[*gateway.Member]{}, err
		}
		if after, err = uuidCursorPart(parts[0]); err != nil {
			return Paged[*gateway.Member]{}, err
		}
	}
	var members []*gateway.Member
	if f.isZero() {
		args := memberArgsWith(db.ScopeFor(p), after, page.First+1)
		if err := db.selectPrepared(ctx, &members, membersPageSQL, args...); err != nil {
			return Paged[*gateway.Member]{}, err
		}
	} else {
		where, args := memberFilterWhere(f, memberArgsWith(db.ScopeFor(p)))
		query := `
SELECT ` + memberColumns + `
FROM members m
WHERE ` + memberVisible + where
		if after != nil {
			args = append(args, after)
			query += "\n  AND m.id > $" + strconv.Itoa(len(args)) + "::uuid"
		}
		args = append(args, page.First+1)
		query += "\nORDER BY m.id\nLIMIT $" + strconv.Itoa(len(args))
		if err := db.SelectContext(ctx, &members, query, args...); err != nil {
			return Paged[*gateway.Member]{}, err
		}
	}
	out := Paged[*gateway.Member]{HasPreviousPage: page.After != ""}
	if len(members) > page.First {
		members, out.HasNextPage = members[:page.First], true
	}
	out.Items = members
	out.Cursors = make([]string, len(members))
	for i, m := range members {
		out.Cursors[i] = pageCursor("m", m.ID)
		recordRead(ctx, m.ID, "Patient", 1)
	}
	return out, nil
}

const membersCountSQL = `
SELECT count(*)
FROM members m
WHERE ` + memberVisible + `
`

// providerMembersCountSQL is membersCountSQL for a PROVIDER scope, narrowed
// to the members with a live attribution to the organization in the scope's
// data set. memberVisible implies the narrowing for that scope (its PROVIDER
// branch requires such an attribution), so it never changes the count: the
// policy stays in memberVisible alone. It is there for the planner: the
// prepared count switches to a generic plan after five runs, in which
// memberVisible's OR over the modes hides the organization, so the plain
// statement tests every member of the table against the policy's subplans
// (86-130 ms at 100,000 members, whatever the organization's size); the
// narrowed one starts from the organization's attributions
// (attributions_org_member) and costs in proportion to them (4 ms for 1,000
// attributions, ~100 ms for 17,600). The members page keeps the plain
// statement: its generic plan walks members in id order and stops at the
// page's end (under 3 ms for a page of a large organization), where the
// narrowed one would sort all of the organization's members first.
const providerMembersCountSQL = membersCountSQL + `
  AND m.id IN (SELECT a.member_id FROM attributions a
               WHERE a.organization_id = $2::uuid AND a.ended_at IS NULL AND a.sandbox = $3::boolean)`

// MembersCount returns how many members p may read match f. Opted-out
// members are not counted (§pdex-358: a provider cannot tell them from
// members that are not attributed).
func (db *DB) MembersCount(ctx context.Context, p auth.Principal, f MemberFilter) (int, error) {
	var n int
	scope := db.ScopeFor(p)
	if f.isZero() {
		query := membersCountSQL
		if scope.Mode == auth.ScopeProvider {
			query = providerMembersCountSQL
		}
		err := db.getPrepared(ctx, &n, query, memberArgsWith(scope)...)
		return n, err
	}
	// No providerMembersCountSQL narrowing here: with a custom plan it made
	// the count slower (at 100,000 members, 17,600 attributions: "wi" 34-43
	// ms narrowed, 20-31 ms not).
	where, args := memberFilterWhere(f, memberArgsWith(scope))
	query := `
SELECT count(*)
FROM members m
WHERE ` + memberVisible + where
	err := db.GetContext(ctx, &n, query, args...)
	return n, err
}

const memberByIDSQL = `
SELECT ` + memberColumns + `
FROM members m
WHERE m.id = $7::uuid AND ` + memberVisible

// MemberByID returns the member if p may read it. Returns NOT_FOUND
// otherwise, exactly as for an id that does not exist (one statement either
// way, so the two cannot be told apart by timing either).
func (db *DB) MemberByID(ctx context.Context, p auth.Principal, id string) (*gateway.Member, error) {
	if !isUUID(id) {
		return nil, gateway.ErrNotFound
	}
	var m gateway.Member
	if err := db.getPrepared(ctx, &m, memberByIDSQL, memberArgsWith(db.ScopeFor(p), id)...); err != nil {
		return nil, notFound(err)
	}
	recordRead(ctx, m.ID, "Patient", 1)
	return &m, nil
}
