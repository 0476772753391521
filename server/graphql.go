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
	"github.com/99designs/gqlgen/graphql/handler/lru"
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
// authentication, answered TOO_COMPLEX or 413).
const (
	maxBodyBytes    = 1 << 20 // 1 MiB
	maxParserTokens = 15_000
	maxDepth        = 10
	// maxComplexity admits members(first: 50) { claims(first: 20) { lines } }
	// and member(id) { claims(first: 50) { every field, lines { every field } } };
	// it refuses members(first: 100) { claims(first: 100) { … } }.
	maxComplexity = 25_000
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
func (s *Server) graphQLHandler() http.Handler {
	return s.newGraphQLHandler(graphQLLimits{depth: maxDepth, complexity: maxComplexity})
}

// graphQLLimits are the limits of one GraphQL handler (tests lower them).
type graphQLLimits struct{ depth, complexity int }

func (s *Server) newGraphQLHandler(limits graphQLLimits) http.Handler {
	srv := handler.New(graph.NewExecutableSchema(resolvers.NewConfig(&resolvers.Resolver{
		DB: s.DB, Exports: s.exportService(), DevMode: s.Config.DevMode})))
	srv.AddTransport(httpTransport{})
	srv.SetQueryCache(lru.New[*ast.QueryDocument](1000))
	srv.SetParserTokenLimit(maxParserTokens)
	srv.SetErrorPresenter(presentError(s.Logger))
	srv.SetRecoverFunc(recoverPanic(s.Logger))
	if s.Config.Introspection {
		srv.Use(extension.Introspection{})
	} else {
		srv.SetDisableSuggestion(true) // "did you mean …" would reveal the schema
	}
	srv.Use(noIncrementalDelivery{})
	srv.Use(depthLimit{max: limits.depth})
	srv.Use(tooComplex{extension.FixedComplexityLimit(limits.complexity)})
	srv.Use(auditReads{db: s.DB, logger: s.Logger})
	srv.Use(resolvers.RequestState{DB: s.DB})
	// Field middleware (AroundFields) would not see plain leaf fields: the
	// generated code resolves them directly (internal/gqlrewrite).
	srv.AroundRootFields(requireAuthentication)
	if s.Metrics != nil {
		srv.AroundResponses(s.Metrics.countOperations)
	}
	return srv
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
				if f := rc.Doc.Fragments.ForName(sel.Name); f != nil {
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

// depthLimit refuses operations whose fields nest deeper than max
// (introspection fields not counted), with TOO_COMPLEX. It runs after
// validation, so fragment cycles are already refused.
type depthLimit struct{ max int }

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = depthLimit{}

func (depthLimit) ExtensionName() string                          { return "DepthLimit" }
func (depthLimit) Validate(schema graphql.ExecutableSchema) error { return nil }

func (d depthLimit) MutateOperationContext(ctx context.Context, rc *graphql.OperationContext) *gqlerror.Error {
	if depth := selectionDepth(rc.Doc, rc.Operation.SelectionSet); depth > d.max {
		err := gqlerror.Errorf("operation nests %d levels deep, which exceeds the limit of %d", depth, d.max)
		errcode.Set(err, gateway.CodeTooComplex)
		return err
	}
	return nil
}

func selectionDepth(doc *ast.QueryDocument, set ast.SelectionSet) int {
	depth := 0
	for _, sel := range set {
		switch sel := sel.(type) {
		case *ast.Field:
			if strings.HasPrefix(sel.Name, "__") {
				continue
			}
			depth = max(depth, 1+selectionDepth(doc, sel.SelectionSet))
		case *ast.InlineFragment:
			depth = max(depth, selectionDepth(doc, sel.SelectionSet))
		case *ast.FragmentSpread:
			if f := doc.Fragments.ForName(sel.Name); f != nil {
				depth = max(depth, selectionDepth(doc, f.SelectionSet))
			}
		}
	}
	return depth
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
		return &graphql.Response{Errors: gqlerror.List{{
			Message:    "internal error",
			Extensions: map[string]any{"code": gateway.CodeInternal},
		}}}
	}
	return resp
}

// httpTransport is GraphQL over HTTP as the graphql-over-http spec has it:
// POST with an application/json body, GET with URL parameters for queries
// only. Responses are application/json unless the client's Accept header
// asks for application/graphql-response+json. Status codes:
//
//   - malformed request (JSON, parameters, missing query): 400
//   - body over 1 MiB: 413; POST body not application/json: 415
//   - GET of a mutation: 405; Accept without a type we serve: 406
//   - request errors (parse, validation, limits): 200 under
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
	responses, ctx := exec.DispatchOperation(ctx, rc)
	resp := responses(ctx)
	if resp == nil {
		resp = &graphql.Response{Errors: gqlerror.List{{Message: "internal error",
			Extensions: map[string]any{"code": gateway.CodeInternal}}}}
	}
	status = http.StatusOK
	if resp.Data == nil {
		// Failed before any data: the audit could not be written, say.
		status = http.StatusInternalServerError
	}
	writeResponse(w, media, status, resp)
}

// postParams reads a POST body: application/json, at most 1 MiB, a JSON
// object with a string query.
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
	var req rawRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&req); err != nil || dec.More() {
		return nil, http.StatusBadRequest, "the request body is not a JSON object of a GraphQL request"
	}
	if req.Query == nil || strings.TrimSpace(*req.Query) == "" {
		return nil, http.StatusBadRequest, "the request has no query"
	}
	return &graphql.RawParams{
		Query:         *req.Query,
		OperationName: req.OperationName,
		Variables:     req.Variables,
		Extensions:    req.Extensions,
		Headers:       r.Header,
		ReadTime:      graphql.TraceTiming{Start: start, End: graphql.Now()},
	}, 0, ""
}

// getParams reads the URL parameters of a GET; only queries may be sent
// this way (a mutation over GET could be triggered by a link).
func getParams(r *http.Request) (*graphql.RawParams, int, string) {
	start := graphql.Now()
	q := r.URL.Query()
	params := &graphql.RawParams{Query: q.Get("query"), OperationName: q.Get("operationName"), Headers: r.Header}
	if strings.TrimSpace(params.Query) == "" {
		return nil, http.StatusBadRequest, "the request has no query"
	}
	for name, dst := range map[string]*map[string]any{"variables": &params.Variables, "extensions": &params.Extensions} {
		if v := q.Get(name); v != "" {
			dec := json.NewDecoder(strings.NewReader(v))
			dec.UseNumber()
			if err := dec.Decode(dst); err != nil || dec.More() {
				return nil, http.StatusBadRequest, "the " + name + " parameter is not a JSON object"
			}
		}
	}
	if doc, err := parser.ParseQuery(&ast.Source{Input: params.Query}); err == nil {
		if op := doc.Operations.ForName(params.OperationName); op != nil && op.Operation != ast.Query {
			return nil, http.StatusMethodNotAllowed, "only queries may be sent with GET; use POST"
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
