package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"example.com/gateway/auth"
	"example.com/gateway/export"
	"example.com/gateway/fhir"
	"example.com/gateway/gateway"
	"example.com/gateway/ingest"
	"example.com/gateway/sandbox"
	"example.com/gateway/store"
	"example.com/gateway/store/storetest"
)

var uuidRE = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)

func sample(name string) string { return filepath.Join("..", "testdata", "import", name) }

// runImportCmd runs an import as the command would, on db, and returns its
// summary and error.
func runImportCmd(t *testing.T, db *store.DB, args ...string) (string, error) {
	t.Helper()
	return runImportCmdCtx(t.Context(), t, db, nil, args...)
}

func runImportCmdCtx(ctx context.Context, t *testing.T, db *store.DB, tweak func(*importCommand), args ...string) (string, error) {
	t.Helper()
	cmd, err := parseImportArgs(args)
	if err != nil {
		t.Fatalf("parse %v: %v", args, err)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.StartedBy = &out, "cli:test"
	cmd.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if tweak != nil {
		tweak(cmd)
	}
	err = cmd.Run(ctx, db)
	return out.String(), err
}

func TestParseImportArgs(t *testing.T) {
	t.Parallel()
	cmd, err := parseImportArgs([]string{"a.ndjson", "--kind", "fhir", "b.ndjson", "--max-rejects", "3"})
	if err != nil || cmd.Kind != ingest.KindFHIR || !slices.Equal(cmd.Files, []string{"a.ndjson", "b.ndjson"}) || cmd.MaxRejects != 3 {
		t.Fatalf("parse = %+v, %v", cmd, err)
	}
	cmd, err = parseImportArgs([]string{"--kind=attribution", "--replace-scope", "organization=1234567893", "x.csv"})
	if err != nil || cmd.ReplaceNPI != "1234567893" {
		t.Fatalf("replace scope = %+v, %v", cmd, err)
	}
	for _, bad := range [][]string{
		{"x.ndjson"},            // no kind
		{"--kind", "xml", "x"},  // unknown kind
		{"--kind", "fhir"},      // no file
		{"--kind", "fhir", "-"}, // stdin without --rejects
		{"--kind", "fhir", "--rejects", "r", "-", "x"},                               // stdin and a file
		{"--kind", "fhir", "--max-rejects", "-1", "x"},                               // negative
		{"--kind", "fhir", "--replace-scope", "organization=1234567893", "x"},        // not attribution
		{"--kind", "attribution", "--replace-scope", "organization=1234567890", "x"}, // bad NPI
		{"--kind", "attribution", "--replace-scope", "npi=1234567893", "x"},          // not organization=
		{"--kind", "fhir", "--frobnicate", "x"},                                      // unknown flag
	} {
		if _, err := parseImportArgs(bad); err == nil {
			t.Errorf("parseImportArgs(%q) accepted", bad)
		}
	}
	// Usage errors exit 2.
	var stderr bytes.Buffer
	err = runImport(t.Context(), []string{"--kind", "fhir"}, func(string) string { return "" }, io.Discard, &stderr)
	if ExitCode(err) != 2 || !strings.Contains(stderr.String(), "usage: gateway import") {
		t.Errorf("usage error: exit %d, stderr %q", ExitCode(err), stderr.String())
	}
}

// copySamples copies the sample files to a temporary directory, so that
// rejects files land there.
func copySamples(t *testing.T, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, n := range names {
		b, err := os.ReadFile(sample(n))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, n), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestImportCommandSampleFiles(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	dir := copySamples(t, "providers.ndjson", "members.ndjson", "claims.ndjson", "clinical.ndjson", "attribution.csv", "optout.csv", "bad.ndjson")
	p := func(n string) string { return filepath.Join(dir, n) }

	// The FHIR files in the wrong order: claims and clinical data before the
	// patients and providers they refer to. Lines whose references do not
	// resolve yet are retried once the rest is in.
	out, err := runImportCmd(t, db, "--kind", "fhir", p("clinical.ndjson"), p("claims.ndjson"), p("members.ndjson"), p("providers.ndjson"))
	if err != nil {
		t.Fatalf("import: %v\n%s", err, out)
	}
	for _, want := range []string{"ExplanationOfBenefit       6          0         0", "Patient       3          0         0", "total      24          0         0"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	if _, err := os.Stat(p("claims.ndjson.rejects.ndjson")); !os.IsNotExist(err) {
		t.Errorf("an empty rejects file was left: %v", err)
	}
	if out, err := runImportCmd(t, db, "--kind", "attribution", p("attribution.csv")); err != nil {
		t.Fatalf("attribution: %v\n%s", err, out)
	}
	if out, err := runImportCmd(t, db, "--kind", "optout", p("optout.csv")); err != nil {
		t.Fatalf("optout: %v\n%s", err, out)
	}

	// Every class of bad line: exit 1 beyond --max-rejects, the valid lines
	// loaded all the same, the rejects file says why.
	out, err = runImportCmd(t, db, "--kind", "fhir", p("bad.ndjson"))
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 1 || ExitCode(err) != 1 {
		t.Fatalf("bad lines: err %v, want exit 1\n%s", err, out)
	}
	rejects := readRejects(t, p("bad.ndjson.rejects.ndjson"))
	want := map[int]string{
		2: "",                                          // bad JSON
		3: "resourceType",                              // unsupported type
		4: "Patient.identifier",                        // missing required element
		5: "ExplanationOfBenefit.patient",              // dangling reference
		6: "Practitioner.identifier",                   // bad NPI
		7: "ExplanationOfBenefit.billablePeriod.start", // 2099
	}
	got := map[int]string{}
	for _, r := range rejects {
		got[r.Line] = r.Path
		if r.Reason == "" {
			t.Errorf("line %d: no reason", r.Line)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("rejects %v, want %v", got, want)
	}
	var n int
	db.Get(&n, `SELECT count(*) FROM claims WHERE identifier = 'CLM-9003'`)
	if n != 1 {
		t.Error("the valid claim of bad.ndjson did not load")
	}
	// Within --max-rejects: exit 0. Everything valid is already in: unchanged.
	out, err = runImportCmd(t, db, "--kind", "fhir", "--max-rejects", "6", p("bad.ndjson"))
	if err != nil || !strings.Contains(out, "total       0          2         6") {
		t.Errorf("--max-rejects 6: %v\n%s", err, out)
	}

	// The runs are recorded.
	page, err := db.ImportRuns(t.Context(), 100, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Edges) != 5 || page.Edges[1].Node.Outcome != gateway.ImportFailed || page.Edges[0].Node.Outcome != gateway.ImportSucceeded ||
		page.Edges[0].Node.StartedBy != "cli:test" || page.Edges[4].Node.Counts["Patient"].Loaded != 3 {
		for _, e := range page.Edges {
			t.Logf("%+v", e.Node)
		}
		t.Errorf("import runs recorded wrongly")
	}
}

type rejectLineT struct {
	File   string `json:"file"`
	Line   int    `json:"line"`
	Reason string `json:"reason"`
	Path   string `json:"path"`
}

func readRejects(t *testing.T, path string) []rejectLineT {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []rejectLineT
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r rejectLineT
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("rejects line %q: %v", sc.Text(), err)
		}
		out = append(out, r)
	}
	return out
}

func TestImportCommandStdin(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	var in bytes.Buffer
	for _, n := range []string{"claims.ndjson", "members.ndjson", "providers.ndjson", "bad.ndjson"} {
		b, _ := os.ReadFile(sample(n))
		in.Write(b)
	}
	rejects := filepath.Join(t.TempDir(), "stdin.rejects.ndjson")
	out, err := runImportCmdCtx(t.Context(), t, db, func(c *importCommand) { c.Stdin = &in }, "--kind", "fhir", "--rejects", rejects, "--max-rejects", "10", "-")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	// 6 claim lines + 5 members + 4 providers, then bad.ndjson (lines 16–23).
	rs := readRejects(t, rejects)
	if len(rs) != 6 || rs[0].Line != 17 {
		t.Errorf("rejects %+v", rs)
	}
}

// contentDigest summarizes a database's imported content without the ids
// and times the gateway assigns: two loads of the same data give the same.
func contentDigest(t *testing.T, db *store.DB) map[string]string {
	t.Helper()
	queries := map[string]string{
		"members":   `SELECT concat_ws(',', member_identifier, given_name, family_name, birth_date, gender, city) FROM members`,
		"coverages": `SELECT concat_ws(',', c.identifier, m.member_identifier, c.status, c.plan_name) FROM coverages c JOIN members m ON m.id = c.member_id`,
		"claims": `SELECT concat_ws(',', c.identifier, m.member_identifier, c.type, c.status, c.service_start, c.total_paid, c.sensitive,
		             (SELECT string_agg(concat_ws(':', l.sequence, l.product_code, l.paid), ';' ORDER BY l.sequence) FROM claim_lines l WHERE l.claim_id = c.id),
		             (SELECT string_agg(concat_ws(':', d.sequence, d.code), ';' ORDER BY d.sequence) FROM claim_diagnoses d WHERE d.claim_id = c.id),
		             (SELECT string_agg(concat_ws(':', p.sequence, p.code), ';' ORDER BY p.sequence) FROM claim_procedures p WHERE p.claim_id = c.id))
		           FROM claims c JOIN members m ON m.id = c.member_id`,
		"prior_authorizations": `SELECT concat_ws(',', p.identifier, p.status, p.drug,
		             (SELECT string_agg(concat_ws(':', i.sequence, i.product_code, i.quantity_approved), ';' ORDER BY i.sequence)
		                FROM prior_authorization_items i WHERE i.prior_authorization_id = p.id))
		           FROM prior_authorizations p`,
		"encounters": `SELECT concat_ws(',', identifier, status, period_start) FROM encounters`,
		"clinical":   `SELECT concat_ws(',', resource_type, source_id, code, resource::text) FROM clinical_resources`,
		"sources":    `SELECT concat_ws(',', resource_type, source_id) FROM import_source_ids`,
	}
	// The gateway's ids inside clinical resources (rewritten references)
	// become business keys.
	var ids []struct {
		ID  string `db:"id"`
		Key string `db:"k"`
	}
	if err := db.Select(&ids, `SELECT id::text, 'npi:' || npi AS k FROM practitioners UNION ALL SELECT id::text, 'npi:' || npi FROM organizations`); err != nil {
		t.Fatal(err)
	}
	keys := map[string]string{}
	for _, x := range ids {
		keys[x.ID] = x.Key
	}
	out := map[string]string{}
	for name, q := range queries {
		var rows []string
		if err := db.Select(&rows, q); err != nil {
			t.Fatal(err)
		}
		for i := range rows {
			rows[i] = uuidRE.ReplaceAllStringFunc(rows[i], func(id string) string {
				if k, ok := keys[id]; ok {
					return k
				}
				return id
			})
		}
		slices.Sort(rows)
		out[name] = fmt.Sprintf("%d rows: %x", len(rows), strings.Join(rows, "\n"))
	}
	return out
}

// writeSandboxNDJSON writes the sandbox generator's data mapped to FHIR
// (money included) as one NDJSON file, providers first.
func writeSandboxNDJSON(t *testing.T, path string, members int) int {
	t.Helper()
	g, err := sandbox.New(sandbox.Options{Members: members, Seed: 5, Today: gateway.DateOf(time.Now().UTC())})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	n := 0
	put := func(v any) {
		if err := enc.Encode(v); err != nil {
			t.Fatal(err)
		}
		n++
	}
	for _, o := range g.Organizations() {
		put(fhir.FromOrganization(o))
	}
	for _, p := range g.Practitioners() {
		put(fhir.FromPractitioner(p))
	}
	money := fhir.Policy{Money: true}
	for d := range g.Members() {
		put(fhir.FromMember(d.Member))
		put(fhir.FromCoverage(d.Coverage))
		for _, c := range d.Claims {
			put(fhir.FromClaim(c.Claim, c.Lines, c.Diagnoses, c.Procedures, money))
		}
		for _, p := range d.PriorAuthorizations {
			put(fhir.FromPriorAuthorization(p.PriorAuthorization, p.Items, money))
		}
		for _, e := range d.Encounters {
			put(fhir.FromEncounter(e.Encounter))
		}
		for _, c := range d.Clinical {
			raw, err := fhir.FromClinical(c.ClinicalResource)
			if err != nil {
				t.Fatal(err)
			}
			w.Write(raw)
			w.WriteByte('\n')
			n++
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestImportInterruptedThenRerun: an import stopped half-way (its context
// cancelled after a few committed batches, as SIGINT does) leaves whole
// batches only; running it again completes it, identical to a clean load.
func TestImportInterruptedThenRerun(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "sandbox.ndjson")
	lines := writeSandboxNDJSON(t, path, 30)

	clean := storetest.New(t)
	if out, err := runImportCmd(t, clean, "--kind", "fhir", "--batch", "40", path); err != nil {
		t.Fatalf("clean load: %v\n%s", err, out)
	}

	db := storetest.New(t)
	ctx, cancel := context.WithCancel(t.Context())
	out, err := runImportCmdCtx(ctx, t, db, func(c *importCommand) {
		c.BatchLines = 40
		c.afterBatch = func(n int) {
			if n == 3 {
				cancel()
			}
		}
	}, "--kind", "fhir", path)
	if err == nil {
		t.Fatalf("the interrupted import succeeded\n%s", out)
	}
	var partial int
	db.Get(&partial, `SELECT (SELECT count(*) FROM members) + (SELECT count(*) FROM claims) + (SELECT count(*) FROM clinical_resources)`)
	if partial == 0 || lines < 200 {
		t.Fatalf("nothing loaded before the interruption (%d of %d lines)", partial, lines)
	}
	runs, _ := db.ImportRuns(t.Context(), 1, "")
	if r := runs.Edges[0].Node; r.Outcome != gateway.ImportFailed || r.Error != "interrupted" || r.FinishedAt == nil {
		t.Errorf("interrupted run recorded as %+v", r)
	}

	// The rerun loads each batch over two connections at once.
	if out, err := runImportCmd(t, db, "--kind", "fhir", "--batch", "40", "--parallel", "2", path); err != nil {
		t.Fatalf("rerun: %v\n%s", err, out)
	}
	want, got := contentDigest(t, clean), contentDigest(t, db)
	for k := range want {
		if want[k] != got[k] {
			t.Errorf("%s differs from a clean load:\nclean %.200s\nrerun %.200s", k, want[k], got[k])
		}
	}
}

func TestImportCommandReplaceScope(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	dir := copySamples(t, "providers.ndjson", "members.ndjson", "attribution.csv")
	p := func(n string) string { return filepath.Join(dir, n) }
	for _, args := range [][]string{{"--kind", "fhir", p("providers.ndjson"), p("members.ndjson")}, {"--kind", "attribution", p("attribution.csv")}} {
		if out, err := runImportCmd(t, db, args...); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	active := func() string {
		var ids []string
		db.Select(&ids, `SELECT m.member_identifier FROM attributions a JOIN members m ON m.id = a.member_id
		                  JOIN organizations o ON o.id = a.organization_id WHERE o.npi = '1234567893' AND a.ended_at IS NULL ORDER BY 1`)
		return strings.Join(ids, ",")
	}
	header := "member_identifier,organization_npi,practitioner_npi,period_start,period_end\n"
	list := filepath.Join(dir, "riverside.csv")

	// A list with a bad line beyond --max-rejects replaces nothing.
	os.WriteFile(list, []byte(header+"M1003,1234567893,,2024-01-01,\nM1003,1234567890,,2024-01-01,\n"), 0o600)
	out, err := runImportCmd(t, db, "--kind", "attribution", "--replace-scope", "organization=1234567893", list)
	if ExitCode(err) != 1 || !strings.Contains(err.Error(), "nothing was replaced") || active() != "M1001,M1002" {
		t.Fatalf("over --max-rejects: %v, active %s\n%s", err, active(), out)
	}
	// Within it, the list replaces the organization's attributions at once.
	out, err = runImportCmd(t, db, "--kind", "attribution", "--replace-scope", "organization=1234567893", "--max-rejects", "1", list)
	if err != nil || active() != "M1003" || !strings.Contains(out, "ended 2 attribution(s)") {
		t.Fatalf("replace: %v, active %s\n%s", err, active(), out)
	}
	// An unknown organization is an error before anything loads.
	if _, err := runImportCmd(t, db, "--kind", "attribution", "--replace-scope", "organization=1112223338", list); gateway.ErrorCode(err) != gateway.CodeNotFound {
		t.Errorf("unknown organization: %v", err)
	}
}

// TestExportAfterImport: a Provider Access export of imported data shows
// exactly what the policy allows: the members the attribution CSV gives the
// organization, minus those the opt-out CSV opted out; no money; no
// sensitive rows; nothing dated before 2016.
func TestExportAfterImport(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	dir := copySamples(t, "providers.ndjson", "members.ndjson", "claims.ndjson", "clinical.ndjson", "attribution.csv", "optout.csv")
	p := func(n string) string { return filepath.Join(dir, n) }
	for _, args := range [][]string{
		{"--kind", "fhir", p("providers.ndjson"), p("members.ndjson"), p("claims.ndjson"), p("clinical.ndjson")},
		{"--kind", "attribution", p("attribution.csv")},
		{"--kind", "optout", p("optout.csv")},
	} {
		if out, err := runImportCmd(t, db, args...); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	ctx := t.Context()
	var orgID string
	if err := db.Get(&orgID, `SELECT id FROM organizations WHERE npi = '1234567893'`); err != nil {
		t.Fatal(err)
	}
	if err := db.SetOrganizationInNetwork(ctx, orgID, true); err != nil {
		t.Fatal(err)
	}
	client, _, err := db.CreateClient(ctx, store.NewClient{OrganizationID: orgID, Name: "dashboard", Environment: gateway.EnvProduction, AccessType: gateway.ProviderAccess})
	if err != nil {
		t.Fatal(err)
	}
	principal := auth.ClientPrincipal(client, auth.Scopes{All: true})
	svc := &export.Service{DB: db, PublicURL: "https://gateway.example", Dir: t.TempDir(), MinPoll: time.Millisecond}
	job, err := svc.Enqueue(ctx, principal, export.Request{Operation: gateway.OpPatientExport})
	if err != nil {
		t.Fatal(err)
	}
	runner := &export.Runner{Service: svc, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), ID: "test"}
	for {
		ran, err := runner.RunOne(ctx, "test-worker")
		if err != nil {
			t.Fatal(err)
		}
		if !ran {
			break
		}
	}
	files, err := db.ExportFiles(ctx, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{} // "Type/business key"
	for _, f := range files {
		if f.Kind != "output" {
			continue
		}
		raw, err := os.ReadFile(filepath.Join(svc.Dir, job.ID, f.Name))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range bytes.Split(bytes.TrimSpace(raw), []byte("\n")) {
			for _, forbidden := range []string{`"amount"`, `"total"`, `"benefitBalance"`} {
				if bytes.Contains(line, []byte(forbidden)) {
					t.Errorf("%s in a Provider Access export: %s", forbidden, line)
				}
			}
			var r struct {
				ResourceType string `json:"resourceType"`
				Identifier   []struct {
					Value string `json:"value"`
				} `json:"identifier"`
				Code *struct {
					Coding []struct {
						Code string `json:"code"`
					} `json:"coding"`
				} `json:"code"`
				Medication *struct {
					Coding []struct {
						Code string `json:"code"`
					} `json:"coding"`
				} `json:"medicationCodeableConcept"`
				Name any `json:"name"`
			}
			if err := json.Unmarshal(line, &r); err != nil {
				t.Fatal(err)
			}
			if r.Medication != nil {
				r.Code = r.Medication
			}
			key := r.ResourceType + "/"
			switch {
			case len(r.Identifier) > 0:
				key += r.Identifier[0].Value
			case r.Code != nil && len(r.Code.Coding) > 0:
				key += r.Code.Coding[0].Code
			default:
				key += fmt.Sprint(r.Name)
			}
			got[key] = true
		}
	}
	want := []string{
		"Patient/M1001", "Coverage/C1001",
		"ExplanationOfBenefit/CLM-1001", "ExplanationOfBenefit/PA-2001",
		"Encounter/E5001", "Condition/E11.9", "Observation/4548-4", "MedicationRequest/860975",
	}
	never := []string{
		"Patient/M1002", "Patient/M1003", // opted out; attributed to another organization, and ended
		"ExplanationOfBenefit/CLM-1002", "ExplanationOfBenefit/PA-2002", "Condition/F32.1", "Procedure/45378", // M1002's
		"ExplanationOfBenefit/CLM-0901",               // 2015
		"ExplanationOfBenefit/CLM-1003",               // sensitive (ETH)
		"Observation/20447-9",                         // sensitive (HIV)
		"Immunization/141", "AllergyIntolerance/7980", // M1003's
	}
	for _, k := range want {
		if !got[k] {
			t.Errorf("%s missing from the export", k)
		}
	}
	for _, k := range never {
		if got[k] {
			t.Errorf("%s exported", k)
		}
	}
	if t.Failed() {
		t.Logf("exported: %v", got)
	}
}
