package server

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"example.com/gateway/auth"
	"example.com/gateway/store"
)

// fuzzServer is the gateway's whole HTTP handler (NewHandler: every
// middleware, the router, GraphQL) on db, and a handler that serves
// requests as a principal (put in the context as the authentication
// middleware would; requests carry no Authorization header, so it passes
// them through).
type fuzzServer struct {
	s    *Server
	h    http.Handler
	logs *syncBuffer
}

func newFuzzServer(tb testing.TB, db *store.DB) *fuzzServer {
	tb.Helper()
	kek := make([]byte, 32)
	rand.Read(kek)
	vars := map[string]string{
		"DATABASE_URL":       "postgres://unused.invalid/db",
		"LISTEN_ADDR":        "127.0.0.1:0",
		"PUBLIC_URL":         "http://127.0.0.1:1",
		"DEV_MODE":           "false",
		"KEY_ENCRYPTION_KEY": base64.StdEncoding.EncodeToString(kek),
		"EXPORT_DIR":         tb.TempDir(),
	}
	cfg, err := LoadConfig(func(k string) string { return vars[k] })
	if err != nil {
		tb.Fatal(err)
	}
	logs := &syncBuffer{}
	s, err := New(tb.Context(), cfg, NewLogger(logs, slog.LevelInfo), db)
	if err != nil {
		tb.Fatal(err)
	}
	return &fuzzServer{s: s, h: s.NewHandler(), logs: logs}
}

// unlimited is f as a principal without the per-client rate limit, for
// targets that send one principal's requests as fast as they can: the
// limit is not what they test (ratelimit_test.go is).
func (f *fuzzServer) unlimited(p auth.Principal) http.Handler {
	gql := f.s.graphQLHandler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gql.ServeHTTP(w, r.WithContext(auth.WithPrincipal(r.Context(), p)))
	})
}

func (f *fuzzServer) as(p auth.Principal) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !p.IsZero() {
			r = r.WithContext(auth.WithPrincipal(r.Context(), p))
		}
		f.h.ServeHTTP(w, r)
	})
}

var fuzzContentTypes = []string{"application/json", "application/graphql-response+json", "",
	"application/json; charset=utf-8", "text/plain", "application/x-www-form-urlencoded", "application/graphql"}

// FuzzGraphQLRequest: any POST /graphql body, with any of the usual
// content types, anonymous or as a provider, is answered without a 5xx,
// and a 200 answer is a GraphQL response (a JSON object with data or
// errors).
func FuzzGraphQLRequest(f *testing.F) {
	w := newWorld(f)
	srv := newFuzzServer(f, w.db)
	provider := srv.as(w.provider(w.orgA))
	for _, s := range []string{
		`{"query":"{ viewer { __typename } }"}`,
		`{"query":"query($first:Int){ members(first:$first){ edges { cursor node { id name { family } } } } }","variables":{"first":3}}`,
		`{"query":"query M($id:ID!){ member(id:$id){ claims(first:2){ edges { node { identifier lines { sequence } } } } } }","variables":{"id":"` + w.alice + `"},"operationName":"M"}`,
		`{"query":"{ members(first: 101) { totalCount } }"}`,
		`{"query":"{ a: members { totalCount } b: members { totalCount } }"}`,
		`{"query":"mutation { startBulkExport(input: {types: [\"Patient\"]}) { job { id } } }"}`,
		`{"query":"{ __schema { types { name } } }"}`,
		`[{"query":"{ viewer { __typename } }"},{"query":"{ viewer { __typename } }"}]`,
		`{"query":"{ member(id: \"x\") { id } }","variables":[]}`,
		`{"query":"query($d: Date){ members(filter:{birthDate:$d}) { totalCount } }","variables":{"d":"2020-02-30"}}`,
		`{"query":"{"}`,
		`{"query":null}`,
		`{"extensions":{"persistedQuery":{"version":1,"sha256Hash":"0000"}}}`,
		`{}`, `null`, `"x"`, ``, `{"query":"` + string(bytes.Repeat([]byte("{a"), 200)) + `"}`,
	} {
		f.Add([]byte(s), uint8(0), true)
		f.Add([]byte(s), uint8(0), false)
	}
	f.Add([]byte(`query=%7B+viewer+%7B+__typename+%7D+%7D`), uint8(5), true)
	f.Add([]byte(`{ viewer { __typename } }`), uint8(6), true)
	f.Fuzz(func(t *testing.T, body []byte, ct uint8, authed bool) {
		h := srv.h
		if authed {
			h = provider
		}
		req := httptest.NewRequest(http.MethodPost, "/graphql", bytes.NewReader(body))
		if c := fuzzContentTypes[int(ct)%len(fuzzContentTypes)]; c != "" {
			req.Header.Set("Content-Type", c)
		}
		req.Header.Set("Accept", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body)
		}
		if rec.Code == http.StatusOK {
			var resp map[string]json.RawMessage
			if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
				t.Fatalf("200 with a body that is not a JSON object (%v): %s", err, rec.Body)
			}
			_, hasData := resp["data"]
			_, hasErrors := resp["errors"]
			if !hasData && !hasErrors {
				t.Fatalf("200 without data or errors: %s", rec.Body)
			}
			for _, e := range gqlErrors(resp) {
				if e.code() == "INTERNAL" {
					t.Fatalf("INTERNAL for %q: %s", body, rec.Body)
				}
			}
		}
	})
}

func gqlErrors(resp map[string]json.RawMessage) []gqlError {
	var errs []gqlError
	json.Unmarshal(resp["errors"], &errs)
	return errs
}

// FuzzGraphQLCursor: any string as a connection's after cursor is a page
// or BAD_USER_INPUT — never INTERNAL, never a 5xx (store's parseCursor
// must refuse what it cannot parse before it reaches SQL).
func FuzzGraphQLCursor(f *testing.F) {
	w := newWorld(f)
	srv := newFuzzServer(f, w.db)
	provider, op := srv.unlimited(w.provider(w.orgA)), srv.unlimited(operator())
	queries := []struct {
		h     http.Handler
		query string
		path  string
	}{
		{provider, `query($after: String) { members(first: 3, after: $after) { edges { cursor } } }`, "members"},
		{op, `query($id: ID!, $after: String) { member(id: $id) { claims(first: 2, after: $after) { edges { cursor } } } }`, "claims"},
		{op, `query($id: ID!, $after: String) { member(id: $id) { encounters(first: 2, after: $after) { edges { cursor } } } }`, "encounters"},
		{op, `query($id: ID!, $after: String) { member(id: $id) { priorAuthorizations(first: 2, after: $after) { edges { cursor } } } }`, "priorAuthorizations"},
		{op, `query($id: ID!, $after: String) { member(id: $id) { conditions(first: 1, after: $after) { edges { cursor } } } }`, "conditions"},
	}
	post := func(t testing.TB, i int, after string) (int, []gqlError, []byte) {
		q := queries[i%len(queries)]
		body, _ := json.Marshal(map[string]any{"query": q.query, "variables": map[string]any{"id": w.alice, "after": after}})
		req := httptest.NewRequest(http.MethodPost, "/graphql", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		q.h.ServeHTTP(rec, req)
		var resp map[string]json.RawMessage
		json.Unmarshal(rec.Body.Bytes(), &resp)
		return rec.Code, gqlErrors(resp), rec.Body.Bytes()
	}
	// Seeds: real cursors of each list, and their near misses.
	for i := range queries {
		_, _, body := post(f, i, "")
		var cursors []string
		collectCursors(body, &cursors)
		for _, c := range cursors {
			f.Add(uint8(i), c)
			raw, _ := base64.RawURLEncoding.DecodeString(c)
			f.Add(uint8(i), string(raw))
			f.Add(uint8(i), base64.RawURLEncoding.EncodeToString(append(raw, '|')))
			f.Add(uint8(i+1), c) // another list's cursor
		}
		f.Add(uint8(i), "")
		f.Add(uint8(i), "bXw=")
		f.Add(uint8(i), base64.RawURLEncoding.EncodeToString([]byte("m|' OR 1=1 --")))
		f.Add(uint8(i), base64.RawURLEncoding.EncodeToString([]byte("c|2024-13-45|00000000-0000-0000-0000-000000000000")))
	}
	f.Fuzz(func(t *testing.T, list uint8, after string) {
		status, errs, body := post(t, int(list), after)
		if status != http.StatusOK {
			t.Fatalf("status %d for after %q: %s", status, after, body)
		}
		for _, e := range errs {
			if e.code() != "BAD_USER_INPUT" {
				t.Fatalf("after %q: error %s (%s), want a page or BAD_USER_INPUT: %s", after, e.code(), e.Message, body)
			}
		}
	})
}

// collectCursors appends every "cursor" value in a JSON document.
func collectCursors(body []byte, out *[]string) {
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if s, ok := e.(string); ok && k == "cursor" {
					*out = append(*out, s)
				}
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	var v any
	json.Unmarshal(body, &v)
	walk(v)
}
