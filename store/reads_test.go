package store_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"example.com/gateway/gateway"
	"example.com/gateway/store"
	"example.com/gateway/store/storetest"
)

func TestNewPage(t *testing.T) {
	t.Parallel()
	n := func(i int) *int { return &i }
	for _, tc := range []struct {
		first *int
		want  int
		err   bool
	}{
		{nil, store.DefaultPageSize, false}, {n(0), 0, false}, {n(100), 100, false},
		{n(101), 0, true}, {n(100000), 0, true}, {n(-1), 0, true},
	} {
		p, err := store.NewPage(tc.first, nil)
		var ge *gateway.Error
		switch {
		case tc.err && (!errors.As(err, &ge) || ge.Code != gateway.CodeInvalid || ge.Path != "first"):
			t.Errorf("NewPage(%v) error = %v, want BAD_USER_INPUT at first", *tc.first, err)
		case !tc.err && (err != nil || p.First != tc.want):
			t.Errorf("NewPage(%v) = %+v, %v", tc.first, p, err)
		}
	}
}

func TestMemberByID_NotFoundAlike(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	db.Now = func() time.Time { return readsToday }
	f := fixtures{t, db}
	a, b := f.org("1234567893"), f.org("1245319599")
	mine, theirs := f.member("MINE", a), f.member("THEIRS", b)
	ctx := context.Background()
	if m, err := db.MemberByID(ctx, providerOf(a), mine); err != nil || m.Identifier != "MINE" {
		t.Fatalf("MemberByID(mine) = %v, %v", m, err)
	}
	for name, id := range map[string]string{"another organization's": theirs, "nonexistent": newUUID(), "not a uuid": "x'; --"} {
		if _, err := db.MemberByID(ctx, providerOf(a), id); err != gateway.ErrNotFound {
			t.Errorf("%s member: err = %v, want gateway.ErrNotFound", name, err)
		}
	}
}

func TestClaimsByMembers_OneStatementForManyMembers(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	db.Now = func() time.Time { return readsToday }
	f := fixtures{t, db}
	org := f.org("1234567893")
	m1, m2, m3 := f.member("M1", org), f.member("M2", org), f.member("M3", "")
	f.claim(m1, "A", "2024-01-01", false)
	f.claim(m1, "B", "2024-03-01", false)
	f.claim(m1, "C", "2024-02-01", false)
	f.claim(m1, "S", "2024-04-01", true)    // sensitive
	f.claim(m1, "OLD", "2015-06-01", false) // before the floor
	f.claim(m3, "NOT-ATTRIBUTED", "2024-01-01", false)
	p := providerOf(org)

	ctx, audit := store.WithAuditLog(context.Background())
	for _, id := range []string{m1, m2} { // the members' own reads come first
		if _, err := db.MemberByID(ctx, p, id); err != nil {
			t.Fatal(err)
		}
	}
	pages, err := db.ClaimsByMembers(ctx, p, []string{m1, m2, m3, "garbage"}, store.ClaimFilter{}, store.Page{First: 2})
	if err != nil {
		t.Fatal(err)
	}
	identifiers := func(pg *store.Paged[*gateway.Claim]) []string {
		var out []string
		for _, c := range pg.Items {
			out = append(out, c.Identifier)
			if c.TotalPaid != nil {
				t.Errorf("claim %s: Provider Access received an amount", c.Identifier)
			}
		}
		return out
	}
	if got := identifiers(pages[m1]); !slices.Equal(got, []string{"B", "C"}) || !pages[m1].HasNextPage {
		t.Errorf("m1 page 1 = %v, hasNext %v", got, pages[m1].HasNextPage)
	}
	if len(pages[m2].Items) != 0 || len(pages[m3].Items) != 0 {
		t.Errorf("m2 %v, m3 %v: want empty pages", pages[m2].Items, pages[m3].Items)
	}
	next, err := db.ClaimsByMembers(ctx, p, []string{m1}, store.ClaimFilter{}, store.Page{First: 2, After: pages[m1].Cursors[1]})
	if err != nil {
		t.Fatal(err)
	}
	if got := identifiers(next[m1]); !slices.Equal(got, []string{"A"}) || next[m1].HasNextPage || !next[m1].HasPreviousPage {
		t.Errorf("m1 page 2 = %v (%+v)", got, next[m1])
	}

	// Audited per member: m2's empty read too; nothing for m3.
	if err := db.WriteAudit(ctx, p, store.AuditContext{RequestID: "reads-test", Operation: "test"}, audit); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	rows, err := db.QueryContext(context.Background(), `SELECT member_id, resources::text FROM audit_events WHERE request_id = 'reads-test'`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var m, r string
		rows.Scan(&m, &r)
		got[m] = r
	}
	rows.Close()
	want := map[string]string{
		m1: `{"Patient": 1, "ExplanationOfBenefit": 3}`, // 2 + 1 claims on two pages
		m2: `{"Patient": 1, "ExplanationOfBenefit": 0}`,
	}
	if len(got) != 2 || got[m1] != want[m1] || got[m2] != want[m2] {
		t.Errorf("audit = %v, want %v", got, want)
	}
}

func TestReads_RejectForeignCursors(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	ctx := context.Background()
	p := operatorPrincipal()
	ids := []string{newUUID()}
	memberCursor := "bXwwMDAwMDAwMC0wMDAwLTQwMDAtODAwMC0wMDAwMDAwMDAwMDA" // a member cursor
	for _, after := range []string{"garbage!", memberCursor, "Y3xub3QtYS1kYXRlfHg"} {
		page := store.Page{First: 5, After: after}
		_, e1 := db.ClaimsByMembers(ctx, p, ids, store.ClaimFilter{}, page)
		_, e2 := db.EncountersByMembers(ctx, p, ids, store.EncounterFilter{}, page)
		_, e3 := db.PriorAuthorizationsByMembers(ctx, p, ids, store.PriorAuthorizationFilter{}, page)
		_, e4 := db.ClinicalByMembers(ctx, p, ids, gateway.ClinicalCondition, store.ClinicalFilter{}, page)
		for i, err := range []error{e1, e2, e3, e4} {
			if gateway.ErrorCode(err) != gateway.CodeInvalid {
				t.Errorf("after %q, read %d: err = %v, want BAD_USER_INPUT", after, i, err)
			}
		}
	}
	if _, err := db.MembersPage(ctx, p, store.MemberFilter{}, store.Page{First: 5, After: "Y3wyMDI0LTAxLTAxfHg"}); gateway.ErrorCode(err) != gateway.CodeInvalid {
		t.Errorf("members with a claim cursor: err = %v", err)
	}
}

func TestPriorAuthorizations_NoDrugsForProviderAccess(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	db.Now = func() time.Time { return readsToday }
	f := fixtures{t, db}
	org := f.org("1234567893")
	m := f.member("M", org)
	service, drug := f.priorAuth(m, "SERVICE", false), f.priorAuth(m, "DRUG", true)
	ctx := context.Background()

	pages, err := db.PriorAuthorizationsByMembers(ctx, providerOf(org), []string{m}, store.PriorAuthorizationFilter{}, store.Page{First: 10})
	if err != nil || len(pages[m].Items) != 1 || pages[m].Items[0].ID != service {
		t.Fatalf("provider prior authorizations = %+v, %v", pages[m], err)
	}
	items, err := db.ItemsByPriorAuthorizations(ctx, providerOf(org), []string{service, drug})
	if err != nil || len(items[service]) != 1 || len(items[drug]) != 0 || items[service][0].Submitted != nil {
		t.Errorf("provider items = %v, %v: want the service item only, without its amount", items, err)
	}
	items, err = db.ItemsByPriorAuthorizations(ctx, operatorPrincipal(), []string{service, drug})
	if err != nil || len(items[drug]) != 1 || items[drug][0].Submitted == nil || *items[drug][0].Submitted != 9900 {
		t.Errorf("operator items = %v, %v", items, err)
	}
}
