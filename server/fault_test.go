package server_test

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"example.com/gateway/auth"
	"example.com/gateway/gateway"
	"example.com/gateway/internal/pgcluster"
	"example.com/gateway/migrations"
	"example.com/gateway/store"
)

// TestPostgresRestartFailsFastAndRecovers is the short fault test of issue
// 7 (the long one under load is scripts/fault.sh): the gateway runs on a
// PostgreSQL of this test alone; the server is killed (SIGQUIT: immediate
// shutdown, as a crash) and restarted, and the same Server, never rebuilt,
// must answer fast during the outage (HTTP 503 or a GraphQL INTERNAL error,
// no other 5xx, nothing hangs), report it on /readyz, and serve again
// within 5 s of the restart.
//
// Requests carry a principal put in the context by a wrapper (as the
// GraphQL tests do): verifying a bearer token needs the database itself.
func TestPostgresRestartFailsFastAndRecovers(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	root := os.TempDir()
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		root = "/dev/shm"
	}
	dir := filepath.Join(root, "gateway-fault-"+strings.ToLower(rand.Text()[:10]))
	t.Cleanup(func() { os.RemoveAll(dir) })
	cluster, err := pgcluster.Start(ctx, pgcluster.Options{DataDir: filepath.Join(dir, "data"), SocketDir: dir, Ephemeral: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cluster.Stop() })
	db, err := store.Open(ctx, cluster.URL("postgres"), store.Options{MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := store.Migrate(ctx, db, migrations.FS); err != nil {
		t.Fatal(err)
	}

	g := newGatewayOn(t, db, nil)
	org := g.org(t)
	p := auth.ClientPrincipal(gateway.APIClient{ID: "fault-client", OrganizationID: org.ID,
		Environment: gateway.EnvSandbox, AccessType: gateway.ProviderAccess}, auth.Scopes{All: true})
	// A real client token, issued before the fault and never verified
	// before it, so its check during the outage needs the database.
	c, secret := g.client(t, store.NewClient{OrganizationID: org.ID})
	bearer := g.secretToken(t, c.ID, secret, "")
	h := g.Server.NewHandler()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/graphql" {
			r = r.WithContext(auth.WithPrincipal(r.Context(), p))
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	client := &http.Client{Timeout: 10 * time.Second}

	const query = `{ bulkExportJobs(first: 5) { edges { node { id status } } } }`
	type answer struct {
		status  int
		codes   []string
		elapsed time.Duration
	}
	graphQL := func() answer {
		t.Helper()
		body, _ := json.Marshal(map[string]any{"query": query})
		start := time.Now()
		resp, err := client.Post(ts.URL+"/graphql", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatalf("GraphQL request: %v (after %v)", err, time.Since(start))
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		a := answer{status: resp.StatusCode, elapsed: time.Since(start)}
		var r gqlReply
		if resp.StatusCode == http.StatusOK {
			if err := json.Unmarshal(raw, &r); err != nil {
				t.Fatalf("GraphQL answered 200 with non-JSON %q", raw)
			}
			a.codes = r.codes()
		}
		return a
	}
	readyz := func() (int, time.Duration) {
		t.Helper()
		start := time.Now()
		resp, err := client.Get(ts.URL + "/readyz")
		if err != nil {
			t.Fatalf("/readyz: %v", err)
		}
		resp.Body.Close()
		return resp.StatusCode, time.Since(start)
	}
	healthy := func(what string) {
		t.Helper()
		if a := graphQL(); a.status != http.StatusOK || len(a.codes) > 0 {
			t.Fatalf("%s: GraphQL %d %v", what, a.status, a.codes)
		}
	}

	for range 3 {
		healthy("before the fault")
	}
	if code, _ := readyz(); code != http.StatusOK {
		t.Fatalf("/readyz before the fault: %d", code)
	}

	if err := cluster.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()

	// /readyz reports the outage within a few seconds.
	for {
		code, took := readyz()
		if took > 5*time.Second {
			t.Errorf("/readyz took %v during the outage", took)
		}
		if code == http.StatusServiceUnavailable {
			break
		}
		if code != http.StatusOK {
			t.Fatalf("/readyz during the outage: %d", code)
		}
		if time.Since(killed) > 5*time.Second {
			t.Fatal("/readyz still 200 5s after PostgreSQL was killed")
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("/readyz 503 after %v", time.Since(killed).Round(time.Millisecond))

	// GraphQL fails fast, with 503 or INTERNAL only.
	seen := map[string]int{}
	for i := range 10 {
		a := graphQL()
		seen[http.StatusText(a.status)+" "+strings.Join(a.codes, ",")]++
		if a.elapsed > 5*time.Second {
			t.Errorf("request %d during the outage took %v", i, a.elapsed)
		}
		switch {
		case a.status == http.StatusServiceUnavailable:
		case a.status == http.StatusOK && len(a.codes) > 0 && allInternal(a.codes):
		default:
			t.Errorf("request %d during the outage: HTTP %d, codes %v; want 503 or INTERNAL", i, a.status, a.codes)
		}
	}

	t.Logf("answers during the outage: %v", seen)

	// The token endpoint answers like an outage too: 503, never 500.
	resp, err := client.PostForm(ts.URL+"/oauth/token", url.Values{"grant_type": {"client_credentials"},
		"client_id": {"any-client"}, "client_secret": {"any-secret"}})
	if err != nil {
		t.Fatalf("/oauth/token during the outage: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("/oauth/token during the outage: %d (Retry-After %q), want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}

	// A valid token that cannot be checked is not refused: 503 with
	// Retry-After in the API's shape, never 401 / UNAUTHENTICATED, which
	// would tell the client to discard it.
	for path, wantType := range map[string]string{"/fhir/Group": "application/fhir+json", "/graphql": "application/json"} {
		method, body := http.MethodGet, io.Reader(nil)
		if path == "/graphql" {
			method, body = http.MethodPost, strings.NewReader(`{"query":"{ viewer { kind } }"}`)
		}
		req, _ := http.NewRequest(method, g.URL+path, body)
		req.Header.Set("Authorization", "Bearer "+bearer)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s with a token during the outage: %v", path, err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" ||
			!strings.HasPrefix(resp.Header.Get("Content-Type"), wantType) {
			t.Errorf("%s with a valid token during the outage: %d %s (Retry-After %q), want 503 %s with Retry-After",
				path, resp.StatusCode, raw, resp.Header.Get("Retry-After"), wantType)
		}
	}

	// Restart; the same Server recovers within 5 s.
	if err := cluster.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	restarted := time.Now()
	deadline := restarted.Add(5 * time.Second)
	for {
		code, _ := readyz()
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz still %d 5s after the restart", code)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for {
		a := graphQL()
		if a.status == http.StatusOK && len(a.codes) == 0 {
			break
		}
		if a.status >= 500 && a.status != http.StatusServiceUnavailable {
			t.Errorf("after the restart: HTTP %d", a.status)
		}
		if time.Now().After(deadline) {
			t.Fatalf("GraphQL still failing 5s after the restart: HTTP %d %v", a.status, a.codes)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("recovered %v after the restart", time.Since(restarted).Round(time.Millisecond))
	for range 3 {
		healthy("after recovery")
	}
}

func allInternal(codes []string) bool {
	for _, c := range codes {
		if c != gateway.CodeInternal {
			return false
		}
	}
	return true
}
