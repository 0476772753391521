package store_test

import (
	"context"
	"crypto/rand"
	"maps"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"example.com/gateway/gateway"
	"example.com/gateway/sandbox"
	"example.com/gateway/store"
	"example.com/gateway/store/storetest"
)

var seedToday = gateway.NewDate(2026, 3, 1)

func sandboxGenerator(tb testing.TB, members int, seed int64) *sandbox.Generator {
	tb.Helper()
	g, err := sandbox.New(sandbox.Options{Members: members, Seed: seed, Today: seedToday})
	if err != nil {
		tb.Fatal(err)
	}
	return g
}

// expectedCounts counts what g generates, as ReplaceSandbox reports it.
func expectedCounts(g *sandbox.Generator) store.SeedStats {
	s := store.SeedStats{Organizations: len(g.Organizations()), Practitioners: len(g.Practitioners())}
	for d := range g.Members() {
		s.Members++
		s.Coverages++
		s.Attributions += len(d.Attributions)
		if d.OptedOut() {
			s.OptOuts++
		}
		s.OptOutEvents += len(d.OptOuts)
		s.Claims += len(d.Claims)
		for _, c := range d.Claims {
			s.ClaimLines += len(c.Lines)
			s.ClaimDiagnoses += len(c.Diagnoses)
			s.ClaimProcedures += len(c.Procedures)
		}
		s.Encounters += len(d.Encounters)
		s.PriorAuthorizations += len(d.PriorAuthorizations)
		for _, p := range d.PriorAuthorizations {
			s.PriorAuthorizationItems += len(p.Items)
		}
		s.ClinicalResources += len(d.Clinical)
	}
	return s
}

// sandboxMember selects the rows of sandbox members in a table aliased t.
const sandboxMember = `t.member_id IN (SELECT id FROM members WHERE sandbox)`

// sandboxTables are the sandbox's rows: what to count and hash, in a
// stable order.
var sandboxTables = []struct{ table, where, order string }{
	{"organizations", "t.synthetic", "t.id"},
	{"practitioners", "t.sandbox", "t.id"},
	{"members", "t.sandbox", "t.id"},
	{"coverages", sandboxMember, "t.id"},
	{"attributions", sandboxMember, "t.id"},
	{"provider_access_opt_outs", sandboxMember, "t.member_id"},
	{"opt_out_events", sandboxMember, "t.id"},
	{"claims", sandboxMember, "t.id"},
	{"claim_lines", "t.claim_id IN (SELECT c.id FROM claims c JOIN members m ON m.id = c.member_id WHERE m.sandbox)", "t.claim_id, t.sequence"},
	{"claim_diagnoses", "t.claim_id IN (SELECT c.id FROM claims c JOIN members m ON m.id = c.member_id WHERE m.sandbox)", "t.claim_id, t.sequence"},
	{"claim_procedures", "t.claim_id IN (SELECT c.id FROM claims c JOIN members m ON m.id = c.member_id WHERE m.sandbox)", "t.claim_id, t.sequence"},
	{"encounters", sandboxMember, "t.id"},
	{"prior_authorizations", sandboxMember, "t.id"},
	{"prior_authorization_items", "t.prior_authorization_id IN (SELECT p.id FROM prior_authorizations p JOIN members m ON m.id = p.member_id WHERE m.sandbox)", "t.prior_authorization_id, t.sequence"},
	{"clinical_resources", sandboxMember, "t.id"},
}

// sandboxState returns the row count and an MD5 of the content (without
// last_updated) of each sandbox table.
func sandboxState(t *testing.T, db *store.DB) map[string]string {
	t.Helper()
	state := map[string]string{}
	for _, s := range sandboxTables {
		var n int
		var hash string
		q := `SELECT count(*), md5(coalesce(string_agg((to_jsonb(t) - 'last_updated')::text, '|' ORDER BY ` +
			s.order + `), '')) FROM ` + s.table + ` t WHERE ` + s.where
		if err := db.QueryRow(q).Scan(&n, &hash); err != nil {
			t.Fatalf("%s: %v", s.table, err)
		}
		state[s.table] = strconv.Itoa(n) + " " + hash
	}
	return state
}

// counts returns the row counts of sandboxState.
func counts(state map[string]string) map[string]int {
	out := map[string]int{}
	for k, v := range state {
		n, _, _ := strings.Cut(v, " ")
		out[k], _ = strconv.Atoi(n)
	}
	return out
}

func wantCounts(s store.SeedStats) map[string]int {
	return map[string]int{
		"organizations": s.Organizations, "practitioners": s.Practitioners, "members": s.Members,
		"coverages": s.Coverages, "attributions": s.Attributions + s.OrgAttributions,
		"provider_access_opt_outs": s.OptOuts, "opt_out_events": s.OptOutEvents, "claims": s.Claims,
		"claim_lines": s.ClaimLines, "claim_diagnoses": s.ClaimDiagnoses, "claim_procedures": s.ClaimProcedures,
		"encounters": s.Encounters, "prior_authorizations": s.PriorAuthorizations,
		"prior_authorization_items": s.PriorAuthorizationItems, "clinical_resources": s.ClinicalResources,
	}
}

func replace(t *testing.T, db *store.DB, g *sandbox.Generator) store.SeedStats {
	t.Helper()
	stats, err := db.ReplaceSandbox(context.Background(), g)
	if err != nil {
		t.Fatal(err)
	}
	want := expectedCounts(g)
	want.OrgAttributions, want.TriggersSkipped, want.Elapsed = stats.OrgAttributions, stats.TriggersSkipped, stats.Elapsed
	if stats != want {
		t.Fatalf("ReplaceSandbox stats\n got %+v\nwant %+v", stats, want)
	}
	return stats
}

// Production rows: an organization, a member with coverage, a claim with a
// line, and an attribution; none of them sandbox.
const insertProductionSQL = `
INSERT INTO organizations (id, name, type, npi, tin, status, in_network)
VALUES ('00000000-0000-4000-8000-000000000001', 'Real Clinic', 'PROVIDER_HEALTH_SYSTEM', '1234567893', '123456789', 'PRODUCTION', true);
INSERT INTO members (id, member_identifier, given_name, family_name, birth_date)
VALUES ('00000000-0000-4000-8000-000000000002', 'M0001', 'Real', 'Person', '1970-01-01');
INSERT INTO coverages (id, member_id, identifier) VALUES ('00000000-0000-4000-8000-000000000003', '00000000-0000-4000-8000-000000000002', 'COV1');
INSERT INTO claims (id, member_id, identifier, type, service_start, created, coverage_id, billing_organization_id, total_paid)
VALUES ('00000000-0000-4000-8000-000000000004', '00000000-0000-4000-8000-000000000002', 'CLM1', 'PROFESSIONAL', '2024-01-02', '2024-01-05',
        '00000000-0000-4000-8000-000000000003', '00000000-0000-4000-8000-000000000001', 12.50);
INSERT INTO claim_lines (claim_id, sequence, product_code, product_system) VALUES ('00000000-0000-4000-8000-000000000004', 1, '99213', 'http://www.ama-assn.org/go/cpt');
INSERT INTO attributions (id, member_id, organization_id, period_start, source)
VALUES ('00000000-0000-4000-8000-000000000005', '00000000-0000-4000-8000-000000000002', '00000000-0000-4000-8000-000000000001', '2024-01-01', 'PAYER')`

const productionRowsSQL = `
SELECT (SELECT count(*) FROM organizations WHERE id = '00000000-0000-4000-8000-000000000001')
     + (SELECT count(*) FROM members WHERE id = '00000000-0000-4000-8000-000000000002')
     + (SELECT count(*) FROM coverages WHERE id = '00000000-0000-4000-8000-000000000003')
     + (SELECT count(*) FROM claims WHERE id = '00000000-0000-4000-8000-000000000004' AND total_paid = 12.50)
     + (SELECT count(*) FROM claim_lines WHERE claim_id = '00000000-0000-4000-8000-000000000004')
     + (SELECT count(*) FROM attributions WHERE id = '00000000-0000-4000-8000-000000000005')`

func TestReplaceSandbox(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	db.MustExec(insertProductionSQL)
	checkProduction := func() {
		t.Helper()
		var n int
		if err := db.Get(&n, productionRowsSQL); err != nil || n != 6 {
			t.Fatalf("production rows: %d of 6 (%v)", n, err)
		}
	}

	first := replace(t, db, sandboxGenerator(t, 300, 1))
	state := sandboxState(t, db)
	if got, want := counts(state), wantCounts(first); !maps.Equal(got, want) {
		t.Fatalf("rows in the database\n got %v\nwant %v", got, want)
	}
	checkProduction()

	// The same seed again: the same rows, replaced rather than added.
	replace(t, db, sandboxGenerator(t, 300, 1))
	if again := sandboxState(t, db); !maps.Equal(again, state) {
		t.Fatalf("reseeding with the same seed changed the data\n got %v\nwant %v", again, state)
	}
	checkProduction()

	// Another seed: other rows, in the generator's numbers.
	other := replace(t, db, sandboxGenerator(t, 250, 2))
	otherState := sandboxState(t, db)
	if got, want := counts(otherState), wantCounts(other); !maps.Equal(got, want) {
		t.Fatalf("rows after another seed\n got %v\nwant %v", got, want)
	}
	for _, table := range []string{"members", "claims", "claim_lines", "attributions", "clinical_resources"} {
		if otherState[table] == state[table] {
			t.Errorf("%s: another seed left the same rows", table)
		}
	}
	checkProduction()

	// Last, an empty sandbox.
	replace(t, db, sandboxGenerator(t, 0, 3))
	for table, n := range counts(sandboxState(t, db)) {
		if n != 0 && table != "organizations" && table != "practitioners" {
			t.Errorf("%s: %d sandbox rows left", table, n)
		}
	}
	checkProduction()
}

const (
	insertRegisteredOrgSQL = `
INSERT INTO organizations (id, name, type, npi, tin, status)
VALUES ($1, 'Registered Health', 'PROVIDER_HEALTH_SYSTEM', '1245319599', '987654321', 'SANDBOX')`
	insertBoundClientSQL = `
INSERT INTO clients (id, organization_id, name, environment, access_type, bound_member_id)
VALUES ('client-1', $1, 'patient app', 'SANDBOX', 'PATIENT_ACCESS', $2)`
	orgAttributionIDsSQL = `
SELECT id FROM attributions WHERE organization_id = $1 AND sandbox AND source = 'SANDBOX' ORDER BY id`
	boundMemberSQL = `SELECT coalesce(bound_member_id::text, '') FROM clients WHERE id = 'client-1'`
)

func TestReplaceSandboxKeepsRegisteredOrganizations(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	db.Now = seedToday.Time
	ctx := context.Background()
	replace(t, db, sandboxGenerator(t, 300, 1))

	const org = "00000000-0000-4000-8000-0000000000aa"
	db.MustExec(insertRegisteredOrgSQL, org)
	n, err := db.AttributeSandboxMembers(ctx, org)
	if err != nil || n != sandbox.OrgAttributionCount {
		t.Fatalf("AttributeSandboxMembers = %d, %v; want %d", n, err, sandbox.OrgAttributionCount)
	}
	var ids []string
	if err := db.Select(&ids, orgAttributionIDsSQL, org); err != nil || len(ids) != n {
		t.Fatalf("organization's attributions: %d (%v), want %d", len(ids), err, n)
	}
	// Attributing again replaces them.
	if n, err := db.AttributeSandboxMembers(ctx, org); err != nil || n != len(ids) {
		t.Fatalf("AttributeSandboxMembers again = %d, %v", n, err)
	}
	var member string
	if err := db.Get(&member, `SELECT member_id FROM attributions WHERE id = $1`, ids[0]); err != nil {
		t.Fatal(err)
	}
	db.MustExec(insertBoundClientSQL, org, member)

	// The same seed: the same attributions, the client still bound.
	stats := replace(t, db, sandboxGenerator(t, 300, 1))
	if stats.OrgAttributions != len(ids) {
		t.Errorf("reseed made %d organization attributions, want %d", stats.OrgAttributions, len(ids))
	}
	var again []string
	if err := db.Select(&again, orgAttributionIDsSQL, org); err != nil || !slices.Equal(again, ids) {
		t.Fatalf("after reseeding with the same seed: attributions %v (%v), want %v", again, err, ids)
	}
	var bound string
	if err := db.Get(&bound, boundMemberSQL); err != nil || bound != member {
		t.Fatalf("client bound to %q (%v), want %q", bound, err, member)
	}

	// Another seed: new attributions over the new members; the client,
	// whose member is gone, unbound.
	replace(t, db, sandboxGenerator(t, 300, 2))
	if err := db.Select(&again, orgAttributionIDsSQL, org); err != nil || len(again) != len(ids) || slices.Equal(again, ids) {
		t.Fatalf("after another seed: %d attributions (%v), want %d new ones", len(again), err, len(ids))
	}
	if err := db.Get(&bound, boundMemberSQL); err != nil || bound != "" {
		t.Fatalf("client bound to %q (%v), want unbound", bound, err)
	}
}

// TestReplaceSandboxWithTriggers loads as a role that may not skip
// triggers, as a production gateway's role usually is: every foreign key is
// checked, and the rows are the same as those copied with triggers off.
func TestReplaceSandboxWithTriggers(t *testing.T) {
	t.Parallel()
	fast := storetest.New(t)
	slow := nonSuperuser(t, storetest.URL(t))
	g := sandboxGenerator(t, 300, 4)
	a, b := replace(t, fast, g), replace(t, slow, g)
	if b.TriggersSkipped {
		t.Fatal("a role that is no superuser skipped triggers")
	}
	if !a.TriggersSkipped {
		t.Log("the test server's role is no superuser: both loads ran with triggers")
	}
	if fs, ss := sandboxState(t, fast), sandboxState(t, slow); !maps.Equal(fs, ss) {
		t.Fatalf("rows differ between loads with and without triggers\n got %v\nwant %v", ss, fs)
	}
}

// nonSuperuser returns a store on the database at dbURL, connected as a role
// that is no superuser (when the test server's role is one, a new role with
// the privileges the gateway needs; otherwise the server's own role).
func nonSuperuser(tb testing.TB, dbURL string) *store.DB {
	tb.Helper()
	ctx := context.Background()
	admin, err := store.Open(ctx, dbURL, store.Options{MaxConns: 1})
	if err != nil {
		tb.Fatal(err)
	}
	defer admin.Close()
	var super bool
	if err := admin.Get(&super, `SELECT rolsuper FROM pg_roles WHERE rolname = current_user`); err != nil {
		tb.Fatal(err)
	}
	if super {
		role := "seed_" + strings.ToLower(rand.Text()[:12])
		admin.MustExec(`CREATE ROLE ` + role + ` LOGIN;
			GRANT USAGE ON SCHEMA public TO ` + role + `;
			GRANT ALL ON ALL TABLES IN SCHEMA public TO ` + role + `;
			GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO ` + role)
		tb.Cleanup(func() {
			admin, err := store.Open(ctx, dbURL, store.Options{MaxConns: 1})
			if err != nil {
				return
			}
			defer admin.Close()
			admin.Exec(`DROP OWNED BY ` + role + `; DROP ROLE ` + role)
		})
		dbURL = withUser(dbURL, role)
	}
	db, err := store.Open(ctx, dbURL, store.Options{MaxConns: 2})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

func withUser(dsn, user string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" {
		return dsn + " user=" + user // key=value DSN: the last value wins
	}
	u.User = url.User(user)
	return u.String()
}

// BenchmarkReplaceSandbox loads SEED_BENCH_MEMBERS sandbox members (default
// 10,000) into an empty database, then replaces them with as many from
// another seed, and logs the time and row counts of both. Run it once:
//
//	SEED_BENCH_MEMBERS=100000 go test ./store -run XXX -bench ReplaceSandbox -benchtime 1x
//
// SEED_BENCH_TRIGGERS=1 runs it as a role that may not skip triggers (see
// ReplaceSandbox), like a production gateway's role.
func BenchmarkReplaceSandbox(b *testing.B) {
	members := 10_000
	if s := os.Getenv("SEED_BENCH_MEMBERS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			b.Fatalf("SEED_BENCH_MEMBERS: %v", err)
		}
		members = n
	}
	dbURL := storetest.URL(b)
	db, err := store.Open(context.Background(), dbURL, store.Options{MaxConns: 4})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if os.Getenv("SEED_BENCH_TRIGGERS") != "" {
		db = nonSuperuser(b, dbURL)
	}
	ctx := context.Background()
	for i := 0; b.Loop(); i++ {
		for _, step := range []struct {
			name string
			seed int64
		}{{"load", int64(2 * i)}, {"replace", int64(2*i + 1)}} {
			cpu, pgCPU := processCPU(), backendsCPU(b, db)
			stats, err := db.ReplaceSandbox(ctx, sandboxGenerator(b, members, step.seed))
			if err != nil {
				b.Fatal(err)
			}
			cpu, pgCPU = processCPU()-cpu, backendsCPU(b, db)-pgCPU
			load, _ := os.ReadFile("/proc/loadavg")
			b.Logf("%s %d members: %d rows in %s (%.0f rows/s), triggers skipped: %v\n"+
				"CPU: Go %s, PostgreSQL %s (0 if not local); load average %s\n%+v",
				step.name, members, stats.Rows(), stats.Elapsed.Round(time.Millisecond),
				float64(stats.Rows())/stats.Elapsed.Seconds(), stats.TriggersSkipped,
				cpu.Round(time.Millisecond), pgCPU.Round(time.Millisecond),
				strings.Join(strings.Fields(string(load))[:3], " "), stats)
		}
	}
}

// processCPU returns the CPU time (user and system) of this process.
func processCPU() time.Duration {
	var u syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &u); err != nil {
		return 0
	}
	return time.Duration(u.Utime.Nano() + u.Stime.Nano())
}

// backendsCPU returns the CPU time of the server processes serving db's
// database, when the server runs on this machine (else 0). The pool keeps
// its connections, so differences measure the work between two calls.
func backendsCPU(tb testing.TB, db *store.DB) time.Duration {
	var pids []int
	if err := db.Select(&pids, `SELECT pid FROM pg_stat_activity WHERE datname = current_database()`); err != nil {
		tb.Fatal(err)
	}
	var ticks int64
	for _, pid := range pids {
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			continue
		}
		_, rest, _ := strings.Cut(string(stat), ") ") // after the command name
		f := strings.Fields(rest)
		if len(f) > 12 {
			u, _ := strconv.ParseInt(f[11], 10, 64)
			s, _ := strconv.ParseInt(f[12], 10, 64)
			ticks += u + s
		}
	}
	return time.Duration(ticks) * 10 * time.Millisecond // USER_HZ is 100 on Linux
}
