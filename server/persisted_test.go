package server

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"example.com/gateway/gateway"
	"example.com/gateway/graph"
	"example.com/gateway/resolvers"
	"example.com/gateway/store/storetest"
)

// persistedQuery is the APQ extension naming hash.
func persistedQuery(hash string) map[string]any {
	return map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": hash}}
}

const (
	membersQuery   = `query Members($first: Int) { members(first: $first) { totalCount edges { node { id } } } }`
	viewerQuery    = `query Viewer { viewer { kind } }`
	networkOffText = `mutation Off($org: ID!) { setOrganizationInNetwork(input: {organizationId: $org, inNetwork: false}) { clientMutationId } }`
)

// totalCount is data.members.totalCount of res, or -1.
func totalCount(t testing.TB, res result) int {
	t.Helper()
	var d struct {
		Members *struct{ TotalCount int } `json:"members"`
	}
	if res.raw["data"] == nil || json.Unmarshal(res.raw["data"], &d) != nil || d.Members == nil {
		return -1
	}
	return d.Members.TotalCount
}

func (la *limitAPI) inNetwork(t testing.TB) bool {
	t.Helper()
	var v bool
	if err := la.db.GetContext(t.Context(), &v, `SELECT in_network FROM organizations WHERE id = $1`, la.org); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestAPQ_Protocol follows Apollo's APQ protocol over POST and GET: an
// unknown hash answers PERSISTED_QUERY_NOT_FOUND, the query sent with its
// hash registers it, the hash alone then runs it; a hash that is not the
// query's is refused and registers nothing.
func TestAPQ_Protocol(t *testing.T) {
	t.Parallel()
	la := newLimitAPI(t, graphQLLimits{}, Config{})
	hash := sha256Hex(membersQuery)
	vars := map[string]any{"first": 2}

	for name, res := range map[string]result{
		"POST": httpPost(t, la.prov, map[string]any{"extensions": persistedQuery(hash), "variables": vars}),
		"GET":  httpGet(t, la.prov, map[string]any{"extensions": persistedQuery(hash), "variables": vars}),
	} {
		wantRefused(t, name+" of an unknown hash", res, http.StatusOK, "PERSISTED_QUERY_NOT_FOUND")
		if res.Errors[0].Message != "PersistedQueryNotFound" { // what Apollo's clients look for
			t.Errorf("%s of an unknown hash: message %q", name, res.Errors[0].Message)
		}
	}

	res := httpPost(t, la.prov, map[string]any{"query": membersQuery, "extensions": persistedQuery(hash), "variables": vars})
	if wantCodes(t, "query and hash", res); totalCount(t, res) != len(la.members) {
		t.Fatalf("query and hash: %s", res.body)
	}
	for name, res := range map[string]result{
		"POST":                 httpPost(t, la.prov, map[string]any{"extensions": persistedQuery(hash), "variables": vars}),
		"GET":                  httpGet(t, la.prov, map[string]any{"extensions": persistedQuery(hash), "variables": vars}),
		"GET, upper-case hash": httpGet(t, la.prov, map[string]any{"extensions": persistedQuery(strings.ToUpper(hash))}),
	} {
		if name == "GET, upper-case hash" { // the hash is the lower-case hex digest, as gqlgen and Apollo compute it
			wantRefused(t, name, res, http.StatusOK, "PERSISTED_QUERY_NOT_FOUND")
			continue
		}
		if wantCodes(t, name+" of the hash", res); totalCount(t, res) != len(la.members) {
			t.Errorf("%s of the hash: %s", name, res.body)
		}
	}
	// Authentication still applies to a persisted query.
	wantCodes(t, "hash alone, anonymous", httpGet(t, la.anon, map[string]any{"extensions": persistedQuery(hash)}), gateway.CodeUnauthenticated)

	// A hash that is not the query's: refused, nothing registered.
	other := `query { viewer { kind } }`
	res = httpPost(t, la.prov, map[string]any{"query": other, "extensions": persistedQuery(sha256Hex(membersQuery + " "))})
	wantRefused(t, "hash mismatch", res, http.StatusOK, gateway.CodeInvalid)
	res = httpPost(t, la.prov, map[string]any{"extensions": persistedQuery(sha256Hex(membersQuery + " "))})
	wantRefused(t, "the mismatched hash", res, http.StatusOK, "PERSISTED_QUERY_NOT_FOUND")
	res = httpPost(t, la.prov, map[string]any{"extensions": persistedQuery(sha256Hex(other))})
	wantRefused(t, "the mismatched query's hash", res, http.StatusOK, "PERSISTED_QUERY_NOT_FOUND")

	// Malformed extensions are the client's error, not INTERNAL.
	for name, ext := range map[string]any{
		"version 2":     map[string]any{"persistedQuery": map[string]any{"version": 2, "sha256Hash": hash}},
		"not an object": map[string]any{"persistedQuery": "x"},
		"no version":    map[string]any{"persistedQuery": map[string]any{"sha256Hash": hash}},
	} {
		wantRefused(t, name, httpPost(t, la.prov, map[string]any{"extensions": ext}), http.StatusOK, gateway.CodeInvalid)
	}
	// Without a query or a persisted query there is nothing to run.
	res = httpPost(t, la.prov, map[string]any{"extensions": map[string]any{"persistedQuery": nil}})
	wantRefused(t, "no query, persistedQuery null", res, http.StatusBadRequest, gateway.CodeInvalid)
	res = httpGet(t, la.prov, map[string]any{"extensions": map[string]any{"other": 1}})
	wantRefused(t, "GET, no query, no persistedQuery", res, http.StatusBadRequest, gateway.CodeInvalid)
}

// TestAPQ_LimitsAndMethods: a persisted query goes through the limits
// like any other, and a persisted mutation cannot run over GET.
func TestAPQ_LimitsAndMethods(t *testing.T) {
	t.Parallel()
	la := newLimitAPI(t, graphQLLimits{}, Config{})
	deep := depthQuery(maxDepth + 1)
	res := httpPost(t, la.operator, map[string]any{"query": deep, "extensions": persistedQuery(sha256Hex(deep))})
	wantRefused(t, "registering a query over a limit", res, http.StatusOK, gateway.CodeTooComplex)
	for name, res := range map[string]result{
		"POST": httpPost(t, la.operator, map[string]any{"extensions": persistedQuery(sha256Hex(deep))}),
		"GET":  httpGet(t, la.operator, map[string]any{"extensions": persistedQuery(sha256Hex(deep))}),
	} {
		wantRefused(t, name+" of a query over a limit", res, http.StatusOK, gateway.CodeTooComplex)
	}

	// An anonymous caller registers the mutation (which then fails:
	// UNAUTHENTICATED); an operator cannot run it by GET.
	vars := map[string]any{"org": la.org}
	hash := sha256Hex(networkOffText)
	res = httpPost(t, la.anon, map[string]any{"query": networkOffText, "extensions": persistedQuery(hash), "variables": vars})
	wantCodes(t, "anonymous mutation", res, gateway.CodeUnauthenticated)
	res = httpGet(t, la.operator, map[string]any{"extensions": persistedQuery(hash), "variables": vars})
	wantRefused(t, "persisted mutation by GET", res, http.StatusMethodNotAllowed, gateway.CodeInvalid)
	if !la.inNetwork(t) {
		t.Fatal("the mutation ran")
	}
	res = httpPost(t, la.operator, map[string]any{"extensions": persistedQuery(hash), "variables": vars})
	if wantCodes(t, "persisted mutation by POST", res); la.inNetwork(t) {
		t.Errorf("the persisted mutation did not run by POST: %s", res.body)
	}
}

// TestAPQ_CacheIsBounded: the cache keeps persistedQueries entries, least
// recently used out first, and no query longer than maxPersistedQueryBytes.
func TestAPQ_CacheIsBounded(t *testing.T) {
	t.Parallel()
	la := newLimitAPI(t, graphQLLimits{persistedQueries: 2}, Config{})
	q := func(i int) string { return fmt.Sprintf("query Q%d { viewer { kind } }", i) }
	register := func(i int) {
		t.Helper()
		wantCodes(t, "register "+q(i), httpPost(t, la.prov, map[string]any{"query": q(i), "extensions": persistedQuery(sha256Hex(q(i)))}))
	}
	byHash := func(i int) result {
		t.Helper()
		return httpPost(t, la.prov, map[string]any{"extensions": persistedQuery(sha256Hex(q(i)))})
	}
	register(1)
	register(2)
	wantCodes(t, "Q1 by hash", byHash(1)) // Q1 is now the most recently used
	register(3)                           // evicts Q2
	wantCodes(t, "Q1 by hash, after Q3", byHash(1))
	wantCodes(t, "Q3 by hash", byHash(3))
	wantRefused(t, "Q2 by hash, evicted", byHash(2), http.StatusOK, "PERSISTED_QUERY_NOT_FOUND")

	big := newLimitAPI(t, graphQLLimits{}, Config{})
	sized := func(n int) string { return viewerQuery + strings.Repeat(" ", n-len(viewerQuery)) }
	for _, n := range []int{maxPersistedQueryBytes, maxPersistedQueryBytes + 1} {
		query := sized(n)
		res := httpPost(t, big.prov, map[string]any{"query": query, "extensions": persistedQuery(sha256Hex(query))})
		wantCodes(t, fmt.Sprintf("a %d-byte query with its hash", n), res) // runs either way
		res = httpPost(t, big.prov, map[string]any{"extensions": persistedQuery(sha256Hex(query))})
		if n <= maxPersistedQueryBytes {
			wantCodes(t, fmt.Sprintf("a %d-byte query by hash", n), res)
		} else {
			wantRefused(t, fmt.Sprintf("a %d-byte query by hash", n), res, http.StatusOK, "PERSISTED_QUERY_NOT_FOUND")
		}
	}
}

func TestTextCache(t *testing.T) {
	ctx := context.Background()
	c := newTextCache[int](3, 16*100)
	for i, k := range []string{"a", "b", "c"} {
		c.Add(ctx, k, i)
	}
	c.Get(ctx, "a")
	c.Add(ctx, "d", 3) // over 3 entries: b, the least recently used, goes
	for k, want := range map[string]bool{"a": true, "b": false, "c": true, "d": true} {
		if _, ok := c.Get(ctx, k); ok != want {
			t.Errorf("after d: %s cached = %v", k, ok)
		}
	}
	c.Add(ctx, strings.Repeat("x", 100), 4) // the largest kept: 1/16 of the budget
	if _, ok := c.Get(ctx, strings.Repeat("x", 100)); !ok {
		t.Error("a text of 1/16 of the budget is not kept")
	}
	c.Add(ctx, strings.Repeat("y", 101), 5)
	if _, ok := c.Get(ctx, strings.Repeat("y", 101)); ok {
		t.Error("a text over 1/16 of the budget is kept")
	}
	// By bytes: 16 texts of 100 bytes fill it; one more pushes the oldest out.
	c = newTextCache[int](100, 16*100)
	key := func(i int) string { return fmt.Sprintf("%03d", i) + strings.Repeat(".", 97) }
	for i := range 17 {
		c.Add(ctx, key(i), i)
	}
	if _, ok := c.Get(ctx, key(0)); ok {
		t.Error("over the byte budget, the oldest text is kept")
	}
	if v, ok := c.Get(ctx, key(16)); !ok || v != 16 || c.bytes != 16*100 || c.order.Len() != 16 {
		t.Errorf("bytes %d, entries %d", c.bytes, c.order.Len())
	}
}

// writeFile writes v (JSON unless a string) to a file of t's and returns its path.
func writeFile(t testing.TB, v any) string {
	t.Helper()
	b, ok := v.(string)
	if !ok {
		j, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		b = string(j)
	}
	path := filepath.Join(t.TempDir(), "manifest.json")
	if err := os.WriteFile(path, []byte(b), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

type pqOp struct{ name, body string }

func apolloManifest(ops ...pqOp) map[string]any {
	var list []map[string]any
	for _, op := range ops {
		list = append(list, map[string]any{"id": sha256Hex(op.body), "name": op.name, "type": "query", "body": op.body})
	}
	return map[string]any{"format": apolloManifestFormat, "version": 1, "operations": list}
}

func plainManifest(ops ...pqOp) map[string]string {
	m := map[string]string{}
	for _, op := range ops {
		m[sha256Hex(op.body)] = op.body
	}
	return m
}

const twoOperations = `query A { viewer { kind } } query B { __typename }`

var registered = []pqOp{{"Members", membersQuery}, {"Viewer", viewerQuery}, {"Off", networkOffText}, {"", twoOperations}}

// TestAllowlist_Mode: with GRAPHQL_ALLOWLIST, in either manifest format,
// registered operations run (by hash or by text) and nothing else does.
func TestAllowlist_Mode(t *testing.T) {
	t.Parallel()
	for format, manifest := range map[string]any{
		"apollo": apolloManifest(registered...),
		"plain":  plainManifest(registered...),
	} {
		t.Run(format, func(t *testing.T) {
			t.Parallel()
			la := newLimitAPI(t, graphQLLimits{}, Config{GraphQLAllowlist: writeFile(t, manifest)})
			hash := sha256Hex(membersQuery)
			for name, res := range map[string]result{
				"POST by hash":           httpPost(t, la.prov, map[string]any{"extensions": persistedQuery(hash)}),
				"GET by hash":            httpGet(t, la.prov, map[string]any{"extensions": persistedQuery(hash)}),
				"GET by upper-case hash": httpGet(t, la.prov, map[string]any{"extensions": persistedQuery(strings.ToUpper(hash))}),
				"POST by text":           httpPostQuery(t, la.prov, membersQuery),
				"GET by text":            httpGet(t, la.prov, map[string]any{"query": membersQuery}),
				"POST by text and hash":  httpPost(t, la.prov, map[string]any{"query": membersQuery, "extensions": persistedQuery(hash)}),
			} {
				if wantCodes(t, name, res); totalCount(t, res) != len(la.members) {
					t.Errorf("%s: %s", name, res.body)
				}
			}
			// Authentication and the choice of operation still apply.
			wantCodes(t, "anonymous by hash", httpPost(t, la.anon, map[string]any{"extensions": persistedQuery(hash)}), gateway.CodeUnauthenticated)
			res := httpPost(t, la.operator, map[string]any{"extensions": persistedQuery(sha256Hex(twoOperations)), "operationName": "B"})
			if wantCodes(t, "operation B", res); string(res.raw["data"]) != `{"__typename":"Query"}` {
				t.Errorf("operation B: %s", res.body)
			}
			res = httpPost(t, la.operator, map[string]any{"extensions": persistedQuery(sha256Hex(twoOperations))})
			wantRefused(t, "two operations, no operationName", res, http.StatusOK, "GRAPHQL_VALIDATION_FAILED")
			res = httpGet(t, la.operator, map[string]any{"extensions": persistedQuery(sha256Hex(networkOffText)), "variables": map[string]any{"org": la.org}})
			wantRefused(t, "registered mutation by GET", res, http.StatusMethodNotAllowed, gateway.CodeInvalid)

			// Anything else is FORBIDDEN, before parsing or validation.
			unregistered := `query { members { totalCount } }`
			for name, res := range map[string]result{
				"text":                    httpPostQuery(t, la.prov, unregistered),
				"text, GET":               httpGet(t, la.prov, map[string]any{"query": unregistered}),
				"text and its own hash":   httpPost(t, la.prov, map[string]any{"query": unregistered, "extensions": persistedQuery(sha256Hex(unregistered))}),
				"its hash, after":         httpPost(t, la.prov, map[string]any{"extensions": persistedQuery(sha256Hex(unregistered))}),
				"an unknown hash":         httpPost(t, la.prov, map[string]any{"extensions": persistedQuery(sha256Hex("nothing"))}),
				"an invalid query":        httpPostQuery(t, la.prov, `{ nope }`),
				"a syntax error":          httpPostQuery(t, la.prov, `{ members {`),
				"registered, reformatted": httpPostQuery(t, la.prov, membersQuery+"\n"),
				"introspection (off)":     httpPostQuery(t, la.prov, `{ __schema { queryType { name } } }`),
				"anonymous":               httpPostQuery(t, la.anon, unregistered),
			} {
				wantRefused(t, name, res, http.StatusOK, gateway.CodeForbidden)
				if msg := res.Errors[0].Message; msg != "only registered operations run on this gateway (GRAPHQL_ALLOWLIST)" {
					t.Errorf("%s: message %q", name, msg)
				}
			}
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, la.prov, strings.NewReader(`{"query": "{ __typename }"}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", mediaGraphQLResponse)
			wantRefused(t, "as graphql-response+json", roundTrip(t, req), http.StatusBadRequest, gateway.CodeForbidden)
			res = httpPost(t, la.prov, map[string]any{"query": viewerQuery, "extensions": persistedQuery(hash)})
			wantRefused(t, "a registered text with another's hash", res, http.StatusOK, gateway.CodeInvalid)
		})
	}
}

// TestAllowlist_Introspection: with INTROSPECTION on, introspection-only
// queries run without being registered; nothing else does.
func TestAllowlist_Introspection(t *testing.T) {
	t.Parallel()
	la := newLimitAPI(t, graphQLLimits{}, Config{Introspection: true, GraphQLAllowlist: writeFile(t, plainManifest(registered...))})
	for _, q := range []string{
		`{ __schema { queryType { name } } }`,
		`query { __typename ...T } fragment T on Query { __type(name: "Member") { name } }`,
		`{ ... on Query { __typename } }`,
	} {
		res := httpPostQuery(t, la.anon, q)
		if wantCodes(t, q, res); !strings.Contains(string(res.raw["data"]), `"Query"`) {
			t.Errorf("%s: %s", q, res.body)
		}
	}
	for _, req := range []map[string]any{
		{"query": `{ __schema { queryType { name } } viewer { kind } }`},
		{"query": `query { __typename ...T } fragment T on Query { viewer { kind } }`},
		{"query": `mutation { __typename }`},
		{"query": `query A { __typename } query B { viewer { kind } }`, "operationName": "B"},
	} {
		wantRefused(t, req["query"].(string), httpPost(t, la.prov, req), http.StatusOK, gateway.CodeForbidden)
	}
	wantCodes(t, "registered", httpPostQuery(t, la.anon, viewerQuery), gateway.CodeUnauthenticated)
}

// TestAllowlist_RefusesBadManifest: a manifest with a bad entry does not
// load, with an error naming each bad entry and saying what is wrong.
func TestAllowlist_RefusesBadManifest(t *testing.T) {
	t.Parallel()
	es := graph.NewExecutableSchema(resolvers.NewConfig(&resolvers.Resolver{}))
	good := sha256Hex(viewerQuery)
	tests := []struct {
		name     string
		manifest any
		want     []string // substrings of the error
	}{
		{"id not the body's hash", map[string]string{good: membersQuery},
			[]string{good, "is not the SHA-256 of the body", sha256Hex(membersQuery)}},
		{"id not hex", map[string]string{"GetViewer": viewerQuery}, []string{"GetViewer", "not a SHA-256 in hex"}},
		{"unparsable body", plainManifest(pqOp{"", `query { viewer {`}), []string{sha256Hex(`query { viewer {`), "Expected"}},
		{"invalid body", apolloManifest(pqOp{"Nope", `query Nope { nope }`}),
			[]string{`"Nope"`, sha256Hex(`query Nope { nope }`), `Cannot query field "nope"`}},
		{"over the depth limit", plainManifest(pqOp{"", depthQuery(maxDepth + 1)}), []string{"nests 11 levels deep"}},
		{"over the alias limit", plainManifest(pqOp{"", `{ viewer { ` + repeat(maxAliases+1, func(i int) string { return fmt.Sprintf("a%d: kind", i) }) + ` } }`}),
			[]string{"aliases", "limit of 30"}},
		{"over the complexity limit", plainManifest(pqOp{"", complexityQuery(maxComplexity + 1)}), []string{"complexity 25001"}},
		{"over the token limit", plainManifest(pqOp{"", tokenQuery(t, maxParserTokens+1)}), []string{"tokens"}},
		{"complexity with the variables' defaults", plainManifest(pqOp{"",
			`query($n: Int = 100) { members(first: $n) { edges { node { claims(first: 100) { edges { node { id } } } } } } }`}),
			[]string{"complexity"}},
		{"@defer", plainManifest(pqOp{"", `{ viewer { ... @defer { kind } } }`}), []string{"@defer"}},
		{"two bad entries", plainManifest(pqOp{"", `{ nope }`}, pqOp{"", viewerQuery}, pqOp{"", `{ viewer { nope } }`}),
			[]string{sha256Hex(`{ nope }`), sha256Hex(`{ viewer { nope } }`)}},
		{"empty", map[string]string{}, []string{"no operations"}},
		{"empty Apollo manifest", map[string]any{"format": apolloManifestFormat, "version": 1, "operations": []any{}}, []string{"no operations"}},
		{"another format", map[string]any{"format": "relay", "version": 1}, []string{`"relay"`}},
		{"Apollo manifest version 2", map[string]any{"format": apolloManifestFormat, "version": 2}, []string{"version 2"}},
		{"a value not a string", map[string]any{good: map[string]any{"body": viewerQuery}}, []string{good, "not a string"}},
		{"not JSON", "query Viewer { viewer { kind } }", []string{"not a JSON object"}},
		{"a JSON array", `[]`, []string{"not a JSON object"}},
	}
	for _, tt := range tests {
		path := writeFile(t, tt.manifest)
		_, err := loadAllowlist(path, es, graphQLLimits{})
		if err == nil {
			t.Errorf("%s: loaded", tt.name)
			continue
		}
		for _, want := range append(tt.want, "GRAPHQL_ALLOWLIST "+path) {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: error does not say %q:\n%v", tt.name, want, err)
			}
		}
		if tt.name == "two bad entries" && strings.Contains(err.Error(), good) {
			t.Errorf("the good entry is named among the bad: %v", err)
		}
	}
	if _, err := loadAllowlist(filepath.Join(t.TempDir(), "missing.json"), es, graphQLLimits{}); err == nil ||
		!strings.Contains(err.Error(), "GRAPHQL_ALLOWLIST") || !strings.Contains(err.Error(), "missing.json") {
		t.Errorf("a missing file: %v", err)
	}

	// The manifests of testdata/allowlist, one per format, load.
	for _, file := range []string{"apollo-persisted-query-manifest.json", "persisted-documents.json"} {
		list, err := loadAllowlist(filepath.Join("testdata", "allowlist", file), es, graphQLLimits{})
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if len(list.queries) != 2 || list.queries[good] != viewerQuery {
			t.Errorf("%s: %v", file, list.queries)
		}
	}
}

// TestAllowlist_Start: the gateway refuses to start with a bad manifest
// (checkGraphQLAllowlist, for New), and a handler built on one anyway
// fails closed: it runs nothing.
func TestAllowlist_Start(t *testing.T) {
	t.Parallel()
	bad := writeFile(t, plainManifest(pqOp{"", `{ nope }`}))
	for path, wantErr := range map[string]bool{
		"":  false,
		bad: true,
		writeFile(t, apolloManifest(registered...)): false,
	} {
		s := &Server{Config: Config{GraphQLAllowlist: path}}
		if err := s.checkGraphQLAllowlist(); (err != nil) != wantErr {
			t.Errorf("checkGraphQLAllowlist(%q) = %v", path, err)
		}
	}
	la := newLimitAPI(t, graphQLLimits{}, Config{GraphQLAllowlist: bad})
	for name, res := range map[string]result{
		"a query":    httpPostQuery(t, la.operator, `{ __typename }`),
		"a mutation": httpPost(t, la.operator, map[string]any{"query": networkOffText, "variables": map[string]any{"org": la.org}}),
	} {
		wantRefused(t, name, res, http.StatusServiceUnavailable, gateway.CodeInternal)
	}
	if !la.inNetwork(t) {
		t.Error("the mutation ran")
	}
}

// TestAllowlist_Gateway runs the whole gateway (LoadConfig, New,
// NewHandler) with GRAPHQL_ALLOWLIST set.
func TestAllowlist_Gateway(t *testing.T) {
	t.Parallel()
	kek := make([]byte, 32)
	rand.Read(kek)
	vars := map[string]string{
		"DATABASE_URL":       "postgres://unused.invalid/db",
		"LISTEN_ADDR":        "127.0.0.1:0",
		"PUBLIC_URL":         "http://127.0.0.1:1",
		"KEY_ENCRYPTION_KEY": base64.StdEncoding.EncodeToString(kek),
		"EXPORT_DIR":         t.TempDir(),
		"GRAPHQL_ALLOWLIST":  filepath.Join("testdata", "allowlist", "apollo-persisted-query-manifest.json"),
	}
	cfg, err := LoadConfig(func(k string) string { return vars[k] })
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(t.Context(), cfg, NewLogger(&syncBuffer{}, slog.LevelInfo), storetest.New(t))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.NewHandler())
	t.Cleanup(ts.Close)
	u := ts.URL + "/graphql"
	wantCodes(t, "registered, by hash", httpGet(t, u, map[string]any{"extensions": persistedQuery(sha256Hex(viewerQuery))}), gateway.CodeUnauthenticated)
	wantRefused(t, "unregistered", httpPostQuery(t, u, `{ viewer { kind } }`), http.StatusOK, gateway.CodeForbidden)

	// A bad manifest stops the gateway at start, naming the entry.
	cfg.GraphQLAllowlist = writeFile(t, plainManifest(pqOp{"", `{ nope }`}))
	if _, err := New(t.Context(), cfg, NewLogger(&syncBuffer{}, slog.LevelInfo), storetest.New(t)); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("New with a bad allow-list: %v, want an error naming the entry", err)
	}
}
