package resolvers_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/vektah/gqlparser/v2/ast"

	"example.com/gateway/auth"
	"example.com/gateway/graph"
)

// TestMoneyDirectiveMarksExactlyMoneyFields keeps the schema and the
// policy's list of monetary fields (auth.MoneyFields) equal: a new amount
// without @money, or @money on a field the policy does not know, fails here.
func TestMoneyDirectiveMarksExactlyMoneyFields(t *testing.T) {
	schema := graph.NewExecutableSchema(graph.Config{}).Schema()
	var marked []string
	for _, def := range schema.Types {
		if def.BuiltIn || def.Kind != ast.Object || strings.HasPrefix(def.Name, "__") {
			continue
		}
		for _, f := range def.Fields {
			if f.Directives.ForName("money") == nil {
				continue
			}
			marked = append(marked, def.Name+"."+f.Name)
			if f.Type.NonNull {
				t.Errorf("%s.%s carries @money but is non-null: a withheld amount must be able to be null", def.Name, f.Name)
			}
		}
	}
	want := slices.Clone(auth.MoneyFields)
	slices.Sort(marked)
	slices.Sort(want)
	for _, f := range marked {
		if !slices.Contains(want, f) {
			t.Errorf("%s carries @money but is not in auth.MoneyFields", f)
		}
	}
	for _, f := range want {
		if !slices.Contains(marked, f) {
			t.Errorf("auth.MoneyFields lists %s, which does not carry @money in the schema", f)
		}
	}
	if len(marked) == 0 {
		t.Fatal("no field carries @money")
	}
}

// TestMoneyNamedFieldsCarryTheDirective catches an amount added under a
// new name that neither the schema author nor auth.MoneyFields flagged:
// every Money-typed field must carry @money.
func TestMoneyNamedFieldsCarryTheDirective(t *testing.T) {
	schema := graph.NewExecutableSchema(graph.Config{}).Schema()
	for _, def := range schema.Types {
		if def.Kind != ast.Object || strings.HasPrefix(def.Name, "__") {
			continue
		}
		for _, f := range def.Fields {
			if f.Type.Name() == "Money" && f.Directives.ForName("money") == nil {
				t.Errorf("%s.%s is of type Money without @money", def.Name, f.Name)
			}
		}
	}
}
