package server_test

import (
	"bufio"
	"bytes"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"example.com/gateway/store"
)

// scrape is one reading of /metrics: each series ("name{labels}") and its value.
type scrape map[string]float64

func (g *testGateway) scrape(t *testing.T) scrape {
	t.Helper()
	resp, err := http.Get(g.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics answered %s", resp.Status)
	}
	out := scrape{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if i < 0 || err != nil {
			t.Fatalf("unparsable metrics line %q", line)
		}
		out[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// get sums the series of family name whose labels include every pair of
// labels ("k", "v", …); found is false when there is none.
func (s scrape) get(name string, labels ...string) (sum float64, found bool) {
	for series, v := range s {
		n, ls, _ := strings.Cut(series, "{")
		if n != name {
			continue
		}
		ok := true
		for i := 0; i+1 < len(labels); i += 2 {
			if !strings.Contains(","+ls, ","+labels[i]+"="+strconv.Quote(labels[i+1])) {
				ok = false
				break
			}
		}
		if ok {
			sum += v
			found = true
		}
	}
	return sum, found
}

// labelValues returns every value of label across all series.
func (s scrape) labelValues(label string) map[string]bool {
	out := map[string]bool{}
	for series := range s {
		_, ls, ok := strings.Cut(series, "{")
		if !ok {
			continue
		}
		for rest := "," + ls; ; {
			i := strings.Index(rest, ","+label+`="`)
			if i < 0 {
				break
			}
			rest = rest[i+len(label)+3:]
			j := strings.IndexByte(rest, '"')
			for j > 0 && rest[j-1] == '\\' {
				j += 1 + strings.IndexByte(rest[j+1:], '"')
			}
			out[rest[:j]] = true
			rest = rest[j:]
		}
	}
	return out
}

// TestMetricsMove scrapes /metrics of a real gateway before and after a
// token request, a refused token request, a GraphQL query with a real token
// and a FHIR export kick-off and status poll, and checks that the series
// move and that no label carries a raw path with an id.
func TestMetricsMove(t *testing.T) {
	t.Parallel()
	g := newGateway(t, map[string]string{"EXPORT_DIR": t.TempDir()})
	c, secret := g.client(t, store.NewClient{})

	before := g.scrape(t)
	for _, name := range []string{"gateway_db_connections_open", "gateway_db_connections_in_use",
		"gateway_export_oldest_queued_seconds"} {
		if _, ok := before.get(name); !ok {
			t.Errorf("%s missing from the first scrape", name)
		}
	}
	if v, ok := before.get("gateway_export_jobs", "status", "QUEUED"); !ok || v != 0 {
		t.Errorf(`gateway_export_jobs{status="QUEUED"} = %v (present %v), want 0`, v, ok)
	}

	token := g.secretToken(t, c.ID, secret, "")
	if r := g.postToken(t, url.Values{"grant_type": {"client_credentials"}}, c.ID, "wrong secret"); r.Status != http.StatusUnauthorized {
		t.Fatalf("token with a wrong secret: %d %v", r.Status, r.Body)
	}
	g.must(t, token, `{ bulkExportJobs(first: 1) { edges { node { id } } } }`, nil)

	req, _ := http.NewRequest(http.MethodGet, g.URL+"/fhir/Patient/$export", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/fhir+json")
	req.Header.Set("Prefer", "respond-async")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	statusURL := resp.Header.Get("Content-Location")
	if resp.StatusCode != http.StatusAccepted || statusURL == "" {
		t.Fatalf("kick-off: %s, Content-Location %q", resp.Status, statusURL)
	}
	jobID := statusURL[strings.LastIndexByte(statusURL, '/')+1:]
	req, _ = http.NewRequest(http.MethodGet, statusURL, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	if resp, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("status poll: %s", resp.Status)
	}

	after := g.scrape(t)
	moved := func(name string, want float64, labels ...string) {
		t.Helper()
		b, _ := before.get(name, labels...)
		a, ok := after.get(name, labels...)
		if !ok || a-b < want {
			t.Errorf("%s%v: %v → %v (present %v), want an increase of at least %v", name, labels, b, a, ok, want)
		}
	}
	moved("gateway_http_requests_total", 1, "route", "POST /graphql", "method", "POST", "code", "200")
	moved("gateway_http_requests_total", 1, "route", "POST /oauth/token", "code", "200")
	moved("gateway_http_requests_total", 1, "route", "POST /oauth/token", "code", "401")
	moved("gateway_http_requests_total", 1, "route", "GET /fhir/Patient/$export", "code", "202")
	moved("gateway_http_requests_total", 1, "route", "GET /fhir/bulkstatus/{job}", "code", "202")
	moved("gateway_http_requests_total", 1, "route", "GET /metrics", "code", "200") // the first scrape
	moved("gateway_http_request_duration_seconds_count", 1, "route", "POST /graphql")
	moved("gateway_http_request_duration_seconds_count", 2, "route", "POST /oauth/token")
	moved("gateway_graphql_operations_total", 1, "operation", "query", "outcome", "ok")
	moved("gateway_graphql_operation_duration_seconds_count", 1, "operation", "query")
	moved("gateway_tokens_issued_total", 1, "method", "client_secret_basic")
	moved("gateway_tokens_refused_total", 1, "error", "invalid_client")
	moved("gateway_export_jobs", 1, "status", "QUEUED")
	if v, _ := after.get("gateway_db_connections_open"); v < 1 {
		t.Errorf("gateway_db_connections_open = %v after database work, want ≥ 1", v)
	}
	if v, ok := after.get("gateway_export_oldest_queued_seconds"); !ok || v < 0 {
		t.Errorf("gateway_export_oldest_queued_seconds = %v (present %v)", v, ok)
	}

	// Routes are mux patterns: no raw path, no id, no token in any label.
	for route := range after.labelValues("route") {
		if route != "unmatched" && !strings.Contains(route, " /") {
			t.Errorf("route label %q is not a mux pattern", route)
		}
	}
	var raw bytes.Buffer
	for series := range after {
		raw.WriteString(series + "\n")
	}
	for what, secret := range map[string]string{"job id": jobID, "client id": c.ID, "token": token, "client secret": secret} {
		if strings.Contains(raw.String(), secret) {
			t.Errorf("a metrics label carries the %s", what)
		}
	}
}
