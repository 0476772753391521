package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/parser"

	"example.com/gateway/auth"
	"example.com/gateway/gateway"
	"example.com/gateway/graph"
	"example.com/gateway/resolvers"
	"example.com/gateway/store"
)

// Limits of the GraphQL endpoint (DESIGN.md §4: checked before
// authentication, answered TOO_COMPLEX or 413). The README's "Limits"
// table lists them; graphql_limits_test.go pins each at its boundary.
const (
	maxBodyBytes    = 1 << 20 // 1 MiB
	maxParserTokens = 15_000
	maxDepth        = 10
	// maxComplexity admits members(first: 50) { claims(first: 20) { lines } }
	// and member(id) { claims(first: 50) { every field, lines { every field } } };
	// it refuses members(first: 100) { claims(first: 100) { … } }.
	maxComplexity = 25_000
	// maxAliases bounds fields whose alias differs from their name, counted
	// through fragments where they are spread. A dashboard uses a handful
	// (two counts of the same connection with different filters); alias
	// amplification (one expensive field asked for under hundreds of
	// names, which the complexity costs of a single field do not see as
	// one attack) needs hundreds. 30 is several dashboards' worth.
	maxAliases = 30
	// maxRootFields bounds the root fields of an operation (through
	// fragments). Each is resolved on its own (its own store queries, in
	// parallel for a query); the documented operations (docs/) have one
	// or two, and a dashboard of viewer, organization, members and
	// attributionGroups has four.
	maxRootFields = 10
	// maxDocumentFields and maxFragments bound a document before it is
	// validated: gqlparser's OverlappingFieldsCanBeMerged (the graphql-js
	// algorithm) is quadratic in fields that share a response name and in
	// fragments spread side by side. Measured on this machine: 15,000
	// repeated fields (a 30 KB query, within maxParserTokens) took 24 s of
	// CPU, 500 fragments spread together 1 s; at 500 fields and 50
	// fragments the worst shapes take about 0.1 s. A member's whole record
	// (every field of every type under Member, each type once) is 276
	// fields; a client's page query uses tens of fragments.
	maxDocumentFields = 500
	maxFragments      = 50
)

// GraphQL-over-HTTP media types (graphql-over-http spec, "Media Types").
const (
	mediaJSON            = "application/json"
	mediaGraphQLResponse = "application/graphql-response+json"
)

func init() {
	// Limits are request errors, like validation (errcode.KindProtocol).
	errcode.RegisterErrorType(gateway.CodeTooComplex, errcode.KindProtocol)
}

// graphQLHandler serves GraphQL over HTTP at /graphql (POST, and GET for
// queries). Parsing, validation and the limits run before authentication;
// every root field except introspection then needs a principal
// (requireAuthentication). The member data a request reads is audited
// before its response is written (auditReads).
//
// With GRAPHQL_ALLOWLIST set, only the operations of that manifest run
// (persisted.go); otherwise any valid operation does, and clients may
// persist theirs with Automatic Persisted Queries. A manifest that cannot
// be loaded fails closed: every request answers 503 (Server.New refuses to
// start first, through checkGraphQLAllowlist).
func (s *Server) graphQLHandler() http.Handler {
	return s.newGraphQLHandler(graphQLLimits{})
}

// graphQLLimits are the limits of one GraphQL handler; a zero field takes
// the default constant (tests lower the ones they probe).
type graphQLLimits struct {
	tokens, depth, complexity, aliases, rootFields int
	documentFields, fragments                      int
	persistedQueries                               int // APQ cache entries
}

// withDefaults fills the zero fields with the constants.
func (l graphQLLimits) withDefaults() graphQLLimits {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&l.tokens, maxParserTokens)
	def(&l.depth, maxDepth)
	def(&l.complexity, maxComplexity)
	def(&l.aliases, maxAliases)
	def(&l.rootFields, maxRootFields)
	def(&l.documentFields, maxDocumentFields)
	def(&l.fragments, maxFragments)
	def(&l.persistedQueries, maxPersistedQueries)
	return l
}

func (s *Server) newGraphQLHandler(limits graphQLLimits) http.Handler {
	h, err := s.buildGraphQLHandler(limits)
	if err != nil {
		s.Logger.Error("GraphQL is unavailable", "err", err)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			writeResponse(w, mediaJSON, http.StatusServiceUnavailable, &graphql.Response{Errors: gqlerror.List{{
				Message:    "GraphQL is unavailable: the gateway's operation allow-list could not be loaded",
				Extensions: map[string]any{"code": gateway.CodeInternal},
			}}})
		})
	}
	return h
}

// buildGraphQLHandler is newGraphQLHandler, with the error of loading the
// allow-list (GRAPHQL_ALLOWLIST).
func (s *Server) buildGraphQLHandler(limits graphQLLimits) (http.Handler, error) {
	limits = limits.withDefaults()
	es := graph.NewExecutableSchema(resolvers.NewConfig(&resolvers.Resolver{
		DB: s.DB, Exports: s.exportService(), DevMode: s.Config.DevMode}))
	srv := handler.New(es)
	srv.AddTransport(httpTransport{})
	docs := newTextCache[*ast.QueryDocument](queryCacheEntries, queryCacheBytes)
	srv.SetQueryCache(docs)
	srv.SetParserTokenLimit(limits.tokens)
	srv.SetErrorPresenter(presentError(s.Logger))
	srv.SetRecoverFunc(recoverPanic(s.Logger))
	if s.Config.Introspection {
		srv.Use(extension.Introspection{})
	} else {
		srv.SetDisableSuggestion(true) // "did you mean …" would reveal the schema
	}
	// Operation parameter mutators, in this order: the query text (from a
	// persisted query, or refused by the allow-list), then the document's
	// limits, which must run before validation.
	if path := s.Config.GraphQLAllowlist; path != "" {
		list, err := loadAllowlist(path, es, limits)
		if err != nil {
			return nil, err
		}
		list.introspection = s.Config.Introspection
		srv.Use(list)
	} else {
		srv.Use(newPersistedQueries(limits.persistedQueries))
	}
	srv.Use(documentLimits{limits: limits, validated: docs})
	// Operation context mutators, after validation: the operation's shape
	// first (linear whatever fragments multiply to), then gqlgen's
	// complexity walk, which expands every fragment spread.
	srv.Use(operationLimits{limits: limits})
	srv.Use(noIncrementalDelivery{})
	srv.Use(tooComplex{extension.FixedComplexityLimit(limits.complexity)})
	s.traceGraphQL(srv)
	srv.Use(auditReads{db: s.DB, logger: s.Logger})
	srv.Use(resolvers.RequestState{DB: s.DB})
	// Field middleware (AroundFields) would not see plain leaf fields: the
	// generated code resolves them directly (internal/gqlrewrite).
	srv.AroundRootFields(requireAuthentication)
	if s.Metrics != nil {
		srv.AroundResponses(s.Metrics.countOperations)
	}
	return srv, nil
}

// requireAuthentication answers UNAUTHENTICATED for every root field read
// without a principal, except introspection (__schema, __type, __typename),
// which is anonymous when introspection is on (DESIGN.md §4, Credentials);
// with introspection off, __schema and __type answer FORBIDDEN.
// It is the only place the endpoint checks that a caller is authenticated;
// what an authenticated caller may read is the store's and @money's.
func requireAuthentication(ctx context.Context, next graphql.RootResolver) graphql.Marshaler {
	field := graphql.GetRootFieldContext(ctx).Field
	var refusal *gateway.Error
	switch {
	case field.Name == "__typename":
		return next(ctx)
	case field.Name == "__schema" || field.Name == "__type":
		if !graphql.GetOperationContext(ctx).DisableIntrospection {
			return next(ctx)
		}
		refusal = errNoIntrospection
	default:
		if p, ok := auth.FromContext(ctx); ok && !p.IsZero() {
			return next(ctx)
		}
		refusal = errUnauthenticated
	}
	err := &gqlerror.Error{Path: ast.Path{ast.PathName(field.Alias)}, Err: refusal}
	if pos := field.Position; pos != nil {
		err.Locations = []gqlerror.Location{{Line: pos.Line, Column: pos.Column}}
	}
	graphql.AddError(ctx, err)
	return graphql.Null
}

var (
	errUnauthenticated = &gateway.Error{Code: gateway.CodeUnauthenticated,
		Message: "authentication required: send an access token as Authorization: Bearer"}
	errNoIntrospection = &gateway.Error{Code: gateway.CodeForbidden, Message: "introspection is disabled"}
)

// presentError decides what a client sees. A *gateway.Error keeps its code
// and client-safe message (its Path, if any, becomes extensions.field);
// gqlgen's own errors (parse, validation, limits) pass through; anything
// else is logged with the request id and shown as "internal error".
func presentError(logger *slog.Logger) graphql.ErrorPresenterFunc {
	return func(ctx context.Context, err error) *gqlerror.Error {
		out := graphql.DefaultErrorPresenter(ctx, err) // keeps path and locations
		var appErr *gateway.Error
		var gqlErr *gqlerror.Error
		switch {
		case errors.As(err, &appErr):
			out.Message = appErr.Message
			setExtension(out, "code", appErr.Code)
			if appErr.Path != "" {
				setExtension(out, "field", appErr.Path)
			}
			if appErr.Code == gateway.CodeInternal && appErr.Err != nil {
				logger.ErrorContext(ctx, "graphql field failed", "path", out.Path.String(), "err", appErr.Err)
			}
		case errors.As(err, &gqlErr) && gqlErr.Err == nil:
			// Made by gqlgen or gqlparser; safe to show. Give every error a code.
			if _, ok := out.Extensions["code"]; !ok {
				setExtension(out, "code", gateway.CodeInternal) // e.g. a null in a non-null field: our bug
			}
		case ctx.Err() != nil && errors.Is(err, ctx.Err()):
			// The client went away (or the server is shutting down): not a
			// fault; nobody reads the answer.
			logger.InfoContext(ctx, "graphql field cancelled", "path", out.Path.String(), "err", err)
			out.Message = "internal error"
			out.Extensions = map[string]any{"code": gateway.CodeInternal}
		default:
			logger.ErrorContext(ctx, "graphql field failed", "path", out.Path.String(), "err", err)
			out.Message = "internal error"
			out.Extensions = map[string]any{"code": gateway.CodeInternal}
		}
		return out
	}
}

func setExtension(e *gqlerror.Error, key string, v any) {
	if e.Extensions == nil {
		e.Extensions = map[string]any{}
	}
	e.Extensions[key] = v
}

// recoverPanic logs a resolver's panic with its stack and answers INTERNAL
// at the field's path.
func recoverPanic(logger *slog.Logger) graphql.RecoverFunc {
	return func(ctx context.Context, v any) error {
		logger.ErrorContext(ctx, "graphql panic", "panic", v, "stack", string(debug.Stack()))
		return &gateway.Error{Code: gateway.CodeInternal, Message: "internal error"}
	}
}

// tooComplex is gqlgen's complexity limit answering TOO_COMPLEX instead of
// COMPLEXITY_LIMIT_EXCEEDED (NOTES.md). Field costs: resolvers.NewConfig.
type tooComplex struct{ *extension.ComplexityLimit }

func (t tooComplex) MutateOperationContext(ctx context.Context, rc *graphql.OperationContext) *gqlerror.Error {
	err := t.ComplexityLimit.MutateOperationContext(ctx, rc)
	if err != nil {
		errcode.Set(err, gateway.CodeTooComplex)
	}
	return err
}

// noIncrementalDelivery refuses @defer and @stream (GraphQL incremental
// delivery, which gqlparser's prelude declares): the transport answers one
// response per request, so deferred parts would silently come back null.
type noIncrementalDelivery struct{}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = noIncrementalDelivery{}

func (noIncrementalDelivery) ExtensionName() string                          { return "NoIncrementalDelivery" }
func (noIncrementalDelivery) Validate(schema graphql.ExecutableSchema) error { return nil }

func (noIncrementalDelivery) MutateOperationContext(ctx context.Context, rc *graphql.OperationContext) *gqlerror.Error {
	var found *ast.Directive
	seen := map[string]bool{} // each fragment walked once, however often spread
	var walk func(ast.SelectionSet)
	walk = func(set ast.SelectionSet) {
		for _, sel := range set {
			if found != nil {
				return
			}
			var dirs ast.DirectiveList
			switch sel := sel.(type) {
			case *ast.Field:
				dirs = sel.Directives
				walk(sel.SelectionSet)
			case *ast.InlineFragment:
				dirs = sel.Directives
				walk(sel.SelectionSet)
			case *ast.FragmentSpread:
				dirs = sel.Directives
				if f := rc.Doc.Fragments.ForName(sel.Name); f != nil && !seen[sel.Name] {
					seen[sel.Name] = true
					walk(f.SelectionSet)
				}
			}
			for _, d := range dirs {
				if d.Name == "defer" || d.Name == "stream" {
					found = d
				}
			}
		}
	}
	walk(rc.Operation.SelectionSet)
	if found == nil {
		return nil
	}
	err := gqlerror.ErrorPosf(found.Position, "@%s is not supported: send the deferred part as a query of its own", found.Name)
	errcode.Set(err, errcode.ValidationFailed)
	return err
}

// operationLimits refuses, with TOO_COMPLEX, an operation that selects
// more fields than its complexity limit (each field costs at least 1, so
// such an operation is over it anyway: refusing it here spares gqlgen's
// complexity walk, which expands every fragment spread again and so runs
// in time exponential in fragments that spread one another twice), that
// nests deeper than the depth limit (introspection fields not counted),
// or that has more aliases or root fields than their limits. It runs
// after validation, so fragment cycles are already refused.
type operationLimits struct{ limits graphQLLimits }

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = operationLimits{}

func (operationLimits) ExtensionName() string                          { return "OperationLimits" }
func (operationLimits) Validate(schema graphql.ExecutableSchema) error { return nil }

func (o operationLimits) MutateOperationContext(ctx context.Context, rc *graphql.OperationContext) *gqlerror.Error {
	return o.check(rc.Doc, rc.Operation)
}

func (o operationLimits) check(doc *ast.QueryDocument, op *ast.OperationDefinition) *gqlerror.Error {
	shape := measureSelections(doc, op.SelectionSet)
	var err *gqlerror.Error
	switch l := o.limits; {
	case shape.fields > l.complexity:
		err = gqlerror.Errorf("operation selects at least %d fields (fragments counted where they are spread), "+
			"so its complexity exceeds the limit of %d", shape.fields, l.complexity)
	case shape.depth > l.depth:
		err = gqlerror.Errorf("operation nests %d levels deep, which exceeds the limit of %d", shape.depth, l.depth)
	case shape.aliases > l.aliases:
		err = gqlerror.Errorf("operation uses %d aliases, which exceeds the limit of %d", shape.aliases, l.aliases)
	case shape.top > l.rootFields:
		err = gqlerror.Errorf("operation selects %d root fields, which exceeds the limit of %d: "+
			"send them in separate requests", shape.top, l.rootFields)
	default:
		return nil
	}
	errcode.Set(err, gateway.CodeTooComplex)
	return err
}

// documentLimits refuses, with TOO_COMPLEX and before validation, a
// document over the parser's token or nesting limits, or with more fields
// or fragment definitions than validation can afford (maxDocumentFields).
// It parses the query itself; a query already in the handler's cache of
// validated documents passed it before and is not parsed again, and one
// with a syntax error is answered GRAPHQL_PARSE_FAILED here, as the
// executor would.
type documentLimits struct {
	limits    graphQLLimits
	validated graphql.Cache[*ast.QueryDocument]
}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationParameterMutator
} = documentLimits{}

func (documentLimits) ExtensionName() string                          { return "DocumentLimits" }
func (documentLimits) Validate(schema graphql.ExecutableSchema) error { return nil }

func (d documentLimits) MutateOperationParameters(ctx context.Context, params *graphql.RawParams) *gqlerror.Error {
	if _, ok := d.validated.Get(ctx, params.Query); ok {
		return nil
	}
	_, err := d.parse(params.Query)
	return err
}

// parse parses query within the limits.
func (d documentLimits) parse(query string) (*ast.QueryDocument, *gqlerror.Error) {
	doc, err := parser.ParseQueryWithTokenLimit(&ast.Source{Input: query}, d.limits.tokens)
	if err != nil {
		var gqlErr *gqlerror.Error
		if !errors.As(err, &gqlErr) {
			gqlErr = gqlerror.Errorf("the query could not be parsed")
		}
		// gqlparser gives its limits no error type of their own; these are
		// its messages (parser/parser.go), pinned by TestLimit_Boundaries
		// ("parser tokens") and TestLimit_ParserNesting.
		switch msg := gqlErr.Message; {
		case strings.HasPrefix(msg, "exceeded token limit"):
			gqlErr = gqlerror.Errorf("the query exceeds the limit of %d tokens", d.limits.tokens)
			errcode.Set(gqlErr, gateway.CodeTooComplex)
		case strings.HasPrefix(msg, "exceeded maximum nesting depth"):
			errcode.Set(gqlErr, gateway.CodeTooComplex)
		default:
			errcode.Set(gqlErr, errcode.ParseFailed)
		}
		return nil, gqlErr
	}
	fields := 0
	var count func(ast.SelectionSet)
	count = func(set ast.SelectionSet) { // each selection set once: no spread is followed
		for _, sel := range set {
			switch sel := sel.(type) {
			case *ast.Field:
				fields++
				count(sel.SelectionSet)
			case *ast.InlineFragment:
				count(sel.SelectionSet)
			}
		}
	}
	for _, op := range doc.Operations {
		count(op.SelectionSet)
	}
	for _, f := range doc.Fragments {
		count(f.SelectionSet)
	}
	var tooMany *gqlerror.Error
	switch {
	case fields > d.limits.documentFields:
		tooMany = gqlerror.Errorf("the document selects %d fields, which exceeds the limit of %d", fields, d.limits.documentFields)
	case len(doc.Fragments) > d.limits.fragments:
		tooMany = gqlerror.Errorf("the document defines %d fragments, which exceeds the limit of %d", len(doc.Fragments), d.limits.fragments)
	default:
		return doc, nil
	}
	errcode.Set(tooMany, gateway.CodeTooComplex)
	return nil, tooMany
}

// selectionShape is what the limits measure of a selection set, with every
// fragment spread expanded where it is spread (a fragment spread twice
// counts twice). Counts saturate at shapeCap.
type selectionShape struct {
	fields  int // fields, at every level ("__schema" and below not counted, as by gqlgen's complexity)
	aliases int // fields whose alias differs from their name
	top     int // fields at the set's own level (root fields, for an operation)
	depth   int // levels of fields below and including the set's ("__" fields not counted)
}

const shapeCap = 1 << 40

// measureSelections measures set in doc. Each fragment is measured once
// and its measure reused wherever it is spread, so the time is linear in
// the document even when spreads multiply (F0 spreads F1 twice, F1 spreads
// F2 twice, …). A fragment that spreads itself (which validation refuses)
// counts as empty.
func measureSelections(doc *ast.QueryDocument, set ast.SelectionSet) selectionShape {
	m := shapeMeter{doc: doc, fragments: map[string]*selectionShape{}}
	return m.set(set)
}

type shapeMeter struct {
	doc       *ast.QueryDocument
	fragments map[string]*selectionShape // nil value: being measured
}

func (m *shapeMeter) set(set ast.SelectionSet) selectionShape {
	var s selectionShape
	add := func(c selectionShape) {
		s.fields = min(s.fields+c.fields, shapeCap)
		s.aliases = min(s.aliases+c.aliases, shapeCap)
		s.top = min(s.top+c.top, shapeCap)
		s.depth = max(s.depth, c.depth)
	}
	for _, sel := range set {
		switch sel := sel.(type) {
		case *ast.Field:
			c := selectionShape{top: 1}
			if sel.Alias != "" && sel.Alias != sel.Name {
				c.aliases++
			}
			if sel.Name == "__schema" {
				add(c)
				continue
			}
			sub := m.set(sel.SelectionSet)
			c.fields, c.aliases, c.depth = sub.fields+1, c.aliases+sub.aliases, sub.depth+1
			if strings.HasPrefix(sel.Name, "__") {
				c.depth = 0
			}
			add(c)
		case *ast.InlineFragment:
			add(m.set(sel.SelectionSet))
		case *ast.FragmentSpread:
			known, ok := m.fragments[sel.Name]
			switch {
			case known != nil:
				add(*known)
			case ok: // a cycle
			default:
				m.fragments[sel.Name] = nil
				var c selectionShape
				if f := m.doc.Fragments.ForName(sel.Name); f != nil {
					c = m.set(f.SelectionSet)
				}
				m.fragments[sel.Name] = &c
				add(c)
			}
		}
	}
	return s
}

// selectionDepth is how deep the fields of set nest (introspection fields
// not counted).
func selectionDepth(doc *ast.QueryDocument, set ast.SelectionSet) int {
	return measureSelections(doc, set).depth
}

// auditReads writes the audit rows of the member data a request read (one
// per member, DESIGN.md §5) after execution and before the response is
// written. If they cannot be written, the response is replaced by an
// INTERNAL error: member data is never sent unaudited.
type auditReads struct {
	db     *store.DB
	logger *slog.Logger
}

var _ interface {
	graphql.HandlerExtension
	graphql.ResponseInterceptor
} = auditReads{}

func (auditReads) ExtensionName() string                          { return "AuditReads" }
func (auditReads) Validate(schema graphql.ExecutableSchema) error { return nil }

func (a auditReads) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	ctx, reads := store.WithAuditLog(ctx)
	resp := next(ctx)
	if resp == nil || reads.Len() == 0 {
		return resp
	}
	p, _ := auth.FromContext(ctx)
	ac := store.AuditContext{RequestID: RequestID(ctx), Operation: "graphql", Outcome: "SUCCESS"}
	if rc := graphql.GetOperationContext(ctx); rc != nil && rc.Operation != nil {
		ac.Operation = strings.TrimSpace("graphql:" + string(rc.Operation.Operation) + " " + rc.Operation.Name)
	}
	if len(resp.Errors) > 0 {
		ac.Outcome = "PARTIAL"
	}
	if err := a.db.WriteAudit(ctx, p, ac, reads); err != nil {
		a.logger.ErrorContext(ctx, "write audit events; response withheld", "err", err)
		msg := "internal error"
		if store.IsUnavailable(err) {
			// The database went away between the read and its audit: the
			// client should retry (HTTP 503, httpTransport).
			msg = unavailableMessage
			if u, ok := ctx.Value(unavailableKey{}).(*bool); ok {
				*u = true
			}
		}
		return &graphql.Response{Errors: gqlerror.List{{
			Message:    msg,
			Extensions: map[string]any{"code": gateway.CodeInternal},
		}}}
	}
	return resp
}

// unavailableKey marks, in a request's context, where auditReads records
// that the database was unavailable (a *bool), so that httpTransport
// answers 503 with Retry-After rather than 500.
type unavailableKey struct{}

// httpTransport is GraphQL over HTTP as the graphql-over-http spec has it:
// POST with an application/json body, GET with URL parameters for queries
// only. Responses are application/json unless the client's Accept header
// asks for application/graphql-response+json. Status codes:
//
//   - malformed request (JSON, parameters, missing query): 400
//   - a batch (a JSON array of requests): 400; batching would multiply
//     every per-request limit by the batch's length
//   - body over 1 MiB: 413; POST body not application/json: 415
//   - GET of a mutation (also one named by a persisted query's hash): 405;
//     Accept without a type we serve: 406
//   - request errors (parse, validation, limits, persisted queries, the
//     allow-list): 200 under
//     application/json, 400 under application/graphql-response+json,
//     and no "data" entry either way
//   - executed (data present, even null): 200
//   - the audit could not be written (no data): 500
//
// Error messages never echo the request body.
type httpTransport struct{}

var _ graphql.Transport = httpTransport{}

func (httpTransport) Supports(r *http.Request) bool {
	return (r.Method == http.MethodPost || r.Method == http.MethodGet) && r.Header.Get("Upgrade") == ""
}

// rawRequest is a GraphQL-over-HTTP request body.
type rawRequest struct {
	Query         *string        `json:"query"`
	OperationName string         `json:"operationName"`
	Variables     map[string]any `json:"variables"`
	Extensions    map[string]any `json:"extensions"`
}

func (t httpTransport) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	h := w.Header()
	h.Set("Cache-Control", "no-store") // member data
	h.Add("Vary", "Accept")
	media, ok := responseMediaType(r.Header.Values("Accept"))
	if !ok {
		writeRequestError(w, mediaJSON, http.StatusNotAcceptable,
			"this endpoint answers application/json or application/graphql-response+json")
		return
	}
	var params *graphql.RawParams
	var status int
	var msg string
	if r.Method == http.MethodGet {
		params, status, msg = getParams(r)
	} else {
		params, status, msg = postParams(w, r)
	}
	if status != 0 {
		writeRequestError(w, media, status, msg)
		return
	}
	ctx := r.Context()
	rc, errs := exec.CreateOperationContext(ctx, params)
	if errs != nil {
		status := http.StatusOK
		if media == mediaGraphQLResponse {
			status = http.StatusBadRequest
		}
		writeResponse(w, media, status, exec.DispatchError(graphql.WithOperationContext(ctx, rc), errs))
		return
	}
	if r.Method == http.MethodGet && rc.Operation.Operation != ast.Query {
		// Only known now when the query text came from a persisted query.
		writeRequestError(w, media, http.StatusMethodNotAllowed, errGetMutation)
		return
	}
	unavailable := new(bool)
	ctx = context.WithValue(ctx, unavailableKey{}, unavailable)
	responses, ctx := exec.DispatchOperation(ctx, rc)
	resp := responses(ctx)
	if resp == nil {
		resp = &graphql.Response{Errors: gqlerror.List{{Message: "internal error",
			Extensions: map[string]any{"code": gateway.CodeInternal}}}}
	}
	status = http.StatusOK
	switch {
	case resp.Data != nil:
	case *unavailable:
		// The audit could not be written because the database is down.
		status = http.StatusServiceUnavailable
		w.Header().Set("Retry-After", unavailableRetryAfter)
	default:
		// Failed before any data: the audit could not be written, say.
		status = http.StatusInternalServerError
	}
	writeResponse(w, media, status, resp)
}

// errGetMutation answers a mutation sent with GET.
const errGetMutation = "only queries may be sent with GET; use POST"

// postParams reads a POST body: application/json, at most 1 MiB, a JSON
// object with a string query, or with a persisted query's hash in
// extensions.persistedQuery instead (persisted.go).
func postParams(w http.ResponseWriter, r *http.Request) (*graphql.RawParams, int, string) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != mediaJSON {
		return nil, http.StatusUnsupportedMediaType, "send the request as Content-Type: application/json"
	}
	start := graphql.Now()
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return nil, http.StatusRequestEntityTooLarge, "the request body exceeds 1 MiB"
	case err != nil:
		return nil, http.StatusBadRequest, "the request body could not be read"
	}
	if t := bytes.TrimLeft(body, " \t\r\n"); len(t) > 0 && t[0] == '[' {
		// Batching is no part of the GraphQL-over-HTTP spec (a request is
		// one JSON object), and gqlgen has no batching transport: say so,
		// rather than that the body is malformed.
		return nil, http.StatusBadRequest, "batched requests are not supported: send one operation per request"
	}
	var req rawRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&req); err != nil || dec.More() {
		return nil, http.StatusBadRequest, "the request body is not a JSON object of a GraphQL request"
	}
	var query string
	if req.Query != nil {
		query = *req.Query
	}
	if strings.TrimSpace(query) == "" && !hasPersistedQuery(req.Extensions) {
		return nil, http.StatusBadRequest, "the request has no query"
	}
	return &graphql.RawParams{
		Query:         query,
		OperationName: req.OperationName,
		Variables:     req.Variables,
		Extensions:    req.Extensions,
		Headers:       r.Header,
		ReadTime:      graphql.TraceTiming{Start: start, End: graphql.Now()},
	}, 0, ""
}

// getParams reads the URL parameters of a GET; only queries may be sent
// this way (a mutation over GET could be triggered by a link). A persisted
// query is asked for by its hash alone, in the extensions parameter (the
// main use of GET: the URL stays short).
func getParams(r *http.Request) (*graphql.RawParams, int, string) {
	start := graphql.Now()
	q := r.URL.Query()
	params := &graphql.RawParams{Query: q.Get("query"), OperationName: q.Get("operationName"), Headers: r.Header}
	for name, dst := range map[string]*map[string]any{"variables": &params.Variables, "extensions": &params.Extensions} {
		if v := q.Get(name); v != "" {
			dec := json.NewDecoder(strings.NewReader(v))
			dec.UseNumber()
			if err := dec.Decode(dst); err != nil || dec.More() {
				return nil, http.StatusBadRequest, "the " + name + " parameter is not a JSON object"
			}
		}
	}
	if strings.TrimSpace(params.Query) == "" {
		if !hasPersistedQuery(params.Extensions) {
			return nil, http.StatusBadRequest, "the request has no query"
		}
	} else if doc, err := parser.ParseQueryWithTokenLimit(&ast.Source{Input: params.Query}, maxParserTokens); err == nil {
		if op := doc.Operations.ForName(params.OperationName); op != nil && op.Operation != ast.Query {
			return nil, http.StatusMethodNotAllowed, errGetMutation
		}
	} // a parse error is reported by the executor, like for POST
	params.ReadTime = graphql.TraceTiming{Start: start, End: graphql.Now()}
	return params, 0, ""
}

// responseMediaType picks the response media type from the Accept header:
// application/graphql-response+json when the client prefers it (or likes it
// as much as application/json), else application/json (also for no Accept,
// */* and application/*). ok is false when Accept allows neither.
func responseMediaType(accept []string) (media string, ok bool) {
	if len(accept) == 0 {
		return mediaJSON, true
	}
	gr, js := -1.0, -1.0
	for _, header := range accept {
		for _, part := range strings.Split(header, ",") {
			mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err != nil {
				continue
			}
			q := 1.0
			if v, ok := params["q"]; ok {
				if f, err := strconv.ParseFloat(v, 64); err == nil {
					q = f
				}
			}
			switch mt {
			case mediaGraphQLResponse:
				gr = max(gr, q)
			case mediaJSON, "*/*", "application/*":
				js = max(js, q)
			}
		}
	}
	switch {
	case gr > 0 && gr >= js:
		return mediaGraphQLResponse, true
	case js > 0:
		return mediaJSON, true
	}
	return "", false
}

// writeRequestError answers a malformed request: no data, one error.
func writeRequestError(w http.ResponseWriter, media string, status int, msg string) {
	writeResponse(w, media, status, &graphql.Response{Errors: gqlerror.List{{
		Message:    msg,
		Extensions: map[string]any{"code": gateway.CodeInvalid},
	}}})
}

// writeResponse writes resp as {"errors":…,"data":…,"extensions":…} with
// the entries that are present. data is written as the executor produced
// it: no second pass through encoding/json, no copy.
func writeResponse(w http.ResponseWriter, media string, status int, resp *graphql.Response) {
	head := []byte{'{'}
	if len(resp.Errors) > 0 {
		b, err := json.Marshal(resp.Errors)
		if err != nil {
			b = []byte(`[{"message":"internal error","extensions":{"code":"INTERNAL"}}]`)
		}
		head = append(append(head, `"errors":`...), b...)
	}
	var tail []byte
	if len(resp.Extensions) > 0 {
		if b, err := json.Marshal(resp.Extensions); err == nil {
			tail = append([]byte(`,"extensions":`), b...)
		}
	}
	if resp.Data != nil {
		if len(head) > 1 {
			head = append(head, ',')
		}
		head = append(head, `"data":`...)
	} else if len(head) == 1 && len(tail) > 0 {
		tail = tail[1:] // no leading comma
	}
	tail = append(tail, '}')
	h := w.Header()
	h.Set("Content-Type", media+"; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(head)+len(resp.Data)+len(tail)))
	w.WriteHeader(status)
	w.Write(head)
	w.Write(resp.Data)
	w.Write(tail)
}
