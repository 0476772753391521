package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// sample is the shape of gqlgen v0.17.98's output this tool rewrites.
const sample = `package graph

import (
	"context"
	"errors"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
)

type executionContext struct{ OperationContext *graphql.OperationContext; Directives struct{ Money func(context.Context, any, graphql.Resolver) (any, error) } }
type T struct{ Name string; Paid *int; Kids []*T }

func (ec *executionContext) _T(ctx context.Context, sel ast.SelectionSet, obj *T) graphql.Marshaler {
	fields := graphql.CollectFields(ec.OperationContext, sel, nil)
	out := graphql.NewFieldSet(fields)
	deferred := graphql.NewDeferredGroup(ctx)
	_ = deferred
	return out
}

func (ec *executionContext) _T_name(ctx context.Context, field graphql.CollectedField, obj *T) (ret graphql.Marshaler) {
	return graphql.ResolveField(
		ctx,
		ec.OperationContext,
		field,
		func(ctx context.Context, field graphql.CollectedField) (*graphql.FieldContext, error) {
			return ec.fieldContext_T_name(ctx, field)
		},
		func(ctx context.Context) (any, error) {
			return obj.Name, nil
		},
		nil,
		func(ctx context.Context, selections ast.SelectionSet, v string) graphql.Marshaler {
			return graphql.MarshalString(v)
		},
		true,
		true,
	)
}
func (ec *executionContext) fieldContext_T_name(_ context.Context, field graphql.CollectedField) (fc *graphql.FieldContext, err error) {
	return graphql.NewScalarFieldContext("T", field, false, false, "String")
}

func (ec *executionContext) _T_paid(ctx context.Context, field graphql.CollectedField, obj *T) (ret graphql.Marshaler) {
	return graphql.ResolveField(
		ctx,
		ec.OperationContext,
		field,
		func(ctx context.Context, field graphql.CollectedField) (*graphql.FieldContext, error) {
			return ec.fieldContext_T_paid(ctx, field)
		},
		func(ctx context.Context) (any, error) {
			return obj.Paid, nil
		},
		func(ctx context.Context, next graphql.Resolver) graphql.Resolver {
			directive0 := next

			directive1 := func(ctx context.Context) (any, error) {
				if ec.Directives.Money == nil {
					var zeroVal *int
					return zeroVal, errors.New("directive money is not implemented")
				}
				return ec.Directives.Money(ctx, obj, directive0)
			}

			next = directive1
			return next
		},
		func(ctx context.Context, selections ast.SelectionSet, v *int) graphql.Marshaler {
			return graphql.Null
		},
		true,
		false,
	)
}
func (ec *executionContext) fieldContext_T_paid(_ context.Context, field graphql.CollectedField) (fc *graphql.FieldContext, err error) {
	return graphql.NewScalarFieldContext("T", field, false, false, "Money")
}

func (ec *executionContext) marshalNT2ᚕᚖT(ctx context.Context, sel ast.SelectionSet, v []*T) graphql.Marshaler {
	ret := graphql.MarshalSliceConcurrently(ctx, len(v), 0, false, func(ctx context.Context, i int) graphql.Marshaler {
		return ec._T(ctx, sel, v[i])
	})
	return ret
}
`

func TestRewrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "t.generated.go")
	os.WriteFile(path, []byte(sample), 0o644)
	st, err := rewriteDir(dir, options{leaves: true, leafDirectives: []string{"money"}})
	if err != nil {
		t.Fatal(err)
	}
	if st.lists != 1 || st.leaves != 1 || st.leafDirs != 1 || st.groups != 1 || st.objects != 1 {
		t.Errorf("stats = %+v", st)
	}
	out, _ := os.ReadFile(path)
	for _, want := range []string{
		"marshalSliceSequentially(ctx, len(v), 0, false,",
		"return resolveLeaf(ctx, field, obj.Name, func(ctx context.Context, selections ast.SelectionSet, v string) graphql.Marshaler {",
		"return resolveLeafDirective(ctx, ec.OperationContext, field, func(ctx context.Context, field graphql.CollectedField) (*graphql.FieldContext, error) {",
		"}, obj, obj.Paid, ec.Directives.Money, func(ctx context.Context, selections ast.SelectionSet, v *int) graphql.Marshaler {",
		"deferred := newDeferredGroup(ctx, fields)",
		"return objectMarshaler{fields, out.Values}",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for _, gone := range []string{"MarshalSliceConcurrently", "graphql.ResolveField", `"errors"`, "NewDeferredGroup"} {
		if strings.Contains(string(out), gone) {
			t.Errorf("output still has %q:\n%s", gone, out)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, helperFile)); err != nil {
		t.Error(err)
	}

	// A second run finds the rewrite done and changes nothing.
	st, err = rewriteDir(dir, options{leaves: true, leafDirectives: []string{"money"}})
	again, _ := os.ReadFile(path)
	if err != nil || string(again) != string(out) || st.lists+st.leaves+st.leafDirs+st.groups+st.objects != 0 {
		t.Errorf("second run: %+v, %v, changed = %v", st, err, string(again) != string(out))
	}
}

func TestRewriteFailsLoudly(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "x.go"), []byte("package graph\n\nfunc f() {}\n"), 0o644)
	if _, err := rewriteDir(dir, options{}); err == nil || !strings.Contains(err.Error(), "revisit internal/gqlrewrite") {
		t.Errorf("no pattern: err = %v", err)
	}
	if _, err := rewriteDir(t.TempDir(), options{}); err == nil {
		t.Error("empty directory: no error")
	}
	bad := strings.Replace(sample, "graphql.MarshalSliceConcurrently(ctx, len(v), 0, false,", "graphql.MarshalSliceConcurrently(ctx, len(v),", 1)
	os.WriteFile(filepath.Join(dir, "x.go"), []byte(bad), 0o644)
	if _, err := rewriteDir(dir, options{}); err == nil || !strings.Contains(err.Error(), "unexpected shape") {
		t.Errorf("changed signature: err = %v", err)
	}
}
