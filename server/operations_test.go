package server_test

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"example.com/gateway/export"
	"example.com/gateway/gateway"
	"example.com/gateway/sandbox"
)

// GraphQL's operations end to end over HTTP with real tokens: bulk export
// (startBulkExport, bulkExportJob(s), cancelBulkExport) run by a real
// export worker, and the operators' import runs and audit trail.

const (
	qStartExport = `mutation($input: StartBulkExportInput!) {
  startBulkExport(input: $input) { clientMutationId job { id status exportType types groupId statusUrl progress } } }`
	qExportJob = `query($id: ID!) { bulkExportJob(id: $id) {
  id status exportType types since until receivedAt startedAt completedAt transactionTime progress statusUrl
  output { type url count } errors { type url count } expiresAt error } }`
	qExportJobs = `query($first: Int, $after: String) { bulkExportJobs(first: $first, after: $after) {
  edges { cursor node { id status } } pageInfo { hasNextPage endCursor } } }`
	qCancelExport = `mutation($input: CancelBulkExportInput!) {
  cancelBulkExport(input: $input) { clientMutationId job { id status output { url } } } }`
	qImportRuns = `query($first: Int) { importRuns(first: $first) { totalCount
  edges { cursor node { id kind files startedBy outcome counts { type loaded rejected } } } pageInfo { hasNextPage } } }`
	qAuditEvents = `query($first: Int, $after: String, $filter: AuditEventFilter) { auditEvents(first: $first, after: $after, filter: $filter) {
  edges { cursor node { id at principalKind principalId organizationId environment operation memberId resources outcome exportJobId } }
  pageInfo { hasNextPage endCursor } } }`
)

// operationsGateway is a DEV_MODE gateway with a small sandbox, an export
// worker and two registered organizations, each with a sandbox Provider
// Access client.
type operationsGateway struct {
	*testGateway
	operator, admin string // people's tokens
	org, otherOrg   string
	clientID        string
	client, other   string // the clients' tokens
}

func startOperationsGateway(t *testing.T) *operationsGateway {
	t.Helper()
	dir := t.TempDir()
	g := newGateway(t, map[string]string{"DEV_MODE": "true", "DEV_OPERATORS": portalOperator, "EXPORT_DIR": dir})
	gen, err := sandbox.New(sandbox.Options{Members: 40, Seed: 7, Today: gateway.DateOf(time.Now())})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.DB.ReplaceSandbox(t.Context(), gen); err != nil {
		t.Fatal(err)
	}
	// The worker, as `serve` runs it, on this gateway's database and files.
	ctx, cancel := context.WithCancel(context.Background())
	runner := &export.Runner{Service: &export.Service{DB: g.DB, PublicURL: g.URL, Dir: dir},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Poll: 50 * time.Millisecond}
	done := make(chan error, 1)
	go func() { done <- runner.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	og := &operationsGateway{testGateway: g, operator: g.personToken(t, portalOperator)}
	register := func(email string) (admin, org, clientID, token string) {
		admin = g.personToken(t, email)
		d := g.must(t, admin, qRegister, map[string]any{"input": map[string]any{
			"name": "Clinic " + email, "type": "PROVIDER_HEALTH_SYSTEM", "npi": validNPI(), "tin": "123456789"}})
		org = portalStr(d, "registerOrganization.organization.id")
		d = g.must(t, admin, qCreateClient, map[string]any{"input": map[string]any{
			"organizationId": org, "name": "sandbox", "environment": "SANDBOX", "accessType": "PROVIDER_ACCESS"}})
		clientID = portalStr(d, "createClient.client.id")
		return admin, org, clientID, g.secretToken(t, clientID, portalStr(d, "createClient.clientSecret"), "")
	}
	og.admin, og.org, og.clientID, og.client = register("admin@ops-clinic.test")
	_, og.otherOrg, _, og.other = register("admin@ops-other.test")
	return og
}

// waitForExport polls bulkExportJob until the job leaves QUEUED and RUNNING.
func (g *operationsGateway) waitForExport(t *testing.T, id string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		job := g.must(t, g.client, qExportJob, map[string]any{"id": id})["bulkExportJob"].(map[string]any)
		if s := portalStr(job, "status"); s != "QUEUED" && s != "RUNNING" {
			return job
		}
		if time.Now().After(deadline) {
			t.Fatalf("export still in flight: %v", job)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// wantErrors checks that r has no data at field and exactly the error codes
// want (and, when given, the extensions.field of the first).
func wantErrors(t *testing.T, what string, r gqlReply, field string, want []string, wantField string) {
	t.Helper()
	if !slices.Equal(r.codes(), want) {
		t.Errorf("%s: codes %v, want %v (%+v)", what, r.codes(), want, r.Errors)
		return
	}
	if field != "" && portalAt(r.Data, field) != nil {
		t.Errorf("%s: %s = %v, want null", what, field, portalAt(r.Data, field))
	}
	if wantField != "" && r.fields()[0] != wantField {
		t.Errorf("%s: extensions.field %v, want %s", what, r.fields(), wantField)
	}
}

func TestGraphQLBulkExport(t *testing.T) {
	t.Parallel()
	g := startOperationsGateway(t)

	members := g.must(t, g.client, `{ members(first: 100) { totalCount } }`, nil)
	nMembers := int(portalAt(members, "members.totalCount").(float64))
	if nMembers == 0 {
		t.Fatal("the sandbox client sees no member")
	}
	group := portalStr(g.must(t, g.client, `{ attributionGroups { id } }`, nil), "attributionGroups.0.id")

	// Start: the job is queued at once, with the FHIR status URL of the same id.
	d := g.must(t, g.client, qStartExport, map[string]any{"input": map[string]any{
		"clientMutationId": "e1", "groupId": group, "types": []string{"ExplanationOfBenefit", "Patient"},
		"exportType": "PROVIDER_DOWNLOAD"}})
	job := portalAt(d, "startBulkExport.job").(map[string]any)
	id := portalStr(job, "id")
	if portalStr(d, "startBulkExport.clientMutationId") != "e1" || portalStr(job, "status") != "QUEUED" ||
		portalStr(job, "groupId") != group || portalStr(job, "exportType") != "PROVIDER_DOWNLOAD" ||
		portalStr(job, "statusUrl") != g.URL+"/fhir/bulkstatus/"+id ||
		joined(portalAt(job, "types")) != "Patient ExplanationOfBenefit" {
		t.Fatalf("startBulkExport: %v", d)
	}

	// The worker completes it; the manifest's files come with their counts.
	done := g.waitForExport(t, id)
	if portalStr(done, "status") != "COMPLETED" || portalAt(done, "progress") != 1.0 ||
		portalStr(done, "transactionTime") == "" || portalStr(done, "completedAt") == "" ||
		portalStr(done, "expiresAt") == "" || portalAt(done, "error") != nil {
		t.Fatalf("completed job: %v", done)
	}
	counts := map[string]int{}
	for _, f := range portalAt(done, "output").([]any) {
		counts[portalStr(f, "type")] += int(portalAt(f, "count").(float64))
		if !strings.HasPrefix(portalStr(f, "url"), g.URL+"/fhir/bulkfiles/"+id+"/") {
			t.Errorf("file URL %s", portalStr(f, "url"))
		}
	}
	if counts["Patient"] != nMembers || counts["ExplanationOfBenefit"] == 0 || len(counts) != 2 {
		t.Errorf("output counts %v, want %d patients and some EOBs", counts, nMembers)
	}
	if _, ok := portalAt(done, "errors").([]any); !ok {
		t.Errorf("errors is not a list: %v", done)
	}
	// The file behind a URL holds as many lines as its count.
	first := portalAt(done, "output.0").(map[string]any)
	req, _ := http.NewRequest(http.MethodGet, portalStr(first, "url"), nil)
	req.Header.Set("Authorization", "Bearer "+g.client)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	lines := 0
	for sc := bufio.NewScanner(resp.Body); sc.Scan(); {
		lines++
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || lines != int(portalAt(first, "count").(float64)) {
		t.Errorf("file %s: %s, %d lines, manifest count %v", portalStr(first, "url"), resp.Status, lines, portalAt(first, "count"))
	}

	// The list shows it; a page of one has a next page after a second job.
	list := g.must(t, g.client, qExportJobs, map[string]any{"first": 10})
	if portalStr(list, "bulkExportJobs.edges.0.node.id") != id {
		t.Errorf("bulkExportJobs: %v", list)
	}

	// Another organization's client, and a person: NOT_FOUND, as if it did not exist.
	for who, token := range map[string]string{"other org's client": g.other, "admin": g.admin} {
		wantErrors(t, who+" reads the job", g.gql(t, token, qExportJob, map[string]any{"id": id}), "bulkExportJob", []string{"NOT_FOUND"}, "")
		wantErrors(t, who+" cancels the job", g.gql(t, token, qCancelExport, map[string]any{"input": map[string]any{"id": id}}),
			"cancelBulkExport", []string{"NOT_FOUND"}, "")
		if l := g.must(t, token, qExportJobs, nil); len(portalAt(l, "bulkExportJobs.edges").([]any)) != 0 {
			t.Errorf("%s lists jobs: %v", who, l)
		}
	}
	wantErrors(t, "unknown id", g.gql(t, g.client, qExportJob, map[string]any{"id": "not-a-job"}), "bulkExportJob", []string{"NOT_FOUND"}, "")
	wantErrors(t, "admin starts an export", g.gql(t, g.admin, qStartExport, map[string]any{"input": map[string]any{}}),
		"startBulkExport", []string{"FORBIDDEN"}, "")
	wantErrors(t, "other org's group", g.gql(t, g.other, qStartExport, map[string]any{"input": map[string]any{"groupId": group}}),
		"startBulkExport", []string{"NOT_FOUND"}, "")

	// Bad input: BAD_USER_INPUT with the input field; an unknown enum value
	// fails validation before anything runs.
	bad := []struct {
		name  string
		input map[string]any
		field string
	}{
		{"unknown type", map[string]any{"types": []string{"Bogus"}}, "input.types"},
		{"no type", map[string]any{"types": []string{}}, "input.types"},
		{"until before since", map[string]any{"since": "2025-02-01T00:00:00Z", "until": "2025-01-01T00:00:00Z"}, "input.until"},
		{"bad type filter", map[string]any{"types": []string{"Patient"}, "typeFilters": []string{"Nonsense"}}, "input.typeFilters"},
		{"not a member", map[string]any{"patientIds": []string{"00000000-0000-0000-0000-000000000000"}}, "input.patientIds"},
	}
	for _, b := range bad {
		wantErrors(t, b.name, g.gql(t, g.client, qStartExport, map[string]any{"input": b.input}), "startBulkExport", []string{"BAD_USER_INPUT"}, b.field)
	}
	wantErrors(t, "unknown exportType", g.gql(t, g.client, qStartExport, map[string]any{"input": map[string]any{"exportType": "PROVIDER_EVERYTHING"}}),
		"", []string{"GRAPHQL_VALIDATION_FAILED"}, "")
	wantErrors(t, "first: 101", g.gql(t, g.client, qExportJobs, map[string]any{"first": 101}), "", []string{"BAD_USER_INPUT"}, "first")
	wantErrors(t, "bad cursor", g.gql(t, g.client, qExportJobs, map[string]any{"after": "nope"}), "", []string{"BAD_USER_INPUT"}, "after")

	// Cancel: the job is CANCELLED (bulkExportJob keeps showing it, without
	// files), the FHIR status URL answers 404, and a second cancel NOT_FOUND.
	d = g.must(t, g.client, qStartExport, map[string]any{"input": map[string]any{"types": []string{"Patient"}, "exportType": "PROVIDER_SNAPSHOT"}})
	second := portalStr(d, "startBulkExport.job.id")
	list = g.must(t, g.client, qExportJobs, map[string]any{"first": 1})
	if portalStr(list, "bulkExportJobs.edges.0.node.id") != second || portalAt(list, "bulkExportJobs.pageInfo.hasNextPage") != true {
		t.Errorf("first page of one: %v", list)
	}
	next := g.must(t, g.client, qExportJobs, map[string]any{"first": 1, "after": portalStr(list, "bulkExportJobs.pageInfo.endCursor")})
	if portalStr(next, "bulkExportJobs.edges.0.node.id") != id {
		t.Errorf("second page: %v", next)
	}
	for _, jobID := range []string{second, id} { // in flight (or just done), and completed
		d = g.must(t, g.client, qCancelExport, map[string]any{"input": map[string]any{"clientMutationId": "c1", "id": jobID}})
		if portalStr(d, "cancelBulkExport.clientMutationId") != "c1" || portalStr(d, "cancelBulkExport.job.status") != "CANCELLED" ||
			len(portalAt(d, "cancelBulkExport.job.output").([]any)) != 0 {
			t.Errorf("cancel %s: %v", jobID, d)
		}
		if s := portalStr(g.must(t, g.client, qExportJob, map[string]any{"id": jobID}), "bulkExportJob.status"); s != "CANCELLED" {
			t.Errorf("after cancel: status %s", s)
		}
		status, _ := http.NewRequest(http.MethodGet, g.URL+"/fhir/bulkstatus/"+jobID, nil)
		status.Header.Set("Authorization", "Bearer "+g.client)
		if resp, err := http.DefaultClient.Do(status); err != nil || resp.StatusCode != http.StatusNotFound {
			t.Errorf("FHIR status after cancel: %v %v", resp, err)
		} else {
			resp.Body.Close()
		}
		wantErrors(t, "second cancel", g.gql(t, g.client, qCancelExport, map[string]any{"input": map[string]any{"id": jobID}}),
			"cancelBulkExport", []string{"NOT_FOUND"}, "")
	}

	// The worker's reads are audited under the job.
	ev := g.must(t, g.operator, qAuditEvents, map[string]any{"first": 100, "filter": map[string]any{"organizationId": g.org, "operation": "fhir:graphql"}})
	found := false
	for _, e := range portalAt(ev, "auditEvents.edges").([]any) {
		found = found || portalStr(e, "node.exportJobId") == id
	}
	if !found {
		t.Errorf("no audit event of export %s: %v", id, ev)
	}
}

// joined returns a list of strings joined by spaces.
func joined(v any) string {
	var b strings.Builder
	if l, ok := v.([]any); ok {
		for i, x := range l {
			if i > 0 {
				b.WriteString(" ")
			}
			s, _ := x.(string)
			b.WriteString(s)
		}
	}
	return b.String()
}

func TestGraphQLImportRunsAndAuditEvents(t *testing.T) {
	t.Parallel()
	g := startOperationsGateway(t)
	ctx := t.Context()

	// Import runs: operators only.
	run, err := g.DB.StartImportRun(ctx, "attribution", []string{"roster.csv"}, "ops@payer.test", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := g.DB.FinishImportRun(ctx, run, map[string]gateway.ImportCounts{"attribution": {Loaded: 3, Rejected: 1}},
		gateway.ImportSucceeded, ""); err != nil {
		t.Fatal(err)
	}
	d := g.must(t, g.operator, qImportRuns, map[string]any{"first": 10})
	if portalStr(d, "importRuns.edges.0.node.id") != run || portalStr(d, "importRuns.edges.0.node.outcome") != "SUCCEEDED" ||
		portalStr(d, "importRuns.edges.0.node.counts.0.type") != "attribution" ||
		portalAt(d, "importRuns.edges.0.node.counts.0.loaded") != 3.0 || portalAt(d, "importRuns.totalCount") != 1.0 {
		t.Errorf("importRuns: %v", d)
	}
	if d := g.must(t, g.operator, qImportRuns, map[string]any{"first": 0}); len(portalAt(d, "importRuns.edges").([]any)) != 0 ||
		portalAt(d, "importRuns.pageInfo.hasNextPage") != true {
		t.Errorf("importRuns(first: 0): %v", d)
	}
	for who, token := range map[string]string{"provider client": g.client, "admin": g.admin} {
		wantErrors(t, who+" reads import runs", g.gql(t, token, qImportRuns, nil), "importRuns", []string{"FORBIDDEN"}, "")
		wantErrors(t, who+" reads audit events", g.gql(t, token, qAuditEvents, nil), "auditEvents", []string{"FORBIDDEN"}, "")
	}
	wantErrors(t, "importRuns(first: 101)", g.gql(t, g.operator, qImportRuns, map[string]any{"first": 101}), "", []string{"BAD_USER_INPUT"}, "first")
	wantErrors(t, "auditEvents(first: 101)", g.gql(t, g.operator, qAuditEvents, map[string]any{"first": 101}), "", []string{"BAD_USER_INPUT"}, "first")
	wantErrors(t, "auditEvents bad cursor", g.gql(t, g.operator, qAuditEvents, map[string]any{"after": "bm9wZQ"}), "", []string{"BAD_USER_INPUT"}, "after")

	// A member read by the provider client is in the trail, newest first.
	m := g.must(t, g.client, `{ members(first: 2) { edges { node { id } } } }`, nil)
	member := portalStr(m, "members.edges.0.node.id")
	other := portalStr(m, "members.edges.1.node.id")
	g.must(t, g.client, `query ReadOne($id: ID!) { member(id: $id) { id } }`, map[string]any{"id": member})
	d = g.must(t, g.operator, qAuditEvents, map[string]any{"filter": map[string]any{"memberId": member}})
	edges := portalAt(d, "auditEvents.edges").([]any)
	if len(edges) != 2 { // the list read, then the single read
		t.Fatalf("events of the member: %v", d)
	}
	e := portalAt(edges[0], "node").(map[string]any)
	if portalStr(e, "memberId") != member || portalStr(e, "principalKind") != "CLIENT" || portalStr(e, "principalId") != g.clientID ||
		portalStr(e, "organizationId") != g.org || portalStr(e, "environment") != "SANDBOX" ||
		portalStr(e, "operation") != "graphql:query ReadOne" || portalStr(e, "outcome") != "SUCCESS" ||
		portalAt(e, "resources.Patient") != 1.0 || portalAt(e, "exportJobId") != nil {
		t.Errorf("audit event: %v", e)
	}
	if portalStr(edges[1], "node.operation") != "graphql:query" {
		t.Errorf("older event: %v", edges[1])
	}

	// Filters and pages: the client's events, one page at a time, no repeats.
	seen := map[string]bool{}
	var after any
	for pages := 0; ; pages++ {
		d := g.must(t, g.operator, qAuditEvents, map[string]any{"first": 1, "after": after,
			"filter": map[string]any{"principalId": g.clientID, "from": time.Now().Add(-time.Hour).Format(time.RFC3339)}})
		for _, e := range portalAt(d, "auditEvents.edges").([]any) {
			if seen[portalStr(e, "node.id")] {
				t.Fatalf("event %s twice", portalStr(e, "node.id"))
			}
			seen[portalStr(e, "node.id")] = true
		}
		if portalAt(d, "auditEvents.pageInfo.hasNextPage") != true || pages > 10 {
			break
		}
		after = portalStr(d, "auditEvents.pageInfo.endCursor")
	}
	if len(seen) != 3 { // two members in the list read, one single read
		t.Errorf("paged through %d events of the client, want 3", len(seen))
	}
	for name, filter := range map[string]map[string]any{
		"another member":       {"memberId": other, "operation": "graphql:query ReadOne"},
		"another organization": {"organizationId": g.otherOrg},
		"not a uuid":           {"memberId": "nope"},
		"the future":           {"from": time.Now().Add(time.Hour).Format(time.RFC3339)},
	} {
		if d := g.must(t, g.operator, qAuditEvents, map[string]any{"filter": filter}); len(portalAt(d, "auditEvents.edges").([]any)) != 0 {
			t.Errorf("%s: %v", name, d)
		}
	}

	// There is no way to change the trail: the table refuses it.
	if _, err := g.DB.ExecContext(ctx, `DELETE FROM audit_events`); err == nil {
		t.Error("audit events could be deleted")
	}
}

// TestClientJWKSURLInDevMode: in DEV_MODE a client may register an http
// JWKS URL on a loopback host (a local key server); any other http URL is
// still refused.
func TestClientJWKSURLInDevMode(t *testing.T) {
	t.Parallel()
	g := newGateway(t, map[string]string{"DEV_MODE": "true"})
	admin := g.personToken(t, "admin@jwks-clinic.test")
	d := g.must(t, admin, qRegister, map[string]any{"input": map[string]any{
		"name": "JWKS Clinic", "type": "PROVIDER_HEALTH_SYSTEM", "npi": validNPI(), "tin": "123456789"}})
	org := portalStr(d, "registerOrganization.organization.id")
	d = g.must(t, admin, qCreateClient, map[string]any{"input": map[string]any{"organizationId": org, "name": "keys",
		"environment": "SANDBOX", "accessType": "PROVIDER_ACCESS", "jwksUrl": "http://localhost:8081/jwks.json"}})
	client := portalStr(d, "createClient.client.id")
	if client == "" {
		t.Fatalf("createClient with a loopback JWKS URL: %v", d)
	}
	const q = `mutation($input: SetClientJwksInput!) { setClientJwks(input: $input) { client { id } } }`
	g.must(t, admin, q, map[string]any{"input": map[string]any{"clientId": client, "jwksUrl": "http://127.0.0.1:9/jwks"}})
	r := g.gql(t, admin, q, map[string]any{"input": map[string]any{"clientId": client, "jwksUrl": "http://keys.example.test/jwks"}})
	if !slices.Equal(r.codes(), []string{"BAD_USER_INPUT"}) || !slices.Equal(r.fields(), []string{"input.jwksUrl"}) {
		t.Errorf("non-loopback http JWKS URL: %+v", r.Errors)
	}
}
