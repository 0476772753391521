package store_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lib/pq"

	"example.com/gateway/fhir"
	"example.com/gateway/gateway"
	"example.com/gateway/ingest"
	"example.com/gateway/sandbox"
	"example.com/gateway/store"
	"example.com/gateway/store/storetest"
)

var impToday = gateway.DateOf(time.Now().UTC()).AddDays(1)

// impLoad reads r as kind and loads it batch by batch through one
// Importer; it returns the summed result.
func impLoad(t *testing.T, db *store.DB, kind ingest.Kind, r io.Reader, opts store.ImportOptions, batchLines int) store.BatchResult {
	t.Helper()
	rd, err := ingest.NewReader(kind, r, ingest.Options{Today: impToday, KeepRaw: true})
	if err != nil {
		t.Fatal(err)
	}
	im, err := db.NewImporter(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	var sum store.BatchResult
	for {
		b := &ingest.Batch{}
		err := rd.Next(b, batchLines, 1<<30)
		if err == io.EOF {
			return sum
		}
		if err != nil {
			t.Fatal(err)
		}
		res, err := im.Load(t.Context(), b)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range b.Rejects {
			res.Rejects = append(res.Rejects, r)
		}
		impAdd(&sum, res)
	}
}

func impAdd(sum *store.BatchResult, res store.BatchResult) {
	if sum.Counts == nil {
		sum.Counts = map[string]*gateway.ImportCounts{}
	}
	for typ, c := range res.Counts {
		x := sum.Counts[typ]
		if x == nil {
			x = &gateway.ImportCounts{}
			sum.Counts[typ] = x
		}
		x.Loaded += c.Loaded
		x.Unchanged += c.Unchanged
		x.Rejected += c.Rejected
	}
	sum.Rejects = append(sum.Rejects, res.Rejects...)
	sum.Dangling = append(sum.Dangling, res.Dangling...)
}

func impLoadFile(t *testing.T, db *store.DB, kind ingest.Kind, name string) store.BatchResult {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "testdata", "import", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return impLoad(t, db, kind, f, store.ImportOptions{RecordedBy: "test"}, 3)
}

// impSampleFiles loads the README's sample files in order.
func impSampleFiles(t *testing.T, db *store.DB) map[string]store.BatchResult {
	out := map[string]store.BatchResult{}
	for _, f := range []struct {
		kind ingest.Kind
		name string
	}{
		{ingest.KindFHIR, "providers.ndjson"}, {ingest.KindFHIR, "members.ndjson"}, {ingest.KindFHIR, "claims.ndjson"},
		{ingest.KindFHIR, "clinical.ndjson"}, {ingest.KindAttribution, "attribution.csv"}, {ingest.KindOptOut, "optout.csv"},
	} {
		out[f.name] = impLoadFile(t, db, f.kind, f.name)
	}
	return out
}

func impCounts(res store.BatchResult) map[string]gateway.ImportCounts {
	out := map[string]gateway.ImportCounts{}
	for typ, c := range res.Counts {
		out[typ] = *c
	}
	return out
}

// impSnapshot returns every member-data row's identity and last_updated.
func impSnapshot(t *testing.T, db *store.DB) map[string]time.Time {
	t.Helper()
	var rows []struct {
		K string    `db:"k"`
		T time.Time `db:"t"`
	}
	err := db.Select(&rows, `
SELECT 'o:' || npi AS k, last_updated AS t FROM organizations
UNION ALL SELECT 'p:' || npi, last_updated FROM practitioners
UNION ALL SELECT 'm:' || member_identifier, last_updated FROM members
UNION ALL SELECT 'cv:' || identifier, last_updated FROM coverages
UNION ALL SELECT 'c:' || identifier, last_updated FROM claims
UNION ALL SELECT 'cl:' || c.identifier || '/' || l.sequence, l.last_updated FROM claim_lines l JOIN claims c ON c.id = l.claim_id
UNION ALL SELECT 'cd:' || c.identifier || '/' || l.sequence, l.last_updated FROM claim_diagnoses l JOIN claims c ON c.id = l.claim_id
UNION ALL SELECT 'cp:' || c.identifier || '/' || l.sequence, l.last_updated FROM claim_procedures l JOIN claims c ON c.id = l.claim_id
UNION ALL SELECT 'pa:' || identifier, last_updated FROM prior_authorizations
UNION ALL SELECT 'pi:' || p.identifier || '/' || i.sequence, i.last_updated FROM prior_authorization_items i JOIN prior_authorizations p ON p.id = i.prior_authorization_id
UNION ALL SELECT 'e:' || identifier, last_updated FROM encounters
UNION ALL SELECT 'r:' || resource_type || '/' || source_id, last_updated FROM clinical_resources
UNION ALL SELECT 'a:' || member_id || '/' || organization_id || '/' || period_start, last_updated FROM attributions
UNION ALL SELECT 'x:' || member_id, last_updated FROM provider_access_opt_outs
UNION ALL SELECT 'ev:' || id, recorded_at FROM opt_out_events`)
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]time.Time, len(rows))
	for _, r := range rows {
		out[r.K] = r.T
	}
	return out
}

func TestImportSampleFilesTwice(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	first := impSampleFiles(t, db)
	want := map[string]map[string]gateway.ImportCounts{
		"providers.ndjson": {"Organization": {Loaded: 2}, "Practitioner": {Loaded: 2}},
		"members.ndjson":   {"Patient": {Loaded: 3}, "Coverage": {Loaded: 2}},
		"claims.ndjson":    {"ExplanationOfBenefit": {Loaded: 6}},
		"clinical.ndjson": {"Encounter": {Loaded: 1}, "Condition": {Loaded: 2}, "Observation": {Loaded: 2},
			"MedicationRequest": {Loaded: 1}, "Immunization": {Loaded: 1}, "AllergyIntolerance": {Loaded: 1}, "Procedure": {Loaded: 1}},
		"attribution.csv": {"attribution": {Loaded: 3}},
		"optout.csv":      {"optout": {Loaded: 1}},
	}
	for name, res := range first {
		if got := impCounts(res); fmt.Sprint(got) != fmt.Sprint(want[name]) || len(res.Rejects) > 0 || len(res.Dangling) > 0 {
			t.Errorf("%s: counts %v, want %v; rejects %v dangling %v", name, got, want[name], res.Rejects, res.Dangling)
		}
	}

	// What landed.
	var n int
	db.Get(&n, `SELECT count(*) FROM claim_lines`)
	if n != 4 {
		t.Errorf("claim lines = %d, want 4", n)
	}
	var claim struct {
		Member      string         `db:"member_identifier"`
		Coverage    string         `db:"coverage"`
		Billing     string         `db:"npi"`
		Rendering   string         `db:"rendering"`
		TotalPaid   string         `db:"total_paid"`
		Sensitive   bool           `db:"sensitive"`
		Labels      pq.StringArray `db:"security_labels"`
		PlaceOfServ string         `db:"place_of_service"`
	}
	if err := db.Get(&claim, `
SELECT m.member_identifier, cv.identifier AS coverage, o.npi, p.npi AS rendering, c.total_paid, c.sensitive,
       c.security_labels, c.place_of_service
  FROM claims c JOIN members m ON m.id = c.member_id JOIN coverages cv ON cv.id = c.coverage_id
  JOIN organizations o ON o.id = c.billing_organization_id JOIN practitioners p ON p.id = c.rendering_practitioner_id
 WHERE c.identifier = 'CLM-1001'`); err != nil {
		t.Fatal(err)
	}
	if claim.Member != "M1001" || claim.Coverage != "C1001" || claim.Billing != "1234567893" || claim.Rendering != "1987654328" ||
		claim.TotalPaid != "95.50" || claim.Sensitive || claim.PlaceOfServ != "11" {
		t.Errorf("claim CLM-1001 = %+v", claim)
	}
	var sens bool
	db.Get(&sens, `SELECT sensitive FROM claims WHERE identifier = 'CLM-1002'`)
	if !sens {
		t.Error("CLM-1002 (42CFRPart2) not sensitive")
	}
	var drug bool
	db.Get(&drug, `SELECT drug FROM prior_authorizations WHERE identifier = 'PA-2002'`)
	if !drug {
		t.Error("PA-2002 (NDC) not a drug prior authorization")
	}
	// A practitioner reference inside a clinical resource now names the
	// gateway's practitioner.
	var requester, prID string
	db.Get(&requester, `SELECT resource->'requester'->>'reference' FROM clinical_resources WHERE source_id = 'med-1'`)
	db.Get(&prID, `SELECT id FROM practitioners WHERE npi = '1987654328'`)
	if requester != "Practitioner/"+prID {
		t.Errorf("MedicationRequest.requester = %q, want Practitioner/%s", requester, prID)
	}
	var optedOut, events int
	db.Get(&optedOut, `SELECT count(*) FROM provider_access_opt_outs`)
	db.Get(&events, `SELECT count(*) FROM opt_out_events WHERE requested_by = 'PERSONAL_REPRESENTATIVE' AND representative_name = 'Dana Baker' AND recorded_by = 'test'`)
	if optedOut != 1 || events != 1 {
		t.Errorf("opt-outs %d, events %d", optedOut, events)
	}

	// The same files again: nothing changes, everything is unchanged.
	before := impSnapshot(t, db)
	time.Sleep(10 * time.Millisecond)
	second := impSampleFiles(t, db)
	for name, res := range second {
		for typ, c := range res.Counts {
			if c.Loaded != 0 || c.Rejected != 0 || c.Unchanged != want[name][typ].Loaded {
				t.Errorf("%s again: %s %+v, want all %d unchanged", name, typ, *c, want[name][typ].Loaded)
			}
		}
	}
	after := impSnapshot(t, db)
	if len(after) != len(before) {
		t.Errorf("rows: %d before, %d after", len(before), len(after))
	}
	for k, v := range before {
		if !after[k].Equal(v) {
			t.Errorf("%s: last_updated moved from %s to %s", k, v, after[k])
		}
	}
}

func TestImportChangesOnlyWhatChanged(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	impSampleFiles(t, db)
	before := impSnapshot(t, db)
	time.Sleep(10 * time.Millisecond)

	raw, err := os.ReadFile(filepath.Join("..", "testdata", "import", "claims.ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSpace(raw), []byte("\n"))
	// CLM-1001: the line's copay changes (a child row only); CLM-0901 loses
	// its only line and gains another; the rest is the same.
	lines[0] = bytes.Replace(lines[0], []byte(`"amount":{"value":25,"currency":"USD"}`), []byte(`"amount":{"value":30,"currency":"USD"}`), 1)
	lines[2] = bytes.Replace(lines[2], []byte(`"item":[{"sequence":1,`), []byte(`"item":[{"sequence":2,`), 1)
	res := impLoad(t, db, ingest.KindFHIR, bytes.NewReader(bytes.Join(lines, []byte("\n"))), store.ImportOptions{}, 100)
	if c := res.Counts["ExplanationOfBenefit"]; c.Loaded != 2 || c.Unchanged != 4 {
		t.Fatalf("counts %+v, want 2 loaded, 4 unchanged", *c)
	}
	after := impSnapshot(t, db)
	moved := []string{}
	for k, v := range after {
		if b, ok := before[k]; !ok {
			moved = append(moved, "+"+k)
		} else if !b.Equal(v) {
			moved = append(moved, k)
		}
	}
	for k := range before {
		if _, ok := after[k]; !ok {
			moved = append(moved, "-"+k)
		}
	}
	slices.Sort(moved)
	if want := []string{"+cl:CLM-0901/2", "-cl:CLM-0901/1", "cl:CLM-1001/1"}; !slices.Equal(moved, want) {
		t.Errorf("changed rows %v, want %v", moved, want)
	}
}

func TestImportBadLines(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	impSampleFiles(t, db)
	res := impLoadFile(t, db, ingest.KindFHIR, "bad.ndjson")
	paths := map[int]string{}
	for _, r := range res.Rejects {
		paths[r.Line] = r.Path
	}
	want := map[int]string{2: "", 3: "resourceType", 4: "Patient.identifier", 6: "Practitioner.identifier", 7: "ExplanationOfBenefit.billablePeriod.start"}
	if fmt.Sprint(paths) != fmt.Sprint(want) {
		t.Errorf("rejects %v, want %v", paths, want)
	}
	if len(res.Dangling) != 1 || res.Dangling[0].Line != 5 || res.Dangling[0].Path != "ExplanationOfBenefit.patient" {
		t.Errorf("dangling = %+v", res.Dangling)
	}
	// The valid lines loaded: the patient of line 1 and the claim of line 8.
	var n int
	db.Get(&n, `SELECT count(*) FROM claims c JOIN members m ON m.id = c.member_id WHERE c.identifier = 'CLM-9003' AND m.member_identifier = 'M1009'`)
	if n != 1 {
		t.Error("the valid claim of line 8 is missing")
	}
	db.Get(&n, `SELECT count(*) FROM claims WHERE identifier IN ('CLM-9001','CLM-9002')`)
	if n != 0 {
		t.Errorf("%d rejected claims written", n)
	}
}

// TestImportBisectsRefusedBatch: a line the database refuses is rejected
// alone; the rest of its batch loads.
func TestImportBisectsRefusedBatch(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	impSampleFiles(t, db)
	var b ingest.Batch
	b.Kind = ingest.KindFHIR
	for i := 1; i <= 7; i++ {
		m := ingest.Member{Line: i}
		m.Identifier = fmt.Sprintf("B%d", i)
		m.Gender = gateway.GenderUnknown
		if i == 5 {
			m.Gender = "NEITHER" // the reader never produces it; the CHECK refuses it
		}
		b.Members = append(b.Members, m)
	}
	res, err := db.ImportBatch(t.Context(), &b, store.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rejects) != 1 || res.Rejects[0].Line != 5 || res.Counts["Patient"].Loaded != 6 {
		t.Fatalf("rejects %+v counts %+v", res.Rejects, res.Counts["Patient"])
	}
	var n int
	db.Get(&n, `SELECT count(*) FROM members WHERE member_identifier LIKE 'B%'`)
	if n != 6 {
		t.Errorf("members B* = %d, want 6", n)
	}
}

func TestImportNeverTouchesSandbox(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	g, err := sandbox.New(sandbox.Options{Members: 3, Seed: 11, Today: gateway.DateOf(time.Now())})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ReplaceSandbox(t.Context(), g); err != nil {
		t.Fatal(err)
	}
	var sbx struct {
		ID         string `db:"id"`
		Identifier string `db:"member_identifier"`
	}
	db.Get(&sbx, `SELECT id, member_identifier FROM members WHERE sandbox LIMIT 1`)
	in := fmt.Sprintf(`{"resourceType":"Patient","identifier":[{"value":%q}],"name":[{"family":"Hijack"}]}
{"resourceType":"Coverage","identifier":[{"value":"CV-X"}],"status":"active","beneficiary":{"reference":"Patient/%s"}}
`, sbx.Identifier, sbx.ID)
	res := impLoad(t, db, ingest.KindFHIR, strings.NewReader(in), store.ImportOptions{}, 10)
	if len(res.Rejects) != 1 || res.Rejects[0].Line != 1 || len(res.Dangling) != 1 || res.Dangling[0].Line != 2 {
		t.Fatalf("rejects %+v dangling %+v", res.Rejects, res.Dangling)
	}
	var family string
	db.Get(&family, `SELECT family_name FROM members WHERE id = $1`, sbx.ID)
	if family == "Hijack" {
		t.Error("a sandbox member was overwritten")
	}
}

func TestImportOptOutHistory(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	impSampleFiles(t, db) // M1002 opted out on 2024-08-01 (representative)
	load := func(csv string) store.BatchResult {
		return impLoad(t, db, ingest.KindOptOut, strings.NewReader("member_identifier,opted_out,requested_by,representative_name,effective_date\n"+csv), store.ImportOptions{RecordedBy: "t"}, 100)
	}
	optedOut := func(id string) bool {
		var n int
		db.Get(&n, `SELECT count(*) FROM provider_access_opt_outs x JOIN members m ON m.id = x.member_id WHERE m.member_identifier = $1`, id)
		return n == 1
	}
	// An older event does not override the current state; a newer one does;
	// the file's last line wins on one date.
	load("M1002,false,MEMBER,,2024-07-01\n")
	if !optedOut("M1002") {
		t.Error("an older opt-in undid a newer opt-out")
	}
	load("M1002,false,MEMBER,,2024-09-01\nM1001,true,MEMBER,,2024-09-01\nM1001,false,MEMBER,,2024-09-01\nM1003,true,MEMBER,,2024-09-02\n")
	if optedOut("M1002") || optedOut("M1001") || !optedOut("M1003") {
		t.Errorf("states: M1002 %v M1001 %v M1003 %v", optedOut("M1002"), optedOut("M1001"), optedOut("M1003"))
	}
	res := load("M1003,true,MEMBER,,2024-09-02\nM9999,true,MEMBER,,2024-09-02\n")
	if c := res.Counts["optout"]; c.Unchanged != 1 || c.Rejected != 1 || c.Loaded != 0 {
		t.Errorf("repeat: %+v", *c)
	}
	var events int
	db.Get(&events, `SELECT count(*) FROM opt_out_events`)
	if events != 6 {
		t.Errorf("events = %d, want 6", events)
	}
}

func TestImportReplaceScope(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	impSampleFiles(t, db)
	const org = "1234567893"
	active := func() []string {
		var ids []string
		db.Select(&ids, `SELECT m.member_identifier FROM attributions a JOIN members m ON m.id = a.member_id
		                  JOIN organizations o ON o.id = a.organization_id
		                 WHERE o.npi = $1 AND a.ended_at IS NULL ORDER BY 1`, org)
		return ids
	}
	if got := active(); !slices.Equal(got, []string{"M1001", "M1002"}) {
		t.Fatalf("before: %v", got)
	}
	replace := func(csv string, commit bool) (store.BatchResult, int) {
		im, err := db.NewImporter(t.Context(), store.ImportOptions{ReplaceOrganizationNPI: org})
		if err != nil {
			t.Fatal(err)
		}
		defer im.Close()
		if err := im.Begin(t.Context()); err != nil {
			t.Fatal(err)
		}
		rd, err := ingest.NewReader(ingest.KindAttribution, strings.NewReader("member_identifier,organization_npi,practitioner_npi,period_start,period_end\n"+csv), ingest.Options{Today: impToday})
		if err != nil {
			t.Fatal(err)
		}
		var sum store.BatchResult
		for {
			b := &ingest.Batch{}
			if err := rd.Next(b, 1, 1<<20); err == io.EOF {
				break
			}
			res, err := im.Load(t.Context(), b)
			if err != nil {
				t.Fatal(err)
			}
			impAdd(&sum, res)
		}
		ended := 0
		if commit {
			if ended, err = im.EndUnseen(t.Context()); err != nil {
				t.Fatal(err)
			}
			if err := im.Commit(); err != nil {
				t.Fatal(err)
			}
		} else if err := im.Rollback(); err != nil {
			t.Fatal(err)
		}
		return sum, ended
	}
	// Rolled back: nothing changes.
	replace("M1003,"+org+",,2024-01-01,\n", false)
	if got := active(); !slices.Equal(got, []string{"M1001", "M1002"}) {
		t.Fatalf("after a rollback: %v", got)
	}
	// The new list: M1001 stays, M1003 joins, M1002 is ended, a row for
	// another organization is rejected.
	res, ended := replace("M1001,"+org+",1987654328,2024-01-01,\nM1003,"+org+",,2024-01-01,\nM1002,2223334444,,2024-01-01,\n", true)
	if got := active(); !slices.Equal(got, []string{"M1001", "M1003"}) || ended != 1 {
		t.Errorf("after the replace: %v, ended %d", got, ended)
	}
	if c := res.Counts["attribution"]; c.Loaded != 1 || c.Unchanged != 1 || c.Rejected != 1 {
		t.Errorf("counts %+v", *c)
	}
	// The other organization's attribution is untouched.
	var n int
	db.Get(&n, `SELECT count(*) FROM attributions a JOIN organizations o ON o.id = a.organization_id WHERE o.npi = '2223334444' AND a.ended_at IS NULL`)
	if n != 1 {
		t.Errorf("other organization's attributions = %d", n)
	}
}

func TestNPICheckMatchesDatabase(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	r := rand.New(rand.NewPCG(1, 2))
	npis := make([]string, 3000)
	for i := range npis {
		npis[i] = fmt.Sprintf("%010d", r.Int64N(1e10))
	}
	npis = append(npis, "1234567893", "1234567890", "123456789", "abcdefghij")
	var valid []bool
	if err := db.Select(&valid, `SELECT npi_valid(n) FROM unnest($1::text[]) WITH ORDINALITY AS u(n, i) ORDER BY i`, pq.Array(npis)); err != nil {
		t.Fatal(err)
	}
	for i, n := range npis {
		if gateway.ValidNPI(n) != valid[i] {
			t.Errorf("ValidNPI(%s) = %v, npi_valid = %v", n, gateway.ValidNPI(n), valid[i])
		}
	}
}

func TestImportRuns(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	ids := []string{}
	for i := range 3 {
		id, err := db.StartImportRun(t.Context(), "fhir", []string{fmt.Sprintf("f%d.ndjson", i)}, "cli:test", "")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
		counts := map[string]gateway.ImportCounts{"Patient": {Loaded: i, Rejected: 1}}
		if err := db.FinishImportRun(t.Context(), id, counts, gateway.ImportSucceeded, ""); err != nil {
			t.Fatal(err)
		}
	}
	page, err := db.ImportRuns(t.Context(), 2, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Edges) != 2 || !page.HasNextPage || page.TotalCount != 3 || page.Edges[0].Node.ID != ids[2] ||
		page.Edges[0].Node.Counts["Patient"].Loaded != 2 || page.Edges[0].Node.Files[0] != "f2.ndjson" ||
		page.Edges[0].Node.Outcome != gateway.ImportSucceeded || page.Edges[0].Node.FinishedAt == nil {
		t.Fatalf("first page %+v", page)
	}
	next, err := db.ImportRuns(t.Context(), 2, page.EndCursor())
	if err != nil {
		t.Fatal(err)
	}
	if len(next.Edges) != 1 || next.HasNextPage || next.Edges[0].Node.ID != ids[0] {
		t.Fatalf("second page %+v", next)
	}
	for _, bad := range []struct {
		first int
		after string
	}{{101, ""}, {-1, ""}, {10, "not-a-cursor"}} {
		if _, err := db.ImportRuns(t.Context(), bad.first, bad.after); gateway.ErrorCode(err) != gateway.CodeInvalid {
			t.Errorf("ImportRuns(%d, %q) error = %v, want BAD_USER_INPUT", bad.first, bad.after, err)
		}
	}
}

// --- round trip --------------------------------------------------------------

// impDataset is everything a database holds that the FHIR mapping maps,
// read back as records.
type impDataset struct {
	orgs       []gateway.Organization
	pracs      []gateway.Practitioner
	members    []gateway.Member
	coverages  []gateway.Coverage
	claims     []gateway.Claim
	lines      map[string][]gateway.ClaimLine
	dx         map[string][]gateway.ClaimDiagnosis
	px         map[string][]gateway.ClaimProcedure
	pas        []gateway.PriorAuthorization
	items      map[string][]gateway.PriorAuthorizationItem
	encounters []gateway.Encounter
	clinical   []gateway.ClinicalResource
	// sensitive: by "Type/id", whether the row is flagged sensitive.
	sensitive map[string]bool
}

func impRead(t *testing.T, db *store.DB) *impDataset {
	t.Helper()
	d := &impDataset{lines: map[string][]gateway.ClaimLine{}, dx: map[string][]gateway.ClaimDiagnosis{},
		px: map[string][]gateway.ClaimProcedure{}, items: map[string][]gateway.PriorAuthorizationItem{}, sensitive: map[string]bool{}}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(db.Select(&d.orgs, `SELECT id, name, type, npi, tin, status, in_network, synthetic, created_at FROM organizations ORDER BY npi`))
	must(db.Select(&d.pracs, `SELECT id, npi, given_name, family_name, specialty_code, specialty_display, organization_id, sandbox, last_updated FROM practitioners ORDER BY npi`))
	must(db.Select(&d.members, `SELECT id, member_identifier, given_name, family_name, birth_date, gender, address_line, city, state, postal_code, phone, sandbox, last_updated FROM members ORDER BY member_identifier`))
	must(db.Select(&d.coverages, `SELECT id, member_id, identifier, status, type_code, type_display, plan_name, group_number, relationship, payer_name, period_start, period_end, last_updated FROM coverages ORDER BY identifier`))
	must(db.Select(&d.claims, `SELECT id, member_id, identifier, type, status, outcome, service_start, service_end, created, processed,
	  coverage_id, billing_organization_id, rendering_practitioner_id, facility_name, place_of_service, type_of_bill, drg, in_network,
	  sensitive, last_updated, total_submitted, total_allowed, total_paid, payment_amount, payment_date, payment_adjustment, copay,
	  coinsurance, deductible, noncovered, member_liability FROM claims ORDER BY identifier`))
	var lines []struct {
		gateway.ClaimLine
		Mods pq.StringArray `db:"modifiers"`
	}
	must(db.Select(&lines, `SELECT claim_id, sequence, service_date, product_code, product_system, product_display, modifiers, quantity,
	  revenue_code, place_of_service, denial_reason, submitted, allowed, paid, copay, coinsurance, deductible, member_liability
	  FROM claim_lines ORDER BY claim_id, sequence`))
	for _, l := range lines {
		l.ClaimLine.Modifiers = l.Mods
		d.lines[l.ClaimID] = append(d.lines[l.ClaimID], l.ClaimLine)
	}
	var dx []gateway.ClaimDiagnosis
	must(db.Select(&dx, `SELECT claim_id, sequence, code, system, display, type, present_on_admission FROM claim_diagnoses ORDER BY claim_id, sequence`))
	for _, x := range dx {
		d.dx[x.ClaimID] = append(d.dx[x.ClaimID], x)
	}
	var px []gateway.ClaimProcedure
	must(db.Select(&px, `SELECT claim_id, sequence, code, system, display, performed_on FROM claim_procedures ORDER BY claim_id, sequence`))
	for _, x := range px {
		d.px[x.ClaimID] = append(d.px[x.ClaimID], x)
	}
	must(db.Select(&d.pas, `SELECT id, member_id, identifier, status, drug, service_category, requested_on, decided_on, authorized_start,
	  authorized_end, last_status_change, requesting_practitioner_id, organization_id, denial_reason_code, denial_reason, sensitive,
	  last_updated FROM prior_authorizations ORDER BY identifier`))
	var items []gateway.PriorAuthorizationItem
	must(db.Select(&items, `SELECT prior_authorization_id, sequence, product_code, product_system, product_display, quantity_requested,
	  quantity_approved, quantity_used, status, denial_reason, submitted FROM prior_authorization_items ORDER BY prior_authorization_id, sequence`))
	for _, x := range items {
		d.items[x.PriorAuthorizationID] = append(d.items[x.PriorAuthorizationID], x)
	}
	must(db.Select(&d.encounters, `SELECT id, member_id, identifier, status, class, type_code, type_display, period_start, period_end,
	  practitioner_id, organization_id, reason_code, reason_display, sensitive, last_updated FROM encounters ORDER BY identifier`))
	must(db.Select(&d.clinical, `SELECT id, member_id, resource_type, source_id, code, code_system, display, status, date_of_service,
	  resource, sensitive, last_updated FROM clinical_resources ORDER BY resource_type, source_id`))
	for _, c := range d.claims {
		d.sensitive["ExplanationOfBenefit/"+c.ID] = c.Sensitive
	}
	for _, p := range d.pas {
		d.sensitive["ExplanationOfBenefit/"+p.ID] = p.Sensitive
	}
	for _, e := range d.encounters {
		d.sensitive["Encounter/"+e.ID] = e.Sensitive
	}
	for _, c := range d.clinical {
		d.sensitive[string(c.ResourceType)+"/"+c.ID] = c.Sensitive
	}
	return d
}

// impResource is one mapped resource: its type, id and JSON.
type impResource struct {
	typ, id string
	json    []byte
}

// mapAll maps d to FHIR with the full mapping (money included), in the
// order a load needs: providers, members, coverage, then the rest.
func (d *impDataset) mapAll(t *testing.T) []impResource {
	t.Helper()
	var out []impResource
	add := func(typ, id string, v any) {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, impResource{typ, id, b})
	}
	money := fhir.Policy{Money: true}
	for _, o := range d.orgs {
		add("Organization", o.ID, fhir.FromOrganization(o))
	}
	for _, p := range d.pracs {
		add("Practitioner", p.ID, fhir.FromPractitioner(p))
	}
	for _, m := range d.members {
		add("Patient", m.ID, fhir.FromMember(m))
	}
	for _, c := range d.coverages {
		add("Coverage", c.ID, fhir.FromCoverage(c))
	}
	for _, c := range d.claims {
		add("ExplanationOfBenefit", c.ID, fhir.FromClaim(c, d.lines[c.ID], d.dx[c.ID], d.px[c.ID], money))
	}
	for _, p := range d.pas {
		add("ExplanationOfBenefit", p.ID, fhir.FromPriorAuthorization(p, d.items[p.ID], money))
	}
	for _, e := range d.encounters {
		add("Encounter", e.ID, fhir.FromEncounter(e))
	}
	for _, c := range d.clinical {
		b, err := fhir.FromClinical(c)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, impResource{string(c.ResourceType), c.ID, b})
	}
	return out
}

// keys maps each row id of d to the business key the round trip matches
// resources by ("Type/key"): identifiers, NPIs, and for clinical resources
// the source id (the first database's row id is the second's source id).
func (d *impDataset) keys(clinicalBySource bool) map[string]string {
	k := map[string]string{}
	for _, o := range d.orgs {
		k[o.ID] = "Organization/" + o.NPI
	}
	for _, p := range d.pracs {
		k[p.ID] = "Practitioner/" + p.NPI
	}
	for _, m := range d.members {
		k[m.ID] = "Patient/" + m.Identifier
	}
	for _, c := range d.coverages {
		k[c.ID] = "Coverage/" + c.Identifier
	}
	for _, c := range d.claims {
		k[c.ID] = "ExplanationOfBenefit/" + c.Identifier
	}
	for _, p := range d.pas {
		k[p.ID] = "ExplanationOfBenefit/" + p.Identifier
	}
	for _, e := range d.encounters {
		k[e.ID] = "Encounter/" + e.Identifier
	}
	for _, c := range d.clinical {
		if clinicalBySource {
			k[c.ID] = string(c.ResourceType) + "/" + c.SourceID
		} else {
			k[c.ID] = string(c.ResourceType) + "/" + c.ID
		}
	}
	return k
}

var uuidRE = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)

// normalize drops meta.lastUpdated and replaces the server's ids (the
// resource's and every reference's) by business keys.
func normalize(t *testing.T, r impResource, keys map[string]string) (string, string) {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.json, &m); err != nil {
		t.Fatal(err)
	}
	if meta, ok := m["meta"].(map[string]any); ok {
		delete(meta, "lastUpdated")
	}
	delete(m, "id")
	b, _ := json.Marshal(m)
	s := uuidRE.ReplaceAllStringFunc(string(b), func(id string) string {
		if k, ok := keys[id]; ok {
			return "{" + k + "}"
		}
		return id
	})
	return keys[r.id], s
}

// TestImportRoundTrip: the sandbox's data set (money, sensitive rows and
// dates of service before 2016 included) mapped to FHIR with package fhir,
// imported into an empty database and mapped again, is the same resource
// for resource, but for meta.lastUpdated and the ids the gateway assigns.
func TestImportRoundTrip(t *testing.T) {
	t.Parallel()
	src, dst := storetest.New(t), storetest.New(t)
	g, err := sandbox.New(sandbox.Options{Members: 40, Seed: 2026, Today: gateway.DateOf(time.Now().UTC())})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.ReplaceSandbox(t.Context(), g); err != nil {
		t.Fatal(err)
	}
	before := impRead(t, src)
	mapped := before.mapAll(t)

	// The data set must exercise what the round trip claims to cover.
	var money, sensitive, pre2016 bool
	for _, c := range before.claims {
		money = money || c.TotalPaid != nil
		sensitive = sensitive || c.Sensitive
		pre2016 = pre2016 || c.ServiceStart.Before(gateway.NewDate(2016, 1, 1))
	}
	if !money || !sensitive || !pre2016 || len(before.pas) == 0 || len(before.clinical) == 0 || len(before.encounters) == 0 {
		t.Fatalf("data set lacks money %v, sensitive %v, pre-2016 %v rows or a kind", money, sensitive, pre2016)
	}

	var ndjson bytes.Buffer
	for _, r := range mapped {
		ndjson.Write(r.json)
		ndjson.WriteByte('\n')
	}
	res := impLoad(t, dst, ingest.KindFHIR, &ndjson, store.ImportOptions{}, 500)
	if len(res.Rejects) > 0 || len(res.Dangling) > 0 {
		t.Fatalf("rejects %v dangling %v", res.Rejects, res.Dangling)
	}
	after := impRead(t, dst)
	again := after.mapAll(t)
	if len(again) != len(mapped) {
		t.Fatalf("%d resources after the import, %d before", len(again), len(mapped))
	}

	k1, k2 := before.keys(false), after.keys(true)
	want := map[string]string{}
	for _, r := range mapped {
		k, s := normalize(t, r, k1)
		want[k] = s
	}
	diffs := 0
	for _, r := range again {
		k, s := normalize(t, r, k2)
		if want[k] != s {
			diffs++
			if diffs <= 3 {
				t.Errorf("%s differs:\nbefore %s\nafter  %s", k, want[k], s)
			}
		}
		delete(want, k)
	}
	if diffs > 0 || len(want) > 0 {
		t.Fatalf("%d resources differ, %d missing after the import", diffs, len(want))
	}

	// Sensitivity survives where the mapping carries it (meta.security).
	for id, s := range before.sensitive {
		key := k1[id[strings.IndexByte(id, '/')+1:]]
		var got bool
		found := false
		for id2, s2 := range after.sensitive {
			if k2[id2[strings.IndexByte(id2, '/')+1:]] == key {
				got, found = s2, true
				break
			}
		}
		if !found {
			t.Fatalf("%s missing after the import", key)
		}
		if got != s && carriesSecurity(mapped, id) {
			t.Errorf("%s: sensitive %v before, %v after", key, s, got)
		}
	}
}

// carriesSecurity reports whether the mapping of resource "Type/id" has
// meta.security: package fhir writes it for clinical resources (from the
// stored JSON) and, once it maps security labels, for the others.
func carriesSecurity(rs []impResource, typeID string) bool {
	id := typeID[strings.IndexByte(typeID, '/')+1:]
	for _, r := range rs {
		if r.id == id {
			return bytes.Contains(r.json, []byte(`"security"`))
		}
	}
	return false
}
