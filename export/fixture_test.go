package export

import (
	"bufio"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"example.com/gateway/auth"
	"example.com/gateway/gateway"
	"example.com/gateway/store"
	"example.com/gateway/store/storetest"
)

func TestMain(m *testing.M) {
	if os.Getenv(workerEnv) != "" {
		os.Exit(workerMain()) // the kill test's worker process
	}
	if os.Getenv(benchChildEnv) != "" {
		os.Exit(benchChildMain()) // a benchmark's measured process
	}
	os.Exit(storetest.Main(m))
}

// fixture is a hand-made data set with one member of each kind the policy
// tells apart, on a fresh database. Rows are written with plain SQL: this is
// test setup, not the application's data access.
type fixture struct {
	t      testing.TB
	db     *store.DB
	dbURL  string
	org    gateway.Organization // in-network, production
	other  gateway.Organization
	client gateway.APIClient
	p      auth.Principal
	svc    *Service
	runner *Runner
	today  gateway.Date

	// members by role
	active, upcoming, optedOut, ended, unattributed, otherOrg string
	// resources that must (or must not) be exported
	want, never           map[string]bool // "Type/id"
	prac1, prac2, billing string
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	url := storetest.URL(t)
	db, err := store.Open(t.Context(), url, store.Options{MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	f := &fixture{t: t, db: db, dbURL: url, want: map[string]bool{}, never: map[string]bool{}}
	f.today = gateway.DateOf(time.Now())
	f.org = f.organization("Acme Health", true)
	f.other = f.organization("Other Health", true)
	f.client = f.newClient(f.org.ID, gateway.EnvProduction)
	f.p = auth.ClientPrincipal(f.client, auth.Scopes{All: true})
	f.svc = &Service{DB: db, PublicURL: "https://gateway.example", Dir: t.TempDir(), MinPoll: time.Millisecond}
	f.runner = &Runner{Service: f.svc, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), BatchSize: 2, ID: "test"}

	f.billing = f.organization("Billing Clinic", false).ID
	f.prac1 = f.practitioner(f.billing)
	f.prac2 = f.practitioner("")

	f.active = f.member(false)
	f.attribute(f.active, f.org.ID, f.today.AddDays(-100), gateway.Date{})
	f.upcoming = f.member(false)
	f.attribute(f.upcoming, f.org.ID, f.today.AddDays(10), gateway.Date{})
	f.optedOut = f.member(false)
	f.attribute(f.optedOut, f.org.ID, f.today.AddDays(-100), gateway.Date{})
	f.optOut(f.optedOut)
	f.ended = f.member(false)
	f.attribute(f.ended, f.org.ID, f.today.AddDays(-400), f.today.AddDays(-10))
	f.unattributed = f.member(false)
	f.otherOrg = f.member(false)
	f.attribute(f.otherOrg, f.other.ID, f.today.AddDays(-100), gateway.Date{})

	for _, m := range []string{f.active, f.upcoming} {
		f.want["Patient/"+m] = true
		f.want["Coverage/"+f.coverage(m)] = true
		f.want["ExplanationOfBenefit/"+f.claim(m, "2023-03-01", false, &f.prac1, &f.billing)] = true
		f.want["Encounter/"+f.encounter(m, "2022-05-01T10:00:00Z", false, &f.prac1)] = true
		f.want["Condition/"+f.clinical(m, "Condition", "2021-01-02", false)] = true
		f.want["AllergyIntolerance/"+f.clinical(m, "AllergyIntolerance", "", false)] = true
		f.want["ExplanationOfBenefit/"+f.priorAuth(m, "APPROVED", false)] = true
		f.want["ExplanationOfBenefit/"+f.priorAuth(m, "DENIED", false)] = true
		f.want["ExplanationOfBenefit/"+f.priorAuth(m, "PENDING", false)] = true
		// withheld for Provider Access
		f.never["ExplanationOfBenefit/"+f.claim(m, "2015-06-01", false, &f.prac2, nil)] = true // before 2016
		f.never["ExplanationOfBenefit/"+f.claim(m, "2023-04-01", true, &f.prac2, nil)] = true  // sensitive
		f.never["Encounter/"+f.encounter(m, "2023-01-01T10:00:00Z", true, &f.prac2)] = true
		f.never["Observation/"+f.clinical(m, "Observation", "2015-01-01", false)] = true
		f.never["Observation/"+f.clinical(m, "Observation", "2022-01-01", true)] = true
		f.never["ExplanationOfBenefit/"+f.priorAuth(m, "APPROVED", true)] = true // drug
	}
	for _, m := range []string{f.optedOut, f.ended, f.unattributed, f.otherOrg} {
		f.never["Patient/"+m] = true
		f.never["Coverage/"+f.coverage(m)] = true
		f.never["ExplanationOfBenefit/"+f.claim(m, "2023-03-01", false, &f.prac2, nil)] = true
		f.never["Encounter/"+f.encounter(m, "2022-05-01T10:00:00Z", false, &f.prac2)] = true
		f.never["Condition/"+f.clinical(m, "Condition", "2021-01-02", false)] = true
		f.never["ExplanationOfBenefit/"+f.priorAuth(m, "APPROVED", false)] = true
	}
	f.want["Practitioner/"+f.prac1] = true
	f.want["Organization/"+f.billing] = true
	f.want["Organization/payer"] = true
	f.never["Practitioner/"+f.prac2] = true
	return f
}

func (f *fixture) exec(query string, args ...any) {
	f.t.Helper()
	if _, err := f.db.ExecContext(f.t.Context(), query, args...); err != nil {
		f.t.Fatalf("%v\n%s", err, query)
	}
}

func newID() string { return uuid.NewString() }

// npi returns a random NPI with a valid check digit (Luhn over 80840 + the
// first nine digits).
func npi() string {
	b := []byte(strings.ToLower(rand.Text()))
	digits := make([]byte, 0, 10)
	for _, c := range b {
		digits = append(digits, '0'+c%10)
		if len(digits) == 9 {
			break
		}
	}
	for c := byte('0'); c <= '9'; c++ {
		n := string(append(digits, c))
		if luhn("80840" + n) {
			return n
		}
	}
	panic("unreachable")
}

func luhn(s string) bool {
	sum := 0
	for i := range len(s) {
		d := int(s[len(s)-1-i] - '0')
		if i%2 == 1 {
			if d *= 2; d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return sum%10 == 0
}

func (f *fixture) organization(name string, inNetwork bool) gateway.Organization {
	f.t.Helper()
	o, err := f.db.CreateOrganization(f.t.Context(), gateway.Organization{
		Name: name, Type: gateway.OrgProviderHealthSystem, NPI: npi(), TIN: "123456789", InNetwork: inNetwork,
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return o
}

func (f *fixture) newClient(orgID string, env gateway.Environment) gateway.APIClient {
	f.t.Helper()
	c, _, err := f.db.CreateClient(f.t.Context(), store.NewClient{
		OrganizationID: orgID, Name: "client " + rand.Text()[:6], Environment: env, AccessType: gateway.ProviderAccess,
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

func (f *fixture) practitioner(orgID string) string {
	id := newID()
	var org any
	if orgID != "" {
		org = orgID
	}
	f.exec(`INSERT INTO practitioners (id, npi, given_name, family_name, organization_id) VALUES ($1, $2, 'Pat', 'Doe', $3)`, id, npi(), org)
	return id
}

var memberSeq int

func (f *fixture) member(sandbox bool) string {
	id := newID()
	memberSeq++
	f.exec(`INSERT INTO members (id, member_identifier, given_name, family_name, birth_date, gender, sandbox)
	        VALUES ($1, $2, 'Alex', 'Member', '1970-01-02', 'FEMALE', $3)`, id, "M"+strconv.Itoa(memberSeq)+rand.Text()[:8], sandbox)
	return id
}

func (f *fixture) attribute(member, org string, start, end gateway.Date) {
	f.exec(`INSERT INTO attributions (id, member_id, organization_id, period_start, period_end, source, created_at)
	        VALUES ($1, $2, $3, $4, $5, 'PAYER', now() - interval '30 days')`, newID(), member, org, start, end)
}

func (f *fixture) optOut(member string) {
	f.exec(`INSERT INTO provider_access_opt_outs (member_id) VALUES ($1)`, member)
	f.exec(`INSERT INTO opt_out_events (id, member_id, opted_out, requested_by, effective_date) VALUES ($1, $2, true, 'MEMBER', CURRENT_DATE)`, newID(), member)
}

func (f *fixture) coverage(member string) string {
	id := newID()
	f.exec(`INSERT INTO coverages (id, member_id, identifier, plan_name, period_start) VALUES ($1, $2, $3, 'Gold', '2020-01-01')`, id, member, "C"+id[:8])
	return id
}

// claim inserts a professional claim with two lines, a diagnosis and every
// monetary amount filled in.
func (f *fixture) claim(member, dos string, sensitive bool, prac, billing *string) string {
	id := newID()
	f.exec(`INSERT INTO claims (id, member_id, identifier, type, service_start, service_end, created, processed,
	          rendering_practitioner_id, billing_organization_id, sensitive,
	          total_submitted, total_allowed, total_paid, payment_amount, payment_date, payment_adjustment,
	          copay, coinsurance, deductible, noncovered, member_liability)
	        VALUES ($1, $2, $3, 'PROFESSIONAL', $4, $4, $4::date + 5, $4::date + 9, $5, $6, $7,
	          100.10, 80.20, 60.30, 60.30, $4::date + 12, -1.00, 10, 5, 5, 0, 20)`,
		id, member, "CL"+id[:8], dos, prac, billing, sensitive)
	for seq := 1; seq <= 2; seq++ {
		f.exec(`INSERT INTO claim_lines (claim_id, sequence, service_date, product_code, product_system, quantity,
		          submitted, allowed, paid, copay, coinsurance, deductible, member_liability)
		        VALUES ($1, $2, $3, '99213', 'CPT', 1, 50.05, 40.10, 30.15, 5, 2.5, 2.5, 10)`, id, seq, dos)
	}
	f.exec(`INSERT INTO claim_diagnoses (claim_id, sequence, code, system, type) VALUES ($1, 1, 'E11.9', 'ICD-10-CM', 'principal')`, id)
	return id
}

func (f *fixture) encounter(member, start string, sensitive bool, prac *string) string {
	id := newID()
	f.exec(`INSERT INTO encounters (id, member_id, identifier, status, class, period_start, practitioner_id, sensitive)
	        VALUES ($1, $2, $3, 'finished', 'AMB', $4, $5, $6)`, id, member, "E"+id[:8], start, prac, sensitive)
	return id
}

func (f *fixture) priorAuth(member, status string, drug bool) string {
	id := newID()
	reason := ""
	if status == "DENIED" {
		reason = "not medically necessary"
	}
	f.exec(`INSERT INTO prior_authorizations (id, member_id, identifier, status, drug, requested_on, decided_on,
	          authorized_start, authorized_end, last_status_change, requesting_practitioner_id, denial_reason)
	        VALUES ($1, $2, $3, $4, $5, '2023-01-01', '2023-01-05', '2023-01-10', '2023-06-30', now(), $6, $7)`,
		id, member, "PA"+id[:8], status, drug, f.prac1, reason)
	f.exec(`INSERT INTO prior_authorization_items (prior_authorization_id, sequence, product_code, product_system,
	          quantity_requested, quantity_approved, submitted) VALUES ($1, 1, '97110', 'CPT', 10, 8, 900.00)`, id)
	return id
}

func (f *fixture) clinical(member, typ, date string, sensitive bool) string {
	id := newID()
	res := map[string]any{"resourceType": typ, "id": "src-" + id[:8], "subject": map[string]any{"reference": "Patient/payer-123"}}
	switch typ {
	case "Condition":
		res["code"] = map[string]any{"coding": []any{map[string]any{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "E11.9"}}}
		res["category"] = []any{map[string]any{"coding": []any{map[string]any{"code": "problem-list-item"}}}}
	case "AllergyIntolerance":
		delete(res, "subject")
		res["patient"] = map[string]any{"reference": "Patient/payer-123"}
	case "Observation":
		res["status"] = "final"
		res["valueQuantity"] = map[string]any{"value": json.Number("7.20"), "unit": "%"}
	}
	raw, _ := json.Marshal(res)
	var dos any
	if date != "" {
		dos = date
	}
	f.exec(`INSERT INTO clinical_resources (id, member_id, resource_type, source_id, status, date_of_service, resource, sensitive)
	        VALUES ($1, $2, $3, $4, 'active', $5, $6, $7)`, id, member, typ, "src-"+id, dos, string(raw), sensitive)
	return id
}

// runAll runs queued jobs until the queue is empty.
func (f *fixture) runAll() {
	f.t.Helper()
	for {
		ran, err := f.runner.RunOne(f.t.Context(), "test-worker")
		if err != nil {
			f.t.Fatal(err)
		}
		if !ran {
			return
		}
	}
}

// exported reads a completed job's files: resources by "Type/id" (failing
// on duplicates) and the raw lines of every file.
func (f *fixture) exported(job gateway.ExportJob) (map[string]map[string]any, []string) {
	f.t.Helper()
	files, err := f.db.ExportFiles(f.t.Context(), job.ID)
	if err != nil {
		f.t.Fatal(err)
	}
	out := map[string]map[string]any{}
	var errs []string
	for _, file := range files {
		fh, err := os.Open(filepath.Join(f.svc.Dir, job.ID, file.Name))
		if err != nil {
			f.t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(nil, 16<<20)
		n := 0
		for sc.Scan() {
			n++
			var r map[string]any
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				f.t.Fatalf("%s line %d: %v", file.Name, n, err)
			}
			if file.Kind == kindError {
				errs = append(errs, sc.Text())
				continue
			}
			key := r["resourceType"].(string) + "/" + r["id"].(string)
			if r["resourceType"] != file.ResourceType {
				f.t.Errorf("%s holds a %s", file.Name, key)
			}
			if _, dup := out[key]; dup {
				f.t.Errorf("%s exported twice", key)
			}
			out[key] = r
		}
		fh.Close()
		if n != file.Count {
			f.t.Errorf("%s: %d lines, recorded count %d", file.Name, n, file.Count)
		}
	}
	return out, errs
}

func (f *fixture) enqueue(req Request) gateway.ExportJob {
	f.t.Helper()
	job, err := f.svc.Enqueue(f.t.Context(), f.p, req)
	if err != nil {
		f.t.Fatal(err)
	}
	return job
}

func (f *fixture) job(id string) gateway.ExportJob {
	f.t.Helper()
	j, err := f.db.ExportJob(f.t.Context(), id, f.org.ID, gateway.EnvProduction)
	if err != nil {
		f.t.Fatal(err)
	}
	return j
}
