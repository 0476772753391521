package store_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"example.com/gateway/auth"
	"example.com/gateway/gateway"
	"example.com/gateway/store"
	"example.com/gateway/store/storetest"
)

// The PROVIDER scope's member count is a statement of its own, narrowed to
// the organization's live attributions for the planner (store/members.go).
// The narrowing must never change a result: memberVisible stays the rule.

type planFixture struct {
	f                     fixtures
	orgA, orgB, orgOut    string
	members               map[string]string // name -> id
	live                  []string          // names with a live production attribution to orgA (any member)
	sandboxLive           []string          // names with a live sandbox attribution to orgA (any member)
	sandboxOut, boundName string
}

func newPlanFixture(t *testing.T, db *store.DB) planFixture {
	f := fixtures{t, db}
	p := planFixture{f: f, members: map[string]string{}}
	p.orgA, p.orgB, p.orgOut = f.org("1234567893"), f.org("1245319599"), f.org("1003000126")
	f.exec(`UPDATE organizations SET in_network = false WHERE id = $1`, p.orgOut)
	member := func(name string, sandbox bool) string {
		id := newUUID()
		f.exec(`INSERT INTO members (id, member_identifier, given_name, family_name, sandbox) VALUES ($1, $2, 'Pat', $3, $4)`,
			id, strings.ToUpper(name), name, sandbox)
		p.members[name] = id
		return id
	}
	attribute := func(member, org, start, end string, ended, sandbox bool) {
		var endedAt any
		if ended {
			endedAt = "2025-05-01T00:00:00Z"
		}
		var periodEnd any
		if end != "" {
			periodEnd = end
		}
		f.exec(`INSERT INTO attributions (id, member_id, organization_id, period_start, period_end, source, ended_at, sandbox)
		        VALUES ($1, $2, $3, $4, $5, 'OPERATOR', $6, $7)`, newUUID(), member, org, start, periodEnd, endedAt, sandbox)
	}
	// Production members of orgA (today 2025-06-15, upcoming window 30 days).
	attribute(member("active", false), p.orgA, "2025-01-01", "", false, false)
	attribute(member("upcoming", false), p.orgA, "2025-07-01", "", false, false)
	attribute(member("future", false), p.orgA, "2025-12-01", "", false, false) // beyond the window
	attribute(member("expired", false), p.orgA, "2024-01-01", "2025-01-31", false, false)
	attribute(member("ended", false), p.orgA, "2025-01-01", "", true, false)     // withdrawn
	attribute(member("optedout", false), p.orgA, "2025-01-01", "", false, false) // opted out below
	f.exec(`INSERT INTO provider_access_opt_outs (member_id) VALUES ($1)`, p.members["optedout"])
	attribute(member("mismatch", false), p.orgA, "2025-01-01", "", false, true) // sandbox attribution of a production member
	twice := member("twice", false)                                             // two live attributions, counted once
	attribute(twice, p.orgA, "2025-01-01", "", false, false)
	attribute(twice, p.orgA, "2025-02-01", "", false, false)
	attribute(twice, p.orgB, "2025-01-01", "", false, false)
	attribute(member("other", false), p.orgB, "2025-01-01", "", false, false)
	attribute(member("outofnetwork", false), p.orgOut, "2025-01-01", "", false, false)
	member("nobody", false)
	// Sandbox members.
	attribute(member("sbxactive", true), p.orgA, "2025-01-01", "", false, true)
	attribute(member("sbxprodattr", true), p.orgA, "2025-01-01", "", false, false) // production attribution of a sandbox member
	attribute(member("sbxout", true), p.orgOut, "2025-01-01", "", false, true)
	p.live = []string{"active", "upcoming", "future", "expired", "optedout", "twice", "sbxprodattr"}
	p.sandboxLive = []string{"sbxactive", "mismatch"}
	p.boundName = "active"
	return p
}

func (p planFixture) ids(names ...string) []string {
	out := make([]string, 0, len(names))
	for _, n := range names {
		out = append(out, p.members[n])
	}
	slices.Sort(out)
	return out
}

func (p planFixture) names(ids []string) []string {
	byID := map[string]string{}
	for n, id := range p.members {
		byID[id] = n
	}
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		out = append(out, byID[id])
	}
	slices.Sort(out)
	return out
}

func planClient(org string, env gateway.Environment, access gateway.AccessType, bound *string) auth.Principal {
	return auth.ClientPrincipal(gateway.APIClient{ID: "client", OrganizationID: org, Environment: env,
		AccessType: access, BoundMemberID: bound}, auth.Scopes{All: true})
}

// TestMembersCount_ProviderNarrowingChangesNothing checks, for every kind of
// scope, that the members count and the members page agree with
// memberVisible alone (MemberByID of each member, which has no narrowing),
// and with the rule as written out here.
func TestMembersCount_ProviderNarrowingChangesNothing(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	db.Now = func() time.Time { return readsToday }
	fx := newPlanFixture(t, db)
	ctx := context.Background()
	bound := fx.members[fx.boundName]
	for _, tc := range []struct {
		name string
		p    auth.Principal
		want []string // names
	}{
		{"provider", planClient(fx.orgA, gateway.EnvProduction, gateway.ProviderAccess, nil), []string{"active", "upcoming", "twice"}},
		{"provider sandbox", planClient(fx.orgA, gateway.EnvSandbox, gateway.ProviderAccess, nil), []string{"sbxactive"}},
		{"other provider", planClient(fx.orgB, gateway.EnvProduction, gateway.ProviderAccess, nil), []string{"other", "twice"}},
		{"not in network", planClient(fx.orgOut, gateway.EnvProduction, gateway.ProviderAccess, nil), nil},
		{"not in network, sandbox", planClient(fx.orgOut, gateway.EnvSandbox, gateway.ProviderAccess, nil), []string{"sbxout"}},
		{"patient", planClient(fx.orgA, gateway.EnvProduction, gateway.PatientAccess, &bound), []string{"active"}},
		{"operator", operatorPrincipal(), func() []string {
			var all []string
			for n := range fx.members {
				all = append(all, n)
			}
			return all
		}()},
		{"person", auth.PersonPrincipal(gateway.User{ID: newUUID(), Email: "someone@example.test", OrganizationID: &fx.orgA}, false), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var visible []string // memberVisible alone
			for _, id := range fx.members {
				if _, err := db.MemberByID(ctx, tc.p, id); err == nil {
					visible = append(visible, id)
				} else if err != gateway.ErrNotFound {
					t.Fatal(err)
				}
			}
			slices.Sort(visible)
			if got, want := fx.names(visible), fx.names(fx.ids(tc.want...)); !slices.Equal(got, want) {
				t.Fatalf("memberVisible = %v, want %v (fixture or policy changed)", got, want)
			}
			for _, filter := range []store.MemberFilter{{}, {Name: "pat"}, {Name: "twice"}, {Identifier: "ACTIVE"}} {
				var want []string
				for _, id := range visible {
					n := fx.names([]string{id})[0]
					if filter.Name == "twice" && n != "twice" || filter.Identifier == "ACTIVE" && n != "active" {
						continue
					}
					want = append(want, id)
				}
				n, err := db.MembersCount(ctx, tc.p, filter)
				if err != nil || n != len(want) {
					t.Errorf("MembersCount(%+v) = %d, %v; want %d %v", filter, n, err, len(want), fx.names(want))
				}
				page, err := db.MembersPage(ctx, tc.p, filter, store.Page{First: store.MaxPageSize})
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, m := range page.Items {
					got = append(got, m.ID)
				}
				if !slices.Equal(got, want) { // want is in id order, as the page
					t.Errorf("MembersPage(%+v) = %v, want %v", filter, fx.names(got), fx.names(want))
				}
			}
			// The generic plan (after five runs of the prepared statement)
			// must count the same as the custom ones.
			for range 7 {
				if n, err := db.MembersCount(ctx, tc.p, store.MemberFilter{}); err != nil || n != len(visible) {
					t.Fatalf("MembersCount, repeated = %d, %v; want %d", n, err, len(visible))
				}
			}
		})
	}
}

// TestMembersCount_ProviderNarrowingAlone runs the provider count's own
// statement (taken from the session that prepared it) with memberVisible made
// vacuous ($1 = 'ALL'), so that the narrowing alone decides: it must keep
// exactly the members with a live attribution to the organization in the
// scope's data set. A narrowing too weak (without the organization, the
// sandbox or ended_at) cannot change a result, since memberVisible still
// applies, but it would make the statement scan far more than the
// organization's members; one too strong fails the test above.
func TestMembersCount_ProviderNarrowingAlone(t *testing.T) {
	t.Parallel()
	url := storetest.URL(t)
	ctx := context.Background()
	db, err := store.Open(ctx, url, store.Options{MaxConns: 1}) // one session: its prepared statements
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.Now = func() time.Time { return readsToday }
	fx := newPlanFixture(t, db)
	for _, env := range []gateway.Environment{gateway.EnvProduction, gateway.EnvSandbox} {
		p := planClient(fx.orgA, env, gateway.ProviderAccess, nil)
		if _, err := db.MembersCount(ctx, p, store.MemberFilter{}); err != nil {
			t.Fatal(err)
		}
	}
	var statements []string
	if err := db.SelectContext(ctx, &statements, `SELECT statement FROM pg_prepared_statements WHERE statement LIKE '%count(*)%FROM members m%'`); err != nil {
		t.Fatal(err)
	}
	if len(statements) != 1 {
		t.Fatalf("prepared member counts = %d, want the provider one only", len(statements))
	}
	for _, tc := range []struct {
		sandbox bool
		want    []string
	}{{false, fx.live}, {true, fx.sandboxLive}} {
		var ids []string
		// $1 = 'ALL': memberVisible holds for every member.
		rows, err := db.QueryContext(ctx, strings.Replace(statements[0], "SELECT count(*)", "SELECT m.id::text", 1),
			"ALL", fx.orgA, tc.sandbox, nil, readsToday.Format("2006-01-02"), 30)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		rows.Close()
		slices.Sort(ids)
		if got, want := fx.names(ids), fx.names(fx.ids(tc.want...)); !slices.Equal(got, want) {
			t.Errorf("sandbox %v: narrowing alone keeps %v, want %v", tc.sandbox, got, want)
		}
	}
}
