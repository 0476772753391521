package server_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"example.com/gateway/export"
	"example.com/gateway/sandbox"
	"example.com/gateway/server"
	"example.com/gateway/store"
	"example.com/gateway/store/storetest"
)

// otlpReceiver is an in-process OTLP/HTTP trace receiver (a collector's
// :4318): it accepts POST …/v1/traces with a protobuf
// ExportTraceServiceRequest, optionally gzipped, and keeps the spans.
type otlpReceiver struct {
	URL string

	mu       sync.Mutex
	spans    []*tracepb.Span
	paths    []string // request paths of the exports
	rejected []string // what it refused, and why
}

func newOTLPReceiver(t testing.TB) *otlpReceiver {
	rx := &otlpReceiver{}
	ts := httptest.NewServer(http.HandlerFunc(rx.serve))
	t.Cleanup(ts.Close)
	rx.URL = ts.URL
	return rx
}

func (rx *otlpReceiver) serve(w http.ResponseWriter, r *http.Request) {
	refuse := func(status int, why string) {
		rx.mu.Lock()
		rx.rejected = append(rx.rejected, fmt.Sprintf("%s %s: %s", r.Method, r.URL.Path, why))
		rx.mu.Unlock()
		http.Error(w, why, status)
	}
	if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/v1/traces") {
		refuse(http.StatusNotFound, "not an OTLP/HTTP traces export")
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-protobuf" {
		refuse(http.StatusUnsupportedMediaType, "content type "+ct)
		return
	}
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			refuse(http.StatusBadRequest, err.Error())
			return
		}
		body = zr
	}
	raw, err := io.ReadAll(body)
	if err != nil {
		refuse(http.StatusBadRequest, err.Error())
		return
	}
	var req coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(raw, &req); err != nil {
		refuse(http.StatusBadRequest, err.Error())
		return
	}
	rx.mu.Lock()
	rx.paths = append(rx.paths, r.URL.Path)
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			rx.spans = append(rx.spans, ss.Spans...)
		}
	}
	rx.mu.Unlock()
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.Write(out)
}

// received returns the spans so far, failing the test if any export was
// refused.
func (rx *otlpReceiver) received(t testing.TB) []*tracepb.Span {
	t.Helper()
	rx.mu.Lock()
	defer rx.mu.Unlock()
	for _, r := range rx.rejected {
		t.Errorf("the receiver refused an export: %s", r)
	}
	return append([]*tracepb.Span(nil), rx.spans...)
}

// attr returns a span attribute's value as a string ("" when absent).
func attr(s *tracepb.Span, key string) string {
	for _, kv := range s.Attributes {
		if kv.Key == key {
			return anyString(kv.Value)
		}
	}
	return ""
}

func hasAttr(s *tracepb.Span, key string) bool {
	for _, kv := range s.Attributes {
		if kv.Key == key {
			return true
		}
	}
	return false
}

func anyString(v *commonpb.AnyValue) string {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_IntValue:
		return fmt.Sprint(x.IntValue)
	case *commonpb.AnyValue_BoolValue:
		return fmt.Sprint(x.BoolValue)
	case *commonpb.AnyValue_DoubleValue:
		return fmt.Sprint(x.DoubleValue)
	case *commonpb.AnyValue_BytesValue:
		return string(x.BytesValue)
	case *commonpb.AnyValue_ArrayValue:
		var parts []string
		for _, e := range x.ArrayValue.GetValues() {
			parts = append(parts, anyString(e))
		}
		return "[" + strings.Join(parts, ",") + "]"
	case *commonpb.AnyValue_KvlistValue:
		var parts []string
		for _, kv := range x.KvlistValue.GetValues() {
			parts = append(parts, kv.Key+"="+anyString(kv.Value))
		}
		return "{" + strings.Join(parts, ",") + "}"
	}
	return ""
}

// spanText is everything a span says in words: its name, status message,
// and the keys and values of its attributes, events and links.
func spanText(s *tracepb.Span) string {
	var b strings.Builder
	kvs := func(list []*commonpb.KeyValue) {
		for _, kv := range list {
			fmt.Fprintf(&b, " %s=%s", kv.Key, anyString(kv.Value))
		}
	}
	b.WriteString(s.Name)
	b.WriteString(" " + s.GetStatus().GetMessage())
	kvs(s.Attributes)
	for _, e := range s.Events {
		b.WriteString(" " + e.Name)
		kvs(e.Attributes)
	}
	for _, l := range s.Links {
		kvs(l.Attributes)
	}
	return b.String()
}

// tracedGateway is a real gateway (server.New, NewHandler or Serve) on a
// real PostgreSQL database, whose log the test reads.
type tracedGateway struct {
	*testGateway
	logs *testLog
	stop func() // Serve only: cancels and waits for Serve to return
}

// startTracedGateway starts a gateway with env over HTTP: through
// NewHandler on an httptest server, or, with serve, through Serve itself
// (workers and shutdown included).
func startTracedGateway(t testing.TB, env map[string]string, serve bool) *tracedGateway {
	t.Helper()
	db := storetest.New(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{"EXPORT_WORKERS": "1"}
	for k, v := range env {
		vars[k] = v
	}
	cfg := testConfig(t, ln.Addr().String(), vars)
	publicURL := cfg.PublicURL
	logs := &testLog{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("gateway log:\n%s", logs.String())
		}
	})
	s, err := server.New(t.Context(), cfg, server.NewLogger(logs, slog.LevelDebug), db)
	if err != nil {
		t.Fatal(err)
	}
	g := &tracedGateway{testGateway: &testGateway{URL: publicURL, DB: db, Server: s}, logs: logs}
	if !serve {
		ts := httptest.NewUnstartedServer(s.NewHandler())
		ts.Listener.Close()
		ts.Listener = ln
		ts.Start()
		t.Cleanup(ts.Close)
		if s.Tracing != nil {
			t.Cleanup(func() { s.Tracing.Shutdown(context.Background()) })
		}
		return g
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	var once sync.Once
	g.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Serve: %v", err)
			}
		})
	}
	t.Cleanup(g.stop)
	return g
}

// call sends one request with a bearer token (when not empty), a request
// id and extra headers, and returns the status and body.
func (g *tracedGateway) call(t testing.TB, method, path, token, requestID, body string, headers ...string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, g.URL+path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("X-Request-Id", requestID)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// requestLine returns the "request" log line of the request with id.
func (g *tracedGateway) requestLine(t testing.TB, id string) map[string]any {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(g.logs.String()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) == nil && line["msg"] == "request" && line["request_id"] == id {
			return line
		}
	}
	t.Fatalf("no request log line with request_id %s", id)
	return nil
}

// serverSpan returns the HTTP server span of the request with id.
func serverSpan(t testing.TB, spans []*tracepb.Span, requestID string) *tracepb.Span {
	t.Helper()
	for _, s := range spans {
		if s.Kind == tracepb.Span_SPAN_KIND_SERVER && attr(s, "gateway.request_id") == requestID {
			return s
		}
	}
	t.Fatalf("no HTTP server span for request %s", requestID)
	return nil
}

func hexID(b []byte) string { return hex.EncodeToString(b) }

// TestTracingSpans runs a GraphQL request (carrying a caller's
// traceparent), a FHIR kick-off with _typeFilter and a patient filter, a
// FHIR read with a member id in the path, and the export job through a
// gateway traced into an in-process OTLP/HTTP receiver, flushes, and
// checks the spans (names, the GraphQL operation span under the HTTP span,
// new roots linked to the caller's context, the export job and batch
// spans), that the request log lines carry the HTTP span's trace and span
// ids, and that no span says a bearer token, client secret, member name,
// identifier or id, query variable or query string.
func TestTracingSpans(t *testing.T) {
	t.Parallel()
	rx := newOTLPReceiver(t)
	g := startTracedGateway(t, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": rx.URL}, false)
	tp := g.Server.Tracing
	if tp == nil {
		t.Fatal("OTEL_EXPORTER_OTLP_ENDPOINT is set but the server has no tracer provider")
	}
	gen, err := sandbox.New(sandbox.Options{Members: 30, Seed: 42, Today: sandboxToday})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.DB.ReplaceSandbox(t.Context(), gen); err != nil {
		t.Fatal(err)
	}
	var secrets []string // what no span may contain
	for m := range gen.Members() {
		secrets = append(secrets, m.Member.ID, m.Member.Identifier, m.Member.GivenName, m.Member.FamilyName)
	}
	c, secret := g.client(t, store.NewClient{OrganizationID: gen.Organizations()[0].ID})
	token := g.secretToken(t, c.ID, secret, "")
	secrets = append(secrets, token, secret, "Bearer", "_typeFilter", "pharmacy", "patient=")

	// GraphQL: find a member, then read it by id with a caller's traceparent.
	gql := func(requestID, query string, vars map[string]any, headers ...string) map[string]any {
		t.Helper()
		body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
		status, resp := g.call(t, http.MethodPost, "/graphql", token, requestID, string(body),
			append([]string{"Content-Type", "application/json"}, headers...)...)
		var out map[string]any
		if status != http.StatusOK || json.Unmarshal(resp, &out) != nil || out["errors"] != nil {
			t.Fatalf("GraphQL %d: %s", status, resp)
		}
		return out
	}
	page := gql("trace-list", `query TraceMembers { members(first: 1) { edges { node { id familyName } } } }`, nil)
	edges, _ := dig(page, "data", "members", "edges").([]any)
	if len(edges) == 0 {
		t.Fatalf("the client sees no member: %v", page)
	}
	memberID, _ := dig(edges[0], "node", "id").(string)
	callerTrace, callerSpan := "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
	read := gql("trace-graphql", `query TraceMember($id: ID!) { member(id: $id) { id givenName familyName } }`,
		map[string]any{"id": memberID},
		"Traceparent", "00-"+callerTrace+"-"+callerSpan+"-01")
	if dig(read, "data", "member", "familyName") == nil {
		t.Fatalf("member read: %v", read)
	}

	// FHIR: a kick-off with a query string that must not be recorded, and a
	// read of an unknown path with a member id in it.
	status, body := g.call(t, http.MethodGet, "/fhir/Group", token, "trace-groups", "")
	var bundle struct {
		Entry []struct {
			Resource struct{ ID string } `json:"resource"`
		} `json:"entry"`
	}
	json.Unmarshal(body, &bundle)
	if status != http.StatusOK || len(bundle.Entry) == 0 {
		t.Fatalf("groups: %d %s", status, body)
	}
	q := "_type=Patient,ExplanationOfBenefit&_typeFilter=" + url.QueryEscape("ExplanationOfBenefit?type=pharmacy,professional") +
		"&patient=Patient/" + memberID
	req, _ := http.NewRequest(http.MethodGet, g.URL+"/fhir/Group/"+bundle.Entry[0].Resource.ID+"/$export?"+q, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/fhir+json")
	req.Header.Set("Prefer", "respond-async")
	req.Header.Set("X-Request-Id", "trace-fhir")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	kickoff, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	statusURL := resp.Header.Get("Content-Location")
	if resp.StatusCode != http.StatusAccepted || statusURL == "" {
		t.Fatalf("kick-off: %s %s", resp.Status, kickoff)
	}
	jobID := statusURL[strings.LastIndexByte(statusURL, '/')+1:]
	if status, _ := g.call(t, http.MethodGet, "/fhir/Patient/"+memberID, token, "trace-unrouted", ""); status != http.StatusNotFound {
		t.Fatalf("GET /fhir/Patient/{id}: %d, want 404", status)
	}

	// The export job, run by a worker traced into the same provider.
	runner := &export.Runner{Service: &export.Service{DB: g.DB, PublicURL: g.URL, Dir: g.Server.Config.ExportDir},
		Logger: g.Server.Logger, Tracing: tp}
	if ran, err := runner.RunOne(t.Context(), "trace-test"); !ran || err != nil {
		t.Fatalf("RunOne: ran %v, err %v", ran, err)
	}

	if err := tp.ForceFlush(t.Context()); err != nil {
		t.Fatalf("ForceFlush: %v", err)
	}
	spans := rx.received(t)

	// The GraphQL request: a new root (the caller's traceparent is a link,
	// not a parent), named by its route; the operation span is its child.
	httpSpan := serverSpan(t, spans, "trace-graphql")
	if httpSpan.Name != "POST /graphql" || attr(httpSpan, "http.route") != "/graphql" {
		t.Errorf("GraphQL HTTP span: name %q, http.route %q; want POST /graphql, /graphql", httpSpan.Name, attr(httpSpan, "http.route"))
	}
	if len(httpSpan.ParentSpanId) != 0 || hexID(httpSpan.TraceId) == callerTrace {
		t.Errorf("the caller's traceparent became the parent (trace %s, parent %x); want a new root", hexID(httpSpan.TraceId), httpSpan.ParentSpanId)
	}
	linked := false
	for _, l := range httpSpan.Links {
		linked = linked || hexID(l.TraceId) == callerTrace && hexID(l.SpanId) == callerSpan
	}
	if !linked {
		t.Errorf("the HTTP span has no link to the caller's span context: %v", httpSpan.Links)
	}
	var opSpan *tracepb.Span
	for _, s := range spans {
		if s.Name == "query TraceMember" {
			opSpan = s
		}
	}
	switch {
	case opSpan == nil:
		t.Errorf("no GraphQL operation span \"query TraceMember\" among %d spans", len(spans))
	case !bytes.Equal(opSpan.TraceId, httpSpan.TraceId) || !bytes.Equal(opSpan.ParentSpanId, httpSpan.SpanId):
		t.Errorf("the GraphQL operation span is not a child of the HTTP span: trace %x parent %x, HTTP span trace %x id %x",
			opSpan.TraceId, opSpan.ParentSpanId, httpSpan.TraceId, httpSpan.SpanId)
	case attr(opSpan, "graphql.operation.type") != "query" || attr(opSpan, "graphql.operation.name") != "TraceMember":
		t.Errorf("GraphQL operation span attributes: %v", opSpan.Attributes)
	case opSpan.StartTimeUnixNano < httpSpan.StartTimeUnixNano || opSpan.EndTimeUnixNano > httpSpan.EndTimeUnixNano:
		t.Errorf("the GraphQL operation span is not within the HTTP span")
	}

	// The request log lines carry their HTTP span's ids.
	for _, id := range []string{"trace-graphql", "trace-fhir", "trace-unrouted"} {
		s, line := serverSpan(t, spans, id), g.requestLine(t, id)
		if line["trace_id"] != hexID(s.TraceId) || line["span_id"] != hexID(s.SpanId) {
			t.Errorf("request %s: log line trace_id %v span_id %v, span %s %s", id, line["trace_id"], line["span_id"], hexID(s.TraceId), hexID(s.SpanId))
		}
	}

	// FHIR: named by route template; no path, no query string recorded.
	for id, want := range map[string]string{"trace-fhir": "GET /fhir/Group/{id}/$export", "trace-unrouted": "GET /fhir/"} {
		s := serverSpan(t, spans, id)
		if s.Name != want {
			t.Errorf("request %s: span %q, want %q", id, s.Name, want)
		}
		if s := attr(s, "http.response.status_code"); s == "" {
			t.Errorf("request %s: no http.response.status_code", id)
		}
	}
	for _, s := range spans {
		for _, key := range []string{"url.path", "url.query", "url.full", "http.target", "http.url", "graphql.document"} {
			if hasAttr(s, key) {
				t.Errorf("span %q records %s = %q", s.Name, key, attr(s, key))
			}
		}
	}

	// The export job and its batch.
	var jobSpan, batchSpan *tracepb.Span
	for _, s := range spans {
		switch {
		case s.Name == "export job" && attr(s, "gateway.export.job.id") == jobID:
			jobSpan = s
		case s.Name == "export batch":
			batchSpan = s
		}
	}
	switch {
	case jobSpan == nil || batchSpan == nil:
		t.Errorf("export spans: job %v, batch %v", jobSpan != nil, batchSpan != nil)
	case attr(jobSpan, "gateway.export.outcome") != "completed" || attr(jobSpan, "gateway.export.members.total") != "1" ||
		attr(jobSpan, "gateway.export.members") != "1" || attr(jobSpan, "gateway.export.resources") == "0" || attr(jobSpan, "gateway.export.resources") == "":
		t.Errorf("export job span attributes: %v", jobSpan.Attributes)
	case !bytes.Equal(batchSpan.ParentSpanId, jobSpan.SpanId) || attr(batchSpan, "gateway.export.batch.members") != "1":
		t.Errorf("export batch span: parent %x (job %x), attributes %v", batchSpan.ParentSpanId, jobSpan.SpanId, batchSpan.Attributes)
	default:
		// The job's own log lines carry its trace id.
		found := false
		for _, l := range strings.Split(g.logs.String(), "\n") {
			if strings.Contains(l, `"msg":"export job completed"`) {
				found = true
				if !strings.Contains(l, `"trace_id":"`+hexID(jobSpan.TraceId)+`"`) {
					t.Errorf("the export job's log line lacks its trace id %s: %s", hexID(jobSpan.TraceId), l)
				}
			}
		}
		if !found {
			t.Error("no \"export job completed\" log line")
		}
	}

	// Nothing secret or personal, in any span.
	for _, s := range spans {
		text := spanText(s)
		for _, x := range secrets {
			if x != "" && strings.Contains(text, x) {
				t.Errorf("span %q contains %q: %s", s.Name, x, text)
			}
		}
	}
}

// TestTracingOffByDefault checks that without OTEL_EXPORTER_OTLP_ENDPOINT
// there is no tracer provider (so no exporter), the global provider stays
// OpenTelemetry's no-op, and a request carrying a traceparent logs no
// trace id.
func TestTracingOffByDefault(t *testing.T) {
	t.Parallel()
	g := startTracedGateway(t, nil, false)
	if g.Server.Tracing != nil {
		t.Fatal("tracing is off but the server has a tracer provider")
	}
	if _, ok := otel.GetTracerProvider().(*sdktrace.TracerProvider); ok {
		t.Error("the global tracer provider is the SDK's")
	}
	_, span := otel.Tracer("test").Start(t.Context(), "probe")
	if span.IsRecording() || span.SpanContext().IsValid() {
		t.Error("the global tracer records spans")
	}
	span.End()
	status, _ := g.call(t, http.MethodGet, "/fhir/metadata", "", "untraced", "",
		"Traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	if status != http.StatusOK {
		t.Fatalf("metadata: %d", status)
	}
	if line := g.requestLine(t, "untraced"); line["trace_id"] != nil || line["span_id"] != nil {
		t.Errorf("tracing is off, but the request log line has trace_id %v span_id %v", line["trace_id"], line["span_id"])
	}
}

// TestTracingFlushOnShutdown serves through Serve, with an endpoint that has
// a path, makes one request and stops the gateway: the span must reach the
// receiver at <endpoint>/v1/traces by the time Serve returns, with no
// ForceFlush.
func TestTracingFlushOnShutdown(t *testing.T) {
	t.Parallel()
	rx := newOTLPReceiver(t)
	g := startTracedGateway(t, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": rx.URL + "/otlp/"}, true)
	if status, _ := g.call(t, http.MethodGet, "/fhir/metadata", "", "before-shutdown", ""); status != http.StatusOK {
		t.Fatalf("metadata: %d", status)
	}
	if status, _ := g.call(t, http.MethodGet, "/healthz", "", "probe", ""); status != http.StatusOK {
		t.Fatalf("healthz: %d", status)
	}
	g.stop()
	spans := rx.received(t)
	if s := serverSpan(t, spans, "before-shutdown"); s.Name != "GET /fhir/metadata" {
		t.Errorf("span %q, want GET /fhir/metadata", s.Name)
	}
	for _, s := range spans {
		if attr(s, "gateway.request_id") == "probe" {
			t.Errorf("the health probe has a span: %q", s.Name)
		}
	}
	rx.mu.Lock()
	defer rx.mu.Unlock()
	for _, p := range rx.paths {
		if p != "/otlp/v1/traces" {
			t.Errorf("exported to %s, want /otlp/v1/traces", p)
		}
	}
}

// TestTracingBadEndpoint: an endpoint that is not an http(s) URL stops the
// gateway at start, with the variable's name and without its value.
func TestTracingBadEndpoint(t *testing.T) {
	t.Parallel()
	kek := make([]byte, 32)
	rand.Read(kek)
	vars := map[string]string{"DATABASE_URL": "postgres://unused.invalid/db", "DEV_MODE": "false",
		"KEY_ENCRYPTION_KEY": base64.StdEncoding.EncodeToString(kek), "OTEL_EXPORTER_OTLP_ENDPOINT": "collector.internal:4318"}
	// Reported with the other configuration errors, without the value
	// (it may carry credentials).
	cfg, err := server.LoadConfig(func(k string) string { return vars[k] })
	if err == nil || !strings.Contains(err.Error(), "OTEL_EXPORTER_OTLP_ENDPOINT") || strings.Contains(err.Error(), "collector.internal") {
		t.Errorf("LoadConfig with a bad endpoint: %v", err)
	}
	// New refuses it too, for configurations built by hand.
	_, err = server.New(t.Context(), cfg, server.NewLogger(io.Discard, slog.LevelInfo), storetest.New(t))
	if err == nil || !strings.Contains(err.Error(), "OTEL_EXPORTER_OTLP_ENDPOINT") || strings.Contains(err.Error(), "collector.internal") {
		t.Errorf("New with a bad endpoint: %v", err)
	}
}

// BenchmarkTracing measures requests through the whole handler (token
// check and audit write included) with tracing off and on, exporting to an
// in-process receiver and flushed inside the timing: "graphql" is one
// member read with its claims, "metadata" is an anonymous GET
// /fhir/metadata (no token, no database: the fixed cost per request). cpu-µs/op is this process's CPU
// per request (receiver included when on), steadier than ns/op on a busy
// machine.
func BenchmarkTracing(b *testing.B) {
	for _, on := range []bool{false, true} {
		b.Run(map[bool]string{false: "off", true: "on"}[on], func(b *testing.B) {
			env := map[string]string{}
			var rx *otlpReceiver
			if on {
				rx = newOTLPReceiver(b)
				env["OTEL_EXPORTER_OTLP_ENDPOINT"] = rx.URL
			}
			g := startTracedGateway(b, env, false)
			gen, err := sandbox.New(sandbox.Options{Members: 30, Seed: 42, Today: sandboxToday})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := g.DB.ReplaceSandbox(b.Context(), gen); err != nil {
				b.Fatal(err)
			}
			// Clients in turn: each stays under the per-client rate limit.
			var tokens []string
			for range 20 {
				c, secret := g.client(b, store.NewClient{OrganizationID: gen.Organizations()[0].ID})
				tokens = append(tokens, g.secretToken(b, c.ID, secret, ""))
			}
			h := g.Server.NewHandler()
			n := 0
			serve := func(req *http.Request) []byte {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK || bytes.Contains(rec.Body.Bytes(), []byte(`"errors"`)) {
					b.Fatalf("%d %.300s", rec.Code, rec.Body.Bytes())
				}
				return rec.Body.Bytes()
			}
			graphQL := func(query string, vars map[string]any) func() *http.Request {
				body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
				return func() *http.Request {
					req := httptest.NewRequest(http.MethodPost, "/graphql", bytes.NewReader(body))
					req.Header.Set("Content-Type", "application/json")
					req.Header.Set("Authorization", "Bearer "+tokens[n%len(tokens)])
					n++
					return req
				}
			}
			var page map[string]any
			json.Unmarshal(serve(graphQL(`{ members(first: 1) { edges { node { id } } } }`, nil)()), &page)
			edges, _ := dig(page, "data", "members", "edges").([]any)
			if len(edges) == 0 {
				b.Fatal("no member")
			}
			requests := map[string]func() *http.Request{
				"graphql": graphQL(`query BenchMember($id: ID!) { member(id: $id) { id givenName familyName
				  claims(first: 50) { edges { node { id identifier type status serviceStart serviceEnd lines { sequence productCode } } } } } }`,
					map[string]any{"id": dig(edges[0], "node", "id")}),
				"metadata": func() *http.Request { return httptest.NewRequest(http.MethodGet, "/fhir/metadata", nil) },
			}
			for _, name := range []string{"graphql", "metadata"} {
				b.Run(name, func(b *testing.B) {
					req := requests[name]
					before := 0
					if on {
						before = len(rx.received(b))
					}
					b.ReportAllocs()
					cpu := processCPUTime()
					for b.Loop() {
						serve(req())
					}
					if on {
						if err := g.Server.Tracing.ForceFlush(b.Context()); err != nil {
							b.Fatal(err)
						}
					}
					b.StopTimer()
					b.ReportMetric(float64((processCPUTime()-cpu).Microseconds())/float64(b.N), "cpu-µs/op")
					if on {
						if got := len(rx.received(b)) - before; got < b.N {
							b.Fatalf("%d spans for %d requests", got, b.N)
						}
					}
				})
			}
		})
	}
}

func processCPUTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
