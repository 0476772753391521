package store_test

import (
	"context"
	"crypto/rand"
	"errors"
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

// exportWorld is a small data set for the export queue and reads: an
// in-network organization with a production client, and members of every
// kind the policy tells apart.
type exportWorld struct {
	t                                           testing.TB
	db                                          *store.DB
	org, other                                  string
	client                                      gateway.APIClient
	p                                           auth.Principal
	active, upcoming, optedOut, ended, stranger string
}

func newExportWorld(t testing.TB) *exportWorld {
	t.Helper()
	w := &exportWorld{t: t, db: storetest.New(t)}
	w.org = w.organization()
	w.other = w.organization()
	c, _, err := w.db.CreateClient(t.Context(), store.NewClient{OrganizationID: w.org, Name: "c", Environment: gateway.EnvProduction, AccessType: gateway.ProviderAccess})
	if err != nil {
		t.Fatal(err)
	}
	w.client, w.p = c, auth.ClientPrincipal(c, auth.Scopes{All: true})
	w.active = w.member(w.org, "-100 days", "")
	w.upcoming = w.member(w.org, "+10 days", "")
	w.optedOut = w.member(w.org, "-100 days", "")
	w.exec(`INSERT INTO provider_access_opt_outs (member_id) VALUES ($1)`, w.optedOut)
	w.ended = w.member(w.org, "-400 days", "-10 days")
	w.stranger = w.member(w.other, "-100 days", "")
	return w
}

func (w *exportWorld) exec(q string, args ...any) {
	w.t.Helper()
	if _, err := w.db.ExecContext(w.t.Context(), q, args...); err != nil {
		w.t.Fatalf("%v: %s", err, q)
	}
}

func (w *exportWorld) organization() string {
	w.t.Helper()
	for {
		digits := ""
		for _, c := range rand.Text()[:9] {
			digits += strconv.Itoa(int(c) % 10)
		}
		for d := range 10 {
			npi := digits + strconv.Itoa(d)
			o, err := w.db.CreateOrganization(w.t.Context(), gateway.Organization{Name: "Org " + npi, Type: gateway.OrgProviderHealthSystem, NPI: npi, TIN: "123456789", InNetwork: true})
			if err == nil {
				return o.ID
			}
		}
	}
}

func (w *exportWorld) member(org, start, end string) string {
	id := uuid.NewString()
	w.exec(`INSERT INTO members (id, member_identifier) VALUES ($1, $2)`, id, "M"+id[:12])
	var endAt any
	if end != "" {
		endAt = end
	}
	w.exec(`INSERT INTO attributions (id, member_id, organization_id, period_start, period_end, source)
	        VALUES ($1, $2, $3, CURRENT_DATE + $4::interval, (CURRENT_DATE + $5::interval)::date, 'PAYER')`,
		uuid.NewString(), id, org, start, endAt)
	return id
}

func (w *exportWorld) claim(member, dos string, sensitive bool) string {
	id := uuid.NewString()
	w.exec(`INSERT INTO claims (id, member_id, identifier, type, service_start, created, sensitive, total_paid, copay)
	        VALUES ($1, $2, $3, 'PROFESSIONAL', $4, $4, $5, 12.34, 5)`, id, member, "C"+id[:12], dos, sensitive)
	w.exec(`INSERT INTO claim_lines (claim_id, sequence, product_code, product_system, paid) VALUES ($1, 1, '99213', 'CPT', 12.34)`, id)
	return id
}

func (w *exportWorld) job(p auth.Principal, types ...string) gateway.ExportJob {
	w.t.Helper()
	client := p.ID()
	org, env, _ := p.ExportOwner()
	j := gateway.ExportJob{
		ID: strings.ToLower(rand.Text()), OrganizationID: org, Environment: env, ClientID: &client,
		RequestURL: "https://x/fhir/Patient/$export", RequestHash: strings.Join(types, ","),
		Params: gateway.ExportParams{Operation: gateway.OpPatientExport, Types: types}, ExportType: gateway.ProviderDownload,
	}
	if err := w.db.InsertExportJob(w.t.Context(), &j, 10); err != nil {
		w.t.Fatal(err)
	}
	return j
}

func TestExportQueue(t *testing.T) {
	t.Parallel()
	w := newExportWorld(t)
	ctx := t.Context()
	j := w.job(w.p, "Patient")
	if j.Status != gateway.ExportQueued || j.ReceivedAt.IsZero() {
		t.Fatalf("inserted %+v", j)
	}
	dup := j
	dup.ID = strings.ToLower(rand.Text())
	if err := w.db.InsertExportJob(ctx, &dup, 10); gateway.ErrorCode(err) != gateway.CodeRateLimited {
		t.Errorf("duplicate in flight: %v", err)
	}
	if err := w.db.InsertExportJob(ctx, &gateway.ExportJob{ID: "x", OrganizationID: w.org, Environment: gateway.EnvProduction,
		ClientID: j.ClientID, RequestURL: "u", RequestHash: "other", ExportType: gateway.ProviderDownload}, 1); gateway.ErrorCode(err) != gateway.CodeRateLimited {
		t.Errorf("over the in-flight limit: %v", err)
	}

	// Ownership: another organization or environment finds nothing.
	if _, err := w.db.ExportJob(ctx, j.ID, w.other, gateway.EnvProduction); !errors.Is(err, gateway.ErrNotFound) {
		t.Errorf("other organization: %v", err)
	}
	if _, err := w.db.ExportJob(ctx, j.ID, w.org, gateway.EnvSandbox); !errors.Is(err, gateway.ErrNotFound) {
		t.Errorf("other environment: %v", err)
	}
	if _, err := w.db.ExportJob(ctx, j.ID, "not-a-uuid", gateway.EnvProduction); !errors.Is(err, gateway.ErrNotFound) {
		t.Errorf("malformed organization id: %v", err)
	}

	// Polls: the second within the interval is too soon, and does not count.
	if _, soon, err := w.db.PollExportJob(ctx, j.ID, w.org, gateway.EnvProduction, time.Hour); err != nil || soon {
		t.Fatalf("first poll: %v %v", soon, err)
	}
	if _, soon, _ := w.db.PollExportJob(ctx, j.ID, w.org, gateway.EnvProduction, time.Hour); !soon {
		t.Error("second poll within the interval is not too soon")
	}

	// Claim, heartbeat, checkpoint, complete.
	claimed, ok, err := w.db.ClaimExportJob(ctx, "w1", time.Minute)
	if err != nil || !ok || claimed.ID != j.ID || claimed.Status != gateway.ExportRunning || claimed.TransactionTime == nil || claimed.Attempts != 1 {
		t.Fatalf("claim: %+v %v %v", claimed, ok, err)
	}
	if _, ok, _ := w.db.ClaimExportJob(ctx, "w2", time.Minute); ok {
		t.Error("a leased job was claimed twice")
	}
	if err := w.db.HeartbeatExportJob(ctx, j.ID, "w2", time.Minute); !errors.Is(err, store.ErrLeaseLost) {
		t.Errorf("heartbeat of a non-owner: %v", err)
	}
	files := []gateway.ExportFile{{Name: "Patient-1.ndjson", Kind: "output", ResourceType: "Patient", Seq: 1, Count: 2, Bytes: 100}}
	if err := w.db.CheckpointExportJob(ctx, j.ID, "w1", time.Minute, store.ExportCheckpoint{CursorMemberID: w.active, MembersDone: 1, BatchesDone: 1, Files: files}); err != nil {
		t.Fatal(err)
	}
	files[0].Count, files[0].Bytes = 3, 150
	if err := w.db.CompleteExportJob(ctx, j.ID, "w1", time.Hour, 2, files); err != nil {
		t.Fatal(err)
	}
	done, err := w.db.ExportJob(ctx, j.ID, w.org, gateway.EnvProduction)
	if err != nil || done.Status != gateway.ExportCompleted || done.ExpiresAt == nil || done.MembersDone != 2 {
		t.Fatalf("completed: %+v %v", done, err)
	}
	got, _ := w.db.ExportFiles(ctx, j.ID)
	if len(got) != 1 || got[0].Count != 3 || got[0].Bytes != 150 {
		t.Errorf("files %+v", got)
	}
	if _, err := w.db.ExportFileForDownload(ctx, j.ID, "Patient-1.ndjson", w.other, gateway.EnvProduction, time.Minute); !errors.Is(err, gateway.ErrNotFound) {
		t.Errorf("download by another organization: %v", err)
	}
	if _, err := w.db.ExportFileForDownload(ctx, j.ID, "Patient-2.ndjson", w.org, gateway.EnvProduction, time.Minute); !errors.Is(err, gateway.ErrNotFound) {
		t.Errorf("unknown file: %v", err)
	}
	if last, err := w.db.LastCompletedExport(ctx, w.org, gateway.EnvProduction, nil); err != nil || last == nil || !last.Equal(*done.TransactionTime) {
		t.Errorf("last completed export %v %v", last, err)
	}

	// Cancel: gone for polls; a second cancel is NOT_FOUND.
	removable, err := w.db.CancelExportJob(ctx, j.ID, w.org, gateway.EnvProduction)
	if err != nil || !removable {
		t.Fatalf("cancel: %v %v", removable, err)
	}
	if _, _, err := w.db.PollExportJob(ctx, j.ID, w.org, gateway.EnvProduction, 0); !errors.Is(err, gateway.ErrNotFound) {
		t.Errorf("poll after cancel: %v", err)
	}
	if _, err := w.db.CancelExportJob(ctx, j.ID, w.org, gateway.EnvProduction); !errors.Is(err, gateway.ErrNotFound) {
		t.Errorf("second cancel: %v", err)
	}
}

func TestExportReadsApplyThePolicy(t *testing.T) {
	t.Parallel()
	w := newExportWorld(t)
	ctx := context.Background()
	ok := w.claim(w.active, "2023-01-01", false)
	sensitive := w.claim(w.active, "2023-01-02", true)
	old := w.claim(w.active, "2015-12-31", false)
	for _, m := range []string{w.upcoming, w.optedOut, w.ended, w.stranger} {
		w.claim(m, "2023-01-01", false)
	}
	scope := w.db.ScopeFor(w.p)
	members, err := w.db.ExportMembers(ctx, scope, store.ExportSelection{}, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range members {
		ids = append(ids, m.ID)
	}
	if len(ids) != 2 || !contains(ids, w.active) || !contains(ids, w.upcoming) {
		t.Fatalf("members %v, want active and upcoming only", ids)
	}
	if n, _ := w.db.CountExportMembers(ctx, scope, store.ExportSelection{}); n != 2 {
		t.Errorf("count %d", n)
	}
	// Paging: one at a time gives the same members in order.
	first, _ := w.db.ExportMembers(ctx, scope, store.ExportSelection{}, "", 1)
	second, _ := w.db.ExportMembers(ctx, scope, store.ExportSelection{}, first[0].ID, 1)
	if len(first) != 1 || len(second) != 1 || second[0].ID <= first[0].ID {
		t.Errorf("paging %v %v", first, second)
	}

	// The batch includes an outsider: the statements re-check visibility.
	batch := store.ExportBatch{Scope: scope, Members: append(members, store.ExportMember{ID: w.optedOut}, store.ExportMember{ID: w.stranger}),
		Window: store.ExportWindow{TransactionTime: time.Now().Add(time.Minute)}}
	actx, audit := store.WithAuditLog(ctx)
	var claims []string
	if err := w.db.ExportClaims(actx, batch, func(c *store.ClaimRecord) error {
		claims = append(claims, c.Claim.ID)
		if c.Claim.TotalPaid != nil || c.Claim.Copay != nil || c.Lines[0].Paid != nil {
			t.Errorf("money read for Provider Access: %+v", c.Claim)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(claims) != 2 || !contains(claims, ok) || contains(claims, sensitive) || contains(claims, old) {
		t.Errorf("claims %v", claims)
	}
	if audit.Len() != 2 {
		t.Errorf("audited members %d, want 2", audit.Len())
	}

	// A scope allowing money (none does for Provider Access today) reads it.
	rich := batch
	rich.Scope.Money = true
	paid := 0
	if err := w.db.ExportClaims(ctx, rich, func(c *store.ClaimRecord) error {
		if c.Claim.TotalPaid != nil && *c.Claim.TotalPaid == 1234 && c.Lines[0].Paid != nil {
			paid++
		}
		return nil
	}); err != nil || paid != 2 {
		t.Errorf("claims with money under a money scope: %d, %v", paid, err)
	}

	// Rows updated after transactionTime wait for the next export.
	past := store.ExportBatch{Scope: scope, Members: members, Window: store.ExportWindow{TransactionTime: time.Now().Add(-time.Hour)}}
	n := 0
	w.db.ExportPatients(ctx, past, func(*gateway.Member) error { n++; return nil })
	if n != 0 {
		t.Errorf("%d patients updated after transactionTime exported", n)
	}

	// A scope that is not Provider Access reads nothing.
	if _, err := w.db.ExportMembers(ctx, auth.MemberScope{Mode: auth.ScopeAll}, store.ExportSelection{}, "", 10); err == nil {
		t.Error("an operator scope exported")
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
