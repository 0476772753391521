package server

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"example.com/gateway/store"
	"example.com/gateway/store/storetest"
)

// memberClaimsQuery is the benchmark query of issue 2: one member's 50
// claims with every scalar field and their lines (two per claim in the
// benchmark data; about 40 KB of JSON).
const memberClaimsQuery = `query MemberClaims($id: ID!) {
  member(id: $id) {
    id
    claims(first: 50) {
      edges {
        node {
          id memberId identifier type status outcome serviceStart serviceEnd created processed
          coverageId billingOrganizationId renderingPractitionerId facilityName placeOfService
          typeOfBill drg inNetwork sensitive lastUpdated
          totalSubmitted totalAllowed totalPaid paymentAmount paymentDate paymentAdjustment
          copay coinsurance deductible nonCovered memberLiability
          lines { sequence productCode productDisplay quantity submitted paid }
        }
      }
    }
  }
}`

// nestedMembersQuery is the N+1 probe of issue 2.
const nestedMembersQuery = `query Nested($first: Int!) {
  members(first: $first) { edges { node { claims(first: 20) { edges { node { lines { productCode } } } } } } }
}`

// graphQLRequest builds a POST /graphql request.
func graphQLRequest(tb testing.TB, query string, vars map[string]any) func() *http.Request {
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		tb.Fatal(err)
	}
	return func() *http.Request {
		req := httptest.NewRequest(http.MethodPost, "/graphql", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		return req
	}
}

// benchServe runs req through h b.N times and reports the response size
// and the CPU per request of this process and of PostgreSQL.
func benchServe(b *testing.B, db *store.DB, counter *statementCounter, h http.Handler, req func() *http.Request) {
	b.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req())
	if rec.Code != http.StatusOK || bytes.Contains(rec.Body.Bytes(), []byte(`"errors"`)) {
		b.Fatalf("status %d: %.500s", rec.Code, rec.Body.Bytes())
	}
	size := rec.Body.Len()
	b.ReportAllocs()
	b.ResetTimer()
	cpu := startCPUMeter(b, db)
	var before int64
	if counter != nil {
		before = counter.count()
	}
	n := 0
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req())
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d", rec.Code)
		}
		n++
	}
	b.StopTimer()
	if counter != nil {
		b.ReportMetric(float64(counter.count()-before)/float64(n), "sql-stmts/op")
	}
	cpu.report(b, n)
	b.ReportMetric(float64(size), "resp-bytes")
}

// BenchmarkMemberClaimsQuery measures memberClaimsQuery through the HTTP
// handler (an operator, so the amounts resolve), audit write included.
func BenchmarkMemberClaimsQuery(b *testing.B) {
	db := storetest.New(b)
	bld := builder{b, db}
	org := bld.org("Bench Org", "1234567893", true)
	ids := bld.bulk(org, "BENCH-", 1, 50, 2)
	a := newAPI(b, db, false)
	benchServe(b, db, nil, a.as(operator()), graphQLRequest(b, memberClaimsQuery, map[string]any{"id": ids[0]}))
}

// BenchmarkNestedMembersQuery measures members(first: 50) { claims(first:
// 20) { lines } } and reports the SQL statements per request.
func BenchmarkNestedMembersQuery(b *testing.B) {
	db, counter := countingStore(b)
	bld := builder{b, db}
	org := bld.org("Bench Org", "1234567893", true)
	bld.bulk(org, "NEST-", 50, 20, 2)
	a := newAPI(b, db, false)
	w := &world{}
	benchServe(b, db, counter, a.as(w.provider(org)), graphQLRequest(b, nestedMembersQuery, map[string]any{"first": 50}))
}
