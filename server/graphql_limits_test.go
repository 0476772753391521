package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/99designs/gqlgen/complexity"
	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/parser"

	"example.com/gateway/auth"
	"example.com/gateway/gateway"
	"example.com/gateway/graph"
	"example.com/gateway/resolvers"
	"example.com/gateway/store"
	"example.com/gateway/store/storetest"
)

// TestComplexityLimitBounds pins the complexity limit between the queries
// the API is for and the ones it refuses.
func TestComplexityLimitBounds(t *testing.T) {
	es := graph.NewExecutableSchema(resolvers.NewConfig(&resolvers.Resolver{}))
	cost := func(query string, vars map[string]any) int {
		doc, err := gqlparser.LoadQuery(es.Schema(), query)
		if err != nil {
			t.Fatalf("%s: %v", query, err)
		}
		return complexity.Calculate(context.Background(), es, doc.Operations[0], vars)
	}
	allowed := map[string]int{
		"member claims benchmark": cost(memberClaimsQuery, map[string]any{"id": "x"}),
		"nested members":          cost(nestedMembersQuery, map[string]any{"first": 50}),
		"a member's whole record": cost(`{ member(id: "x") { id claims(first: 50) { edges { node { id lines { productCode } diagnoses { code } procedures { code } } } }
		  encounters(first: 50) { edges { node { id } } } priorAuthorizations(first: 50) { edges { node { id items { productCode } } } }
		  conditions(first: 50) { edges { node { id resource } } } observations(first: 50) { edges { node { id resource } } }
		  coverage { id } attributions { status } } }`, nil),
	}
	refused := map[string]int{
		"100 members × 100 claims": cost(`{ members(first: 100) { edges { node { claims(first: 100) { edges { node { lines { productCode } } } } } } } }`, nil),
		"100 members × every list": cost(`{ members(first: 100) { edges { node { claims(first: 20) { edges { node { id } } }
		  encounters(first: 20) { edges { node { id } } } conditions(first: 20) { edges { node { id } } }
		  observations(first: 20) { edges { node { id } } } medications(first: 20) { edges { node { id } } } } } } }`, nil),
	}
	for name, c := range allowed {
		if c > maxComplexity {
			t.Errorf("%s costs %d, above the limit %d", name, c, maxComplexity)
		}
	}
	for name, c := range refused {
		if c <= maxComplexity {
			t.Errorf("%s costs %d, within the limit %d", name, c, maxComplexity)
		}
	}
	t.Logf("allowed %v, refused %v, limit %d", allowed, refused, maxComplexity)
}

func TestSelectionDepth(t *testing.T) {
	es := graph.NewExecutableSchema(graph.Config{})
	for query, want := range map[string]int{
		`{ viewer { kind } }`: 2,
		`{ members { edges { node { claims { edges { node { lines { productCode } } } } } } } }`:                        8,
		`query { ...F } fragment F on Query { member(id: "x") { ... on Member { claims { edges { node { id } } } } } }`: 5,
		`{ __schema { types { fields { type { ofType { ofType { name } } } } } } }`:                                     0,
	} {
		doc, err := gqlparser.LoadQuery(es.Schema(), query)
		if err != nil {
			t.Fatal(err)
		}
		if got := selectionDepth(doc, doc.Operations[0].SelectionSet); got != want {
			t.Errorf("depth of %s = %d, want %d", query, got, want)
		}
	}
}

func TestRecoverPanic(t *testing.T) {
	var logs syncBuffer
	err := recoverPanic(NewLogger(&logs, slog.LevelInfo))(context.Background(), "boom")
	if gateway.ErrorCode(err) != gateway.CodeInternal || err.(*gateway.Error).Message != "internal error" {
		t.Errorf("recover = %v", err)
	}
	if out := logs.String(); !strings.Contains(out, `"panic":"boom"`) || !strings.Contains(out, "goroutine") {
		t.Errorf("panic not logged with its stack: %s", out)
	}
}

// The boundary tests below send each limit's just-under and just-over
// request over a real HTTP connection (httptest.NewServer) to the GraphQL
// handler, built from the limit's constant, so that they follow it.

// serveGraphQL serves h on a loopback listener and returns its /graphql URL.
func serveGraphQL(t testing.TB, h http.Handler) string {
	t.Helper()
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return ts.URL + "/graphql"
}

// roundTrip sends req over HTTP and reads the GraphQL response.
func roundTrip(t testing.TB, req *http.Request) result {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	res := result{status: resp.StatusCode, mediaType: resp.Header.Get("Content-Type"), body: body}
	if err := json.Unmarshal(body, &res.raw); err != nil {
		t.Fatalf("response is not a JSON object (status %d): %v\n%.300s", resp.StatusCode, err, body)
	}
	if e, ok := res.raw["errors"]; ok {
		if err := json.Unmarshal(e, &res.Errors); err != nil {
			t.Fatalf("errors: %v", err)
		}
	}
	return res
}

// httpPostBody POSTs body as application/json to u.
func httpPostBody(t testing.TB, u string, body []byte) result {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	return roundTrip(t, req)
}

// httpPost POSTs a GraphQL request; entries of req that are nil are left out.
func httpPost(t testing.TB, u string, req map[string]any) result {
	t.Helper()
	for k, v := range req {
		if v == nil {
			delete(req, k)
		}
	}
	b, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	return httpPostBody(t, u, b)
}

// httpPostQuery POSTs query without variables.
func httpPostQuery(t testing.TB, u, query string) result {
	t.Helper()
	return httpPost(t, u, map[string]any{"query": query})
}

// httpGet sends a GET with params (JSON-encoding the map-valued ones).
func httpGet(t testing.TB, u string, params map[string]any) result {
	t.Helper()
	q := url.Values{}
	for k, v := range params {
		if s, ok := v.(string); ok {
			q.Set(k, s)
			continue
		}
		b, _ := json.Marshal(v)
		q.Set(k, string(b))
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, u+"?"+q.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return roundTrip(t, req)
}

// wantCodes fails unless res has exactly the error codes want, in order.
func wantCodes(t testing.TB, what string, res result, want ...string) {
	t.Helper()
	if got := res.codes(); !slices.Equal(got, want) {
		t.Errorf("%s: codes %v, want %v (status %d)\n%.600s", what, got, want, res.status, res.body)
	}
}

// wantRefused fails unless res is a request error with the one code
// code: no data (nothing ran), no other error (no resolver, not even
// authentication, was reached).
func wantRefused(t testing.TB, what string, res result, status int, code string) {
	t.Helper()
	wantCodes(t, what, res, code)
	if _, ok := res.raw["data"]; ok {
		t.Errorf("%s: refused, but data is present: %.300s", what, res.body)
	}
	if res.status != status {
		t.Errorf("%s: status %d, want %d", what, res.status, status)
	}
}

// limitAPI is a GraphQL handler on a fresh database, served over HTTP to
// three callers: anonymous, an operator, and a Provider Access client of
// org, whose members members are.
type limitAPI struct {
	db                   *store.DB
	org                  string
	members              []string
	anon, operator, prov string // URLs
}

func newLimitAPI(t testing.TB, limits graphQLLimits, cfg Config) *limitAPI {
	t.Helper()
	db := storetest.New(t)
	db.Now = func() time.Time { return fixtureToday }
	b := builder{t, db}
	la := &limitAPI{db: db}
	la.org = b.org("Limits Clinic", "1234567893", true)
	la.members = b.bulk(la.org, "M-LIM-", 3, 1, 1)
	op := gateway.User{ID: newID(), Email: "operator@example.test"}
	b.exec(`INSERT INTO users (id, issuer, subject, email) VALUES ($1, 'https://issuer.test', $2, $3)`, op.ID, op.ID, op.Email)
	logs := &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	s := &Server{Config: cfg, Logger: NewLogger(logs, slog.LevelDebug), DB: db}
	a := &api{t: t, db: db, handler: withRequestID(s.newGraphQLHandler(limits)), logs: logs}
	la.anon = serveGraphQL(t, a.as(auth.Principal{}))
	la.operator = serveGraphQL(t, a.as(auth.PersonPrincipal(op, true)))
	la.prov = serveGraphQL(t, a.as((&world{}).provider(la.org)))
	return la
}

// auditRows counts the audit events written so far.
func (la *limitAPI) auditRows(t testing.TB) int {
	t.Helper()
	var n int
	if err := la.db.GetContext(t.Context(), &n, `SELECT count(*) FROM audit_events`); err != nil {
		t.Fatal(err)
	}
	return n
}

// repeat joins n copies of f(i).
func repeat(n int, f func(i int) string) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = f(i)
	}
	return strings.Join(parts, " ")
}

// depthQuery nests fields depth levels deep, down the schema's cycle
// Organization.accessRequest → AccessRequest.organization, ending in id.
func depthQuery(depth int) string {
	var b strings.Builder
	b.WriteString(`{ organization(id: "x") {`)
	for level := 2; level < depth; level++ {
		b.WriteString([]string{" accessRequest {", " organization {"}[level%2])
	}
	b.WriteString(" id" + strings.Repeat(" }", depth-1) + " }")
	return b.String()
}

// complexityQuery costs exactly cost (resolvers.NewConfig's costs):
// members(first: 100) { edges { node { id × s } } } costs 1 + 100(2 + s),
// and viewer { kind × k } 1 + k or __typename 1 make up the rest.
func complexityQuery(cost int) string {
	const page = 100
	s := (cost-1)/page - 2
	rest := cost - 1 - page*(2+s)
	q := fmt.Sprintf(`{ members(first: %d) { edges { node { %s } } }`, page, strings.Repeat("id ", s))
	switch {
	case rest == 1:
		q += ` __typename`
	case rest > 1:
		q += ` viewer { ` + strings.Repeat("kind ", rest-1) + `}`
	}
	return q + ` }`
}

// tokenQuery is a query of exactly tokens parser tokens (few fields: a
// list argument of enum values, one token each).
func tokenQuery(t testing.TB, tokens int) string {
	t.Helper()
	q := func(k int) string {
		return `{ member(id: "x") { claims(filter: {types: [` + strings.Repeat("PROFESSIONAL ", k) + `]}) { pageInfo { hasNextPage } } } }`
	}
	base := parserTokens(t, q(0))
	query := q(tokens - base)
	if n := parserTokens(t, query); n != tokens {
		t.Fatalf("tokenQuery(%d) has %d tokens", tokens, n)
	}
	return query
}

// parserTokens is the number of tokens gqlparser counts in query: the
// smallest token limit within which it parses.
func parserTokens(t testing.TB, query string) int {
	t.Helper()
	fits := func(limit int) bool {
		_, err := parser.ParseQueryWithTokenLimit(&ast.Source{Input: query}, limit)
		return err == nil
	}
	lo, hi := 1, 4*maxParserTokens
	if !fits(hi) {
		t.Fatalf("%.80s… does not parse", query)
	}
	for lo < hi {
		if mid := (lo + hi) / 2; fits(mid) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

// TestLimit_Boundaries sends, for each GraphQL limit, the largest request
// within it and the smallest over it. Within, an anonymous request gets
// as far as authentication (UNAUTHENTICATED per root field); over, it is
// refused with the limit's code alone: neither authentication nor any
// resolver ran, and nothing was read or written.
func TestLimit_Boundaries(t *testing.T) {
	t.Parallel()
	la := newLimitAPI(t, graphQLLimits{}, Config{})
	es := graph.NewExecutableSchema(resolvers.NewConfig(&resolvers.Resolver{}))
	cost := func(query string) int {
		doc, err := gqlparser.LoadQuery(es.Schema(), query)
		if err != nil {
			t.Fatalf("%.80s…: %v", query, err)
		}
		return complexity.Calculate(context.Background(), es, doc.Operations[0], nil)
	}
	depthOf := func(query string) int {
		doc, err := gqlparser.LoadQuery(es.Schema(), query)
		if err != nil {
			t.Fatalf("%.80s…: %v", query, err)
		}
		return selectionDepth(doc, doc.Operations[0].SelectionSet)
	}
	aliases := func(n int) string {
		return `{ viewer { ` + repeat(n, func(i int) string { return fmt.Sprintf("a%d: kind", i) }) + ` } }`
	}
	rootFields := func(n int) string {
		return `{ ` + repeat(n, func(i int) string { return fmt.Sprintf("r%d: viewer { kind }", i) }) + ` }`
	}
	fields := func(n int) string { // viewer and n-1 kinds
		return `{ viewer { ` + strings.Repeat("kind ", n-1) + `} }`
	}
	fragments := func(n int) string {
		return `{ viewer { ` + repeat(n, func(i int) string { return fmt.Sprintf("...F%d", i) }) + ` } } ` +
			repeat(n, func(i int) string { return fmt.Sprintf("fragment F%d on Viewer { kind }", i) })
	}
	tests := []struct {
		limit       string
		under, over string
		underCodes  int // UNAUTHENTICATED errors within the limit (one per root field)
	}{
		{"depth", depthQuery(maxDepth), depthQuery(maxDepth + 1), 1},
		{"complexity", complexityQuery(maxComplexity), complexityQuery(maxComplexity + 1), 2},
		{"aliases", aliases(maxAliases), aliases(maxAliases + 1), 1},
		{"root fields", rootFields(maxRootFields), rootFields(maxRootFields + 1), maxRootFields},
		{"parser tokens", tokenQuery(t, maxParserTokens), tokenQuery(t, maxParserTokens+1), 1},
		{"document fields", fields(maxDocumentFields), fields(maxDocumentFields + 1), 1},
		{"fragments", fragments(maxFragments), fragments(maxFragments + 1), 1},
	}
	// The builders measure what the limits measure.
	if d := depthOf(depthQuery(maxDepth)); d != maxDepth {
		t.Fatalf("depthQuery(%d) is %d deep", maxDepth, d)
	}
	if c := cost(complexityQuery(maxComplexity)); c != maxComplexity {
		t.Fatalf("complexityQuery(%d) costs %d", maxComplexity, c)
	}
	if c := cost(complexityQuery(maxComplexity + 1)); c != maxComplexity+1 {
		t.Fatalf("complexityQuery(%d) costs %d", maxComplexity+1, c)
	}
	for _, tt := range tests {
		t.Run(tt.limit, func(t *testing.T) {
			unauth := slices.Repeat([]string{gateway.CodeUnauthenticated}, tt.underCodes)
			res := httpPostQuery(t, la.anon, tt.under)
			wantCodes(t, "within the limit, anonymous", res, unauth...)
			if res.status != http.StatusOK {
				t.Errorf("within the limit: status %d", res.status)
			}
			res = httpPostQuery(t, la.anon, tt.over)
			wantRefused(t, "over the limit, anonymous", res, http.StatusOK, gateway.CodeTooComplex)
			if !strings.Contains(res.Errors[0].Message, "limit") {
				t.Errorf("the message does not say which limit: %q", res.Errors[0].Message)
			}
			res = httpPostQuery(t, la.operator, tt.over)
			wantRefused(t, "over the limit, operator", res, http.StatusOK, gateway.CodeTooComplex)
		})
	}

	// Refused member reads are not audited (nothing was read); the same
	// shape within the limit is.
	before := la.auditRows(t)
	res := httpPostQuery(t, la.prov, complexityQuery(maxComplexity+1))
	wantRefused(t, "over the complexity limit, provider", res, http.StatusOK, gateway.CodeTooComplex)
	if n := la.auditRows(t); n != before {
		t.Errorf("a refused read wrote %d audit rows", n-before)
	}
	res = httpPostQuery(t, la.prov, complexityQuery(maxComplexity))
	wantCodes(t, "within the complexity limit, provider", res)
	if n := la.auditRows(t); n != before+len(la.members) {
		t.Errorf("the read wrote %d audit rows, want %d", n-before, len(la.members))
	}
}

// TestLimit_ThroughFragments counts aliases and root fields where
// fragments are spread, and refuses a mutation over a limit before any of
// it runs.
func TestLimit_ThroughFragments(t *testing.T) {
	t.Parallel()
	la := newLimitAPI(t, graphQLLimits{}, Config{})
	half := maxAliases/2 + 1 // spread twice: over the limit
	aliasFragment := `fragment A on Viewer { ` + repeat(half, func(i int) string { return fmt.Sprintf("a%d: kind", i) }) + ` }`
	rootFragment := `fragment R on Query { ` + repeat(maxRootFields+1, func(i int) string { return fmt.Sprintf("r%d: viewer { kind }", i) }) + ` }`
	for name, q := range map[string]string{
		"aliases, fragment spread twice":    `{ viewer { ...A ...A } } ` + aliasFragment,
		"aliases, fragment in two places":   `{ v1: viewer { ...A } v2: viewer { ...A } } ` + aliasFragment,
		"aliases, inline fragments":         `{ viewer { ... on Viewer { ` + repeat(half, func(i int) string { return fmt.Sprintf("a%d: kind", i) }) + ` } ... { ` + repeat(half, func(i int) string { return fmt.Sprintf("b%d: kind", i) }) + ` } } }`,
		"root fields, fragment spread":      `{ ...R } ` + rootFragment,
		"root fields, inline fragment":      `{ ... on Query { ` + repeat(maxRootFields+1, func(i int) string { return fmt.Sprintf("r%d: viewer { kind }", i) }) + ` } }`,
		"root fields, split over fragments": `{ __typename ...R2 ... on Query { x: viewer { kind } } } fragment R2 on Query { ` + repeat(maxRootFields-1, func(i int) string { return fmt.Sprintf("r%d: viewer { kind }", i) }) + ` }`,
	} {
		wantRefused(t, name, httpPostQuery(t, la.anon, q), http.StatusOK, gateway.CodeTooComplex)
	}
	// The same fragment spread once is within the alias limit.
	wantCodes(t, "aliases, fragment spread once", httpPostQuery(t, la.anon, `{ viewer { ...A } } `+aliasFragment), gateway.CodeUnauthenticated)

	// A mutation over the root-field limit changes nothing; at the limit
	// it runs.
	inNetwork := func() bool {
		var v bool
		if err := la.db.GetContext(t.Context(), &v, `SELECT in_network FROM organizations WHERE id = $1`, la.org); err != nil {
			t.Fatal(err)
		}
		return v
	}
	mutation := func(n int) string {
		return `mutation($org: ID!) { ` + repeat(n, func(i int) string {
			return fmt.Sprintf("m%d: setOrganizationInNetwork(input: {organizationId: $org, inNetwork: false}) { clientMutationId }", i)
		}) + ` }`
	}
	vars := map[string]any{"org": la.org}
	res := httpPost(t, la.operator, map[string]any{"query": mutation(maxRootFields + 1), "variables": vars})
	wantRefused(t, "mutation over the root-field limit", res, http.StatusOK, gateway.CodeTooComplex)
	if !inNetwork() {
		t.Fatal("a refused mutation changed the organization")
	}
	res = httpPost(t, la.operator, map[string]any{"query": mutation(maxRootFields), "variables": vars})
	wantCodes(t, "mutation at the root-field limit", res)
	if inNetwork() {
		t.Error("the mutation within the limit did not run")
	}
}

// TestLimit_FragmentExpansion: fragments that spread the next one twice
// select 2^n fields from a document of n fragments. The limits measure
// each fragment once, so the request is refused at once; measuring by
// walking every spread (as gqlgen's complexity does) would take 2^40
// steps, and this test would not end.
func TestLimit_FragmentExpansion(t *testing.T) {
	t.Parallel()
	doubling := func(n int) string {
		return `{ viewer { ...F0 } } ` + repeat(n, func(i int) string {
			return fmt.Sprintf("fragment F%d on Viewer { ...F%d ...F%d }", i, i+1, i+1)
		}) + fmt.Sprintf(" fragment F%d on Viewer { kind }", n)
	}
	es := graph.NewExecutableSchema(resolvers.NewConfig(&resolvers.Resolver{}))
	for n, want := range map[int]selectionShape{
		3:  {fields: 1 + 8, top: 1, depth: 2},
		20: {fields: 1 + 1<<20, top: 1, depth: 2},
		60: {fields: shapeCap, top: 1, depth: 2},
	} {
		doc, err := gqlparser.LoadQuery(es.Schema(), doubling(n))
		if err != nil {
			t.Fatal(err)
		}
		if got := measureSelections(doc, doc.Operations[0].SelectionSet); got != want {
			t.Errorf("%d doublings: %+v, want %+v", n, got, want)
		}
	}

	la := newLimitAPI(t, graphQLLimits{}, Config{})
	wantCodes(t, "3 doublings", httpPostQuery(t, la.anon, doubling(3)), gateway.CodeUnauthenticated)
	res := httpPostQuery(t, la.anon, doubling(40))
	wantRefused(t, "40 doublings", res, http.StatusOK, gateway.CodeTooComplex)
	// @defer behind the same fragments is found, each fragment walked once.
	doc, err := gqlparser.LoadQuery(es.Schema(), strings.Replace(doubling(40), "{ kind }", "{ ... @defer { kind } }", 1))
	if err != nil {
		t.Fatal(err)
	}
	rc := &graphql.OperationContext{Doc: doc, Operation: doc.Operations[0]}
	if err := (noIncrementalDelivery{}).MutateOperationContext(t.Context(), rc); err == nil {
		t.Error("@defer behind 40 doublings is not found")
	}
}

// TestLimit_BodySizeAndBatches: exactly 1 MiB is read, one byte more is
// 413; a batch (a JSON array) is refused, and a document of several
// operations runs the one named.
func TestLimit_BodySizeAndBatches(t *testing.T) {
	t.Parallel()
	la := newLimitAPI(t, graphQLLimits{}, Config{})
	body := func(size int) []byte {
		head, tail := `{"query":"{ viewer { kind } }`, `"}`
		return []byte(head + strings.Repeat(" ", size-len(head)-len(tail)) + tail)
	}
	if n := len(body(maxBodyBytes)); n != 1<<20 {
		t.Fatalf("body of %d bytes", n)
	}
	res := httpPostBody(t, la.anon, body(maxBodyBytes))
	wantCodes(t, "1 MiB", res, gateway.CodeUnauthenticated)
	res = httpPostBody(t, la.anon, body(maxBodyBytes+1))
	wantRefused(t, "1 MiB + 1 byte", res, http.StatusRequestEntityTooLarge, gateway.CodeInvalid)

	for _, batch := range []string{
		`[{"query": "{ viewer { kind } }"}, {"query": "{ __typename }"}]`,
		` [{"query": "{ viewer { kind } }"}]`,
		`[]`,
	} {
		res := httpPostBody(t, la.operator, []byte(batch))
		wantRefused(t, batch, res, http.StatusBadRequest, gateway.CodeInvalid)
		if msg := res.Errors[0].Message; !strings.Contains(msg, "batch") || !strings.Contains(msg, "one operation per request") {
			t.Errorf("%s: message %q does not say that batches are not supported", batch, msg)
		}
	}
	wantCodes(t, "one request", httpPostBody(t, la.anon, []byte(`{"query": "{ viewer { kind } }"}`)), gateway.CodeUnauthenticated)

	two := `query A { viewer { kind } } query B { __typename }`
	wantRefused(t, "two operations, no operationName", httpPostQuery(t, la.operator, two), http.StatusOK, "GRAPHQL_VALIDATION_FAILED")
	res = httpPost(t, la.operator, map[string]any{"query": two, "operationName": "B"})
	wantCodes(t, "operationName B", res)
	if string(res.raw["data"]) != `{"__typename":"Query"}` {
		t.Errorf("operationName B: %s", res.body)
	}
	res = httpPost(t, la.operator, map[string]any{"query": two, "operationName": "C"})
	wantRefused(t, "operationName C", res, http.StatusOK, "GRAPHQL_VALIDATION_FAILED")
}

// TestLimit_ParserNesting: the parser's own nesting limit (1,000 levels,
// which the depth limit would refuse anyway) is TOO_COMPLEX too, and a
// syntax error stays GRAPHQL_PARSE_FAILED.
func TestLimit_ParserNesting(t *testing.T) {
	t.Parallel()
	la := newLimitAPI(t, graphQLLimits{}, Config{})
	deep := strings.Repeat("{ a ", parser.MaxNestingDepth+1) + strings.Repeat("}", parser.MaxNestingDepth+1)
	wantRefused(t, "nested past the parser's limit", httpPostQuery(t, la.anon, deep), http.StatusOK, gateway.CodeTooComplex)
	wantRefused(t, "syntax error", httpPostQuery(t, la.anon, `{ viewer { kind }`), http.StatusOK, "GRAPHQL_PARSE_FAILED")
}

// TestLimit_LoweredLimits: graphQLLimits' fields replace the constants
// (zero fields keep them).
func TestLimit_LoweredLimits(t *testing.T) {
	t.Parallel()
	la := newLimitAPI(t, graphQLLimits{aliases: 2, rootFields: 2, documentFields: 5, fragments: 1, tokens: 40}, Config{})
	for q, want := range map[string]string{
		`{ viewer { a: kind b: kind } }`:                                                       gateway.CodeUnauthenticated,
		`{ viewer { a: kind b: kind c: kind } }`:                                               gateway.CodeTooComplex,
		`{ a: viewer { kind } b: viewer { kind } }`:                                            gateway.CodeUnauthenticated,
		`{ a: viewer { kind } b: viewer { kind } __typename }`:                                 gateway.CodeTooComplex,
		`{ viewer { kind kind kind kind } }`:                                                   gateway.CodeUnauthenticated,
		`{ viewer { kind kind kind kind kind } }`:                                              gateway.CodeTooComplex,
		`{ viewer { ...A } } fragment A on Viewer { kind }`:                                    gateway.CodeUnauthenticated,
		`{ viewer { ...A ...B } } fragment A on Viewer { kind } fragment B on Viewer { kind }`: gateway.CodeTooComplex,
		tokenQuery(t, 40): gateway.CodeUnauthenticated,
		tokenQuery(t, 41): gateway.CodeTooComplex,
	} {
		res := httpPostQuery(t, la.anon, q)
		if codes := res.codes(); len(codes) == 0 || codes[0] != want {
			t.Errorf("%s: codes %v, want %s", q, codes, want)
		}
	}
}

// TestPresentErrorCancelled: a field that failed because the client went
// away is logged as information, not as an error to page someone about.
func TestPresentErrorCancelled(t *testing.T) {
	var logs syncBuffer
	present := presentError(NewLogger(&logs, slog.LevelInfo))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	out := present(ctx, &gqlerror.Error{Message: "lines", Err: fmt.Errorf("read lines: %w", context.Canceled)})
	if out.Extensions["code"] != gateway.CodeInternal || out.Message != "internal error" {
		t.Errorf("presented %+v", out)
	}
	if s := logs.String(); !strings.Contains(s, `"level":"INFO"`) || strings.Contains(s, `"level":"ERROR"`) {
		t.Errorf("a cancelled request logged as %s", s)
	}
	logs = syncBuffer{}
	present(context.Background(), fmt.Errorf("read lines: %w", context.Canceled)) // not the request's own cancellation
	if s := logs.String(); !strings.Contains(s, `"level":"ERROR"`) {
		t.Errorf("a failure while the request was live logged as %s", s)
	}
}
