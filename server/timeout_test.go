package server_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"example.com/gateway/gateway"
	"example.com/gateway/sandbox"
	"example.com/gateway/server"
	"example.com/gateway/store"
	"example.com/gateway/store/storetest"
)

// The statement timeout of these tests. The timings below are the
// behaviour under test, with generous margins (a loaded machine delays
// the test's own steps by hundreds of milliseconds): a statement kept
// waiting 50 ms passes, one kept waiting until its answer (or 5 s) does
// not, and an export batch kept waiting 2 s still completes.
const (
	requestTimeout = time.Second
	justUnder      = 50 * time.Millisecond
	exportWait     = 2 * time.Second
)

// timeoutGateway is the gateway as `serve` runs it (server.OpenPools,
// server.New, Serve: HTTP plus export workers) with DB_STATEMENT_TIMEOUT
// of requestTimeout, on a seeded sandbox. admin is a third, unbounded pool
// of the test's own, which holds the locks that make statements wait.
type timeoutGateway struct {
	*fhirGateway
	admin *store.DB
	pools server.Pools
	org   gateway.Organization
	token string
}

func startTimeoutGateway(t *testing.T) *timeoutGateway {
	t.Helper()
	dbURL := storetest.URL(t)
	admin, err := store.Open(t.Context(), dbURL, store.Options{MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	g, err := sandbox.New(sandbox.Options{Members: 40, Seed: 7, Today: sandboxToday})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.ReplaceSandbox(t.Context(), g); err != nil {
		t.Fatal(err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, ln.Addr().String(), map[string]string{
		"DATABASE_URL":         dbURL, // OpenPools opens it, as serve does
		"EXPORT_WORKERS":       "1",
		"DB_MAX_CONNS":         "4",
		"DB_STATEMENT_TIMEOUT": requestTimeout.String(),
	})
	publicURL := cfg.PublicURL
	logs := &fhirLog{}
	logger := server.NewLogger(logs, slog.LevelDebug)
	pools, closePools, err := server.OpenPools(t.Context(), cfg, logger, false)
	if err != nil {
		t.Fatal(err)
	}
	s, err := server.New(t.Context(), cfg, logger, pools.Requests)
	if err != nil {
		closePools()
		t.Fatal(err)
	}
	s.Background = pools.Background
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		<-done
		closePools()
		if t.Failed() {
			t.Logf("gateway log:\n%s", logs.String())
		}
	})
	tg := &timeoutGateway{
		fhirGateway: &fhirGateway{URL: publicURL, DB: admin, Orgs: g.Organizations(), log: logs},
		admin:       admin, pools: pools, org: g.Organizations()[0],
	}
	_, tg.token = tg.fhirGateway.token(t, tg.org.ID, gateway.EnvSandbox, "")
	return tg
}

// lock takes an ACCESS EXCLUSIVE lock on table in a transaction of the
// admin pool, so that every statement reading it waits, until release
// (which may be called more than once).
func (g *timeoutGateway) lock(t *testing.T, table string) (release func()) {
	t.Helper()
	tx, err := g.admin.BeginTxx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(`LOCK TABLE ` + table + ` IN ACCESS EXCLUSIVE MODE`); err != nil {
		tx.Rollback()
		t.Fatal(err)
	}
	var once sync.Once
	release = func() { once.Do(func() { tx.Rollback() }) }
	t.Cleanup(release)
	return release
}

// awaitWaiter returns once a statement of the pool named pool
// (application_name) waits for the lock on table.
func (g *timeoutGateway) awaitWaiter(t *testing.T, table, pool string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var waiting bool
		err := g.admin.GetContext(t.Context(), &waiting, `
			SELECT EXISTS (SELECT 1 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
			               WHERE l.relation = $1::regclass AND NOT l.granted AND a.application_name = $2)`, table, pool)
		if err != nil {
			t.Fatal(err)
		}
		if waiting {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no statement of %s waits for the lock on %s", pool, table)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// gqlAnswer is a GraphQL answer over HTTP.
type gqlAnswer struct {
	status int
	body   []byte
	errors []struct {
		Message    string         `json:"message"`
		Extensions map[string]any `json:"extensions"`
	}
}

const timeoutQuery = `{ bulkExportJobs(first: 5) { edges { node { id status } } } }`

// graphQL posts timeoutQuery with a bearer token and request id.
func (g *timeoutGateway) graphQL(t *testing.T, requestID string) gqlAnswer {
	body, _ := json.Marshal(map[string]any{"query": timeoutQuery})
	req, _ := http.NewRequest(http.MethodPost, g.URL+"/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+g.token)
	req.Header.Set("X-Request-Id", requestID)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Errorf("GraphQL request: %v", err)
		return gqlAnswer{}
	}
	defer resp.Body.Close()
	var a gqlAnswer
	a.status = resp.StatusCode
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	a.body = buf.Bytes()
	var parsed struct {
		Errors json.RawMessage `json:"errors"`
	}
	if err := json.Unmarshal(a.body, &parsed); err != nil {
		t.Errorf("GraphQL answered %d with non-JSON %q", a.status, a.body)
	} else if parsed.Errors != nil {
		json.Unmarshal(parsed.Errors, &a.errors)
	}
	return a
}

func (g *timeoutGateway) healthy(t *testing.T, what string) {
	t.Helper()
	for i := range 6 { // more than the request pool's connections
		if a := g.graphQL(t, "healthy"); a.status != http.StatusOK || len(a.errors) > 0 {
			t.Fatalf("%s, request %d: %d %s", what, i, a.status, a.body)
		}
	}
	if r := g.call(t, http.MethodGet, "/readyz", "", ""); r.status != http.StatusOK {
		t.Fatalf("%s: /readyz %d %s", what, r.status, r.body)
	}
}

// noSQL fails when body shows database internals.
func noSQL(t *testing.T, what string, body []byte) {
	t.Helper()
	for _, leak := range []string{"pq:", "SQLSTATE", "57014", "canceling statement", "statement timeout", "export_jobs", "attributions", "clients"} {
		if bytes.Contains(body, []byte(leak)) {
			t.Errorf("%s shows %q: %s", what, leak, body)
		}
	}
}

// TestStatementTimeoutBoundary: with DB_STATEMENT_TIMEOUT at 1 s, a
// request whose statement waits on a lock for just under that passes; one
// whose statement would wait longer fails with a clear answer and no SQL
// (GraphQL INTERNAL "the database did not answer in time", the token
// endpoint 503 with Retry-After, FHIR an OperationOutcome), logged with
// its request id; and the server is healthy after.
func TestStatementTimeoutBoundary(t *testing.T) {
	t.Parallel()
	g := startTimeoutGateway(t)
	g.healthy(t, "before")

	t.Run("just under passes", func(t *testing.T) {
		release := g.lock(t, "export_jobs")
		answer := make(chan gqlAnswer, 1)
		go func() { answer <- g.graphQL(t, "timeout-under") }()
		g.awaitWaiter(t, "export_jobs", "gateway-requests")
		time.Sleep(justUnder) // the statement keeps waiting: the behaviour under test
		release()
		if a := <-answer; a.status != http.StatusOK || len(a.errors) > 0 {
			t.Errorf("a statement waiting %v under a %v timeout: %d %s", justUnder, requestTimeout, a.status, a.body)
		}
	})

	t.Run("over fails clearly", func(t *testing.T) {
		release := g.lock(t, "export_jobs")
		// Unbounded, the request would wait for ever: release after 5 s so
		// that it then succeeds, and the test fails instead of hanging.
		time.AfterFunc(5*time.Second, release)
		start := time.Now()
		a := g.graphQL(t, "timeout-over")
		took := time.Since(start)
		if a.status != http.StatusOK || len(a.errors) != 1 || a.errors[0].Extensions["code"] != gateway.CodeInternal ||
			a.errors[0].Message != "the database did not answer in time" {
			t.Errorf("GraphQL over the timeout (after %v): %d %s, want INTERNAL \"the database did not answer in time\"", took, a.status, a.body)
		}
		noSQL(t, "GraphQL", a.body)

		release()

		// FHIR: the group read reads attributions.
		release = g.lock(t, "attributions")
		time.AfterFunc(5*time.Second, release)
		groupID := gateway.AttributionGroupID(g.org.ID, gateway.EnvSandbox)
		r := g.call(t, http.MethodGet, "/fhir/Group/"+groupID, g.token, "", "X-Request-Id", "timeout-fhir")
		outcome(t, "FHIR over the timeout", r, http.StatusServiceUnavailable)
		if r.header.Get("Retry-After") == "" {
			t.Errorf("FHIR 503 without Retry-After")
		}
		noSQL(t, "FHIR", r.body)
		release()

		// The token endpoint reads clients.
		c, secret, err := g.admin.CreateClient(t.Context(), store.NewClient{OrganizationID: g.org.ID,
			Name: "timeout " + rand.Text()[:8], Environment: gateway.EnvSandbox, AccessType: gateway.ProviderAccess})
		if err != nil {
			t.Fatal(err)
		}
		release = g.lock(t, "clients")
		time.AfterFunc(5*time.Second, release)
		form := url.Values{"grant_type": {"client_credentials"}}
		req, _ := http.NewRequest(http.MethodPost, g.URL+"/oauth/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Request-Id", "timeout-token")
		req.SetBasicAuth(c.ID, secret)
		r = do(t, req)
		var tokenErr struct {
			Error string `json:"error"`
		}
		if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" ||
			json.Unmarshal(r.body, &tokenErr) != nil || tokenErr.Error != "temporarily_unavailable" {
			t.Errorf("token endpoint over the timeout: %d (Retry-After %q) %s, want 503 temporarily_unavailable with Retry-After",
				r.status, r.header.Get("Retry-After"), r.body)
		}
		noSQL(t, "token endpoint", r.body)
		release()
	})

	g.healthy(t, "after the timeouts")

	// Logged once, with the request id, at the boundary.
	found := false
	sc := bufio.NewScanner(strings.NewReader(g.log.String()))
	for sc.Scan() {
		var rec map[string]any
		if json.Unmarshal(sc.Bytes(), &rec) != nil || rec["request_id"] != "timeout-over" {
			continue
		}
		if s, _ := rec["err"].(string); strings.Contains(s, "statement timeout") && rec["level"] == "ERROR" {
			found = true
		}
	}
	if !found {
		t.Error("no ERROR log line with request_id timeout-over and the statement timeout")
	}
}

// TestExportPoolIsNotBounded: an export batch whose statement waits longer
// than DB_STATEMENT_TIMEOUT — on a lock of claims held for exportWait —
// completes at its first attempt: the export workers run on the
// background pool, which has no statement timeout.
func TestExportPoolIsNotBounded(t *testing.T) {
	t.Parallel()
	g := startTimeoutGateway(t)
	release := g.lock(t, "claims")
	groupID := gateway.AttributionGroupID(g.org.ID, gateway.EnvSandbox)
	r := g.call(t, http.MethodGet, "/fhir/Group/"+groupID+"/$export?_type=Patient,ExplanationOfBenefit", g.token, "",
		"Prefer", "respond-async", "Accept", "application/fhir+json")
	statusURL := r.header.Get("Content-Location")
	if r.status != http.StatusAccepted || statusURL == "" {
		t.Fatalf("kick-off: %d %s", r.status, r.body)
	}
	g.awaitWaiter(t, "claims", "gateway-background") // a worker's batch reads the group's claims
	time.Sleep(exportWait)                           // well over the statement timeout: the behaviour under test
	release()

	r = g.poll(t, statusURL, g.token)
	var m manifest
	if r.status != http.StatusOK || json.Unmarshal(r.body, &m) != nil {
		t.Fatalf("export: %d %s", r.status, r.body)
	}
	claims := 0
	for _, o := range m.Output {
		if o.Type == "ExplanationOfBenefit" {
			claims += o.Count
		}
	}
	if claims == 0 {
		t.Errorf("manifest without claims: %s", r.body)
	}
	var attempts int
	jobID := statusURL[strings.LastIndex(statusURL, "/")+1:]
	if err := g.admin.GetContext(t.Context(), &attempts, `SELECT attempts FROM export_jobs WHERE id = $1`, jobID); err != nil {
		t.Fatal(err)
	}
	if attempts != 1 {
		t.Errorf("the export ran %d times, want once: its waiting batch was interrupted", attempts)
	}
}
