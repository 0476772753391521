// Command gqlrewrite rewrites gqlgen's generated executor (graph/) for
// speed. It runs from go generate right after gqlgen (resolvers/resolver.go):
//
//	go run ../internal/gqlrewrite -leaf-fields ../graph
//
// Two rewrites, both measured (server's BenchmarkMemberClaimsQuery):
//
// Sequential lists (always). gqlgen v0.17.98 marshals every list of
// objects with graphql.MarshalSliceConcurrently, one goroutine per element,
// and has no switch to turn that off (exec.worker_limit only bounds it). On
// a response of a few hundred small objects the goroutines cost more than
// the work (NOTES.md). Each call becomes marshalSliceSequentially, with the
// same signature, written next to the generated files. Nothing in this
// schema needs the concurrency: nested lists are read by batching over
// sibling parents (resolvers/batch.go), never by time-window dataloaders,
// which sequential marshaling would serialize (NOTES.md, "the dataloader
// trap"). -keep Type,… leaves the lists of some element types concurrent.
//
// Leaf fields (-leaf-fields). gqlgen resolves every field, even the read of
// a string from a struct, through graphql.ResolveField: a FieldContext, a
// context, closures, a boxed value and the field middleware chain, about
// seven allocations per field. For a field that is a plain read of a
// struct field (no resolver, no arguments) of a scalar or enum type, the
// rewrite calls the field's marshaler directly (resolveLeaf). What such a
// field gives up, knowingly: field middleware (AroundFields) does not see
// it, and an error its marshaler reports (a null in a non-null field, a
// NaN) carries the parent object's path. Resolvers and object fields keep
// the full path.
//
// Leaf fields with a directive (-leaf-directives name,…). The same for a
// plain leaf read carrying exactly one of the named directives
// (resolveLeafDirective): the directive runs without the field's own
// FieldContext, which is created only when the directive refuses, so its
// error carries the field's path. A directive listed here must not read
// graphql.GetFieldContext (resolvers.Money does not).
//
// Deferred groups (always). Every object marshaler starts with
// graphql.NewDeferredGroup(ctx), which computes the object's full path and
// allocates a map and a field set, all for @defer. newDeferredGroup does so
// only when one of the object's collected fields is deferred, and
// otherwise returns an empty group (the generated code reads it only when
// it holds deferred fields).
//
// Object output (always). An object marshaler ends with `return out`, a
// *graphql.FieldSet whose MarshalGQL allocates a copy of every collected
// field (it yields &field of its loop variable) and a map per object, about
// a third of the bytes a response allocates. objectMarshaler writes the
// same {"alias":value,…}, a repeated alias once, from the marshaler's
// fields and out.Values without either.
//
// The tool fails loudly when it finds nothing to rewrite, or a call of a
// shape it was not written for: gqlgen changed its output and this tool
// must be revisited. The helpers it writes have the signatures of the calls
// they replace, so a change there fails to compile instead of misbehaving.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
)

const (
	concurrentFunc = "MarshalSliceConcurrently"
	sequentialFunc = "marshalSliceSequentially"
	resolveField   = "ResolveField"
	leafFunc       = "resolveLeaf"
	leafDirFunc    = "resolveLeafDirective"
	deferredFunc   = "NewDeferredGroup"
	lazyDeferred   = "newDeferredGroup"
	objectType     = "objectMarshaler"
	helperFile     = "gqlrewrite.generated.go"
)

func main() {
	keep := flag.String("keep", "", "comma-separated GraphQL element types whose lists stay concurrent")
	leaves := flag.Bool("leaf-fields", false, "resolve plain scalar and enum struct-field reads without ResolveField")
	leafDirs := flag.String("leaf-directives", "", "comma-separated directives whose plain leaf fields are resolved without ResolveField")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: gqlrewrite [-keep Type,…] [-leaf-fields] DIR")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	st, err := rewriteDir(flag.Arg(0), options{keep: list(*keep), leaves: *leaves, leafDirectives: list(*leafDirs)})
	if err != nil {
		fmt.Fprintln(os.Stderr, "gqlrewrite:", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "gqlrewrite: %s: %d list marshalers made sequential, %d leaf fields resolved directly, %d through a directive, %d deferred groups made lazy, %d objects written directly\n",
		flag.Arg(0), st.lists, st.leaves, st.leafDirs, st.groups, st.objects)
}

func list(s string) []string {
	var out []string
	for _, t := range strings.Split(s, ",") {
		if t = strings.TrimSpace(t); t != "" {
			out = append(out, t)
		}
	}
	return out
}

type options struct {
	keep           []string
	leaves         bool
	leafDirectives []string
}

type stats struct {
	lists, leaves, leafDirs, groups, objects                 int
	doneLists, doneLeaves, doneDirs, doneGroups, doneObjects int // rewritten by an earlier run
}

type file struct {
	path string
	src  []byte
	fset *token.FileSet
	ast  *ast.File
}

// rewriteDir rewrites every generated file of dir and writes the helpers.
func rewriteDir(dir string, o options) (stats, error) {
	var st stats
	paths, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return st, err
	}
	sort.Strings(paths)
	var files []*file
	for _, path := range paths {
		if strings.HasSuffix(path, "_test.go") || filepath.Base(path) == helperFile {
			continue
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return st, err
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, src, parser.SkipObjectResolution)
		if err != nil {
			return st, err
		}
		files = append(files, &file{path, src, fset, f})
	}
	if len(files) == 0 {
		return st, fmt.Errorf("no Go files in %s: run gqlgen first", dir)
	}
	scalarContexts := map[string]bool{}
	for _, f := range files {
		collectScalarContexts(f.ast, scalarContexts)
	}
	for _, f := range files {
		out, err := rewriteFile(f, o, scalarContexts, &st)
		if err != nil {
			return st, err
		}
		if out != nil {
			if err := os.WriteFile(f.path, out, 0o644); err != nil {
				return st, err
			}
		}
	}
	if st.lists+st.doneLists == 0 {
		return st, fmt.Errorf("no call of graphql.%s found in %s: gqlgen changed how it marshals lists; revisit internal/gqlrewrite", concurrentFunc, dir)
	}
	if st.objects+st.doneObjects == 0 {
		return st, fmt.Errorf("no object marshaler ending in `return out` found in %s: gqlgen changed its object marshalers; revisit internal/gqlrewrite", dir)
	}
	if st.groups+st.doneGroups == 0 {
		return st, fmt.Errorf("no call of graphql.%s(ctx) after fields := … found in %s: gqlgen changed its object marshalers; revisit internal/gqlrewrite", deferredFunc, dir)
	}
	if o.leaves && st.leaves+st.doneLeaves == 0 {
		return st, fmt.Errorf("no plain leaf field found in %s: gqlgen changed how it resolves fields; revisit internal/gqlrewrite", dir)
	}
	if len(o.leafDirectives) > 0 && st.leafDirs+st.doneDirs == 0 {
		return st, fmt.Errorf("no leaf field with directive %v found in %s: gqlgen changed how it applies directives; revisit internal/gqlrewrite", o.leafDirectives, dir)
	}
	helper, err := format.Source([]byte(fmt.Sprintf(helperSource, files[0].ast.Name.Name)))
	if err != nil {
		return st, err
	}
	return st, os.WriteFile(filepath.Join(dir, helperFile), helper, 0o644)
}

// collectScalarContexts records the fieldContext_* methods that only
// return graphql.NewScalarFieldContext(…, false, false, …): fields that are
// neither methods nor resolvers, of a scalar or enum type.
func collectScalarContexts(f *ast.File, out map[string]bool) {
	for _, decl := range f.Decls {
		fn, ok := decl.(*ast.FuncDecl)
		if !ok || fn.Recv == nil || !strings.HasPrefix(fn.Name.Name, "fieldContext_") || len(fn.Body.List) != 1 {
			continue
		}
		ret, ok := fn.Body.List[0].(*ast.ReturnStmt)
		if !ok || len(ret.Results) != 1 {
			continue
		}
		call, ok := ret.Results[0].(*ast.CallExpr)
		if !ok || !isGraphQLCall(call, "NewScalarFieldContext") || len(call.Args) != 5 {
			continue
		}
		if isIdent(call.Args[2], "false") && isIdent(call.Args[3], "false") {
			out[fn.Name.Name] = true
		}
	}
}

type edit struct {
	start, end int
	text       string
}

// rewriteFile returns f's rewritten source, or nil when nothing changed.
func rewriteFile(f *file, o options, scalarContexts map[string]bool, st *stats) ([]byte, error) {
	var edits []edit
	var walkErr error
	off := func(p token.Pos) int { return f.fset.Position(p).Offset }
	text := func(n ast.Node) string { return string(f.src[off(n.Pos()):off(n.End())]) }
	for _, decl := range f.ast.Decls {
		fn, ok := decl.(*ast.FuncDecl)
		if !ok {
			continue
		}
		keepLists := keeps(fn.Name.Name, o.keep)
		hasFields := assigns(fn, "fields")
		if ret := objectReturn(fn); ret != nil {
			edits = append(edits, edit{off(ret.Pos()), off(ret.End()), "return " + objectType + "{fields, out.Values}"})
			st.objects++
		} else if isObjectMarshalerDone(fn) {
			st.doneObjects++
		}
		ast.Inspect(fn, func(node ast.Node) bool {
			if walkErr != nil {
				return false
			}
			call, ok := node.(*ast.CallExpr)
			if !ok {
				return true
			}
			if id, ok := call.Fun.(*ast.Ident); ok {
				switch id.Name {
				case sequentialFunc:
					st.doneLists++
				case leafFunc:
					st.doneLeaves++
				case leafDirFunc:
					st.doneDirs++
				case lazyDeferred:
					st.doneGroups++
				}
				return true
			}
			switch {
			case isGraphQLCall(call, deferredFunc):
				if len(call.Args) != 1 || !isIdent(call.Args[0], "ctx") || !hasFields {
					walkErr = fmt.Errorf("%s: graphql.%s called in an unexpected shape; revisit internal/gqlrewrite",
						f.fset.Position(call.Pos()), deferredFunc)
					return false
				}
				edits = append(edits, edit{off(call.Pos()), off(call.End()), lazyDeferred + "(ctx, fields)"})
				st.groups++
			case isGraphQLCall(call, concurrentFunc):
				// The shape this was written against: (ctx, len, workerLimit,
				// omitPanicHandler, func(ctx context.Context, i int) graphql.Marshaler).
				lit, ok := call.Args[len(call.Args)-1].(*ast.FuncLit)
				if len(call.Args) != 5 || !ok || lit.Type.Params.NumFields() != 2 {
					walkErr = fmt.Errorf("%s: graphql.%s called with an unexpected shape; revisit internal/gqlrewrite",
						f.fset.Position(call.Pos()), concurrentFunc)
					return false
				}
				if !keepLists {
					edits = append(edits, edit{off(call.Fun.Pos()), off(call.Fun.End()), sequentialFunc})
					st.lists++
				}
			case (o.leaves || len(o.leafDirectives) > 0) && isGraphQLCall(call, resolveField):
				if len(call.Args) != 9 {
					walkErr = fmt.Errorf("%s: graphql.%s called with %d arguments, not 9; revisit internal/gqlrewrite",
						f.fset.Position(call.Pos()), resolveField, len(call.Args))
					return false
				}
				read, marshal, ok := leafRead(call, scalarContexts)
				switch {
				case !ok:
				case o.leaves && isIdent(call.Args[5], "nil"):
					edits = append(edits, edit{off(call.Pos()), off(call.End()),
						fmt.Sprintf("%s(ctx, field, %s, %s)", leafFunc, text(read), text(marshal))})
					st.leaves++
				default:
					if dir, ok := singleDirective(call.Args[5]); ok && slices.Contains(o.leafDirectives, dir.name) {
						edits = append(edits, edit{off(call.Pos()), off(call.End()),
							fmt.Sprintf("%s(ctx, ec.OperationContext, field, %s, obj, %s, %s, %s, %s)", leafDirFunc,
								text(call.Args[3]), text(read), text(dir.fn), text(marshal), text(call.Args[8]))})
						st.leafDirs++
					}
				}
				return false // a leaf field has no nested calls worth rewriting
			}
			return true
		})
		if walkErr != nil {
			return nil, walkErr
		}
	}
	if len(edits) == 0 {
		return nil, nil
	}
	sort.Slice(edits, func(i, j int) bool { return edits[i].start < edits[j].start })
	var buf bytes.Buffer
	last := 0
	for _, e := range edits {
		buf.Write(f.src[last:e.start])
		buf.WriteString(e.text)
		last = e.end
	}
	buf.Write(f.src[last:])
	out, err := dropUnusedImports(f.path, buf.Bytes())
	if err != nil {
		return nil, err
	}
	if out, err = format.Source(out); err != nil {
		return nil, fmt.Errorf("%s: %w", f.path, err)
	}
	return out, nil
}

// dropUnusedImports removes the imports a rewrite left unused (the
// "errors" of the directive closures it replaced).
func dropUnusedImports(path string, src []byte) ([]byte, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, src, parser.SkipObjectResolution)
	if err != nil {
		return nil, fmt.Errorf("%s after rewriting: %w", path, err)
	}
	used := map[string]bool{}
	ast.Inspect(f, func(n ast.Node) bool {
		if sel, ok := n.(*ast.SelectorExpr); ok {
			if id, ok := sel.X.(*ast.Ident); ok {
				used[id.Name] = true
			}
		}
		return true
	})
	var drop []edit
	for _, imp := range f.Imports {
		p := strings.Trim(imp.Path.Value, `"`)
		name := p[strings.LastIndexByte(p, '/')+1:]
		if imp.Name != nil {
			name = imp.Name.Name
		}
		if name == "_" || used[name] {
			continue
		}
		start, end := fset.Position(imp.Pos()).Offset, fset.Position(imp.End()).Offset
		if imp.Doc == nil && imp.Comment == nil { // the whole line
			start = bytes.LastIndexByte(src[:start], '\n') + 1
			if i := bytes.IndexByte(src[end:], '\n'); i >= 0 {
				end += i + 1
			}
		}
		drop = append(drop, edit{start, end, ""})
	}
	for i := len(drop) - 1; i >= 0; i-- {
		src = append(src[:drop[i].start:drop[i].start], src[drop[i].end:]...)
	}
	return src, nil
}

// leafRead reports whether a graphql.ResolveField call resolves a plain
// leaf read, and returns the read (obj.Field) and the marshal func:
//
//	graphql.ResolveField(ctx, ec.OperationContext, field,
//		func(ctx, field) (*graphql.FieldContext, error) { return ec.fieldContext_T_f(ctx, field) },
//		func(ctx context.Context) (any, error) { return obj.F, nil },
//		middleware, // nil, or the directives (singleDirective)
//		func(ctx context.Context, selections ast.SelectionSet, v X) graphql.Marshaler { … },
//		recover, nonNull)
//
// with fieldContext_T_f a scalar field context (collectScalarContexts).
func leafRead(call *ast.CallExpr, scalarContexts map[string]bool) (read ast.Expr, marshal *ast.FuncLit, ok bool) {
	ctxLit, ok1 := call.Args[3].(*ast.FuncLit)
	resLit, ok2 := call.Args[4].(*ast.FuncLit)
	marshal, ok3 := call.Args[6].(*ast.FuncLit)
	if !ok1 || !ok2 || !ok3 || marshal.Type.Params.NumFields() != 3 {
		return nil, nil, false
	}
	ctxCall, ok := singleReturn(ctxLit, 1)
	if !ok {
		return nil, nil, false
	}
	c, ok := ctxCall[0].(*ast.CallExpr)
	if !ok {
		return nil, nil, false
	}
	sel, ok := c.Fun.(*ast.SelectorExpr)
	if !ok || !isIdent(sel.X, "ec") || !scalarContexts[sel.Sel.Name] {
		return nil, nil, false
	}
	res, ok := singleReturn(resLit, 2)
	if !ok || !isIdent(res[1], "nil") {
		return nil, nil, false
	}
	field, ok := res[0].(*ast.SelectorExpr)
	if !ok || !isIdent(field.X, "obj") {
		return nil, nil, false
	}
	return field, marshal, true
}

type directive struct {
	name string
	fn   ast.Expr // ec.Directives.Name
}

// singleDirective recognises the middleware gqlgen generates for a field
// with exactly one directive and no directive arguments:
//
//	func(ctx context.Context, next graphql.Resolver) graphql.Resolver {
//		directive0 := next
//		directive1 := func(ctx context.Context) (any, error) {
//			if ec.Directives.Money == nil { … return zeroVal, errors.New("…") }
//			return ec.Directives.Money(ctx, obj, directive0)
//		}
//		next = directive1
//		return next
//	}
func singleDirective(e ast.Expr) (directive, bool) {
	lit, ok := e.(*ast.FuncLit)
	if !ok || len(lit.Body.List) != 4 {
		return directive{}, false
	}
	d1, ok := lit.Body.List[1].(*ast.AssignStmt)
	if !ok || len(d1.Lhs) != 1 || !isIdent(d1.Lhs[0], "directive1") || len(d1.Rhs) != 1 {
		return directive{}, false
	}
	if a, ok := lit.Body.List[2].(*ast.AssignStmt); !ok || !isIdent(a.Lhs[0], "next") || !isIdent(a.Rhs[0], "directive1") {
		return directive{}, false
	}
	inner, ok := d1.Rhs[0].(*ast.FuncLit)
	if !ok || len(inner.Body.List) != 2 {
		return directive{}, false
	}
	ret, ok := inner.Body.List[1].(*ast.ReturnStmt)
	if !ok || len(ret.Results) != 1 {
		return directive{}, false
	}
	call, ok := ret.Results[0].(*ast.CallExpr)
	if !ok || len(call.Args) != 3 || !isIdent(call.Args[1], "obj") || !isIdent(call.Args[2], "directive0") {
		return directive{}, false
	}
	sel, ok := call.Fun.(*ast.SelectorExpr) // ec.Directives.Name
	if !ok {
		return directive{}, false
	}
	if d, ok := sel.X.(*ast.SelectorExpr); !ok || d.Sel.Name != "Directives" || !isIdent(d.X, "ec") {
		return directive{}, false
	}
	name := sel.Sel.Name
	return directive{strings.ToLower(name[:1]) + name[1:], sel}, true
}

// singleReturn returns the results of a func literal whose body is one
// return statement of n results.
func singleReturn(lit *ast.FuncLit, n int) ([]ast.Expr, bool) {
	if len(lit.Body.List) != 1 {
		return nil, false
	}
	ret, ok := lit.Body.List[0].(*ast.ReturnStmt)
	if !ok || len(ret.Results) != n {
		return nil, false
	}
	return ret.Results, true
}

// objectReturn returns the final `return out` of an object marshaler:
// a function whose body declares out := graphql.NewFieldSet(fields).
func objectReturn(fn *ast.FuncDecl) *ast.ReturnStmt {
	if fn.Body == nil || len(fn.Body.List) == 0 || !declaresFieldSet(fn) {
		return nil
	}
	ret, ok := fn.Body.List[len(fn.Body.List)-1].(*ast.ReturnStmt)
	if !ok || len(ret.Results) != 1 || !isIdent(ret.Results[0], "out") {
		return nil
	}
	return ret
}

func declaresFieldSet(fn *ast.FuncDecl) bool {
	for _, st := range fn.Body.List {
		a, ok := st.(*ast.AssignStmt)
		if !ok || a.Tok != token.DEFINE || len(a.Lhs) != 1 || !isIdent(a.Lhs[0], "out") || len(a.Rhs) != 1 {
			continue
		}
		if call, ok := a.Rhs[0].(*ast.CallExpr); ok && isGraphQLCall(call, "NewFieldSet") &&
			len(call.Args) == 1 && isIdent(call.Args[0], "fields") {
			return true
		}
	}
	return false
}

func isObjectMarshalerDone(fn *ast.FuncDecl) bool {
	if fn.Body == nil || len(fn.Body.List) == 0 || !declaresFieldSet(fn) {
		return false
	}
	ret, ok := fn.Body.List[len(fn.Body.List)-1].(*ast.ReturnStmt)
	if !ok || len(ret.Results) != 1 {
		return false
	}
	lit, ok := ret.Results[0].(*ast.CompositeLit)
	return ok && isIdent(lit.Type, objectType)
}

// assigns reports whether fn declares name with :=.
func assigns(fn *ast.FuncDecl, name string) bool {
	found := false
	ast.Inspect(fn, func(n ast.Node) bool {
		if a, ok := n.(*ast.AssignStmt); ok && a.Tok == token.DEFINE {
			for _, l := range a.Lhs {
				if isIdent(l, name) {
					found = true
				}
			}
		}
		return !found
	})
	return found
}

func isGraphQLCall(call *ast.CallExpr, name string) bool {
	sel, ok := call.Fun.(*ast.SelectorExpr)
	return ok && sel.Sel.Name == name && isIdent(sel.X, "graphql")
}

func isIdent(e ast.Expr, name string) bool {
	id, ok := e.(*ast.Ident)
	return ok && id.Name == name
}

// marshalerName matches gqlgen's list marshaler names, e.g.
// marshalNClaimLine2ᚕᚖexampleᚗcomᚋgatewayᚋgatewayᚐClaimLineᚄ: the GraphQL
// element type follows marshalN or marshalO and precedes "2".
var marshalerName = regexp.MustCompile(`^marshal[NO]([A-Za-z0-9_]+?)2`)

func keeps(funcName string, keep []string) bool {
	m := marshalerName.FindStringSubmatch(funcName)
	return m != nil && slices.Contains(keep, m[1])
}

const helperSource = `// Code generated by internal/gqlrewrite. DO NOT EDIT.

package %s

import (
	"context"
	"errors"
	"io"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
)

// marshalSliceSequentially has the signature of graphql.MarshalSliceConcurrently
// and its behaviour (a field context per element carrying the index, panics
// reported as errors at the element's path) without a goroutine per element.
// workerLimit is irrelevant: one element is marshaled at a time.
func marshalSliceSequentially(
	ctx context.Context,
	length int,
	workerLimit int64,
	omitPanicHandler bool,
	marshalElement func(ctx context.Context, i int) graphql.Marshaler,
) graphql.Array {
	ret := make(graphql.Array, length)
	if length == 0 {
		return ret
	}
	// One allocation for all the elements' field contexts and indexes.
	fcs := make([]graphql.FieldContext, length)
	idx := make([]int, length)
	for i := range length {
		idx[i] = i
		fcs[i].Index = &idx[i]
		childCtx := graphql.WithFieldContext(ctx, &fcs[i])
		if omitPanicHandler {
			ret[i] = marshalElement(childCtx, i)
			continue
		}
		ret[i] = marshalElementRecovering(childCtx, i, marshalElement)
	}
	return ret
}

func marshalElementRecovering(
	ctx context.Context,
	i int,
	marshalElement func(ctx context.Context, i int) graphql.Marshaler,
) (ret graphql.Marshaler) {
	defer func() {
		if r := recover(); r != nil {
			graphql.AddError(ctx, graphql.Recover(ctx, r))
			ret = graphql.Null
		}
	}()
	return marshalElement(ctx, i)
}

// objectMarshaler writes an object as graphql.FieldSet does,
// {"alias":value,…} with a repeated alias written once, without
// FieldSet.MarshalGQL's copy of every field and map per object. Aliases
// are GraphQL names ([_A-Za-z][_0-9A-Za-z]*): they need no escaping.
type objectMarshaler struct {
	fields []graphql.CollectedField
	values []graphql.Marshaler
}

func (o objectMarshaler) MarshalGQL(w io.Writer) {
	io.WriteString(w, "{")
	first := true
fields:
	for i := range o.fields {
		alias := o.fields[i].Alias
		for j := range i {
			if o.fields[j].Alias == alias {
				continue fields // merged by name only when the types agree: keep the first
			}
		}
		if first {
			io.WriteString(w, "\"")
			first = false
		} else {
			io.WriteString(w, ",\"")
		}
		io.WriteString(w, alias)
		io.WriteString(w, "\":")
		o.values[i].MarshalGQL(w)
	}
	io.WriteString(w, "}")
}

// newDeferredGroup is graphql.NewDeferredGroup(ctx) when one of fields is
// deferred (@defer), and otherwise an empty group: no path, no map, no
// field set. The generated code touches the group's map and field set only
// for deferred fields, and processes the group only when its map is
// non-empty.
func newDeferredGroup(ctx context.Context, fields []graphql.CollectedField) graphql.DeferredGroup {
	for i := range fields {
		if fields[i].IsDeferred() {
			return graphql.NewDeferredGroup(ctx)
		}
	}
	return graphql.DeferredGroup{Context: ctx}
}

// resolveLeafDirective resolves v, the plain read of a scalar or enum
// struct field of obj, through one directive, without graphql.ResolveField.
// The field's FieldContext is made only when the directive refuses, so the
// error carries the field's path; the directive itself runs without it.
func resolveLeafDirective[T any](
	ctx context.Context,
	oc *graphql.OperationContext,
	field graphql.CollectedField,
	fieldContext func(ctx context.Context, field graphql.CollectedField) (*graphql.FieldContext, error),
	obj any,
	v T,
	directive func(ctx context.Context, obj any, next graphql.Resolver) (any, error),
	marshal func(ctx context.Context, selections ast.SelectionSet, v T) graphql.Marshaler,
	nonNull bool,
) graphql.Marshaler {
	var res any
	var err error
	if directive == nil {
		err = errors.New("directive of field " + field.Name + " is not implemented")
	} else {
		res, err = directive(ctx, obj, func(context.Context) (any, error) { return v, nil })
	}
	if err == nil {
		if r, ok := res.(T); ok {
			return marshal(ctx, field.Selections, r)
		}
		if res != nil {
			err = errors.New("directive of field " + field.Name + " returned an unexpected type")
		}
	}
	fc, fcErr := fieldContext(ctx, field)
	if fcErr != nil {
		return graphql.Null
	}
	ctx = graphql.WithFieldContext(ctx, fc)
	switch {
	case err != nil:
		oc.Error(ctx, graphql.AddFieldLocationToError(ctx, err))
	case nonNull:
		graphql.AddInvalidNullError(ctx, "")
	}
	return graphql.Null
}

// resolveLeaf marshals v, the plain read of a scalar or enum struct field
// (no resolver, no directive, no arguments), without graphql.ResolveField's
// per-field FieldContext, context, boxing and middleware chain. Field
// middleware does not see such a field, and an error its marshaler reports
// carries the parent object's path.
func resolveLeaf[T any](
	ctx context.Context,
	field graphql.CollectedField,
	v T,
	marshal func(ctx context.Context, selections ast.SelectionSet, v T) graphql.Marshaler,
) graphql.Marshaler {
	return marshal(ctx, field.Selections, v)
}
`
