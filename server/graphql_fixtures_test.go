package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lib/pq"

	"example.com/gateway/auth"
	"example.com/gateway/gateway"
	"example.com/gateway/store"
	"example.com/gateway/store/storetest"
)

// The GraphQL tests run the real handler (graphQLHandler) over a real
// PostgreSQL database (storetest), with principals made by auth's
// constructors and put into the request by a test middleware in place of
// the bearer-token middleware.

// fixtureToday is "today" for the policy in these tests (store.DB.Now), so
// attribution states do not move at midnight.
var fixtureToday = time.Date(2025, 6, 15, 12, 0, 0, 0, time.UTC)

func newID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// day returns the date n days from fixtureToday as YYYY-MM-DD.
func day(n int) string { return fixtureToday.AddDate(0, 0, n).Format(time.DateOnly) }

// builder inserts rows with plain SQL.
type builder struct {
	t  testing.TB
	db *store.DB
}

func (b builder) exec(query string, args ...any) {
	b.t.Helper()
	if _, err := b.db.ExecContext(context.Background(), query, args...); err != nil {
		b.t.Fatalf("%v\n%s", err, query)
	}
}

func (b builder) org(name, npi string, inNetwork bool) string {
	id := newID()
	b.exec(`INSERT INTO organizations (id, name, type, npi, tin, status, in_network)
	        VALUES ($1, $2, 'PROVIDER_HEALTH_SYSTEM', $3, '123456789', 'PRODUCTION', $4)`, id, name, npi, inNetwork)
	return id
}

type memberRow struct {
	identifier, given, family, birth string
	sandbox                          bool
}

func (b builder) member(m memberRow) string {
	id := newID()
	b.exec(`INSERT INTO members (id, member_identifier, given_name, family_name, birth_date, gender,
	          address_line, city, state, postal_code, phone, sandbox)
	        VALUES ($1, $2, $3, $4, $5, 'FEMALE', '1 Main St', 'Springfield', 'IL', '62701', '555-0100', $6)`,
		id, m.identifier, m.given, m.family, m.birth, m.sandbox)
	return id
}

// attribute attributes member to org from start to end ("" = open).
func (b builder) attribute(member, org, start, end string, sandbox bool) string {
	id := newID()
	var e any
	if end != "" {
		e = end
	}
	b.exec(`INSERT INTO attributions (id, member_id, organization_id, period_start, period_end, source, sandbox)
	        VALUES ($1, $2, $3, $4, $5, 'PAYER', $6)`, id, member, org, start, e, sandbox)
	return id
}

func (b builder) optOut(member string) {
	b.exec(`INSERT INTO provider_access_opt_outs (member_id) VALUES ($1)`, member)
}

type claimRow struct {
	identifier   string
	typ          string // default PROFESSIONAL
	status       string // default ACTIVE
	serviceStart string
	serviceEnd   string // "" = NULL
	sensitive    bool
	lines        int
}

// claim inserts a claim with every amount set, its lines (with amounts),
// one diagnosis and one procedure.
func (b builder) claim(member string, c claimRow) string {
	id := newID()
	if c.typ == "" {
		c.typ = "PROFESSIONAL"
	}
	if c.status == "" {
		c.status = "ACTIVE"
	}
	var end any
	if c.serviceEnd != "" {
		end = c.serviceEnd
	}
	b.exec(`INSERT INTO claims (id, member_id, identifier, type, status, service_start, service_end, created,
	          processed, facility_name, place_of_service, drg, sensitive,
	          total_submitted, total_allowed, total_paid, payment_amount, payment_date, payment_adjustment,
	          copay, coinsurance, deductible, noncovered, member_liability)
	        VALUES ($1, $2, $3, $4, $5, $6, $7, $6, $6, 'Springfield General', '11', '470', $8,
	          1234.50, 1000.00, 900.00, 900.00, $6, 0.00, 20.00, 30.00, 50.00, 234.50, 100.00)`,
		id, member, c.identifier, c.typ, c.status, c.serviceStart, end, c.sensitive)
	for i := 1; i <= c.lines; i++ {
		b.exec(`INSERT INTO claim_lines (claim_id, sequence, service_date, product_code, product_system,
		          product_display, modifiers, quantity, submitted, allowed, paid, copay, coinsurance, deductible, member_liability)
		        VALUES ($1, $2, $3, $4, 'http://www.ama-assn.org/go/cpt', 'Office visit', '{25}', 1,
		          100.25, 80.00, 70.00, 10.00, 0.00, 0.00, 10.00)`,
			id, i, c.serviceStart, fmt.Sprintf("9921%d", i))
	}
	b.exec(`INSERT INTO claim_diagnoses (claim_id, sequence, code, system, display, type)
	        VALUES ($1, 1, 'E11.9', 'http://hl7.org/fhir/sid/icd-10-cm', 'Type 2 diabetes', 'principal')`, id)
	b.exec(`INSERT INTO claim_procedures (claim_id, sequence, code, system, display, performed_on)
	        VALUES ($1, 1, '99213', 'http://www.ama-assn.org/go/cpt', 'Office visit', $2)`, id, c.serviceStart)
	return id
}

func (b builder) encounter(member, identifier, start string, sensitive bool) string {
	id := newID()
	b.exec(`INSERT INTO encounters (id, member_id, identifier, status, class, type_code, type_display,
	          period_start, period_end, sensitive)
	        VALUES ($1, $2, $3, 'finished', 'AMB', '99213', 'Office visit', $4::timestamptz,
	          $4::timestamptz + interval '30 minutes', $5)`, id, member, identifier, start+"T09:00:00Z", sensitive)
	return id
}

type priorAuthRow struct {
	identifier, status, requestedOn, denialReason string
	drug, sensitive                               bool
}

func (b builder) priorAuth(member string, pa priorAuthRow) string {
	id := newID()
	b.exec(`INSERT INTO prior_authorizations (id, member_id, identifier, status, drug, service_category,
	          requested_on, last_status_change, denial_reason_code, denial_reason, sensitive)
	        VALUES ($1, $2, $3, $4, $5, 'imaging', $6::date, $6::date::timestamptz, $7, $8, $9)`,
		id, member, pa.identifier, pa.status, pa.drug, pa.requestedOn,
		map[bool]string{true: "N/A", false: ""}[pa.denialReason != ""], pa.denialReason, pa.sensitive)
	b.exec(`INSERT INTO prior_authorization_items (prior_authorization_id, sequence, product_code, product_system,
	          quantity_requested, status, submitted)
	        VALUES ($1, 1, '70551', 'http://www.ama-assn.org/go/cpt', 1, 'requested', 450.00)`, id)
	return id
}

func (b builder) clinical(member, typ, sourceID, code, dos string, sensitive bool) string {
	id := newID()
	var d any
	if dos != "" {
		d = dos
	}
	resource := fmt.Sprintf(`{"resourceType":%q,"id":%q,"code":{"coding":[{"code":%q}]}}`, typ, sourceID, code)
	b.exec(`INSERT INTO clinical_resources (id, member_id, resource_type, source_id, code, code_system, display,
	          status, date_of_service, resource, sensitive)
	        VALUES ($1, $2, $3, $4, $5, 'http://snomed.info/sct', 'Display '||$5, 'active', $6, $7, $8)`,
		id, member, typ, sourceID, code, d, resource, sensitive)
	return id
}

func (b builder) coverage(member, identifier string) string {
	id := newID()
	b.exec(`INSERT INTO coverages (id, member_id, identifier, status, plan_name, payer_name, period_start)
	        VALUES ($1, $2, $3, 'active', 'Gold PPO', 'Example Health Plan', '2024-01-01')`, id, member, identifier)
	return id
}

// world is the shared data set of most GraphQL tests.
type world struct {
	db                 *store.DB
	orgA, orgB, orgOut string
	// Members, by what makes them interesting for organization A.
	alice   string // A: ACTIVE, every kind of data; B: ended
	bob     string // A: UPCOMING (starts in 10 days)
	carol   string // A: ACTIVE but opted out
	dave    string // A: ended yesterday
	erin    string // B only
	frank   string // A: starts in 60 days (beyond the upcoming window)
	gina    string // A: withdrawn (ended_at set)
	sam     string // sandbox member, A's sandbox attribution; bound to the Patient Access client
	harry   string // attributed to the out-of-network organization only
	pagers  []string
	claims  map[string]string // by identifier
	pas     map[string]string
	encs    map[string]string
	clinics map[string]string
}

const pagerCount = 23

func newWorld(t testing.TB) *world {
	t.Helper()
	return buildWorld(t, storetest.New(t))
}

func buildWorld(t testing.TB, db *store.DB) *world {
	t.Helper()
	db.Now = func() time.Time { return fixtureToday }
	b := builder{t, db}
	w := &world{db: db, claims: map[string]string{}, pas: map[string]string{}, encs: map[string]string{}, clinics: map[string]string{}}
	w.orgA = b.org("Org A", "1234567893", true)
	w.orgB = b.org("Org B", "1245319599", true)
	w.orgOut = b.org("Out of network", "1003000126", false)

	w.alice = b.member(memberRow{"M-ALICE", "Alice", "Anders", "1980-02-03", false})
	b.attribute(w.alice, w.orgA, day(-100), "", false)
	b.attribute(w.alice, w.orgB, day(-400), day(-1), false)
	w.bob = b.member(memberRow{"M-BOB", "Bob", "Baker", "1975-05-06", false})
	b.attribute(w.bob, w.orgA, day(10), "", false)
	w.carol = b.member(memberRow{"M-CAROL", "Carol", "Andersen", "1990-07-08", false})
	b.attribute(w.carol, w.orgA, day(-100), "", false)
	b.optOut(w.carol)
	w.dave = b.member(memberRow{"M-DAVE", "Dave", "Dunn", "1960-01-01", false})
	b.attribute(w.dave, w.orgA, day(-300), day(-1), false)
	w.erin = b.member(memberRow{"M-ERIN", "Erin", "Evans", "1985-03-04", false})
	b.attribute(w.erin, w.orgB, day(-10), "", false)
	w.frank = b.member(memberRow{"M-FRANK", "Frank", "Fox", "1970-09-09", false})
	b.attribute(w.frank, w.orgA, day(60), "", false)
	w.gina = b.member(memberRow{"M-GINA", "Gina", "Gray", "1991-11-11", false})
	ginaAttr := b.attribute(w.gina, w.orgA, day(-50), "", false)
	b.exec(`UPDATE attributions SET ended_at = now() WHERE id = $1`, ginaAttr)
	w.sam = b.member(memberRow{"M-SAM", "Sam", "Sandbox", "2000-01-01", true})
	b.attribute(w.sam, w.orgA, day(-20), "", true)
	w.harry = b.member(memberRow{"M-HARRY", "Harry", "Hall", "1999-12-31", false})
	b.attribute(w.harry, w.orgOut, day(-20), "", false)

	for i := range pagerCount {
		id := b.member(memberRow{fmt.Sprintf("M-PAGE-%02d", i), "Pat", fmt.Sprintf("Pager%02d", i), "2001-01-01", false})
		b.attribute(id, w.orgA, day(-5), "", false)
		w.pagers = append(w.pagers, id)
	}

	// Alice's claims: newest service first is C-5, C-4, C-3, C-2, C-1.
	w.claims["C-1"] = b.claim(w.alice, claimRow{identifier: "C-1", serviceStart: "2023-01-10", lines: 2})
	w.claims["C-2"] = b.claim(w.alice, claimRow{identifier: "C-2", typ: "INSTITUTIONAL_INPATIENT", serviceStart: "2023-03-01", serviceEnd: "2023-03-05", lines: 3})
	w.claims["C-3"] = b.claim(w.alice, claimRow{identifier: "C-3", status: "CANCELLED", serviceStart: "2024-02-01", lines: 1})
	w.claims["C-4"] = b.claim(w.alice, claimRow{identifier: "C-4", typ: "PHARMACY", serviceStart: "2024-06-01", lines: 1})
	w.claims["C-5"] = b.claim(w.alice, claimRow{identifier: "C-5", serviceStart: "2025-01-15", lines: 2})
	w.claims["C-SENSITIVE"] = b.claim(w.alice, claimRow{identifier: "C-SENSITIVE", serviceStart: "2024-03-03", sensitive: true, lines: 1})
	w.claims["C-2015"] = b.claim(w.alice, claimRow{identifier: "C-2015", serviceStart: "2015-12-31", lines: 1})
	w.claims["C-CAROL"] = b.claim(w.carol, claimRow{identifier: "C-CAROL", serviceStart: "2024-01-01", lines: 1})
	w.claims["C-ERIN"] = b.claim(w.erin, claimRow{identifier: "C-ERIN", serviceStart: "2024-01-01", lines: 1})
	w.claims["C-SAM"] = b.claim(w.sam, claimRow{identifier: "C-SAM", serviceStart: "2024-05-05", lines: 2})

	w.encs["E-1"] = b.encounter(w.alice, "E-1", "2024-04-01", false)
	w.encs["E-2"] = b.encounter(w.alice, "E-2", "2025-02-01", false)
	w.encs["E-SENSITIVE"] = b.encounter(w.alice, "E-SENSITIVE", "2024-05-01", true)
	w.encs["E-2014"] = b.encounter(w.alice, "E-2014", "2014-05-01", false)

	w.pas["PA-PENDING"] = b.priorAuth(w.alice, priorAuthRow{identifier: "PA-PENDING", status: "PENDING", requestedOn: "2025-05-01"})
	w.pas["PA-DENIED"] = b.priorAuth(w.alice, priorAuthRow{identifier: "PA-DENIED", status: "DENIED", requestedOn: "2025-04-01", denialReason: "Not medically necessary"})
	w.pas["PA-APPROVED"] = b.priorAuth(w.alice, priorAuthRow{identifier: "PA-APPROVED", status: "APPROVED", requestedOn: "2025-03-01"})
	w.pas["PA-DRUG"] = b.priorAuth(w.alice, priorAuthRow{identifier: "PA-DRUG", status: "APPROVED", requestedOn: "2025-02-01", drug: true})
	w.pas["PA-SENSITIVE"] = b.priorAuth(w.alice, priorAuthRow{identifier: "PA-SENSITIVE", status: "PENDING", requestedOn: "2025-01-01", sensitive: true})

	w.clinics["COND-1"] = b.clinical(w.alice, "Condition", "COND-1", "44054006", "2024-01-01", false)
	w.clinics["COND-2"] = b.clinical(w.alice, "Condition", "COND-2", "38341003", "2025-01-01", false)
	w.clinics["COND-SENSITIVE"] = b.clinical(w.alice, "Condition", "COND-SENSITIVE", "66590003", "2024-06-01", true)
	w.clinics["OBS-1"] = b.clinical(w.alice, "Observation", "OBS-1", "4548-4", "2024-02-02", false)
	w.clinics["MED-1"] = b.clinical(w.alice, "MedicationRequest", "MED-1", "860975", "2024-03-03", false)
	w.clinics["IMM-1"] = b.clinical(w.alice, "Immunization", "IMM-1", "140", "2023-10-10", false)
	w.clinics["ALG-1"] = b.clinical(w.alice, "AllergyIntolerance", "ALG-1", "300916003", "2020-01-01", false)
	w.clinics["ALG-UNDATED"] = b.clinical(w.alice, "AllergyIntolerance", "ALG-UNDATED", "91936005", "", false)
	w.clinics["PROC-1"] = b.clinical(w.alice, "Procedure", "PROC-1", "80146002", "2022-08-08", false)
	b.coverage(w.alice, "COV-ALICE")
	return w
}

// Principals of the tests.
func (w *world) provider(org string) auth.Principal {
	return auth.ClientPrincipal(gateway.APIClient{ID: "client-" + org[:8], OrganizationID: org,
		Environment: gateway.EnvProduction, AccessType: gateway.ProviderAccess}, auth.Scopes{All: true})
}

func (w *world) providerSandbox(org string) auth.Principal {
	return auth.ClientPrincipal(gateway.APIClient{ID: "sandbox-" + org[:8], OrganizationID: org,
		Environment: gateway.EnvSandbox, AccessType: gateway.ProviderAccess}, auth.Scopes{All: true})
}

func (w *world) patient(member string) auth.Principal {
	return auth.ClientPrincipal(gateway.APIClient{ID: "patient-app", OrganizationID: w.orgB,
		Environment: gateway.EnvSandbox, AccessType: gateway.PatientAccess, BoundMemberID: &member}, auth.Scopes{All: true})
}

func operator() auth.Principal {
	return auth.PersonPrincipal(gateway.User{ID: newID(), Email: "operator@example.test"}, true)
}

func person(org string) auth.Principal {
	return auth.PersonPrincipal(gateway.User{ID: newID(), Email: "user@example.test", OrganizationID: &org}, false)
}

// api is the GraphQL handler of a test server, as a principal calls it.
type api struct {
	t       testing.TB
	db      *store.DB
	handler http.Handler
	logs    *syncBuffer
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newAPI(t testing.TB, db *store.DB, introspection bool) *api {
	t.Helper()
	logs := &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	s := &Server{
		Config: Config{Introspection: introspection},
		Logger: NewLogger(logs, slog.LevelDebug),
		DB:     db,
	}
	return &api{t: t, db: db, handler: withRequestID(s.graphQLHandler()), logs: logs}
}

// as returns a handler that serves requests as p (the zero Principal:
// anonymous, as without a bearer token).
func (a *api) as(p auth.Principal) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !p.IsZero() {
			r = r.WithContext(auth.WithPrincipal(r.Context(), p))
		}
		a.handler.ServeHTTP(w, r)
	})
}

// gqlError is one entry of "errors".
type gqlError struct {
	Message    string         `json:"message"`
	Path       []any          `json:"path"`
	Extensions map[string]any `json:"extensions"`
}

func (e gqlError) code() string { s, _ := e.Extensions["code"].(string); return s }

func (e gqlError) path() string {
	var parts []string
	for _, p := range e.Path {
		parts = append(parts, fmt.Sprint(p))
	}
	return strings.Join(parts, ".")
}

// result is a GraphQL response as received.
type result struct {
	status    int
	mediaType string
	raw       map[string]json.RawMessage
	Errors    []gqlError
	body      []byte
}

// codes lists the errors' codes.
func (r result) codes() []string {
	var out []string
	for _, e := range r.Errors {
		out = append(out, e.code())
	}
	return out
}

// decode decodes "data" into v.
func (r result) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.raw["data"], v); err != nil {
		t.Fatalf("data: %v\n%s", err, r.body)
	}
}

// do sends an HTTP request to h and reads the GraphQL response.
func do(t testing.TB, h http.Handler, req *http.Request) result {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	res := result{status: rec.Code, mediaType: rec.Header().Get("Content-Type"), body: rec.Body.Bytes()}
	if err := json.Unmarshal(res.body, &res.raw); err != nil {
		t.Fatalf("response is not a JSON object (status %d): %v\n%s", rec.Code, err, res.body)
	}
	if e, ok := res.raw["errors"]; ok {
		if err := json.Unmarshal(e, &res.Errors); err != nil {
			t.Fatalf("errors: %v", err)
		}
	}
	return res
}

// post sends query with variables as a JSON POST.
func post(t testing.TB, h http.Handler, query string, vars map[string]any) result {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req := httptest.NewRequest(http.MethodPost, "/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	return do(t, h, req)
}

// mustData posts query and fails the test on any error; it decodes data into v.
func mustData(t testing.TB, h http.Handler, query string, vars map[string]any, v any) {
	t.Helper()
	res := post(t, h, query, vars)
	if res.status != http.StatusOK || len(res.Errors) > 0 {
		t.Fatalf("status %d, errors %+v\n%s", res.status, res.Errors, res.body)
	}
	res.decode(t, v)
}

func rawPost(contentType, accept string, body io.Reader) *http.Request {
	req := httptest.NewRequest(http.MethodPost, "/graphql", body)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	return req
}

// bulk inserts n members attributed (ACTIVE) to org, each with claimsPer
// claims (distinct service dates, all amounts) of linesPer lines, and
// returns the members' ids.
func (b builder) bulk(org, prefix string, n, claimsPer, linesPer int) []string {
	b.t.Helper()
	var ids []string
	err := b.db.SelectContext(context.Background(), &ids, `
		INSERT INTO members (id, member_identifier, given_name, family_name, birth_date, gender,
		  address_line, city, state, postal_code, phone)
		SELECT gen_random_uuid(), $1 || lpad(g::text, 5, '0'), 'Given' || g, 'Family' || g,
		  date '1950-01-01' + g, 'MALE', g || ' Elm Street', 'Springfield', 'IL', '62701', '555-0100'
		FROM generate_series(1, $2::int) g
		RETURNING id`, prefix, n)
	if err != nil {
		b.t.Fatal(err)
	}
	b.exec(`INSERT INTO attributions (id, member_id, organization_id, period_start, source)
	        SELECT gen_random_uuid(), m, $2, $3, 'PAYER' FROM unnest($1::uuid[]) m`, pq.Array(ids), org, day(-30))
	b.exec(`INSERT INTO claims (id, member_id, identifier, type, status, outcome, service_start, service_end,
	          created, processed, facility_name, place_of_service, type_of_bill, drg, in_network,
	          total_submitted, total_allowed, total_paid, payment_amount, payment_date, payment_adjustment,
	          copay, coinsurance, deductible, noncovered, member_liability)
	        SELECT gen_random_uuid(), m, 'CLM' || lpad((row_number() OVER ())::text, 10, '0'),
	          (ARRAY['PROFESSIONAL','INSTITUTIONAL_OUTPATIENT','INSTITUTIONAL_INPATIENT','PHARMACY','ORAL'])[1 + c % 5],
	          'ACTIVE', 'complete', date '2024-12-31' - c * 3, date '2024-12-31' - c * 3 + 1,
	          date '2024-12-31' - c * 3 + 5, date '2024-12-31' - c * 3 + 20,
	          'Springfield General', '22', '0131', '470', true,
	          1234.50 + c, 1000.00, 900.00, 900.00, date '2024-12-31' - c * 3 + 20, 0.00,
	          20.00, 30.00, 50.00, 234.50, 100.00
	        FROM unnest($1::uuid[]) m, generate_series(1, $2::int) c`, pq.Array(ids), claimsPer)
	b.exec(`INSERT INTO claim_lines (claim_id, sequence, service_date, product_code, product_system,
	          product_display, modifiers, quantity, revenue_code, place_of_service,
	          submitted, allowed, paid, copay, coinsurance, deductible, member_liability)
	        SELECT c.id, s, c.service_start, '9921' || s, 'http://www.ama-assn.org/go/cpt',
	          'Office visit', '{25}', 1, '0510', '22',
	          411.50, 333.33, 300.00, 6.67, 10.00, 16.67, 33.33
	        FROM claims c, generate_series(1, $2::int) s
	        WHERE c.member_id = ANY($1::uuid[])`, pq.Array(ids), linesPer)
	return ids
}

// withTestPrincipal puts p into ctx as the bearer-token middleware would.
func withTestPrincipal(ctx context.Context, p auth.Principal) context.Context {
	return auth.WithPrincipal(ctx, p)
}
