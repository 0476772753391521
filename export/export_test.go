package export

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"example.com/gateway/auth"
	"example.com/gateway/gateway"
	"example.com/gateway/store"
)

// findMoney returns the paths of money elements in a decoded resource: no
// amount, total, benefitBalance, currency, payment.adjustment or
// payment.date may appear in Provider Access output (DESIGN.md §1 rule 2;
// CARIN BB Basis profiles).
func findMoney(v any, path string) []string {
	var out []string
	switch v := v.(type) {
	case map[string]any:
		for k, c := range v {
			p := path + "." + k
			switch {
			case k == "amount", k == "total", k == "benefitBalance", k == "currency",
				k == "adjustment" && strings.HasSuffix(path, "payment"),
				k == "date" && strings.HasSuffix(path, "payment"):
				out = append(out, p)
			}
			out = append(out, findMoney(c, p)...)
		}
	case []any:
		for _, c := range v {
			out = append(out, findMoney(c, path+"[]")...)
		}
	}
	return out
}

func TestExportPolicy(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	job := f.enqueue(Request{Operation: gateway.OpDavinciDataExport, GroupID: gateway.AttributionGroupID(f.org.ID, gateway.EnvProduction)})
	if job.Status != gateway.ExportQueued || job.TransactionTime != nil {
		t.Fatalf("new job = %+v", job)
	}
	f.runAll()
	job = f.job(job.ID)
	if job.Status != gateway.ExportCompleted {
		t.Fatalf("job status %s (%s)", job.Status, job.Error)
	}
	got, errs := f.exported(job)
	if len(errs) != 0 {
		t.Errorf("error file: %v", errs)
	}
	for k := range f.want {
		if got[k] == nil {
			t.Errorf("%s not exported", k)
		}
	}
	for k := range f.never {
		if got[k] != nil {
			t.Errorf("%s exported, but the policy withholds it", k)
		}
	}
	for k, r := range got {
		if m := findMoney(r, k); len(m) > 0 {
			t.Errorf("money in Provider Access output: %v", m)
		}
		meta, _ := r["meta"].(map[string]any)
		if profiles, _ := meta["profile"].([]any); len(profiles) == 0 {
			t.Errorf("%s has no meta.profile", k)
		}
		if lu, _ := meta["lastUpdated"].(string); lu == "" {
			t.Errorf("%s has no meta.lastUpdated", k)
		} else if ts, err := time.Parse(time.RFC3339Nano, lu); err != nil || ts.After(*job.TransactionTime) {
			t.Errorf("%s lastUpdated %s after transactionTime %s", k, lu, job.TransactionTime)
		}
		raw, _ := json.Marshal(r)
		for _, ref := range []string{f.optedOut, f.ended, f.unattributed, f.otherOrg} {
			if strings.Contains(string(raw), ref) {
				t.Errorf("%s refers to a member outside the group", k)
			}
		}
	}
	// Clinical references point at the member; exact decimals are kept.
	for k, r := range got {
		if strings.HasPrefix(k, "Condition/") {
			if s, _ := r["subject"].(map[string]any); !strings.HasPrefix(s["reference"].(string), "Patient/") {
				t.Errorf("%s subject %v", k, s)
			}
		}
	}
	// Denied prior authorizations keep their denial reason.
	denied := 0
	for _, r := range got {
		if r["use"] == "preauthorization" {
			raw, _ := json.Marshal(r)
			if strings.Contains(string(raw), "not medically necessary") {
				denied++
			}
		}
	}
	if denied != 2 {
		t.Errorf("denied prior authorizations with their reason: %d, want 2", denied)
	}
	if job.MembersDone != 2 || job.MembersTotal == nil || *job.MembersTotal != 2 {
		t.Errorf("members done/total = %d/%v, want 2/2", job.MembersDone, job.MembersTotal)
	}

	// Audit: one row per exported member per batch, tagged with the job.
	var audited []string
	if err := f.db.SelectContext(t.Context(), &audited,
		`SELECT DISTINCT member_id::text FROM audit_events WHERE export_job_id = $1 ORDER BY 1`, job.ID); err != nil {
		t.Fatal(err)
	}
	want := []string{f.active, f.upcoming}
	slices.Sort(want)
	if !slices.Equal(audited, want) {
		t.Errorf("audited members %v, want %v", audited, want)
	}
}

func TestOptOutAfterKickoffIsHonoured(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	job := f.enqueue(Request{Operation: gateway.OpPatientExport})
	// §pdex-358: the member opts out after the kick-off, before the worker
	// reads their batch.
	f.optOut(f.active)
	f.runAll()
	got, _ := f.exported(f.job(job.ID))
	for k, r := range got {
		raw, _ := json.Marshal(r)
		if strings.Contains(string(raw), f.active) {
			t.Errorf("%s of the opted-out member exported", k)
		}
	}
	if got["Patient/"+f.upcoming] == nil {
		t.Error("the other member is missing")
	}
}

func TestSinceDeltaAndNewlyAttributed(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	first := f.enqueue(Request{Operation: gateway.OpPatientExport})
	f.runAll()
	first = f.job(first.ID)
	tt := *first.TransactionTime

	// After the first export: one claim line changes, and a member is newly
	// attributed (with data older than transactionTime).
	var claimID string
	if err := f.db.GetContext(t.Context(), &claimID, `SELECT c.id FROM claims c WHERE c.member_id = $1 AND c.service_start = '2023-03-01'`, f.active); err != nil {
		t.Fatal(err)
	}
	f.exec(`UPDATE claim_lines SET quantity = 3 WHERE claim_id = $1 AND sequence = 2`, claimID)
	newcomer := f.member(false)
	oldClaim := f.claim(newcomer, "2019-02-02", false, nil, nil)
	f.exec(`UPDATE claims SET last_updated = now() - interval '300 days' WHERE id = $1`, oldClaim)
	f.exec(`INSERT INTO attributions (id, member_id, organization_id, period_start, source) VALUES ($1, $2, $3, $4, 'PAYER')`,
		newID(), newcomer, f.org.ID, f.today.AddDays(-1))

	// provider-delta without _since: since the last completed export.
	delta := f.enqueue(Request{Operation: gateway.OpPatientExport, ExportType: gateway.ProviderDelta})
	if delta.Params.Since == nil || !delta.Params.Since.Equal(tt) {
		t.Fatalf("delta since = %v, want the previous transactionTime %v", delta.Params.Since, tt)
	}
	f.runAll()
	got, _ := f.exported(f.job(delta.ID))
	if got["ExplanationOfBenefit/"+claimID] == nil {
		t.Error("the claim whose line changed is missing from the delta")
	}
	if got["ExplanationOfBenefit/"+oldClaim] == nil || got["Patient/"+newcomer] == nil {
		t.Error("the newly attributed member's full history is missing from the delta")
	}
	for k := range got {
		if strings.HasPrefix(k, "Encounter/") || strings.HasPrefix(k, "Condition/") || k == "Patient/"+f.active {
			t.Errorf("%s unchanged since _since, but exported", k)
		}
	}
}

func TestResumeAfterInterruptionWritesNoDuplicate(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for range 5 { // more members, several batches
		m := f.member(false)
		f.attribute(m, f.org.ID, f.today.AddDays(-5), gateway.Date{})
		f.claim(m, "2022-01-01", false, &f.prac1, nil)
		f.claim(m, "2022-02-01", false, nil, nil)
	}
	f.runner.FileLimit = 3 // split often
	job := f.enqueue(Request{Operation: gateway.OpPatientExport})

	// Run until the second checkpoint, then stop as a crash would: files
	// beyond the checkpoint on disk, no release.
	ctx, cancel := context.WithCancel(t.Context())
	f.runner.afterBatch = func(_ gateway.ExportJob, batch int) {
		if batch == 2 {
			cancel()
		}
	}
	if _, err := f.runner.RunOne(ctx, "crashing-worker"); err != nil {
		t.Fatal(err)
	}
	j := f.job(job.ID)
	if j.Status != gateway.ExportRunning || j.BatchesDone != 2 {
		t.Fatalf("after the interruption: status %s, batches %d", j.Status, j.BatchesDone)
	}
	dir := filepath.Join(f.svc.Dir, job.ID)
	entries, _ := os.ReadDir(dir)
	for _, e := range entries { // garbage after the checkpoint, as a dying worker leaves it
		if strings.HasSuffix(e.Name(), ".partial") {
			fh, _ := os.OpenFile(filepath.Join(dir, e.Name()), os.O_APPEND|os.O_WRONLY, 0)
			fh.WriteString(`{"resourceType":"Patient","id":"half-writ`)
			fh.Close()
		}
	}
	os.WriteFile(filepath.Join(dir, ".Patient-9.ndjson.partial"), []byte("stray\n"), 0o600)

	f.runner.afterBatch = nil
	f.runAll()
	j = f.job(job.ID)
	if j.Status != gateway.ExportCompleted {
		t.Fatalf("status %s: %s", j.Status, j.Error)
	}
	got, errs := f.exported(j) // fails on duplicates and count mismatches
	if len(errs) > 0 {
		t.Errorf("errors: %v", errs)
	}
	if n := countType(got, "Patient"); n != 7 {
		t.Errorf("patients %d, want 7", n)
	}
	if n := countType(got, "ExplanationOfBenefit"); n != 2*4+5*2 { // 1 claim and 3 PAs; 2 claims each
		t.Errorf("EOBs %d, want 18", n)
	}
	for _, e := range mustReadDir(t, dir) {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("leftover %s", e.Name())
		}
		if info, _ := e.Info(); info.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", e.Name(), info.Mode().Perm())
		}
	}
	if info, _ := os.Stat(dir); info.Mode().Perm() != 0o700 {
		t.Errorf("job directory mode %v, want 0700", info.Mode().Perm())
	}
}

func countType(got map[string]map[string]any, typ string) int {
	n := 0
	for k := range got {
		if strings.HasPrefix(k, typ+"/") {
			n++
		}
	}
	return n
}

func mustReadDir(t testing.TB, dir string) []os.DirEntry {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return es
}

func TestEnqueueErrors(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := t.Context()
	group := gateway.AttributionGroupID(f.org.ID, gateway.EnvProduction)
	code := func(err error) string { return gateway.ErrorCode(err) }

	if _, err := f.svc.Enqueue(ctx, f.p, Request{GroupID: gateway.AttributionGroupID(f.other.ID, gateway.EnvProduction)}); code(err) != gateway.CodeNotFound {
		t.Errorf("someone else's group: %v", err)
	}
	if _, err := f.svc.Enqueue(ctx, f.p, Request{GroupID: gateway.AttributionGroupID(f.org.ID, gateway.EnvSandbox)}); code(err) != gateway.CodeNotFound {
		t.Errorf("own group of the other environment: %v", err)
	}
	if _, err := f.svc.Enqueue(ctx, f.p, Request{Types: []string{"Claim"}}); code(err) != gateway.CodeInvalid {
		t.Errorf("unsupported type: %v", err)
	}
	narrow := auth.ClientPrincipal(f.client, auth.Scopes{Types: []string{"Patient"}})
	if _, err := f.svc.Enqueue(ctx, narrow, Request{Types: []string{"ExplanationOfBenefit"}}); code(err) != gateway.CodeForbidden {
		t.Errorf("type outside the token's scopes: %v", err)
	}
	if _, err := f.svc.Enqueue(ctx, f.p, Request{TypeFilters: []string{"ExplanationOfBenefit?_include=x"}}); code(err) != gateway.CodeInvalid {
		t.Errorf("unsupported _typeFilter: %v", err)
	}
	patientAccess := auth.ClientPrincipal(gateway.APIClient{ID: "x", OrganizationID: f.org.ID, Environment: gateway.EnvProduction, AccessType: gateway.PatientAccess}, auth.Scopes{All: true})
	if _, err := f.svc.Enqueue(ctx, patientAccess, Request{}); code(err) != gateway.CodeForbidden {
		t.Errorf("patient access client: %v", err)
	}
	since := time.Now()
	until := since.Add(-time.Hour)
	if _, err := f.svc.Enqueue(ctx, f.p, Request{Since: &since, Until: &until}); code(err) != gateway.CodeInvalid {
		t.Errorf("_until before _since: %v", err)
	}

	// Not in-network (production): refused (42 CFR 422.121(a)(2)).
	out := f.organization("Out of network", false)
	outP := auth.ClientPrincipal(f.newClient(out.ID, gateway.EnvProduction), auth.Scopes{All: true})
	if _, err := f.svc.Enqueue(ctx, outP, Request{}); code(err) != gateway.CodeForbidden {
		t.Errorf("not in-network: %v", err)
	}
	// …but its sandbox clients export sandbox data.
	outSandbox := auth.ClientPrincipal(f.newClient(out.ID, gateway.EnvSandbox), auth.Scopes{All: true})
	if _, err := f.svc.Enqueue(ctx, outSandbox, Request{}); err != nil {
		t.Errorf("sandbox client of an out-of-network organization: %v", err)
	}

	// A duplicate in flight from the same client: 429; another client: fine.
	req := Request{Operation: gateway.OpGroupExport, GroupID: group, Types: []string{"Patient"}}
	if _, err := f.svc.Enqueue(ctx, f.p, req); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Enqueue(ctx, f.p, req); code(err) != gateway.CodeRateLimited {
		t.Errorf("duplicate in flight: %v", err)
	}
	other := auth.ClientPrincipal(f.newClient(f.org.ID, gateway.EnvProduction), auth.Scopes{All: true})
	if _, err := f.svc.Enqueue(ctx, other, req); err != nil {
		t.Errorf("same request from another client: %v", err)
	}
	// The organization's limit on jobs in flight, at its boundary: two are
	// queued; with a limit of 3 the third is taken and the fourth refused.
	f.svc.MaxInFlight = 3
	if _, err := f.svc.Enqueue(ctx, f.p, Request{Types: []string{"Coverage"}}); err != nil {
		t.Errorf("at the organization's limit: %v", err)
	}
	if _, err := f.svc.Enqueue(ctx, f.p, Request{Types: []string{"Encounter"}}); code(err) != gateway.CodeRateLimited {
		t.Errorf("over the organization's limit: %v", err)
	}
}

func TestPatientParameter(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := t.Context()
	group := gateway.AttributionGroupID(f.org.ID, gateway.EnvProduction)
	ids := []string{f.active, f.optedOut, "not-a-uuid", f.unattributed}

	// $export: a non-member is an error…
	_, err := f.svc.Enqueue(ctx, f.p, Request{Operation: gateway.OpGroupExport, GroupID: group, PatientIDs: ids})
	if gateway.ErrorCode(err) != gateway.CodeInvalid {
		t.Fatalf("$export with non-members: %v", err)
	}
	// …and the message is the same for every kind of non-member.
	var e *gateway.Error
	errors.As(err, &e)
	if strings.Contains(e.Message, "opt") {
		t.Errorf("message reveals an opt-out: %s", e.Message)
	}

	// $davinci-data-export ignores them and says so in the error file,
	// identically for opted-out, unknown and unattributed members.
	job := f.enqueue(Request{Operation: gateway.OpDavinciDataExport, GroupID: group, PatientIDs: ids})
	f.runAll()
	got, errs := f.exported(f.job(job.ID))
	if got["Patient/"+f.active] == nil || got["Patient/"+f.upcoming] != nil {
		t.Errorf("patient subset not honoured: %v", keys(got))
	}
	if len(errs) != 3 {
		t.Fatalf("error file: %v", errs)
	}
	for _, line := range errs {
		if !strings.Contains(line, "is not a member of this group and was ignored") || strings.Contains(line, "opt") {
			t.Errorf("error line %s", line)
		}
	}

	// Every patient ignored: an empty export, not the whole group.
	job = f.enqueue(Request{Operation: gateway.OpDavinciDataExport, GroupID: group, PatientIDs: []string{f.optedOut}})
	f.runAll()
	if got, _ := f.exported(f.job(job.ID)); len(got) != 0 {
		t.Errorf("export of ignored patients only: %v", keys(got))
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func TestTypeFilterExport(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	job := f.enqueue(Request{
		Types:       []string{"ExplanationOfBenefit", "Condition"},
		TypeFilters: []string{"ExplanationOfBenefit?use=preauthorization&service-date=ge2023-01-01"},
	})
	f.runAll()
	got, _ := f.exported(f.job(job.ID))
	for k, r := range got {
		if strings.HasPrefix(k, "ExplanationOfBenefit/") && r["use"] != "preauthorization" {
			t.Errorf("%s use %v passed the filter", k, r["use"])
		}
	}
	if countType(got, "ExplanationOfBenefit") != 6 || countType(got, "Condition") != 2 || countType(got, "Patient") != 0 {
		t.Errorf("exported %v", keys(got))
	}
}

func TestCancelAndExpiry(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := t.Context()
	job := f.enqueue(Request{})
	if err := f.svc.Cancel(ctx, f.p, job.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.db.PollExportJob(ctx, job.ID, f.org.ID, gateway.EnvProduction, 0); gateway.ErrorCode(err) != gateway.CodeNotFound {
		t.Errorf("poll after cancel: %v", err)
	}
	if err := f.svc.Cancel(ctx, f.p, job.ID); gateway.ErrorCode(err) != gateway.CodeNotFound {
		t.Errorf("second cancel: %v", err)
	}
	if ran, _ := f.runner.RunOne(ctx, "w"); ran {
		t.Error("a cancelled job was run")
	}
	// Deleting a completed job removes its files at once.
	done := f.enqueue(Request{Types: []string{"Coverage"}})
	f.runAll()
	if _, err := os.Stat(filepath.Join(f.svc.Dir, done.ID, "Coverage-1.ndjson")); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Cancel(ctx, f.p, done.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(f.svc.Dir, done.ID)); !os.IsNotExist(err) {
		t.Errorf("files of a deleted job: %v", err)
	}

	// A completed job expires; its files stay while a download lease holds.
	job = f.enqueue(Request{Types: []string{"Patient"}})
	f.runAll()
	if _, err := f.db.ExportFileForDownload(ctx, job.ID, "Patient-1.ndjson", f.org.ID, gateway.EnvProduction, time.Hour); err != nil {
		t.Fatal(err)
	}
	f.exec(`UPDATE export_jobs SET expires_at = now() - interval '1 second' WHERE id = $1`, job.ID)
	if err := f.runner.SweepOnce(ctx); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(f.svc.Dir, job.ID)
	if _, err := os.Stat(filepath.Join(dir, "Patient-1.ndjson")); err != nil {
		t.Errorf("file removed during a download lease: %v", err)
	}
	if _, _, err := f.db.PollExportJob(ctx, job.ID, f.org.ID, gateway.EnvProduction, 0); gateway.ErrorCode(err) != gateway.CodeNotFound {
		t.Errorf("poll after expiry: %v", err)
	}
	f.exec(`UPDATE export_jobs SET downloading_until = now() - interval '1 second' WHERE id = $1`, job.ID)
	if err := f.runner.SweepOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("expired job's files not removed: %v", err)
	}
	// The row stays: provider-delta still finds the previous export.
	if last, err := f.db.LastCompletedExport(ctx, f.org.ID, gateway.EnvProduction, nil); err != nil || last == nil {
		t.Errorf("last completed export after purge: %v %v", last, err)
	}
}

func TestRevokedClientFailsItsJob(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	job := f.enqueue(Request{})
	if err := f.db.RevokeClient(t.Context(), f.client.ID); err != nil {
		t.Fatal(err)
	}
	f.runAll()
	j := f.job(job.ID)
	if j.Status != gateway.ExportFailed || j.Error == "" {
		t.Errorf("job of a revoked client: %s %q", j.Status, j.Error)
	}
}

func TestFairClaimAcrossOrganizations(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := t.Context()
	// Org A queues three jobs, then org B one; A's first is running.
	a1 := f.enqueue(Request{Types: []string{"Patient"}})
	f.enqueue(Request{Types: []string{"Coverage"}})
	f.enqueue(Request{Types: []string{"Encounter"}})
	bp := auth.ClientPrincipal(f.newClient(f.other.ID, gateway.EnvProduction), auth.Scopes{All: true})
	b1, err := f.svc.Enqueue(ctx, bp, Request{})
	if err != nil {
		t.Fatal(err)
	}
	first, ok, err := f.db.ClaimExportJob(ctx, "w1", time.Minute)
	if err != nil || !ok || first.ID != a1.ID {
		t.Fatalf("first claim %v %v %v, want the oldest job", first.ID, ok, err)
	}
	second, ok, err := f.db.ClaimExportJob(ctx, "w2", time.Minute)
	if err != nil || !ok || second.ID != b1.ID {
		t.Fatalf("second claim %v, want the other organization's job %v", second.ID, b1.ID)
	}
	if first.TransactionTime == nil || first.TransactionTime.After(time.Now()) {
		t.Errorf("transactionTime %v", first.TransactionTime)
	}
	// An expired lease is reclaimed by another worker; the old owner's
	// heartbeat then fails.
	f.exec(`UPDATE export_jobs SET lease_expires_at = now() - interval '1 second' WHERE id = $1`, a1.ID)
	f.exec(`UPDATE export_jobs SET received_at = received_at - interval '1 hour' WHERE id = $1`, a1.ID)
	again, ok, err := f.db.ClaimExportJob(ctx, "w3", time.Minute)
	if err != nil || !ok || again.ID != a1.ID || !again.TransactionTime.Equal(*first.TransactionTime) {
		t.Fatalf("reclaim: %v %v %v", again.ID, ok, err)
	}
	if err := f.db.HeartbeatExportJob(ctx, a1.ID, "w1", time.Minute); !errors.Is(err, store.ErrLeaseLost) {
		t.Errorf("heartbeat of the old owner: %v", err)
	}
}

func TestResumeWithLostFilesStartsOver(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	job := f.enqueue(Request{Operation: gateway.OpPatientExport})
	ctx, cancel := context.WithCancel(t.Context())
	f.runner.afterBatch = func(gateway.ExportJob, int) { cancel() }
	if _, err := f.runner.RunOne(ctx, "w1"); err != nil {
		t.Fatal(err)
	}
	f.runner.afterBatch = nil
	if err := os.RemoveAll(filepath.Join(f.svc.Dir, job.ID)); err != nil { // the volume lost the files
		t.Fatal(err)
	}
	f.runAll()
	j := f.job(job.ID)
	if j.Status != gateway.ExportCompleted {
		t.Fatalf("%s %s", j.Status, j.Error)
	}
	got, _ := f.exported(j)
	for k := range f.want {
		if got[k] == nil {
			t.Errorf("%s missing after the restart", k)
		}
	}
}

func TestCancelWhileRunning(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	job := f.enqueue(Request{Operation: gateway.OpPatientExport})
	f.runner.afterBatch = func(gateway.ExportJob, int) {
		if err := f.svc.Cancel(context.Background(), f.p, job.ID); err != nil {
			t.Error(err)
		}
	}
	ran, err := f.runner.RunOne(t.Context(), "w")
	if !ran || err != nil {
		t.Fatalf("run: %v %v", ran, err)
	}
	j := f.job(job.ID)
	if j.Status != gateway.ExportCancelled || j.LeaseOwner != nil {
		t.Errorf("after cancel: %s lease %v", j.Status, j.LeaseOwner)
	}
	if err := f.runner.SweepOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(f.svc.Dir, job.ID)); !os.IsNotExist(err) {
		t.Errorf("files of the cancelled job: %v", err)
	}
}
