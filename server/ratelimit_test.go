package server

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"example.com/gateway/auth"
	"example.com/gateway/gateway"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func rateLimitedServer(t *testing.T, limits RateLimits) (*Server, http.Handler, *fakeClock) {
	t.Helper()
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	s := &Server{Logger: NewLogger(io.Discard, slog.LevelDebug), Metrics: newMetrics(nil)}
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	return s, s.rateLimitWith(newClientLimiter(limits, clock.now), ok), clock
}

func clientPrincipal(id string) auth.Principal {
	return auth.ClientPrincipal(gateway.APIClient{ID: id, OrganizationID: "o1", Environment: gateway.EnvSandbox,
		AccessType: gateway.ProviderAccess}, auth.Scopes{All: true})
}

func send(h http.Handler, p auth.Principal, method, path string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, strings.NewReader(`{"query":"{ viewer { __typename } }"}`))
	if !p.IsZero() {
		r = r.WithContext(auth.WithPrincipal(r.Context(), p))
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// TestRateLimitBoundary: a client's burst passes, the next request is 429
// with Retry-After and RATE_LIMITED; one token later, one more passes.
func TestRateLimitBoundary(t *testing.T) {
	const burst = 10
	s, h, clock := rateLimitedServer(t, RateLimits{PerSecond: 2, Burst: burst})
	c1 := clientPrincipal("c1")
	for i := range burst {
		if w := send(h, c1, http.MethodPost, "/graphql"); w.Code != http.StatusOK {
			t.Fatalf("request %d of a burst of %d: %d %s", i+1, burst, w.Code, w.Body)
		}
	}
	w := send(h, c1, http.MethodPost, "/graphql")
	if w.Code != http.StatusTooManyRequests {
		t.Fatalf("request %d: %d, want 429", burst+1, w.Code)
	}
	if got := w.Header().Get("Retry-After"); got != "1" { // 2/s: the next token in 0.5 s, rounded up
		t.Errorf("Retry-After = %q, want 1", got)
	}
	var body struct {
		Data   any `json:"data"`
		Errors []struct {
			Message    string         `json:"message"`
			Extensions map[string]any `json:"extensions"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || len(body.Errors) != 1 ||
		body.Errors[0].Extensions["code"] != "RATE_LIMITED" || body.Errors[0].Message != "rate limit exceeded" || body.Data != nil {
		t.Errorf("GraphQL 429 body %s (%v)", w.Body, err)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("GraphQL 429 Content-Type %q", ct)
	}

	// FHIR: the same bucket, an OperationOutcome.
	w = send(h, c1, http.MethodGet, "/fhir/Group")
	var oo struct {
		ResourceType string `json:"resourceType"`
		Issue        []struct{ Severity, Code string }
	}
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") == "" ||
		json.Unmarshal(w.Body.Bytes(), &oo) != nil || oo.ResourceType != "OperationOutcome" ||
		len(oo.Issue) != 1 || oo.Issue[0].Code != "throttled" ||
		!strings.HasPrefix(w.Header().Get("Content-Type"), "application/fhir+json") {
		t.Errorf("FHIR 429: %d %v %s", w.Code, w.Header(), w.Body)
	}

	// Others are not affected: another client, anonymous callers, other paths.
	if w := send(h, clientPrincipal("c2"), http.MethodPost, "/graphql"); w.Code != http.StatusOK {
		t.Errorf("another client: %d", w.Code)
	}
	if w := send(h, auth.Principal{}, http.MethodPost, "/graphql"); w.Code != http.StatusOK {
		t.Errorf("anonymous: %d", w.Code)
	}
	if w := send(h, auth.Principal{}, http.MethodGet, "/fhir/metadata"); w.Code != http.StatusOK {
		t.Errorf("anonymous discovery: %d", w.Code)
	}
	if w := send(h, c1, http.MethodGet, "/healthz"); w.Code != http.StatusOK {
		t.Errorf("/healthz: %d", w.Code)
	}
	if w := send(h, c1, http.MethodGet, "/fhirx"); w.Code != http.StatusOK {
		t.Errorf("/fhirx: %d", w.Code)
	}

	// Just under the refill: still refused; at it: exactly one passes.
	clock.add(499 * time.Millisecond)
	if w := send(h, c1, http.MethodPost, "/graphql"); w.Code != http.StatusTooManyRequests {
		t.Errorf("before the next token: %d", w.Code)
	}
	clock.add(time.Millisecond)
	if w := send(h, c1, http.MethodPost, "/graphql"); w.Code != http.StatusOK {
		t.Errorf("with one token refilled: %d", w.Code)
	}
	if w := send(h, c1, http.MethodPost, "/graphql"); w.Code != http.StatusTooManyRequests {
		t.Errorf("after spending it: %d", w.Code)
	}
	if got := rateLimitedCount(t, s); got != 4 {
		t.Errorf("gateway_rate_limited_total{limit=client} = %v, want 4", got)
	}
}

// TestRateLimitRetryAfterAndSweep: Retry-After rounds up to whole seconds;
// idle clients' buckets are forgotten.
func TestRateLimitRetryAfterAndSweep(t *testing.T) {
	_, h, clock := rateLimitedServer(t, RateLimits{PerSecond: 0.25, Burst: 1})
	c1 := clientPrincipal("c1")
	send(h, c1, http.MethodPost, "/graphql")
	if w := send(h, c1, http.MethodPost, "/graphql"); w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "4" {
		t.Errorf("0.25/s: %d Retry-After %q, want 429 and 4", w.Code, w.Header().Get("Retry-After"))
	}
	l := newClientLimiter(RateLimits{}, clock.now)
	if l.limit != DefaultRatePerSecond || l.burst != DefaultRateBurst {
		t.Errorf("defaults %v/%d", l.limit, l.burst)
	}
	for _, id := range []string{"a", "b", "c"} {
		l.allow(id)
	}
	clock.add(2 * time.Minute)
	l.allow("d")
	if n := len(l.buckets); n != 1 {
		t.Errorf("%d buckets after the idle ones refilled, want 1", n)
	}
	if got := retryAfterSeconds(0); got != 1 {
		t.Errorf("retryAfterSeconds(0) = %d", got)
	}
}

// rateLimitedCount reads gateway_rate_limited_total{limit="client"}.
func rateLimitedCount(t *testing.T, s *Server) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(s.Metrics.RateLimited)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "limit" && l.GetValue() == "client" {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// TestRateLimitAnonymous: anonymous GraphQL requests share one bucket per
// source address; another address has its own; anonymous FHIR discovery is
// not limited.
func TestRateLimitAnonymous(t *testing.T) {
	const burst = 3
	s, h, _ := rateLimitedServer(t, RateLimits{PerSecond: 1, Burst: burst})
	from := func(addr, method, path string) int {
		r := httptest.NewRequest(method, path, strings.NewReader(`{"query":"{ __typename }"}`))
		r.RemoteAddr = addr
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	for i := range burst {
		if code := from("192.0.2.7:4000", http.MethodPost, "/graphql"); code != http.StatusOK {
			t.Fatalf("anonymous request %d of a burst of %d: %d", i+1, burst, code)
		}
	}
	if code := from("192.0.2.7:4001", http.MethodPost, "/graphql"); code != http.StatusTooManyRequests {
		t.Errorf("anonymous request over the burst, from another port of the same address: %d, want 429", code)
	}
	if code := from("192.0.2.8:4000", http.MethodPost, "/graphql"); code != http.StatusOK {
		t.Errorf("another address: %d", code)
	}
	for range burst + 1 {
		if code := from("192.0.2.7:4000", http.MethodGet, "/fhir/metadata"); code != http.StatusOK {
			t.Fatalf("anonymous discovery: %d", code)
		}
	}
	if got := testutil.ToFloat64(s.Metrics.RateLimited.WithLabelValues("anonymous")); got != 1 {
		t.Errorf("gateway_rate_limited_total{limit=anonymous} = %v, want 1", got)
	}
}
