package server

// Tracing (OpenTelemetry), on only when OTEL_EXPORTER_OTLP_ENDPOINT is set.
//
// Spans: one HTTP server span per request (otelhttp), named after the route
// pattern the mux matched ("POST /graphql", "GET /fhir/Group/{id}/$export");
// one span per GraphQL operation, its child ("query MemberClaims"); one span
// per export job run and per export batch (export.Runner).
//
// Never recorded: the raw path (url.path; ids), the query string
// (url.query; _typeFilter and patient filters), any header but the ones
// otelhttp reads for its standard attributes (never Authorization), the
// GraphQL document, variables and argument values, error messages, member
// ids and names. Attributes are surrogate keys, route templates, codes and
// counts. The request log line carries trace_id and span_id (log.go), so
// the raw path is one join away for whoever may read the logs.
//
// Incoming trace context: callers are on the internet, so a W3C
// traceparent is not trusted as a parent. Every request starts a new root
// trace, so a caller cannot choose our trace ids or force sampling; a valid
// incoming traceparent is kept as a span link, so a caller's trace can still
// be found. Baggage is ignored. Nothing is propagated outwards.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"runtime/debug"
	"strings"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"example.com/gateway/gateway"
)

// tracerName is the instrumentation scope of the gateway's own spans.
const tracerName = "example.com/gateway/server"

// serviceName is service.name unless OTEL_SERVICE_NAME or
// OTEL_RESOURCE_ATTRIBUTES say otherwise.
const serviceName = "provider-access-gateway"

// tracingFlushTimeout bounds the flush of pending spans at shutdown, after
// the HTTP server has drained (SHUTDOWN_TIMEOUT).
const tracingFlushTimeout = 5 * time.Second

// newTracerProvider returns the tracer provider exporting to
// cfg.OTLPEndpoint over OTLP/HTTP (protobuf), or nil when the endpoint is
// empty: then no exporter exists and nothing is traced. The exporter also
// reads the standard OTEL_EXPORTER_OTLP_* variables (headers, timeout,
// compression, certificates) and the SDK OTEL_TRACES_SAMPLER and OTEL_BSP_*
// from the process environment; OTEL_SERVICE_NAME and
// OTEL_RESOURCE_ATTRIBUTES name the resource. Nothing is dialled here.
func newTracerProvider(ctx context.Context, cfg Config, logger *slog.Logger) (*sdktrace.TracerProvider, error) {
	if cfg.OTLPEndpoint == "" {
		return nil, nil
	}
	endpoint, err := tracesURL(cfg.OTLPEndpoint)
	if err != nil {
		return nil, err
	}
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(endpoint))
	if err != nil {
		return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_ENDPOINT: %w", err)
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", serviceName),
			attribute.String("service.version", buildVersion())),
		resource.WithTelemetrySDK(),
		resource.WithHost(),
		resource.WithFromEnv(), // last: OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win
	)
	if err != nil {
		// A malformed OTEL_RESOURCE_ATTRIBUTES: trace with what was understood.
		logger.Warn("tracing resource incomplete", "err", err)
		if res == nil {
			res = resource.Empty()
		}
	}
	return sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res)), nil
}

// tracesURL is the OTLP/HTTP traces URL of an OTEL_EXPORTER_OTLP_ENDPOINT
// base URL: the base with "/v1/traces" appended (OTLP exporter spec), e.g.
// http://collector:4318 → http://collector:4318/v1/traces.
func tracesURL(base string) (string, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// The value is not echoed: it may carry credentials.
		return "", errors.New("OTEL_EXPORTER_OTLP_ENDPOINT: want the collector's OTLP/HTTP base URL, such as http://collector:4318")
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/v1/traces"
	u.RawPath = ""
	return u.String(), nil
}

func buildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

// installGlobalTracing makes s's tracer provider the process's global one
// (the export workers and any instrumented library use it) and sends
// OpenTelemetry's own errors (an unreachable collector) to the log. Only
// Run calls it: tests run many gateways in one process.
func (s *Server) installGlobalTracing() {
	if s.Tracing == nil {
		return
	}
	otel.SetTracerProvider(s.Tracing)
	logger := s.Logger
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		logger.Warn("opentelemetry", "err", err)
	}))
}

// shutdownTracing flushes the pending spans and stops the exporter, within
// tracingFlushTimeout.
func (s *Server) shutdownTracing(ctx context.Context) {
	if s.Tracing == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), tracingFlushTimeout)
	defer cancel()
	if err := s.Tracing.Shutdown(ctx); err != nil {
		s.Logger.Warn("tracing shutdown: spans may be lost", "err", err)
	}
}

// untracedPaths are the probes and the scrape: no span, they would drown
// the traces.
var untracedPaths = map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true}

type tracedRequestKey struct{}

// traceRequests starts each request's HTTP server span (otelhttp) as a new
// root trace, linked to a valid incoming traceparent. otelhttp sees a copy
// of the request without its path and query, so neither can reach an
// attribute; the handlers get the request itself. The span is named after
// the route by nameSpans, next to the mux. Without tracing it returns next.
func (s *Server) traceRequests(next http.Handler) http.Handler {
	if s.Tracing == nil {
		return next
	}
	traced := otelhttp.NewMiddleware("",
		otelhttp.WithTracerProvider(s.Tracing),
		otelhttp.WithMeterProvider(metricnoop.NewMeterProvider()), // HTTP metrics are Prometheus's (/metrics)
		otelhttp.WithPropagators(propagation.TraceContext{}),
		otelhttp.WithPublicEndpointFn(func(*http.Request) bool { return true }),
	)(http.HandlerFunc(func(w http.ResponseWriter, shown *http.Request) {
		ctx := shown.Context()
		r := ctx.Value(tracedRequestKey{}).(*http.Request).WithContext(ctx)
		r.Body = shown.Body // otelhttp's counting wrapper
		if id := RequestID(ctx); id != "" {
			trace.SpanFromContext(ctx).SetAttributes(attribute.String("gateway.request_id", id))
		}
		next.ServeHTTP(w, r)
	}))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if untracedPaths[r.URL.Path] {
			next.ServeHTTP(w, r)
			return
		}
		shown := r.WithContext(context.WithValue(r.Context(), tracedRequestKey{}, r))
		shown.URL = &url.URL{}
		shown.RequestURI = ""
		traced.ServeHTTP(w, shown)
	})
}

// nameSpans names the request's HTTP span "METHOD /route" after the pattern
// the mux matched (never the raw path) and sets http.route. It wraps the
// mux directly: the mux records the pattern on the request it is given.
// Unmatched requests keep the bare method. Without tracing it returns mux.
func (s *Server) nameSpans(mux http.Handler) http.Handler {
	if s.Tracing == nil {
		return mux
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mux.ServeHTTP(w, r)
		i := strings.IndexByte(r.Pattern, '/') // "[METHOD ][HOST]/path"
		if i < 0 {
			return
		}
		route := r.Pattern[i:]
		span := trace.SpanFromContext(r.Context())
		span.SetName(spanMethod(r.Method) + " " + route)
		span.SetAttributes(attribute.String("http.route", route))
	})
}

// spanMethod keeps span names to the standard methods (semantic conventions).
func spanMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "HTTP"
}

// traceGraphQL adds the GraphQL operation span to srv when tracing is on.
func (s *Server) traceGraphQL(srv *handler.Server) {
	if s.Tracing != nil {
		srv.Use(graphQLTracing{tracer: s.Tracing.Tracer(tracerName)})
	}
}

// graphQLTracing is one span per executed GraphQL operation, a child of the
// HTTP span, named "{type} {operationName}" (or "{type}" when anonymous)
// with graphql.operation.type and graphql.operation.name (semantic
// conventions). It covers parsing, validation, execution and, when used
// before auditReads, the audit write. Never recorded: the document
// (graphql.document holds argument literals), variables, error messages.
// Requests refused before execution (parse, validation, limits) have only
// their HTTP span.
type graphQLTracing struct{ tracer trace.Tracer }

var _ interface {
	graphql.HandlerExtension
	graphql.ResponseInterceptor
} = graphQLTracing{}

func (graphQLTracing) ExtensionName() string                          { return "Tracing" }
func (graphQLTracing) Validate(schema graphql.ExecutableSchema) error { return nil }

// maxOperationNameLen bounds graphql.operation.name, which the caller writes.
const maxOperationNameLen = 100

func (t graphQLTracing) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	if !graphql.HasOperationContext(ctx) {
		return next(ctx)
	}
	oc := graphql.GetOperationContext(ctx)
	if oc.Operation == nil {
		return next(ctx)
	}
	opType, opName := string(oc.Operation.Operation), oc.Operation.Name
	if len(opName) > maxOperationNameLen {
		opName = opName[:maxOperationNameLen]
	}
	name := opType
	attrs := make([]attribute.KeyValue, 1, 2)
	attrs[0] = attribute.String("graphql.operation.type", opType)
	if opName != "" {
		name += " " + opName
		attrs = append(attrs, attribute.String("graphql.operation.name", opName))
	}
	opts := []trace.SpanStartOption{trace.WithAttributes(attrs...)}
	if start := oc.Stats.OperationStart; !start.IsZero() {
		opts = append(opts, trace.WithTimestamp(start)) // from the start of reading the request
	}
	ctx, span := t.tracer.Start(ctx, name, opts...)
	defer span.End()
	resp := next(ctx)
	if resp != nil && len(resp.Errors) > 0 {
		// The first error's code (low cardinality, no PHI); the message never.
		code := gateway.CodeInternal
		if c, ok := resp.Errors[0].Extensions["code"].(string); ok {
			code = c
		}
		span.SetAttributes(attribute.String("error.type", code))
		if code == gateway.CodeInternal {
			span.SetStatus(codes.Error, code)
		}
	}
	return resp
}
