package server

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/99designs/gqlgen/complexity"
	"github.com/vektah/gqlparser/v2"

	"example.com/gateway/gateway"
	"example.com/gateway/graph"
	"example.com/gateway/resolvers"
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
