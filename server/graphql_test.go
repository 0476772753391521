package server

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"example.com/gateway/auth"
)

// get walks decoded JSON along a dotted path ("member.claims.edges.0").
func get(t testing.TB, v any, path string) any {
	t.Helper()
	for _, part := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			v = x[part]
		case []any:
			i, err := strconv.Atoi(part)
			if err != nil || i >= len(x) {
				t.Fatalf("path %s: no element %q", path, part)
			}
			v = x[i]
		default:
			t.Fatalf("path %s: cannot index %T with %q", path, v, part)
		}
	}
	return v
}

// column returns field of the node of every edge in edges.
func column(t testing.TB, edges any, field string) []string {
	t.Helper()
	out := []string{}
	for _, e := range edges.([]any) {
		out = append(out, get(t, e, "node."+field).(string))
	}
	return out
}

// data posts query as p and returns data decoded, failing on any error.
func data(t testing.TB, h http.Handler, query string, vars map[string]any) map[string]any {
	t.Helper()
	var d map[string]any
	mustData(t, h, query, vars, &d)
	return d
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func TestGraphQL_ProviderSeesAttributedMembersOnly(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	h := newAPI(t, w.db, false).as(w.provider(w.orgA))

	d := data(t, h, `{ members(first: 100) { totalCount edges { node { identifier } } } }`, nil)
	want := []string{"M-ALICE", "M-BOB"} // ACTIVE, UPCOMING
	for i := range pagerCount {
		want = append(want, "M-PAGE-"+twoDigits(i))
	}
	if got := column(t, get(t, d, "members.edges"), "identifier"); !sameSet(got, want) {
		t.Errorf("members = %v, want %v", got, want)
	}
	if got := get(t, d, "members.totalCount"); got != float64(len(want)) {
		t.Errorf("totalCount = %v, want %d", got, len(want))
	}

	for _, id := range []string{w.alice, w.bob} {
		if got := get(t, data(t, h, `query($id: ID!) { member(id: $id) { id } }`, map[string]any{"id": id}), "member.id"); got != id {
			t.Errorf("member(%s).id = %v", id, got)
		}
	}

	// Opted out, ended, another organization's, beyond the upcoming window,
	// withdrawn, sandbox, out of network, nonexistent, not an id at all: all
	// answer exactly alike (DESIGN.md §1 rule 8).
	invisible := map[string]string{
		"opted out": w.carol, "ended": w.dave, "other org": w.erin, "future": w.frank,
		"withdrawn": w.gina, "sandbox": w.sam, "out of network": w.harry,
		"nonexistent": newID(), "garbage": "not-a-member-id",
	}
	var first []byte
	for name, id := range invisible {
		res := post(t, h, `query($id: ID!) { member(id: $id) { id identifier } }`, map[string]any{"id": id})
		if res.status != http.StatusOK || !slices.Equal(res.codes(), []string{"NOT_FOUND"}) || string(res.raw["data"]) != `{"member":null}` {
			t.Errorf("%s: status %d, body %s", name, res.status, res.body)
			continue
		}
		if e := res.Errors[0]; e.Message != "not found" || e.path() != "member" {
			t.Errorf("%s: error %+v", name, e)
		}
		body := bytes.ReplaceAll(res.body, []byte(id), nil)
		if first == nil {
			first = body
		} else if !bytes.Equal(first, body) {
			t.Errorf("%s answers differently:\n%s\n%s", name, first, body)
		}
	}
}

func twoDigits(i int) string { return string([]byte{byte('0' + i/10), byte('0' + i%10)}) }

func TestGraphQL_ScopesOfOtherPrincipals(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	a := newAPI(t, w.db, false)
	everyone := []string{"M-ALICE", "M-BOB", "M-CAROL", "M-DAVE", "M-ERIN", "M-FRANK", "M-GINA", "M-SAM", "M-HARRY"}
	for i := range pagerCount {
		everyone = append(everyone, "M-PAGE-"+twoDigits(i))
	}
	tests := []struct {
		name string
		as   auth.Principal
		want []string
	}{
		{"other in-network organization", w.provider(w.orgB), []string{"M-ERIN"}},
		{"out-of-network organization", w.provider(w.orgOut), []string{}},
		{"sandbox client sees sandbox members only", w.providerSandbox(w.orgA), []string{"M-SAM"}},
		{"patient access: the bound member", w.patient(w.sam), []string{"M-SAM"}},
		{"operator: everyone", operator(), everyone},
		{"person of an organization: nobody", person(w.orgA), []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := data(t, a.as(tt.as), `{ members(first: 100) { totalCount edges { node { identifier } } } }`, nil)
			if got := column(t, get(t, d, "members.edges"), "identifier"); !sameSet(got, tt.want) {
				t.Errorf("members = %v, want %v", got, tt.want)
			}
			if got := get(t, d, "members.totalCount"); got != float64(len(tt.want)) {
				t.Errorf("totalCount = %v, want %d", got, len(tt.want))
			}
		})
	}
	res := post(t, a.as(w.patient(w.sam)), `query($id: ID!) { member(id: $id) { id } }`, map[string]any{"id": w.alice})
	if !slices.Equal(res.codes(), []string{"NOT_FOUND"}) {
		t.Errorf("patient reading another member: %s", res.body)
	}
}

const aliceClaimsQuery = `query($id: ID!, $first: Int, $filter: ClaimFilter) {
  member(id: $id) { claims(first: $first, filter: $filter) { edges { node { identifier } } } }
}`

func claimIdentifiers(t testing.TB, h http.Handler, member string, vars map[string]any) []string {
	t.Helper()
	v := map[string]any{"id": member}
	for k, x := range vars {
		v[k] = x
	}
	return column(t, get(t, data(t, h, aliceClaimsQuery, v), "member.claims.edges"), "identifier")
}

func TestGraphQL_ClaimsFollowThePolicy(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	a := newAPI(t, w.db, false)

	// No sensitive claim, nothing before 2016-01-01 for Provider Access.
	if got, want := claimIdentifiers(t, a.as(w.provider(w.orgA)), w.alice, nil), []string{"C-5", "C-4", "C-3", "C-2", "C-1"}; !slices.Equal(got, want) {
		t.Errorf("provider: claims = %v, want %v", got, want)
	}
	if got, want := claimIdentifiers(t, a.as(operator()), w.alice, nil), []string{"C-5", "C-4", "C-SENSITIVE", "C-3", "C-2", "C-1", "C-2015"}; !slices.Equal(got, want) {
		t.Errorf("operator: claims = %v, want %v", got, want)
	}

	d := data(t, a.as(w.provider(w.orgA)), `query($id: ID!) { member(id: $id) { claims(filter: {types: [INSTITUTIONAL_INPATIENT]}) { edges { node {
	    id memberId identifier type status outcome serviceStart serviceEnd created facilityName drg inNetwork sensitive
	    lines { sequence serviceDate productCode productSystem productDisplay modifiers quantity }
	    diagnoses { sequence code system display type }
	    procedures { sequence code performedOn } } } } } }`, map[string]any{"id": w.alice})
	claim := get(t, d, "member.claims.edges.0.node").(map[string]any)
	want := map[string]any{
		"id": w.claims["C-2"], "memberId": w.alice, "identifier": "C-2", "type": "INSTITUTIONAL_INPATIENT",
		"status": "ACTIVE", "outcome": "complete", "serviceStart": "2023-03-01", "serviceEnd": "2023-03-05",
		"created": "2023-03-01", "facilityName": "Springfield General", "drg": "470", "inNetwork": true, "sensitive": false,
	}
	for k, v := range want {
		if claim[k] != v {
			t.Errorf("claim.%s = %v, want %v", k, claim[k], v)
		}
	}
	lines := claim["lines"].([]any)
	if len(lines) != 3 {
		t.Fatalf("lines = %v", lines)
	}
	for i, l := range lines {
		l := l.(map[string]any)
		if l["sequence"] != float64(i+1) || l["productCode"] != "9921"+strconv.Itoa(i+1) ||
			!reflect.DeepEqual(l["modifiers"], []any{"25"}) || l["quantity"] != float64(1) || l["serviceDate"] != "2023-03-01" {
			t.Errorf("line %d = %v", i, l)
		}
	}
	if got := get(t, claim, "diagnoses.0.code"); got != "E11.9" {
		t.Errorf("diagnosis = %v", got)
	}
	if got := get(t, claim, "procedures.0.performedOn"); got != "2023-03-01" {
		t.Errorf("procedure date = %v", got)
	}

	// The children of a claim the principal may not see are not returned,
	// even when asked for by id (the store re-applies the policy).
	for _, c := range []string{"C-SENSITIVE", "C-2015", "C-CAROL"} {
		lines, err := w.db.LinesByClaims(context.Background(), w.provider(w.orgA), []string{w.claims[c]})
		if err != nil || len(lines) != 0 {
			t.Errorf("LinesByClaims(%s) = %v, %v; want none", c, lines, err)
		}
	}
}

func TestGraphQL_ClaimFilters(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	h := newAPI(t, w.db, false).as(w.provider(w.orgA))
	tests := []struct {
		filter map[string]any
		want   []string
	}{
		{map[string]any{"types": []string{"INSTITUTIONAL_INPATIENT"}}, []string{"C-2"}},
		{map[string]any{"types": []string{"PROFESSIONAL", "PHARMACY"}}, []string{"C-5", "C-4", "C-3", "C-1"}},
		{map[string]any{"status": "CANCELLED"}, []string{"C-3"}},
		{map[string]any{"servicePeriod": map[string]any{"from": "2023-03-03", "to": "2023-12-31"}}, []string{"C-2"}},
		{map[string]any{"servicePeriod": map[string]any{"from": "2024-01-01"}}, []string{"C-5", "C-4", "C-3"}},
		{map[string]any{"servicePeriod": map[string]any{"to": "2023-02-01"}}, []string{"C-1"}},
		{map[string]any{"types": []string{"PROFESSIONAL"}, "servicePeriod": map[string]any{"from": "2024-01-01"}}, []string{"C-5", "C-3"}},
		{map[string]any{"types": []string{"ORAL"}}, []string{}},
	}
	for _, tt := range tests {
		if got := claimIdentifiers(t, h, w.alice, map[string]any{"filter": tt.filter}); !slices.Equal(got, tt.want) {
			t.Errorf("filter %v: claims = %v, want %v", tt.filter, got, tt.want)
		}
	}
}

func TestGraphQL_MoneyIsForbiddenToProviderAccess(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	a := newAPI(t, w.db, false)
	const q = `query($id: ID!) { member(id: $id) { claims(first: 1) { edges { node {
	    identifier totalSubmitted totalPaid paymentDate copay lines { productCode paid memberLiability } } } }
	  priorAuthorizations(first: 1) { edges { node { items { productCode submitted } } } } } }`

	res := post(t, a.as(w.provider(w.orgA)), q, map[string]any{"id": w.alice})
	if res.status != http.StatusOK {
		t.Fatalf("status %d", res.status)
	}
	var d map[string]any
	res.decode(t, &d)
	claim := get(t, d, "member.claims.edges.0.node").(map[string]any)
	if claim["identifier"] != "C-5" {
		t.Fatalf("claim = %v", claim)
	}
	for _, f := range []string{"totalSubmitted", "totalPaid", "paymentDate", "copay"} {
		if v, ok := claim[f]; !ok || v != nil {
			t.Errorf("%s = %v, want null", f, v)
		}
	}
	if got := get(t, claim, "lines.1.paid"); got != nil {
		t.Errorf("line paid = %v, want null", got)
	}
	if got := get(t, d, "member.priorAuthorizations.edges.0.node.items.0.submitted"); got != nil {
		t.Errorf("item submitted = %v, want null", got)
	}
	wantPaths := []string{
		"member.claims.edges.0.node.totalSubmitted", "member.claims.edges.0.node.totalPaid",
		"member.claims.edges.0.node.paymentDate", "member.claims.edges.0.node.copay",
		"member.claims.edges.0.node.lines.0.paid", "member.claims.edges.0.node.lines.0.memberLiability",
		"member.claims.edges.0.node.lines.1.paid", "member.claims.edges.0.node.lines.1.memberLiability",
		"member.priorAuthorizations.edges.0.node.items.0.submitted",
	}
	var gotPaths []string
	for _, e := range res.Errors {
		if e.code() != "FORBIDDEN" {
			t.Errorf("error %+v, want FORBIDDEN", e)
		}
		gotPaths = append(gotPaths, e.path())
	}
	if !sameSet(gotPaths, wantPaths) {
		t.Errorf("FORBIDDEN at %v, want %v", gotPaths, wantPaths)
	}

	// Patient Access (its bound member) and operators read the amounts.
	for name, tc := range map[string]struct {
		as     auth.Principal
		member string
		want   []string
	}{
		"patient":  {w.patient(w.sam), w.sam, []string{`"totalSubmitted":1234.50`, `"totalPaid":900.00`, `"paymentDate":"2024-05-05"`, `"paid":70.00`, `"memberLiability":10.00`}},
		"operator": {operator(), w.alice, []string{`"totalSubmitted":1234.50`, `"copay":20.00`, `"paid":70.00`, `"submitted":450.00`}},
	} {
		res := post(t, a.as(tc.as), q, map[string]any{"id": tc.member})
		if res.status != http.StatusOK || len(res.Errors) != 0 {
			t.Errorf("%s: status %d, errors %+v", name, res.status, res.Errors)
		}
		for _, w := range tc.want {
			if !bytes.Contains(res.body, []byte(w)) {
				t.Errorf("%s: response lacks %s: %s", name, w, res.body)
			}
		}
	}
}

func TestGraphQL_MemberFilters(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	a := newAPI(t, w.db, false)
	const q = `query($f: MemberFilter) { members(first: 100, filter: $f) { totalCount edges { node { identifier } } } }`
	pagers1 := []string{}
	for i := 10; i < 20; i++ {
		pagers1 = append(pagers1, "M-PAGE-"+twoDigits(i))
	}
	tests := []struct {
		as     auth.Principal
		filter map[string]any
		want   []string
	}{
		{w.provider(w.orgA), map[string]any{"name": "and"}, []string{"M-ALICE"}}, // Andersen opted out
		{operator(), map[string]any{"name": "and"}, []string{"M-ALICE", "M-CAROL"}},
		{operator(), map[string]any{"name": "ANDERS"}, []string{"M-ALICE", "M-CAROL"}},
		{operator(), map[string]any{"name": "alice anders"}, []string{"M-ALICE"}},
		{operator(), map[string]any{"name": "nders"}, []string{}}, // prefixes only
		{operator(), map[string]any{"name": "%"}, []string{}},     // LIKE characters are literal
		{w.provider(w.orgA), map[string]any{"name": "pager1"}, pagers1},
		{w.provider(w.orgA), map[string]any{"identifier": "M-BOB"}, []string{"M-BOB"}},
		{w.provider(w.orgA), map[string]any{"identifier": "M-CAROL"}, []string{}},
		{w.provider(w.orgA), map[string]any{"birthDate": "1980-02-03"}, []string{"M-ALICE"}},
		{w.provider(w.orgA), map[string]any{"birthDate": "1980-02-03", "name": "bob"}, []string{}},
	}
	for _, tt := range tests {
		d := data(t, a.as(tt.as), q, map[string]any{"f": tt.filter})
		if got := column(t, get(t, d, "members.edges"), "identifier"); !sameSet(got, tt.want) {
			t.Errorf("filter %v: members = %v, want %v", tt.filter, got, tt.want)
		}
		if got := get(t, d, "members.totalCount"); got != float64(len(tt.want)) {
			t.Errorf("filter %v: totalCount = %v, want %d", tt.filter, got, len(tt.want))
		}
	}
	res := post(t, a.as(operator()), q, map[string]any{"f": map[string]any{"birthDate": "02/03/1980"}})
	if !slices.Equal(res.codes(), []string{"BAD_USER_INPUT"}) {
		t.Errorf("bad date: %s", res.body)
	}
}

// walk pages through a connection with first: size, following endCursor,
// and returns the nodes' field, checking pageInfo on the way.
func walk(t testing.TB, h http.Handler, query, path, field string, vars map[string]any, size int) []string {
	t.Helper()
	var all []string
	var after any
	for page := 0; ; page++ {
		v := map[string]any{"first": size, "after": after}
		for k, x := range vars {
			v[k] = x
		}
		conn := get(t, data(t, h, query, v), path)
		nodes := column(t, get(t, conn, "edges"), field)
		info := get(t, conn, "pageInfo").(map[string]any)
		if len(nodes) > size {
			t.Fatalf("page %d has %d nodes, want at most %d", page, len(nodes), size)
		}
		if info["hasPreviousPage"] != (page > 0) {
			t.Errorf("page %d: hasPreviousPage = %v", page, info["hasPreviousPage"])
		}
		all = append(all, nodes...)
		if len(nodes) > 0 {
			if last := get(t, conn, "edges."+strconv.Itoa(len(nodes)-1)+".cursor"); info["endCursor"] != last {
				t.Errorf("endCursor %v, last edge cursor %v", info["endCursor"], last)
			}
			if first := get(t, conn, "edges.0.cursor"); info["startCursor"] != first {
				t.Errorf("startCursor %v, first edge cursor %v", info["startCursor"], first)
			}
		}
		if info["hasNextPage"] != true {
			return all
		}
		if len(nodes) != size {
			t.Errorf("page %d: %d nodes and hasNextPage", page, len(nodes))
		}
		after = info["endCursor"]
		if page > 100 {
			t.Fatal("pagination does not end")
		}
	}
}

func TestGraphQL_Pagination(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	a := newAPI(t, w.db, false)
	provider, op := a.as(w.provider(w.orgA)), a.as(operator())

	const membersQ = `query($first: Int, $after: String) { members(first: $first, after: $after) {
	  edges { cursor node { id } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }`
	ids := walk(t, provider, membersQ, "members", "id", nil, 7)
	want := append([]string{w.alice, w.bob}, w.pagers...)
	if !sameSet(ids, want) || len(ids) != len(want) {
		t.Errorf("walked %d members %v, want the %d visible ones", len(ids), ids, len(want))
	}
	if !slices.IsSorted(ids) {
		t.Errorf("members not in id order: %v", ids)
	}

	for _, tc := range []struct {
		name, conn, node, field string
		size                    int
		want                    []string
	}{
		{"claims", "claims", "identifier", "identifier", 2, []string{"C-5", "C-4", "C-SENSITIVE", "C-3", "C-2", "C-1", "C-2015"}},
		{"encounters", "encounters", "identifier", "identifier", 1, []string{"E-2", "E-SENSITIVE", "E-1", "E-2014"}},
		{"prior authorizations", "priorAuthorizations", "identifier", "identifier", 2, []string{"PA-PENDING", "PA-DENIED", "PA-APPROVED", "PA-DRUG", "PA-SENSITIVE"}},
		{"conditions", "conditions", "id", "id", 1, []string{w.clinics["COND-2"], w.clinics["COND-SENSITIVE"], w.clinics["COND-1"]}},
		{"allergies (undated last)", "allergies", "id", "id", 1, []string{w.clinics["ALG-1"], w.clinics["ALG-UNDATED"]}},
	} {
		q := `query($id: ID!, $first: Int, $after: String) { member(id: $id) { ` + tc.conn + `(first: $first, after: $after) {
		  edges { cursor node { ` + tc.node + ` } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } } }`
		if got := walk(t, op, q, "member."+tc.conn, tc.field, map[string]any{"id": w.alice}, tc.size); !slices.Equal(got, tc.want) {
			t.Errorf("%s: walked %v, want %v", tc.name, got, tc.want)
		}
	}

	d := data(t, provider, `{ members(first: 0) { edges { cursor } pageInfo { hasNextPage endCursor } } }`, nil)
	if got := get(t, d, "members"); !reflect.DeepEqual(got, map[string]any{"edges": []any{}, "pageInfo": map[string]any{"hasNextPage": true, "endCursor": nil}}) {
		t.Errorf("first: 0 = %v", got)
	}
}

func TestGraphQL_PageArguments(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	h := newAPI(t, w.db, false).as(w.provider(w.orgA))
	memberCursor := get(t, data(t, h, `{ members(first: 1) { pageInfo { endCursor } } }`, nil), "members.pageInfo.endCursor").(string)
	tests := []struct {
		name, query string
		vars        map[string]any
		field       string
	}{
		{"first above 100", `{ members(first: 100000) { totalCount } }`, nil, "first"},
		{"first of 101", `{ members(first: 101) { totalCount } }`, nil, "first"},
		{"negative first", `{ members(first: -1) { totalCount } }`, nil, "first"},
		{"garbage cursor", `{ members(after: "garbage!") { totalCount } }`, nil, "after"},
		{"cursor of another list", `query($id: ID!, $c: String) { member(id: $id) { claims(after: $c) { edges { cursor } } } }`,
			map[string]any{"id": w.alice, "c": memberCursor}, "after"},
		{"nested first above 100", `query($id: ID!) { member(id: $id) { encounters(first: 500) { edges { cursor } } } }`,
			map[string]any{"id": w.alice}, "first"},
	}
	for _, tt := range tests {
		res := post(t, h, tt.query, tt.vars)
		if res.status != http.StatusOK || !slices.Equal(res.codes(), []string{"BAD_USER_INPUT"}) {
			t.Errorf("%s: status %d, body %s", tt.name, res.status, res.body)
			continue
		}
		if got := res.Errors[0].Extensions["field"]; got != tt.field {
			t.Errorf("%s: extensions.field = %v, want %s", tt.name, got, tt.field)
		}
	}
}

func TestGraphQL_EncountersPriorAuthorizationsClinical(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	a := newAPI(t, w.db, false)
	provider := a.as(w.provider(w.orgA))
	vars := map[string]any{"id": w.alice}

	d := data(t, provider, `query($id: ID!) { member(id: $id) {
	  all: encounters { edges { node { identifier status class periodStart periodEnd } } }
	  recent: encounters(filter: {period: {from: "2025-01-01"}}) { edges { node { identifier } } } } }`, vars)
	if got := column(t, get(t, d, "member.all.edges"), "identifier"); !slices.Equal(got, []string{"E-2", "E-1"}) {
		t.Errorf("encounters = %v, want [E-2 E-1] (no sensitive, none before 2016)", got)
	}
	if got := get(t, d, "member.all.edges.0.node"); !reflect.DeepEqual(got, map[string]any{"identifier": "E-2", "status": "finished",
		"class": "AMB", "periodStart": "2025-02-01T09:00:00Z", "periodEnd": "2025-02-01T09:30:00Z"}) {
		t.Errorf("encounter = %v", got)
	}
	if got := column(t, get(t, d, "member.recent.edges"), "identifier"); !slices.Equal(got, []string{"E-2"}) {
		t.Errorf("encounters since 2025 = %v", got)
	}

	d = data(t, provider, `query($id: ID!) { member(id: $id) {
	  all: priorAuthorizations { edges { node { identifier status drug denialReason items { sequence productCode } } } }
	  denied: priorAuthorizations(filter: {statuses: [DENIED]}) { edges { node { identifier } } } } }`, vars)
	if got := column(t, get(t, d, "member.all.edges"), "identifier"); !slices.Equal(got, []string{"PA-PENDING", "PA-DENIED", "PA-APPROVED"}) {
		t.Errorf("prior authorizations = %v (no drug, no sensitive)", got)
	}
	if got := get(t, d, "member.all.edges.1.node.denialReason"); got != "Not medically necessary" {
		t.Errorf("denial reason = %v", got)
	}
	if got := get(t, d, "member.all.edges.0.node.items.0.productCode"); got != "70551" {
		t.Errorf("item = %v", got)
	}
	if got := column(t, get(t, d, "member.denied.edges"), "identifier"); !slices.Equal(got, []string{"PA-DENIED"}) {
		t.Errorf("denied = %v", got)
	}
	d = data(t, a.as(operator()), `query($id: ID!) { member(id: $id) { priorAuthorizations(filter: {statuses: [APPROVED]}) { edges { node { identifier drug } } } } }`, vars)
	if got := get(t, d, "member.priorAuthorizations.edges"); !reflect.DeepEqual(got, []any{
		map[string]any{"node": map[string]any{"identifier": "PA-APPROVED", "drug": false}},
		map[string]any{"node": map[string]any{"identifier": "PA-DRUG", "drug": true}},
	}) {
		t.Errorf("operator: approved = %v", got)
	}

	const clinicalQ = `query($id: ID!) { member(id: $id) {
	  conditions { edges { node { id resourceType status dateOfService code { system code display } resource } } }
	  observations { edges { node { id } } } medications { edges { node { id } } }
	  immunizations { edges { node { id } } } allergies { edges { node { id } } } procedures { edges { node { id } } }
	  since2024_6: conditions(filter: {dateOfService: {from: "2024-06-01"}}) { edges { node { id } } } } }`
	d = data(t, provider, clinicalQ, vars)
	c := w.clinics
	for conn, want := range map[string][]string{
		"conditions": {c["COND-2"], c["COND-1"]}, "observations": {c["OBS-1"]}, "medications": {c["MED-1"]},
		"immunizations": {c["IMM-1"]}, "allergies": {c["ALG-1"]}, "procedures": {c["PROC-1"]},
		"since2024_6": {c["COND-2"]},
	} {
		if got := column(t, get(t, d, "member."+conn+".edges"), "id"); !slices.Equal(got, want) {
			t.Errorf("provider %s = %v, want %v", conn, got, want)
		}
	}
	cond := get(t, d, "member.conditions.edges.0.node").(map[string]any)
	if cond["resourceType"] != "Condition" || cond["dateOfService"] != "2025-01-01" || cond["status"] != "active" ||
		!reflect.DeepEqual(cond["code"], map[string]any{"system": "http://snomed.info/sct", "code": "38341003", "display": "Display 38341003"}) ||
		get(t, cond, "resource.id") != "COND-2" || get(t, cond, "resource.resourceType") != "Condition" {
		t.Errorf("condition = %v", cond)
	}
	d = data(t, a.as(operator()), clinicalQ, vars)
	if got := column(t, get(t, d, "member.conditions.edges"), "id"); !slices.Equal(got, []string{c["COND-2"], c["COND-SENSITIVE"], c["COND-1"]}) {
		t.Errorf("operator conditions = %v", got)
	}
	if got := column(t, get(t, d, "member.allergies.edges"), "id"); !slices.Equal(got, []string{c["ALG-1"], c["ALG-UNDATED"]}) {
		t.Errorf("operator allergies = %v", got)
	}
}

func TestGraphQL_CoverageAttributionsViewer(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	a := newAPI(t, w.db, false)
	const q = `query($id: ID!) { member(id: $id) { coverage { identifier status planName payerName periodStart periodEnd }
	  attributions { organizationId status source periodStart periodEnd } } }`
	d := data(t, a.as(w.provider(w.orgA)), q, map[string]any{"id": w.alice})
	if got := get(t, d, "member.coverage"); !reflect.DeepEqual(got, []any{map[string]any{"identifier": "COV-ALICE", "status": "active",
		"planName": "Gold PPO", "payerName": "Example Health Plan", "periodStart": "2024-01-01", "periodEnd": nil}}) {
		t.Errorf("coverage = %v", got)
	}
	if got := get(t, d, "member.attributions"); !reflect.DeepEqual(got, []any{map[string]any{"organizationId": w.orgA,
		"status": "ACTIVE", "source": "PAYER", "periodStart": day(-100), "periodEnd": nil}}) {
		t.Errorf("provider sees only its own attribution: %v", got)
	}
	status := func(as auth.Principal, member string) []string {
		var out []string
		for _, x := range get(t, data(t, a.as(as), q, map[string]any{"id": member}), "member.attributions").([]any) {
			out = append(out, x.(map[string]any)["status"].(string))
		}
		return out
	}
	for _, tc := range []struct {
		as     auth.Principal
		member string
		want   []string
	}{
		{w.provider(w.orgA), w.bob, []string{"UPCOMING"}},
		{operator(), w.alice, []string{"ACTIVE", "ENDED"}},
		{operator(), w.frank, []string{"FUTURE"}},
		{operator(), w.gina, []string{"ENDED"}},
		{operator(), w.dave, []string{"ENDED"}},
	} {
		if got := status(tc.as, tc.member); !slices.Equal(got, tc.want) {
			t.Errorf("attributions of %s = %v, want %v", tc.member, got, tc.want)
		}
	}

	const viewerQ = `{ viewer { kind id organizationId accessType environment } }`
	if got := get(t, data(t, a.as(w.provider(w.orgA)), viewerQ, nil), "viewer"); !reflect.DeepEqual(got, map[string]any{
		"kind": "CLIENT", "id": "client-" + w.orgA[:8], "organizationId": w.orgA, "accessType": "PROVIDER_ACCESS", "environment": "PRODUCTION"}) {
		t.Errorf("viewer = %v", got)
	}
	op := operator()
	if got := get(t, data(t, a.as(op), viewerQ, nil), "viewer"); !reflect.DeepEqual(got, map[string]any{
		"kind": "OPERATOR", "id": op.ID(), "organizationId": nil, "accessType": nil, "environment": nil}) {
		t.Errorf("operator viewer = %v", got)
	}
}

func TestGraphQL_Anonymous(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	anon := newAPI(t, w.db, true).as(auth.Principal{})
	for _, q := range []string{
		`{ viewer { kind } }`,
		`{ members { totalCount } }`,
		`{ member(id: "` + w.alice + `") { id } }`,
	} {
		res := post(t, anon, q, nil)
		if res.status != http.StatusOK || !slices.Equal(res.codes(), []string{"UNAUTHENTICATED"}) || !strings.HasPrefix(res.mediaType, "application/json") {
			t.Errorf("%s: status %d, %s, %s", q, res.status, res.mediaType, res.body)
		}
	}
	// One error per root field, and the anonymous part still answers.
	res := post(t, anon, `{ __typename a: viewer { kind } b: member(id: "x") { id } }`, nil)
	if string(res.raw["data"]) != "null" || !slices.Equal(res.codes(), []string{"UNAUTHENTICATED", "UNAUTHENTICATED"}) {
		t.Errorf("two root fields: %s", res.body)
	}
	res = post(t, anon, `{ __typename b: member(id: "x") { id } }`, nil)
	if string(res.raw["data"]) != `{"__typename":"Query","b":null}` || res.Errors[0].path() != "b" {
		t.Errorf("__typename beside a protected field: %s", res.body)
	}

	// Introspection is anonymous when INTROSPECTION is on, and off otherwise.
	d := data(t, anon, `{ __schema { queryType { name } } __type(name: "Claim") { name } }`, nil)
	if get(t, d, "__schema.queryType.name") != "Query" || get(t, d, "__type.name") != "Claim" {
		t.Errorf("introspection = %v", d)
	}
	off := newAPI(t, w.db, false).as(operator())
	res = post(t, off, `{ __schema { queryType { name } } }`, nil)
	if len(res.Errors) != 1 || res.Errors[0].code() != "FORBIDDEN" || bytes.Contains(res.body, []byte(`"Query"`)) {
		t.Errorf("introspection off: %s", res.body)
	}
}

func TestGraphQL_HTTP(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	a := newAPI(t, w.db, false)
	h := a.as(w.provider(w.orgA))
	deep := &api{t: t, db: w.db, logs: a.logs}
	s := &Server{Config: Config{}, Logger: NewLogger(a.logs, 0), DB: w.db}
	deep.handler = withRequestID(s.newGraphQLHandler(graphQLLimits{depth: 4, complexity: maxComplexity}))

	const (
		jsonType = "application/json; charset=utf-8"
		grType   = "application/graphql-response+json; charset=utf-8"
		grAccept = "application/graphql-response+json"
	)
	body := func(v any) *bytes.Reader { b, _ := json.Marshal(v); return bytes.NewReader(b) }
	query := func(q string) *bytes.Reader { return body(map[string]any{"query": q}) }
	tooComplexQ := `{ members(first: 100) { edges { node { claims(first: 100) { edges { node { lines { productCode } } } } } } } }`
	tests := []struct {
		name       string
		h          http.Handler
		req        *http.Request
		wantStatus int
		wantType   string
		wantCode   string // first error's code; "" = no errors
		wantData   bool
	}{
		{"ok", h, rawPost("application/json", "", query(`{ viewer { kind } }`)), 200, jsonType, "", true},
		{"ok, charset in content type", h, rawPost("application/json; charset=utf-8", "", query(`{ viewer { kind } }`)), 200, jsonType, "", true},
		{"ok as graphql-response+json", h, rawPost("application/json", grAccept, query(`{ viewer { kind } }`)), 200, grType, "", true},
		{"ok, either accepted", h, rawPost("application/json", "application/json, "+grAccept, query(`{ viewer { kind } }`)), 200, grType, "", true},
		{"ok, */*", h, rawPost("application/json", "*/*", query(`{ viewer { kind } }`)), 200, jsonType, "", true},
		{"unknown field", h, rawPost("application/json", "", query(`{ viewer { nope } }`)), 200, jsonType, "GRAPHQL_VALIDATION_FAILED", false},
		{"unknown field, graphql-response+json", h, rawPost("application/json", grAccept, query(`{ viewer { nope } }`)), 400, grType, "GRAPHQL_VALIDATION_FAILED", false},
		{"wrong argument type", h, rawPost("application/json", "", query(`{ members(first: "x") { totalCount } }`)), 200, jsonType, "GRAPHQL_VALIDATION_FAILED", false},
		{"wrong argument type, graphql-response+json", h, rawPost("application/json", grAccept, query(`{ members(first: "x") { totalCount } }`)), 400, grType, "GRAPHQL_VALIDATION_FAILED", false},
		{"bad enum variable", h, rawPost("application/json", "", body(map[string]any{"query": aliceClaimsQuery,
			"variables": map[string]any{"id": w.alice, "filter": map[string]any{"types": []string{"NOPE"}}}})), 200, jsonType, "GRAPHQL_VALIDATION_FAILED", false},
		{"parse error", h, rawPost("application/json", "", query(`{ viewer {`)), 200, jsonType, "GRAPHQL_PARSE_FAILED", false},
		{"parse error, graphql-response+json", h, rawPost("application/json", grAccept, query(`{ viewer {`)), 400, grType, "GRAPHQL_PARSE_FAILED", false},
		{"too complex", h, rawPost("application/json", "", query(tooComplexQ)), 200, jsonType, "TOO_COMPLEX", false},
		{"too complex, graphql-response+json", h, rawPost("application/json", grAccept, query(tooComplexQ)), 400, grType, "TOO_COMPLEX", false},
		{"too deep", deep.as(w.provider(w.orgA)), rawPost("application/json", "", query(`{ members { edges { node { claims { edges { node { id } } } } } } }`)), 200, jsonType, "TOO_COMPLEX", false},
		{"too deep, graphql-response+json", deep.as(w.provider(w.orgA)), rawPost("application/json", grAccept, query(`{ members { edges { node { claims { edges { node { id } } } } } } }`)), 400, grType, "TOO_COMPLEX", false},
		{"@defer", h, rawPost("application/json", "", query(`{ viewer { kind ... @defer { id } } }`)), 200, jsonType, "GRAPHQL_VALIDATION_FAILED", false},
		{"not too deep", deep.as(w.provider(w.orgA)), rawPost("application/json", "", query(`{ members { edges { node { id } } } }`)), 200, jsonType, "", true},
		{"malformed JSON", h, rawPost("application/json", "", strings.NewReader(`{"query": "{ viewer { kind } }"`)), 400, jsonType, "BAD_USER_INPUT", false},
		{"malformed JSON, graphql-response+json", h, rawPost("application/json", grAccept, strings.NewReader(`{"query": `)), 400, grType, "BAD_USER_INPUT", false},
		{"JSON array", h, rawPost("application/json", "", strings.NewReader(`[]`)), 400, jsonType, "BAD_USER_INPUT", false},
		{"query not a string", h, rawPost("application/json", "", strings.NewReader(`{"query": 5}`)), 400, jsonType, "BAD_USER_INPUT", false},
		{"missing query", h, rawPost("application/json", "", strings.NewReader(`{"variables": {}}`)), 400, jsonType, "BAD_USER_INPUT", false},
		{"empty query", h, rawPost("application/json", "", strings.NewReader(`{"query": ""}`)), 400, jsonType, "BAD_USER_INPUT", false},
		{"trailing garbage", h, rawPost("application/json", "", strings.NewReader(`{"query": "{ viewer { kind } }"} x`)), 400, jsonType, "BAD_USER_INPUT", false},
		{"not JSON", h, rawPost("text/plain", "", query(`{ viewer { kind } }`)), 415, jsonType, "BAD_USER_INPUT", false},
		{"no content type", h, rawPost("", "", query(`{ viewer { kind } }`)), 415, jsonType, "BAD_USER_INPUT", false},
		{"body over 1 MiB", h, rawPost("application/json", "", query("{ viewer { kind } }"+strings.Repeat(" ", 1<<20))), 413, jsonType, "BAD_USER_INPUT", false},
		{"not acceptable", h, rawPost("application/json", "text/html", query(`{ viewer { kind } }`)), 406, jsonType, "BAD_USER_INPUT", false},
		{"GET query", h, httptest.NewRequest("GET", "/graphql?query="+url.QueryEscape(`{ viewer { kind } }`), nil), 200, jsonType, "", true},
		{"GET query with variables", h, httptest.NewRequest("GET", "/graphql?query="+url.QueryEscape(`query($id: ID!) { member(id: $id) { id } }`)+
			"&variables="+url.QueryEscape(`{"id":"`+w.alice+`"}`), nil), 200, jsonType, "", true},
		{"GET mutation", h, httptest.NewRequest("GET", "/graphql?query="+url.QueryEscape(`mutation { startBulkExport }`), nil), 405, jsonType, "BAD_USER_INPUT", false},
		{"GET without query", h, httptest.NewRequest("GET", "/graphql", nil), 400, jsonType, "BAD_USER_INPUT", false},
		{"GET with bad variables", h, httptest.NewRequest("GET", "/graphql?query=%7Bviewer%7Bkind%7D%7D&variables=%7B", nil), 400, jsonType, "BAD_USER_INPUT", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := do(t, tt.h, tt.req)
			if res.status != tt.wantStatus || res.mediaType != tt.wantType {
				t.Errorf("status %d %q, want %d %q: %s", res.status, res.mediaType, tt.wantStatus, tt.wantType, res.body)
			}
			if got := res.codes(); (tt.wantCode == "") != (len(got) == 0) || (tt.wantCode != "" && got[0] != tt.wantCode) {
				t.Errorf("codes %v, want %q: %s", got, tt.wantCode, res.body)
			}
			if _, ok := res.raw["data"]; ok != tt.wantData {
				t.Errorf("data present = %v, want %v: %s", ok, tt.wantData, res.body)
			}
			if bytes.Contains(res.body, []byte(`viewer { kind } }"`)) {
				t.Errorf("the response echoes the request body: %s", res.body)
			}
		})
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, rawPost("application/json", "", query(`{ viewer { kind } }`)))
	if got := rec.Header().Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", got)
	}
}

func TestGraphQL_InternalErrorsAreMasked(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	a := newAPI(t, w.db, false)
	builder{t, w.db}.exec(`ALTER TABLE claim_lines RENAME TO claim_lines_gone`)
	req := rawPost("application/json", "", bytes.NewReader([]byte(`{"query":"query($id: ID!) { member(id: $id) { claims { edges { node { identifier lines { productCode } } } } } }","variables":{"id":"`+w.alice+`"}}`)))
	req.Header.Set("X-Request-Id", "req-internal-1")
	res := do(t, a.as(operator()), req)
	if res.status != http.StatusOK || len(res.Errors) == 0 {
		t.Fatalf("status %d: %s", res.status, res.body)
	}
	for _, e := range res.Errors {
		if e.code() != "INTERNAL" || e.Message != "internal error" {
			t.Errorf("error %+v, want the masked INTERNAL", e)
		}
	}
	if bytes.Contains(res.body, []byte("claim_lines")) || bytes.Contains(res.body, []byte("pq:")) {
		t.Errorf("SQL leaked to the client: %s", res.body)
	}
	logs := a.logs.String()
	if !strings.Contains(logs, `"request_id":"req-internal-1"`) || !strings.Contains(logs, "claim_lines") {
		t.Errorf("the cause is not logged with the request id:\n%s", logs)
	}
}

func TestGraphQL_AuditRows(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	a := newAPI(t, w.db, false)
	p := w.provider(w.orgA)
	send := func(requestID, query string, vars map[string]any) result {
		b, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
		req := rawPost("application/json", "", bytes.NewReader(b))
		req.Header.Set("X-Request-Id", requestID)
		return do(t, a.as(p), req)
	}
	type row struct {
		Member    string `db:"member_id"`
		Resources string `db:"resources"`
		Operation string `db:"operation"`
		Kind      string `db:"principal_kind"`
		Principal string `db:"principal_id"`
		Org       string `db:"organization_id"`
		Env       string `db:"environment"`
		Outcome   string `db:"outcome"`
	}
	rows := func(requestID string) map[string]row {
		var rs []row
		if err := w.db.Select(&rs, `SELECT member_id, resources::text AS resources, operation, principal_kind, principal_id,
		    organization_id, environment, outcome FROM audit_events WHERE request_id = $1`, requestID); err != nil {
			t.Fatal(err)
		}
		out := map[string]row{}
		for _, r := range rs {
			out[r.Member] = r
		}
		return out
	}

	res := send("req-audit-1", `query ReadTwo($a: ID!, $b: ID!) {
	  alice: member(id: $a) { claims { edges { node { id lines { productCode } } } } encounters { edges { node { id } } } }
	  bob: member(id: $b) { claims { edges { node { id } } } encounters { edges { node { id } } } } }`,
		map[string]any{"a": w.alice, "b": w.bob})
	if len(res.Errors) != 0 {
		t.Fatal(res.body)
	}
	got := rows("req-audit-1")
	want := map[string]string{
		w.alice: `{"Patient": 1, "Encounter": 2, "ExplanationOfBenefit": 5}`,
		w.bob:   `{"Patient": 1, "Encounter": 0, "ExplanationOfBenefit": 0}`,
	}
	if len(got) != len(want) {
		t.Fatalf("audit rows %v, want one per member read", got)
	}
	for m, resources := range want {
		r := got[m]
		if r.Resources != resources || r.Operation != "graphql:query ReadTwo" || r.Kind != "CLIENT" ||
			r.Principal != p.ID() || r.Org != w.orgA || r.Env != "PRODUCTION" || r.Outcome != "SUCCESS" {
			t.Errorf("audit row of %s = %+v, want resources %s", m, r, resources)
		}
	}

	// Nothing read, nothing audited: the viewer, a member that is not the
	// caller's, a request refused before execution.
	send("req-audit-2", `{ viewer { kind } }`, nil)
	send("req-audit-3", `query($id: ID!) { member(id: $id) { id } }`, map[string]any{"id": w.erin})
	send("req-audit-4", `{ members(first: 100000) { totalCount } }`, nil)
	for _, id := range []string{"req-audit-2", "req-audit-3", "req-audit-4"} {
		if got := rows(id); len(got) != 0 {
			t.Errorf("%s: audit rows %v, want none", id, got)
		}
	}
	// Money refused: the read is audited as partial.
	send("req-audit-5", `query($id: ID!) { member(id: $id) { claims(first: 1) { edges { node { totalPaid } } } } }`, map[string]any{"id": w.alice})
	if got := rows("req-audit-5")[w.alice]; got.Outcome != "PARTIAL" || got.Resources != `{"Patient": 1, "ExplanationOfBenefit": 1}` {
		t.Errorf("partial read audited as %+v", got)
	}

	// If the audit cannot be written, no member data leaves.
	builder{t, w.db}.exec(`ALTER TABLE audit_events ADD CONSTRAINT refuse_all CHECK (false) NOT VALID`)
	res = send("req-audit-6", `query($id: ID!) { member(id: $id) { identifier givenName } }`, map[string]any{"id": w.alice})
	if res.status != http.StatusInternalServerError || !slices.Equal(res.codes(), []string{"INTERNAL"}) || bytes.Contains(res.body, []byte("Alice")) {
		t.Errorf("audit failure: status %d, %s", res.status, res.body)
	}
	if _, ok := res.raw["data"]; ok {
		t.Errorf("audit failure: data present: %s", res.body)
	}
}

// TestGraphQL_NoNPlusOne counts the SQL statements of the nested query of
// issue 2: constant whatever the page sizes.
func TestGraphQL_NoNPlusOne(t *testing.T) {
	t.Parallel()
	db, counter := countingStore(t)
	b := builder{t, db}
	org := b.org("Org A", "1234567893", true)
	b.bulk(org, "NPLUS-", 60, 3, 2)
	h := newAPI(t, db, false).as((&world{}).provider(org))

	statements := func(query string, first int) (int64, int) {
		before := counter.count()
		d := data(t, h, query, map[string]any{"first": first})
		n := 0
		for _, e := range get(t, d, "members.edges").([]any) {
			for _, c := range get(t, e, "node.claims.edges").([]any) {
				n += len(get(t, c, "node.lines").([]any))
			}
		}
		return counter.count() - before, n
	}
	for _, tc := range []struct {
		name, query string
		want        int64
	}{
		// members page, claims, lines, audit insert
		{"members.claims.lines", nestedMembersQuery, 4},
		// + encounters, coverage, attributions, diagnoses, the count
		{"wider", `query Nested($first: Int!) { members(first: $first) { totalCount edges { node { id
		    claims(first: 20) { edges { node { lines { productCode } diagnoses { code } } } }
		    encounters { edges { node { id } } } coverage { id } attributions { status } } } } }`, 9},
	} {
		small, lines5 := statements(tc.query, 5)
		large, lines50 := statements(tc.query, 50)
		if small != tc.want || large != tc.want {
			t.Errorf("%s: %d statements for first: 5, %d for first: 50; want %d for both", tc.name, small, large, tc.want)
		}
		if lines5 != 5*3*2 || lines50 != 50*3*2 {
			t.Errorf("%s: %d and %d lines, want 30 and 300", tc.name, lines5, lines50)
		}
	}
}
