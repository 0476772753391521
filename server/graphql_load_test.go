package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"testing"
	"time"

	"example.com/gateway/internal/loadgen"
	"example.com/gateway/store/storetest"
)

// BenchmarkGraphQLLoad is the documented load test of the GraphQL endpoint
// (issue 2): memberClaimsQuery over real HTTP on a loopback listener, with
// 8 concurrent keep-alive clients, measuring requests per second and
// latency percentiles. It runs for a fixed duration, once
// (scripts/loadtest-graphql.sh):
//
//	go test ./server -run XXX -bench '^BenchmarkGraphQLLoad$' -benchtime 1x -v
//
// GRAPHQL_LOADTEST_CLIENTS (8) and GRAPHQL_LOADTEST_DURATION (15s) tune it.
// The gateway cannot issue tokens to itself yet, so the server is the real
// GraphQL handler behind the gateway's request-id, logging and recovery
// middleware, with an operator principal put in the context in place of
// the bearer-token middleware. Server, PostgreSQL and the load generator
// share the machine's CPUs.
func BenchmarkGraphQLLoad(b *testing.B) {
	t := b
	clients := 8
	if v, err := strconv.Atoi(os.Getenv("GRAPHQL_LOADTEST_CLIENTS")); err == nil && v > 0 {
		clients = v
	}
	duration := 15 * time.Second
	if v, err := time.ParseDuration(os.Getenv("GRAPHQL_LOADTEST_DURATION")); err == nil && v > 0 {
		duration = v
	}

	db := storetest.New(t)
	bld := builder{t, db}
	org := bld.org("Load Org", "1234567893", true)
	members := bld.bulk(org, "LOAD-", 200, 50, 2)
	bld.exec(`ANALYZE`)

	s := &Server{Config: Config{}, Logger: NewLogger(io.Discard, slog.LevelInfo), DB: db}
	p := operator()
	gql := s.graphQLHandler()
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gql.ServeHTTP(w, r.WithContext(withTestPrincipal(r.Context(), p)))
	})
	h = s.recoverPanics(h)
	h = s.logRequests(h)
	h = withRequestID(h)
	ts := httptest.NewServer(h)
	defer ts.Close()

	bodies := make([][]byte, len(members))
	for i, id := range members {
		bodies[i], _ = json.Marshal(map[string]any{"query": memberClaimsQuery, "variables": map[string]any{"id": id}})
	}
	cpu := startCPUMeter(t, db)
	res := loadgen.Run(context.Background(), loadgen.Options{
		Clients:  clients,
		Duration: duration,
		NewRequest: func(c, i int) *http.Request {
			req, _ := http.NewRequest(http.MethodPost, ts.URL+"/graphql", bytes.NewReader(bodies[(c*7919+i)%len(bodies)]))
			req.Header.Set("Content-Type", "application/json")
			return req
		},
		Check: func(status int, body []byte) error {
			if status != http.StatusOK || bytes.Contains(body, []byte(`"errors"`)) || len(body) < 40_000 {
				return fmt.Errorf("status %d: %.300s", status, body)
			}
			return nil
		},
	})
	goCPU, pgCPU := cpu.perRequest(t, res.Requests+res.Errors)
	t.Logf("memberClaimsQuery, %d clients: %s", clients, res)
	fmt.Printf("RESULT memberClaimsQuery clients=%d %s; CPU per request (warm-up included): %.2f ms gateway+load generator, %.2f ms PostgreSQL\n",
		clients, res, goCPU, pgCPU)
	if res.Errors > 0 {
		t.Errorf("%d errors; first: %v", res.Errors, res.FirstError)
	}
}
