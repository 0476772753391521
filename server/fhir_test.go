package server_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
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

// fhirGateway is the whole gateway as `serve` runs it (server.New and
// Serve: HTTP server plus export workers) on a real PostgreSQL database
// holding the seeded sandbox data set, listening on a loopback port that
// is also its PUBLIC_URL.
type fhirGateway struct {
	URL  string
	DB   *store.DB
	Orgs []gateway.Organization // the sandbox's synthetic organizations
	log  *fhirLog
}

// fhirLog collects the gateway's log, shown when a test fails.
type fhirLog struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (l *fhirLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *fhirLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// fhirNPI returns a random NPI with a valid check digit (Luhn over 80840 +
// the first nine digits).
func fhirNPI() string {
	for {
		digits := ""
		for _, c := range rand.Text()[:9] {
			digits += strconv.Itoa(int(c) % 10)
		}
		for d := range 10 {
			npi := digits + strconv.Itoa(d)
			sum, s := 0, "80840"+npi
			for i := range len(s) {
				v := int(s[len(s)-1-i] - '0')
				if i%2 == 1 {
					if v *= 2; v > 9 {
						v -= 9
					}
				}
				sum += v
			}
			if sum%10 == 0 {
				return npi
			}
		}
	}
}

var sandboxToday = gateway.DateOf(time.Now())

func startFHIRGateway(t testing.TB, members int) *fhirGateway {
	t.Helper()
	db := storetest.New(t)
	g, err := sandbox.New(sandbox.Options{Members: members, Seed: 42, Today: sandboxToday})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ReplaceSandbox(t.Context(), g); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, ln.Addr().String(), map[string]string{"EXPORT_WORKERS": "2"})
	publicURL := cfg.PublicURL
	logs := &fhirLog{}
	s, err := server.New(t.Context(), cfg, server.NewLogger(logs, slog.LevelDebug), db)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		<-done
		if t.Failed() {
			t.Logf("gateway log:\n%s", logs.String())
		}
	})
	return &fhirGateway{URL: publicURL, DB: db, Orgs: g.Organizations(), log: logs}
}

// client creates an API client of org and returns a real access token for
// it from /oauth/token (client_secret_basic).
func (g *fhirGateway) token(t testing.TB, orgID string, env gateway.Environment, scope string) (gateway.APIClient, string) {
	t.Helper()
	c, secret, err := g.DB.CreateClient(t.Context(), store.NewClient{
		OrganizationID: orgID, Name: "fhir " + rand.Text()[:8], Environment: env, AccessType: gateway.ProviderAccess,
	})
	if err != nil {
		t.Fatal(err)
	}
	form := url.Values{"grant_type": {"client_credentials"}}
	if scope != "" {
		form.Set("scope", scope)
	}
	req, _ := http.NewRequest(http.MethodPost, g.URL+"/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(c.ID, secret)
	resp := do(t, req)
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if resp.status != http.StatusOK || json.Unmarshal(resp.body, &body) != nil || body.AccessToken == "" {
		t.Fatalf("token: %d %s", resp.status, resp.body)
	}
	return c, body.AccessToken
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func do(t testing.TB, req *http.Request) response {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, b}
}

func (g *fhirGateway) call(t testing.TB, method, path, token, body string, headers ...string) response {
	t.Helper()
	u := path
	if strings.HasPrefix(path, "/") {
		u = g.URL + path
	}
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return do(t, req)
}

// outcome checks that r is an OperationOutcome with status want.
func outcome(t testing.TB, what string, r response, want int) {
	t.Helper()
	var oo struct {
		ResourceType string `json:"resourceType"`
		Issue        []struct {
			Severity, Code, Diagnostics string
		} `json:"issue"`
	}
	if r.status != want || !strings.HasPrefix(r.header.Get("Content-Type"), "application/fhir+json") ||
		json.Unmarshal(r.body, &oo) != nil || oo.ResourceType != "OperationOutcome" || len(oo.Issue) == 0 {
		t.Errorf("%s: %d %s %s, want %d with an OperationOutcome", what, r.status, r.header.Get("Content-Type"), r.body, want)
	}
}

// visibleMembers is the group as the rules define it, computed
// independently of the gateway's own queries: attributed to org (ACTIVE or
// UPCOMING within 30 days), not opted out.
func (g *fhirGateway) visibleMembers(t testing.TB, orgID string) map[string]bool {
	t.Helper()
	var ids []string
	err := g.DB.SelectContext(t.Context(), &ids, `
		SELECT DISTINCT a.member_id::text FROM attributions a JOIN members m ON m.id = a.member_id
		WHERE a.organization_id = $1 AND a.ended_at IS NULL AND m.sandbox AND a.sandbox
		  AND a.period_start <= CURRENT_DATE + 30 AND (a.period_end IS NULL OR a.period_end >= CURRENT_DATE)
		  AND NOT EXISTS (SELECT 1 FROM provider_access_opt_outs o WHERE o.member_id = a.member_id)`, orgID)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, id := range ids {
		out[id] = true
	}
	return out
}

type manifest struct {
	TransactionTime     string `json:"transactionTime"`
	Request             string `json:"request"`
	RequiresAccessToken *bool  `json:"requiresAccessToken"`
	Output              []struct {
		Type  string `json:"type"`
		URL   string `json:"url"`
		Count int    `json:"count"`
	} `json:"output"`
	Error []struct {
		Type  string `json:"type"`
		URL   string `json:"url"`
		Count int    `json:"count"`
	} `json:"error"`
}

// poll polls statusURL as a client should (waiting Retry-After) until it
// is no longer 202, and returns the final response.
func (g *fhirGateway) poll(t testing.TB, statusURL, token string) response {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		r := g.call(t, http.MethodGet, statusURL, token, "")
		if r.status != http.StatusAccepted && r.status != http.StatusTooManyRequests {
			return r
		}
		progress := r.header.Get("X-Progress")
		if r.status == http.StatusAccepted && (progress == "" || len(progress) >= 100) {
			t.Errorf("X-Progress %q", progress)
		}
		wait, err := strconv.Atoi(r.header.Get("Retry-After"))
		if err != nil || wait < 1 {
			t.Fatalf("Retry-After %q", r.header.Get("Retry-After"))
		}
		if time.Now().After(deadline) {
			t.Fatalf("export still running: %s", progress)
		}
		time.Sleep(time.Duration(wait) * time.Second)
	}
}

func TestFHIRBulkExportEndToEnd(t *testing.T) {
	t.Parallel()
	g := startFHIRGateway(t, 150)
	org, other := g.Orgs[0], g.Orgs[1]
	_, token := g.token(t, org.ID, gateway.EnvSandbox, "")
	_, otherToken := g.token(t, other.ID, gateway.EnvSandbox, "")
	visible := g.visibleMembers(t, org.ID)
	if len(visible) < 5 {
		t.Fatalf("only %d visible members in the seeded group", len(visible))
	}
	groupID := gateway.AttributionGroupID(org.ID, gateway.EnvSandbox)

	// The group: exactly the visible members.
	r := g.call(t, http.MethodGet, "/fhir/Group/"+groupID, token, "")
	var group struct {
		ResourceType string
		ID           string
		Quantity     int
		Member       []struct {
			Entity struct{ Reference string }
			Period *struct{ Start, End string }
		}
	}
	if r.status != http.StatusOK || json.Unmarshal(r.body, &group) != nil || group.ID != groupID {
		t.Fatalf("group read: %d %.300s", r.status, r.body)
	}
	inGroup := map[string]bool{}
	for _, m := range group.Member {
		inGroup[strings.TrimPrefix(m.Entity.Reference, "Patient/")] = true
		if m.Period == nil || m.Period.Start == "" {
			t.Errorf("member %s without attribution period", m.Entity.Reference)
		}
	}
	if !mapsEqual(inGroup, visible) || group.Quantity != len(visible) {
		t.Errorf("group has %d members (quantity %d), want the %d visible ones", len(inGroup), group.Quantity, len(visible))
	}
	outcome(t, "someone else's group", g.call(t, http.MethodGet, "/fhir/Group/"+gateway.AttributionGroupID(other.ID, gateway.EnvSandbox), token, ""), http.StatusNotFound)

	// Kick-off: POST $davinci-data-export with a Parameters body.
	body := `{"resourceType":"Parameters","parameter":[{"name":"exportType","valueCanonical":"hl7.fhir.us.davinci-pdex#provider-download"}]}`
	r = g.call(t, http.MethodPost, "/fhir/Group/"+groupID+"/$davinci-data-export", token, body,
		"Prefer", "respond-async", "Accept", "application/fhir+json", "Content-Type", "application/fhir+json")
	statusURL := r.header.Get("Content-Location")
	if r.status != http.StatusAccepted || !strings.HasPrefix(statusURL, g.URL+"/fhir/bulkstatus/") {
		t.Fatalf("kick-off: %d Content-Location %q %s", r.status, statusURL, r.body)
	}
	outcome(t, "cross-organization poll", g.call(t, http.MethodGet, statusURL, otherToken, ""), http.StatusNotFound)

	r = g.poll(t, statusURL, token)
	if r.status != http.StatusOK || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("completion: %d %s %s", r.status, r.header.Get("Content-Type"), r.body)
	}
	if _, err := http.ParseTime(r.header.Get("Expires")); err != nil {
		t.Errorf("Expires %q is not an HTTP-date", r.header.Get("Expires"))
	}
	var m manifest
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	json.Unmarshal(r.body, &raw)
	if _, ok := raw["error"].([]any); !ok {
		t.Errorf("manifest error is not an array: %s", r.body)
	}
	tt, err := time.Parse(time.RFC3339Nano, m.TransactionTime)
	if err != nil || m.RequiresAccessToken == nil || !*m.RequiresAccessToken ||
		m.Request != g.URL+"/fhir/Group/"+groupID+"/$davinci-data-export" || len(m.Output) == 0 {
		t.Fatalf("manifest %s", r.body)
	}

	// Every file: NDJSON of its type, counts = lines, profiles, no money,
	// only the group's members.
	seen := map[string]bool{}
	refs := map[string]bool{}
	types := map[string]int{}
	for _, o := range m.Output {
		if !strings.HasPrefix(o.URL, g.URL+"/fhir/bulkfiles/") {
			t.Errorf("file URL %s", o.URL)
		}
		outcome(t, "file without a token", g.call(t, http.MethodGet, o.URL, "", ""), http.StatusUnauthorized)
		outcome(t, "file with another organization's token", g.call(t, http.MethodGet, o.URL, otherToken, ""), http.StatusNotFound)
		r := g.call(t, http.MethodGet, o.URL, token, "")
		if r.status != http.StatusOK || r.header.Get("Content-Type") != "application/fhir+ndjson" {
			t.Fatalf("download %s: %d %s", o.URL, r.status, r.header.Get("Content-Type"))
		}
		lines := 0
		sc := bufio.NewScanner(strings.NewReader(string(r.body)))
		sc.Buffer(nil, 16<<20)
		for sc.Scan() {
			lines++
			var res map[string]any
			if err := json.Unmarshal(sc.Bytes(), &res); err != nil {
				t.Fatalf("%s line %d is not JSON: %v", o.URL, lines, err)
			}
			key := res["resourceType"].(string) + "/" + res["id"].(string)
			if res["resourceType"] != o.Type || res["id"] == "" {
				t.Errorf("%s in the %s file", key, o.Type)
			}
			if seen[key] {
				t.Errorf("%s exported twice", key)
			}
			seen[key] = true
			meta, _ := res["meta"].(map[string]any)
			profiles, _ := meta["profile"].([]any)
			lu, _ := time.Parse(time.RFC3339Nano, str(meta["lastUpdated"]))
			if len(profiles) == 0 || lu.IsZero() || lu.After(tt) {
				t.Errorf("%s meta %v (transactionTime %s)", key, meta, m.TransactionTime)
			}
			if p := moneyPaths(res, res["resourceType"].(string)); len(p) > 0 {
				t.Errorf("money in Provider Access output: %v", p)
			}
			collectRefs(res, refs)
			for _, ref := range patientRefs(res) {
				if !visible[ref] {
					t.Errorf("%s refers to Patient/%s, who is not a visible member of the group", key, ref)
				}
			}
		}
		if lines != o.Count {
			t.Errorf("%s: %d lines, manifest count %d", o.URL, lines, o.Count)
		}
		types[o.Type] += lines
	}
	for id := range visible {
		if !seen["Patient/"+id] {
			t.Errorf("visible member %s not exported", id)
		}
	}
	t.Logf("exported %v for %d visible members", types, len(visible))
	for _, typ := range []string{"Patient", "Coverage", "ExplanationOfBenefit", "Encounter", "Practitioner", "Organization"} {
		if types[typ] == 0 {
			t.Errorf("no %s exported (%v)", typ, types)
		}
	}
	// Every reference in the export resolves within it.
	for ref := range refs {
		if !seen[ref] {
			t.Errorf("reference %s does not resolve within the export", ref)
		}
	}

	// DELETE: 202, then 404 for the status and the files.
	r = g.call(t, http.MethodDelete, statusURL, token, "")
	if r.status != http.StatusAccepted {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	outcome(t, "status after delete", g.call(t, http.MethodGet, statusURL, token, ""), http.StatusNotFound)
	outcome(t, "file after delete", g.call(t, http.MethodGet, m.Output[0].URL, token, ""), http.StatusNotFound)
	outcome(t, "second delete", g.call(t, http.MethodDelete, statusURL, token, ""), http.StatusNotFound)
}

func str(v any) string { s, _ := v.(string); return s }

func mapsEqual(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

// moneyPaths returns the money elements in a resource: amount, total,
// benefitBalance, currency, payment.adjustment and payment.date.
func moneyPaths(v any, path string) []string {
	var out []string
	switch v := v.(type) {
	case map[string]any:
		for k, c := range v {
			p := path + "." + k
			if k == "amount" || k == "total" || k == "benefitBalance" || k == "currency" ||
				(strings.HasSuffix(path, ".payment") && (k == "adjustment" || k == "date")) {
				out = append(out, p)
			}
			out = append(out, moneyPaths(c, p)...)
		}
	case []any:
		for _, c := range v {
			out = append(out, moneyPaths(c, path+"[]")...)
		}
	}
	return out
}

// patientRefs returns the member ids of every Patient reference in v.
func patientRefs(v any) []string {
	var out []string
	switch v := v.(type) {
	case map[string]any:
		if ref, ok := v["reference"].(string); ok && strings.HasPrefix(ref, "Patient/") {
			out = append(out, strings.TrimPrefix(ref, "Patient/"))
		}
		if v["resourceType"] == "Patient" {
			out = append(out, str(v["id"]))
		}
		for _, c := range v {
			out = append(out, patientRefs(c)...)
		}
	case []any:
		for _, c := range v {
			out = append(out, patientRefs(c)...)
		}
	}
	return out
}

// collectRefs adds every relative reference "Type/id" in v to refs.
func collectRefs(v any, refs map[string]bool) {
	switch v := v.(type) {
	case map[string]any:
		if ref, ok := v["reference"].(string); ok && strings.Count(ref, "/") == 1 {
			refs[ref] = true
		}
		for _, c := range v {
			collectRefs(c, refs)
		}
	case []any:
		for _, c := range v {
			collectRefs(c, refs)
		}
	}
}

func TestFHIRKickoffErrors(t *testing.T) {
	t.Parallel()
	g := startFHIRGateway(t, 20)
	org := g.Orgs[0]
	_, token := g.token(t, org.ID, gateway.EnvSandbox, "")
	_, narrow := g.token(t, org.ID, gateway.EnvSandbox, "system/Patient.rs system/Group.rs")
	group := "/fhir/Group/" + gateway.AttributionGroupID(org.ID, gateway.EnvSandbox)
	async := []string{"Prefer", "respond-async"}
	cases := []struct {
		name    string
		method  string
		path    string
		token   string
		headers []string
		want    int
	}{
		{"no token", "GET", group + "/$export", "", async, http.StatusUnauthorized},
		{"bad token", "GET", group + "/$export", "not-a-token", async, http.StatusUnauthorized},
		{"bad _since", "GET", group + "/$export?_since=last-tuesday", token, async, http.StatusBadRequest},
		{"unknown _type", "GET", group + "/$export?_type=Spaceship", token, async, http.StatusBadRequest},
		{"_outputFormat text/csv", "GET", group + "/$export?_outputFormat=text/csv", token, async, http.StatusBadRequest},
		{"missing Prefer", "GET", group + "/$export", token, nil, http.StatusBadRequest},
		{"_elements", "GET", group + "/$export?_elements=id", token, async, http.StatusBadRequest},
		{"unsupported _typeFilter", "GET", group + "/$export?_typeFilter=Patient%3Fname%3Dx", token, async, http.StatusBadRequest},
		{"unknown exportType", "POST", group + "/$davinci-data-export?exportType=everything", token, async, http.StatusBadRequest},
		{"someone else's group", "GET", "/fhir/Group/" + gateway.AttributionGroupID(g.Orgs[1].ID, gateway.EnvSandbox) + "/$export", token, async, http.StatusNotFound},
		{"unknown group", "GET", "/fhir/Group/nope/$davinci-data-export", token, async, http.StatusNotFound},
		{"_type outside the token's scopes", "GET", group + "/$export?_type=ExplanationOfBenefit", narrow, async, http.StatusForbidden},
		{"patient not a member ($export)", "POST", group + "/$export?patient=Patient/00000000-0000-0000-0000-000000000001", token, async, http.StatusBadRequest},
		{"unknown FHIR path", "GET", "/fhir/Claim", token, nil, http.StatusNotFound},
	}
	for _, c := range cases {
		outcome(t, c.name, g.call(t, c.method, c.path, c.token, "", c.headers...), c.want)
	}
	if r := g.call(t, "GET", group+"/$export", "", "", async...); r.header.Get("WWW-Authenticate") == "" {
		t.Error("401 without WWW-Authenticate")
	}

	// Lenient: unsupported parameters are ignored and listed in the error file.
	r := g.call(t, "GET", group+"/$export?_type=Patient&_elements=id&foo=1", token, "", "Prefer", "respond-async, handling=lenient")
	if r.status != http.StatusAccepted {
		t.Fatalf("lenient kick-off: %d %s", r.status, r.body)
	}
	statusURL := r.header.Get("Content-Location")
	// A duplicate of a job in flight: 429 with Retry-After.
	dup := g.call(t, "GET", group+"/$export?_type=Patient&_elements=id&foo=1", token, "", "Prefer", "respond-async, handling=lenient")
	outcome(t, "duplicate in flight", dup, http.StatusTooManyRequests)
	if dup.header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	// Polling faster than allowed: 429 (only while the job is in flight).
	first := g.call(t, "GET", statusURL, token, "")
	if first.status == http.StatusAccepted {
		if again := g.call(t, "GET", statusURL, token, ""); again.status != http.StatusTooManyRequests || again.header.Get("Retry-After") == "" {
			t.Errorf("immediate second poll: %d", again.status)
		}
		time.Sleep(1100 * time.Millisecond)
	}
	r = g.poll(t, statusURL, token)
	var m manifest
	if r.status != http.StatusOK || json.Unmarshal(r.body, &m) != nil || len(m.Error) != 1 || m.Error[0].Count != 2 {
		t.Fatalf("lenient manifest: %d %s", r.status, r.body)
	}
	errFile := g.call(t, "GET", m.Error[0].URL, token, "")
	if !strings.Contains(string(errFile.body), "_elements") || !strings.Contains(string(errFile.body), `"resourceType":"OperationOutcome"`) {
		t.Errorf("error file %s", errFile.body)
	}

	// Not in-network (production): 403.
	out, err := g.DB.CreateOrganization(t.Context(), gateway.Organization{Name: "Out", Type: gateway.OrgProviderHealthSystem, NPI: fhirNPI(), TIN: "123456789"})
	if err != nil {
		t.Fatal(err)
	}
	_, outToken := g.token(t, out.ID, gateway.EnvProduction, "")
	outcome(t, "not in-network", g.call(t, "GET", "/fhir/Patient/$export", outToken, "", async...), http.StatusForbidden)
}

func TestFHIRDiscoveryAndGroupSearch(t *testing.T) {
	t.Parallel()
	g := startFHIRGateway(t, 20)
	org := g.Orgs[2]
	_, token := g.token(t, org.ID, gateway.EnvSandbox, "")

	r := g.call(t, "GET", "/fhir/metadata", "", "")
	var cs struct {
		ResourceType string
		Instantiates []string
		Rest         []struct {
			Resource []struct {
				Type        string
				Interaction []struct{ Code string }
				SearchParam []struct{ Name, Definition, Type string }
				Operation   []struct{ Name, Definition string }
			}
		}
	}
	if r.status != 200 || json.Unmarshal(r.body, &cs) != nil || cs.ResourceType != "CapabilityStatement" {
		t.Fatalf("metadata: %d %.200s", r.status, r.body)
	}
	for _, want := range []string{
		"http://hl7.org/fhir/us/davinci-pdex/CapabilityStatement/pdex-provider-access-server",
		"http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data",
	} {
		if !slices.Contains(cs.Instantiates, want) {
			t.Errorf("CapabilityStatement does not instantiate %s", want)
		}
	}
	var groupRes bool
	for _, res := range cs.Rest[0].Resource {
		if res.Type != "Group" {
			continue
		}
		groupRes = true
		var codes, params, ops []string
		for _, i := range res.Interaction {
			codes = append(codes, i.Code)
		}
		for _, p := range res.SearchParam {
			params = append(params, p.Name)
		}
		for _, o := range res.Operation {
			ops = append(ops, o.Definition)
		}
		slices.Sort(codes)
		slices.Sort(params)
		slices.Sort(ops)
		if !slices.Equal(codes, []string{"read", "search-type"}) ||
			!slices.Equal(params, []string{"characteristic", "characteristic-value-reference", "code", "identifier"}) ||
			!slices.Equal(ops, []string{"http://hl7.org/fhir/us/davinci-atr/OperationDefinition/davinci-data-export", "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export"}) {
			t.Errorf("Group capability: %v %v %v", codes, params, ops)
		}
	}
	if !groupRes {
		t.Error("no Group in the CapabilityStatement")
	}

	r = g.call(t, "GET", "/fhir/.well-known/smart-configuration", "", "")
	var smart map[string]any
	if r.status != 200 || json.Unmarshal(r.body, &smart) != nil || smart["token_endpoint"] != g.URL+"/oauth/token" {
		t.Fatalf("smart-configuration: %d %s", r.status, r.body)
	}
	for _, k := range []string{"grant_types_supported", "token_endpoint_auth_methods_supported", "token_endpoint_auth_signing_alg_values_supported", "scopes_supported", "capabilities", "code_challenge_methods_supported"} {
		if smart[k] == nil {
			t.Errorf("smart-configuration lacks %s", k)
		}
	}

	outcome(t, "Group search without a token", g.call(t, "GET", "/fhir/Group", "", ""), http.StatusUnauthorized)
	groupID := gateway.AttributionGroupID(org.ID, gateway.EnvSandbox)
	total := func(query string) int {
		t.Helper()
		r := g.call(t, "GET", "/fhir/Group"+query, token, "")
		var b struct {
			ResourceType string
			Total        int
			Entry        []struct {
				FullURL  string `json:"fullUrl"`
				Resource struct{ ID string }
			}
		}
		if r.status != 200 || json.Unmarshal(r.body, &b) != nil || b.ResourceType != "Bundle" || len(b.Entry) > b.Total {
			t.Fatalf("search %s: %d %.300s", query, r.status, r.body)
		}
		for _, e := range b.Entry {
			if e.Resource.ID != groupID || e.FullURL != g.URL+"/fhir/Group/"+groupID {
				t.Errorf("search %s returned %s", query, e.Resource.ID)
			}
		}
		return b.Total
	}
	for q, want := range map[string]int{
		"":                       1,
		"?identifier=" + org.NPI: 1,
		"?identifier=http://hl7.org/fhir/sid/us-npi|" + org.NPI: 1,
		"?identifier=" + g.Orgs[0].NPI:                          0,
		"?code=pdexprovidergroup":                               1,
		"?characteristic=http://hl7.org/fhir/us/davinci-pdex/CodeSystem/PdexMemberAttributionCS|pdexprovidergroup": 1,
		"?characteristic=other":                                        0,
		"?characteristic-value-reference=Organization/" + org.ID:       1,
		"?characteristic-value-reference=Organization/" + g.Orgs[0].ID: 0,
		"?_summary=count":                       1,
		"?_summary=true&code=pdexprovidergroup": 1,
		"?_id=" + groupID:                       1,
		"?_id=" + gateway.AttributionGroupID(g.Orgs[0].ID, gateway.EnvSandbox): 0,
	} {
		if got := total(q); got != want {
			t.Errorf("search %q: total %d, want %d", q, got, want)
		}
	}
	outcome(t, "unsupported search parameter", g.call(t, "GET", "/fhir/Group?name=x", token, ""), http.StatusBadRequest)
	if r := g.call(t, "GET", "/fhir/Group?name=x", token, "", "Prefer", "handling=lenient"); r.status != 200 {
		t.Errorf("lenient search: %d", r.status)
	}
	r = g.call(t, "GET", "/fhir/Group?_summary=true", token, "")
	if strings.Contains(string(r.body), `"member"`) || !strings.Contains(string(r.body), "SUBSETTED") {
		t.Errorf("_summary=true: %.400s", r.body)
	}
}

// TestDocsWalkthrough runs the curl walkthrough of the public API
// documentation (docs/provider-access-api.md, section "Walkthrough")
// against a real gateway: through bash when bash, curl and jq are
// installed, and always through walkthroughShell, a small interpreter of
// exactly the commands the walkthrough uses.
func TestDocsWalkthrough(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../docs/provider-access-api.md")
	if err != nil {
		t.Fatal(err)
	}
	script := walkthroughScript(t, string(doc))
	g := startFHIRGateway(t, 30)
	c, secret, err := g.DB.CreateClient(t.Context(), store.NewClient{
		OrganizationID: g.Orgs[0].ID, Name: "walkthrough", Environment: gateway.EnvSandbox, AccessType: gateway.ProviderAccess,
	})
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"GATEWAY": g.URL, "CLIENT_ID": c.ID, "CLIENT_SECRET": secret}
	check := func(mode, dir, stdout string) {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(dir, "export.ndjson"))
		if err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		for _, l := range lines {
			var r struct{ ResourceType string }
			if json.Unmarshal([]byte(l), &r) != nil || r.ResourceType != "Patient" {
				t.Fatalf("%s: export.ndjson line %.100s", mode, l)
			}
		}
		if !strings.HasSuffix(strings.TrimSpace(stdout), "202") {
			t.Errorf("%s: the DELETE printed %q, want 202", mode, stdout)
		}
	}

	dir := t.TempDir()
	sh := &walkthroughShell{t: t, vars: env, dir: dir}
	for _, stmt := range script {
		sh.run(stmt)
	}
	check("interpreter", dir, sh.stdout.String())

	_, errBash := exec.LookPath("bash")
	_, errCurl := exec.LookPath("curl")
	_, errJQ := exec.LookPath("jq")
	if errBash != nil || errCurl != nil || errJQ != nil {
		t.Log("bash, curl or jq missing: the walkthrough ran through the interpreter only")
		return
	}
	dir = t.TempDir()
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", strings.Join(script, "\n"))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GATEWAY="+g.URL, "CLIENT_ID="+c.ID, "CLIENT_SECRET="+secret)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("bash walkthrough: %v\n%s", err, stderr.String())
	}
	check("bash", dir, stdout.String())
}

// walkthroughScript returns the statements of the documentation's
// walkthrough: the sh blocks of the section, without the block that only
// exports the reader's settings (the test sets them), continuation lines
// joined, comments dropped.
func walkthroughScript(t testing.TB, doc string) []string {
	t.Helper()
	_, section, ok := strings.Cut(doc, "\n## Walkthrough\n")
	if !ok {
		t.Fatal("docs/provider-access-api.md has no Walkthrough section")
	}
	if i := strings.Index(section, "\n## "); i >= 0 {
		section = section[:i]
	}
	var stmts []string
	for _, block := range strings.Split(section, "```sh\n")[1:] {
		block, _, _ = strings.Cut(block, "```")
		var lines []string
		setup := true
		for _, l := range strings.Split(strings.ReplaceAll(block, "\\\n", " "), "\n") {
			l = strings.TrimSpace(l)
			if l == "" || strings.HasPrefix(l, "#") {
				continue
			}
			if !strings.HasPrefix(l, "export ") {
				setup = false
			}
			lines = append(lines, l)
		}
		if !setup {
			stmts = append(stmts, lines...)
		}
	}
	if len(stmts) < 5 {
		t.Fatalf("walkthrough has only %d statements", len(stmts))
	}
	return stmts
}

// walkthroughShell interprets the walkthrough's statements: assignments
// from command substitutions of curl (optionally piped into jq -r PATH),
// until-loops polling curl's output, and curl commands.
type walkthroughShell struct {
	t      testing.TB
	vars   map[string]string
	dir    string
	stdout strings.Builder
}

var (
	assignRE = regexp.MustCompile(`^([A-Z_]+)=\$\((.*)\)$`)
	untilRE  = regexp.MustCompile(`^until \[ "\$\((.*)\)" = (\S+) \]; do sleep (\d+); done$`)
)

func (sh *walkthroughShell) run(stmt string) {
	sh.t.Helper()
	switch {
	case assignRE.MatchString(stmt):
		m := assignRE.FindStringSubmatch(stmt)
		sh.vars[m[1]] = strings.TrimRight(sh.pipeline(m[2]), "\n")
	case untilRE.MatchString(stmt):
		m := untilRE.FindStringSubmatch(stmt)
		wait, _ := strconv.Atoi(m[3])
		for deadline := time.Now().Add(60 * time.Second); ; {
			if strings.TrimRight(sh.pipeline(m[1]), "\n") == m[2] {
				break
			}
			if time.Now().After(deadline) {
				sh.t.Fatalf("walkthrough: %s never became %s", m[1], m[2])
			}
			time.Sleep(time.Duration(wait) * time.Second)
		}
	case strings.HasPrefix(stmt, "curl "):
		sh.stdout.WriteString(sh.pipeline(stmt))
	default:
		sh.t.Fatalf("walkthrough statement the interpreter does not know: %s", stmt)
	}
}

// pipeline runs "curl ARGS" or "curl ARGS | jq -r 'PATH'" and returns its
// standard output.
func (sh *walkthroughShell) pipeline(s string) string {
	sh.t.Helper()
	curl, jq, piped := strings.Cut(s, " | ")
	out := sh.curl(shellWords(sh.t, strings.TrimSpace(curl), sh.vars))
	if !piped {
		return out
	}
	args := shellWords(sh.t, strings.TrimSpace(jq), sh.vars)
	if len(args) != 3 || args[0] != "jq" || args[1] != "-r" {
		sh.t.Fatalf("walkthrough: unsupported jq %q", jq)
	}
	var v any
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		sh.t.Fatalf("walkthrough: jq input is not JSON: %.200s", out)
	}
	for _, step := range regexp.MustCompile(`\.([A-Za-z_]+)|\[(\d+)\]`).FindAllStringSubmatch(args[2], -1) {
		switch {
		case step[1] != "":
			m, _ := v.(map[string]any)
			v = m[step[1]]
		default:
			i, _ := strconv.Atoi(step[2])
			a, _ := v.([]any)
			if i >= len(a) {
				v = nil
				continue
			}
			v = a[i]
		}
	}
	if s, ok := v.(string); ok {
		return s + "\n"
	}
	b, _ := json.Marshal(v)
	return string(b) + "\n"
}

// curl runs the curl options the walkthrough uses: -s, -o FILE, -w FORMAT
// (%{http_code}, %header{name}, \n), -X, -H, -u, -d, and the URL.
func (sh *walkthroughShell) curl(args []string) string {
	sh.t.Helper()
	if len(args) == 0 || args[0] != "curl" {
		sh.t.Fatalf("walkthrough: not a curl command: %q", args)
	}
	var method, output, format, target, user string
	var data []string
	header := http.Header{}
	for i := 1; i < len(args); i++ {
		next := func() string {
			i++
			if i >= len(args) {
				sh.t.Fatalf("walkthrough: %s needs a value", args[i-1])
			}
			return args[i]
		}
		switch a := args[i]; a {
		case "-s", "-S", "-sS":
		case "-o":
			output = next()
		case "-w":
			format = next()
		case "-X":
			method = next()
		case "-H":
			k, v, _ := strings.Cut(next(), ":")
			header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
		case "-u":
			user = next()
		case "-d":
			data = append(data, next())
		default:
			if strings.HasPrefix(a, "-") {
				sh.t.Fatalf("walkthrough: curl option %s is not interpreted", a)
			}
			target = a
		}
	}
	var body io.Reader
	if data != nil {
		body = strings.NewReader(strings.Join(data, "&"))
		if header.Get("Content-Type") == "" {
			header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		if method == "" {
			method = http.MethodPost
		}
	}
	if method == "" {
		method = http.MethodGet
	}
	req, err := http.NewRequest(method, target, body)
	if err != nil {
		sh.t.Fatalf("walkthrough: %v", err)
	}
	req.Header = header
	if u, p, ok := strings.Cut(user, ":"); ok {
		req.SetBasicAuth(u, p)
	}
	resp := do(sh.t, req)
	var out strings.Builder
	switch output {
	case "":
		out.Write(resp.body)
	case "/dev/null":
	default:
		if err := os.WriteFile(filepath.Join(sh.dir, output), resp.body, 0o600); err != nil {
			sh.t.Fatal(err)
		}
	}
	w := strings.ReplaceAll(format, `\n`, "\n")
	w = strings.ReplaceAll(w, "%{http_code}", strconv.Itoa(resp.status))
	w = regexp.MustCompile(`%header\{([^}]+)\}`).ReplaceAllStringFunc(w, func(m string) string {
		return resp.header.Get(m[len("%header{") : len(m)-1])
	})
	out.WriteString(w)
	return out.String()
}

// shellWords splits a command line as a POSIX shell would for the
// walkthrough: quotes, backslash escapes, $VAR expansion (none inside
// single quotes).
func shellWords(t testing.TB, s string, vars map[string]string) []string {
	t.Helper()
	var words []string
	var w strings.Builder
	inWord := false
	expand := func(i int) int { // s[i] == '$'; returns the index after the name
		j := i + 1
		for j < len(s) && (s[j] == '_' || s[j] >= 'A' && s[j] <= 'Z' || s[j] >= 'a' && s[j] <= 'z' || s[j] >= '0' && s[j] <= '9') {
			j++
		}
		if j == i+1 {
			w.WriteByte('$')
			return j
		}
		v, ok := vars[s[i+1:j]]
		if !ok {
			t.Fatalf("walkthrough: $%s is not set", s[i+1:j])
		}
		w.WriteString(v)
		return j
	}
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
			i++
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				t.Fatalf("walkthrough: unterminated quote in %s", s)
			}
			w.WriteString(s[i+1 : i+1+j])
			inWord, i = true, i+j+2
		case c == '"':
			inWord = true
			for i++; i < len(s) && s[i] != '"'; {
				switch {
				case s[i] == '\\' && i+1 < len(s) && strings.IndexByte(`$"\`, s[i+1]) >= 0:
					w.WriteByte(s[i+1])
					i += 2
				case s[i] == '$':
					i = expand(i)
				default:
					w.WriteByte(s[i])
					i++
				}
			}
			i++
		case c == '\\' && i+1 < len(s):
			w.WriteByte(s[i+1])
			inWord, i = true, i+2
		case c == '$':
			inWord = true
			i = expand(i)
		default:
			w.WriteByte(c)
			inWord = true
			i++
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	return words
}
