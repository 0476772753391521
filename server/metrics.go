package server

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"example.com/gateway/gateway"
	"example.com/gateway/store"
)

// Metrics are the gateway's own Prometheus series, all named gateway_…,
// on a registry of the Server's own (no global state).
type Metrics struct {
	Registry *prometheus.Registry

	HTTPRequests      *prometheus.CounterVec   // route, method, code
	HTTPDuration      *prometheus.HistogramVec // route
	GraphQLOperations *prometheus.CounterVec   // operation type, outcome
	GraphQLDuration   *prometheus.HistogramVec // operation type
	TokensIssued      *prometheus.CounterVec   // auth method
	TokensRefused     *prometheus.CounterVec   // OAuth error code
	RateLimited       *prometheus.CounterVec   // what was limited
	ResourcesExported *prometheus.CounterVec   // resource type
}

func newMetrics(pools func() []namedPool) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		Registry: reg,
		HTTPRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gateway_http_requests_total", Help: "HTTP requests by route, method and status code.",
		}, []string{"route", "method", "code"}),
		HTTPDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "gateway_http_request_duration_seconds", Help: "HTTP request latency by route.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route"}),
		GraphQLOperations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gateway_graphql_operations_total", Help: "GraphQL operations by type and outcome.",
		}, []string{"operation", "outcome"}),
		GraphQLDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "gateway_graphql_operation_duration_seconds", Help: "GraphQL operation latency by operation type.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"operation"}),
		TokensIssued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gateway_tokens_issued_total", Help: "Access tokens issued by client authentication method.",
		}, []string{"method"}),
		TokensRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gateway_tokens_refused_total", Help: "Token requests refused by OAuth error code.",
		}, []string{"error"}),
		RateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gateway_rate_limited_total", Help: "Requests refused by a rate limit, by limit.",
		}, []string{"limit"}),
		ResourcesExported: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gateway_export_resources_total", Help: "FHIR resources written to export files by type.",
		}, []string{"type"}),
	}
	reg.MustRegister(m.HTTPRequests, m.HTTPDuration, m.GraphQLOperations, m.GraphQLDuration,
		m.TokensIssued, m.TokensRefused, m.RateLimited, m.ResourcesExported,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		dbCollector{pools: pools})
	return m
}

func (m *Metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}

// instrument counts and times each request by its route pattern (never the
// raw path, which carries ids).
func (m *Metrics) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		route := r.Pattern
		if route == "" {
			route = "unmatched"
		}
		code := sw.status
		if code == 0 {
			code = http.StatusOK
		}
		m.HTTPRequests.WithLabelValues(route, r.Method, strconv.Itoa(code)).Inc()
		m.HTTPDuration.WithLabelValues(route).Observe(time.Since(start).Seconds())
	})
}

// countOperations counts executed GraphQL operations by type (query,
// mutation) and outcome ("ok", or the extensions.code of the first error)
// and times them from the start of the operation.
func (m *Metrics) countOperations(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	resp := next(ctx)
	op, start := "unknown", time.Time{}
	if graphql.HasOperationContext(ctx) {
		oc := graphql.GetOperationContext(ctx)
		if oc.Operation != nil {
			op = string(oc.Operation.Operation)
		}
		start = oc.Stats.OperationStart
	}
	outcome := "ok"
	if resp != nil && len(resp.Errors) > 0 {
		outcome = gateway.CodeInternal
		if code, ok := resp.Errors[0].Extensions["code"].(string); ok {
			outcome = code
		}
	}
	m.GraphQLOperations.WithLabelValues(op, outcome).Inc()
	if !start.IsZero() {
		m.GraphQLDuration.WithLabelValues(op).Observe(time.Since(start).Seconds())
	}
	return resp
}

// countTokens counts the token endpoint's answers: issued by client
// authentication method, refused by RFC 6749 error code (read back from the
// small JSON error body the endpoint writes).
func (m *Metrics) countTokens(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &tokenRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		if rec.status == 0 || rec.status == http.StatusOK {
			m.TokensIssued.WithLabelValues(tokenAuthMethod(r)).Inc()
			return
		}
		var body struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(rec.body.Bytes(), &body) != nil || !oauthErrorCodes[body.Error] {
			body.Error = strconv.Itoa(rec.status) // throttled (429) and anything unexpected
		}
		m.TokensRefused.WithLabelValues(body.Error).Inc()
	})
}

// oauthErrorCodes bounds the label values of gateway_tokens_refused_total.
var oauthErrorCodes = map[string]bool{"invalid_request": true, "invalid_client": true, "invalid_grant": true,
	"invalid_scope": true, "unauthorized_client": true, "unsupported_grant_type": true}

func tokenAuthMethod(r *http.Request) string {
	switch {
	case r.PostFormValue("client_assertion") != "":
		return "private_key_jwt"
	case r.PostFormValue("client_secret") != "":
		return "client_secret_post"
	}
	return "client_secret_basic"
}

// tokenRecorder keeps the status and, for errors, the first bytes of the body.
type tokenRecorder struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (w *tokenRecorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *tokenRecorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if w.status != http.StatusOK && w.body.Len() < 1024 {
		w.body.Write(b[:min(len(b), 1024-w.body.Len())])
	}
	return w.ResponseWriter.Write(b)
}

// dbCollector reports the connection pools and the export queue at scrape
// time. pools is read at each scrape: serve opens the background pool after
// the Server exists.
type dbCollector struct {
	pools func() []namedPool // the first answers the export queue query
}

type namedPool struct {
	name string
	db   *store.DB
}

// pools are the Server's connection pools, by the name of the pool label.
func (s *Server) pools() []namedPool {
	ps := []namedPool{{"requests", s.DB}}
	if s.Background != nil && s.Background != s.DB {
		ps = append(ps, namedPool{"background", s.Background})
	}
	return ps
}

var (
	poolLabels    = []string{"pool"}
	poolOpenDesc  = prometheus.NewDesc("gateway_db_connections_open", "Open database connections by pool (requests, background).", poolLabels, nil)
	poolInUseDesc = prometheus.NewDesc("gateway_db_connections_in_use", "Database connections in use by pool.", poolLabels, nil)
	poolMaxDesc   = prometheus.NewDesc("gateway_db_connections_max", "The most connections a pool opens.", poolLabels, nil)
	poolWaitDesc  = prometheus.NewDesc("gateway_db_wait_seconds_total", "Time spent waiting for a database connection, by pool.", poolLabels, nil)
	poolWaitsDesc = prometheus.NewDesc("gateway_db_waits_total", "Waits for a database connection, by pool.", poolLabels, nil)
	jobsDesc      = prometheus.NewDesc("gateway_export_jobs", "Export jobs by status.", []string{"status"}, nil)
	oldestDesc    = prometheus.NewDesc("gateway_export_oldest_queued_seconds", "Age of the oldest queued export job (the one-business-day clock).", nil, nil)
)

func (c dbCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{poolOpenDesc, poolInUseDesc, poolMaxDesc, poolWaitDesc, poolWaitsDesc, jobsDesc, oldestDesc} {
		ch <- d
	}
}

func (c dbCollector) Collect(ch chan<- prometheus.Metric) {
	if c.pools == nil {
		return
	}
	pools := c.pools()
	for _, p := range pools {
		st := p.db.Stats()
		ch <- prometheus.MustNewConstMetric(poolOpenDesc, prometheus.GaugeValue, float64(st.OpenConnections), p.name)
		ch <- prometheus.MustNewConstMetric(poolInUseDesc, prometheus.GaugeValue, float64(st.InUse), p.name)
		ch <- prometheus.MustNewConstMetric(poolMaxDesc, prometheus.GaugeValue, float64(st.MaxOpenConnections), p.name)
		ch <- prometheus.MustNewConstMetric(poolWaitDesc, prometheus.CounterValue, st.WaitDuration.Seconds(), p.name)
		ch <- prometheus.MustNewConstMetric(poolWaitsDesc, prometheus.CounterValue, float64(st.WaitCount), p.name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	q, err := pools[0].db.ExportQueueStats(ctx)
	if err != nil {
		return // the database is down: /readyz says so; the pool series still report
	}
	for _, status := range []string{"QUEUED", "RUNNING", "COMPLETED", "FAILED", "CANCELLED"} {
		ch <- prometheus.MustNewConstMetric(jobsDesc, prometheus.GaugeValue, float64(q.ByStatus[status]), status)
	}
	ch <- prometheus.MustNewConstMetric(oldestDesc, prometheus.GaugeValue, q.OldestQueuedAge.Seconds())
}
