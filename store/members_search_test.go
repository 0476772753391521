package store_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"example.com/gateway/auth"
	"example.com/gateway/gateway"
	"example.com/gateway/store"
	"example.com/gateway/store/storetest"
)

// The members list's filters (store/members.go writes the statement of a
// filtered list from the filters set): each word of the name must start the
// family or the given name, LIKE metacharacters are literal, and the policy
// (memberVisible) still decides which members a scope may see or count.

type searchMember struct {
	key, identifier, given, family, birth string
	org                                   string // "a", "b" or "" (attributed to nobody)
	optedOut                              bool
}

var searchMembers = []searchMember{
	{key: "annawilson", identifier: "S-1", given: "Anna", family: "Wilson", birth: "1980-01-01", org: "a"},
	{key: "willsmith", identifier: "S-2", given: "Will", family: "Smith", birth: "1990-02-02", org: "a"},
	{key: "bobwilkins", identifier: "S-3", given: "Bob", family: "Wilkins", birth: "1980-01-01", org: "b"},                   // another organization's
	{key: "wilmaanders", identifier: "S-4", given: "Wilma", family: "Anders", birth: "1980-01-01", org: "a", optedOut: true}, // attributed but opted out
	{key: "wilfnobody", identifier: "S-5", given: "Wilf", family: "Anson", birth: "1980-01-01"},                              // attributed to nobody
	{key: "percent", identifier: "S-6", given: "Under_score", family: "Per%cent", birth: "1970-07-07", org: "a"},
	{key: "pericles", identifier: "S-7", given: "Underxscore", family: "Pericles", birth: "1970-07-07", org: "a"}, // what per%c and under_s would match unescaped
	{key: "backslash", identifier: "S-8", given: `Back\slash`, family: "Backxslash", birth: "1970-07-07", org: "a"},
}

func TestMembers_Search(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	db.Now = func() time.Time { return readsToday }
	f := fixtures{t, db}
	orgs := map[string]string{"a": f.org("1234567893"), "b": f.org("1245319599")}
	ids := map[string]string{}  // key -> id
	keys := map[string]string{} // id -> key
	for _, m := range searchMembers {
		id := newUUID()
		ids[m.key], keys[id] = id, m.key
		f.exec(`INSERT INTO members (id, member_identifier, given_name, family_name, birth_date) VALUES ($1, $2, $3, $4, $5)`,
			id, m.identifier, m.given, m.family, m.birth)
		if m.org != "" {
			f.exec(`INSERT INTO attributions (id, member_id, organization_id, period_start, source) VALUES ($1, $2, $3, '2025-01-01', 'PAYER')`,
				newUUID(), id, orgs[m.org])
		}
		if m.optedOut {
			f.exec(`INSERT INTO provider_access_opt_outs (member_id) VALUES ($1)`, id)
		}
	}
	date := func(s string) gateway.Date {
		d, err := gateway.ParseDate(s)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	provider, operator := providerOf(orgs["a"]), operatorPrincipal()
	ctx := context.Background()

	for _, tc := range []struct {
		name          string
		filter        store.MemberFilter
		provider, all []string // keys of the members found by provider a, by an operator
	}{
		{"one word", store.MemberFilter{Name: "wil"},
			[]string{"annawilson", "willsmith"}, []string{"annawilson", "willsmith", "bobwilkins", "wilmaanders", "wilfnobody"}},
		{"one word, upper case", store.MemberFilter{Name: "WILS"}, []string{"annawilson"}, []string{"annawilson"}},
		{"family name only", store.MemberFilter{Name: "smith"}, []string{"willsmith"}, []string{"willsmith"}},
		{"not a prefix", store.MemberFilter{Name: "ilson"}, nil, nil},
		{"two words, given family", store.MemberFilter{Name: "anna wil"}, []string{"annawilson"}, []string{"annawilson"}},
		{"two words, family given", store.MemberFilter{Name: "wil  anna"}, []string{"annawilson"}, []string{"annawilson"}},
		{"two words, each in another member", store.MemberFilter{Name: "anna smith"}, nil, nil}, // every word must match
		{"two words, invisible match", store.MemberFilter{Name: "an wil"},
			[]string{"annawilson"}, []string{"annawilson", "wilmaanders", "wilfnobody"}},
		{"percent literal", store.MemberFilter{Name: "per%c"}, []string{"percent"}, []string{"percent"}},
		{"percent alone", store.MemberFilter{Name: "%"}, nil, nil},
		{"underscore literal", store.MemberFilter{Name: "under_s"}, []string{"percent"}, []string{"percent"}},
		{"underscore alone", store.MemberFilter{Name: "_"}, nil, nil},
		{"backslash literal", store.MemberFilter{Name: `back\s`}, []string{"backslash"}, []string{"backslash"}},
		{"prefix of both", store.MemberFilter{Name: "per"}, []string{"percent", "pericles"}, []string{"percent", "pericles"}},
		{"identifier", store.MemberFilter{Identifier: "S-2"}, []string{"willsmith"}, []string{"willsmith"}},
		{"identifier, invisible", store.MemberFilter{Identifier: "S-3"}, nil, []string{"bobwilkins"}},
		{"identifier, opted out", store.MemberFilter{Identifier: "S-4"}, nil, []string{"wilmaanders"}},
		{"identifier, none", store.MemberFilter{Identifier: "S-9"}, nil, nil},
		{"birth date", store.MemberFilter{BirthDate: date("1980-01-01")},
			[]string{"annawilson"}, []string{"annawilson", "bobwilkins", "wilmaanders", "wilfnobody"}},
		{"name and birth date", store.MemberFilter{Name: "wil", BirthDate: date("1980-01-01")},
			[]string{"annawilson"}, []string{"annawilson", "bobwilkins", "wilmaanders", "wilfnobody"}},
		{"two words and birth date", store.MemberFilter{Name: "wil an", BirthDate: date("1980-01-01")},
			[]string{"annawilson"}, []string{"annawilson", "wilmaanders", "wilfnobody"}},
		{"name and identifier", store.MemberFilter{Name: "wi", Identifier: "S-2"}, []string{"willsmith"}, []string{"willsmith"}},
		{"name and other identifier", store.MemberFilter{Name: "anna", Identifier: "S-2"}, nil, nil},
		{"identifier and birth date", store.MemberFilter{Identifier: "S-2", BirthDate: date("1990-02-02")}, []string{"willsmith"}, []string{"willsmith"}},
		{"identifier and other birth date", store.MemberFilter{Identifier: "S-2", BirthDate: date("1980-01-01")}, nil, nil},
		{"all three", store.MemberFilter{Name: "smith will", Identifier: "S-2", BirthDate: date("1990-02-02")}, []string{"willsmith"}, []string{"willsmith"}},
		{"blank name", store.MemberFilter{Name: "  "}, keysOf(searchMembers, "a"), keysOf(searchMembers, "")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, who := range []struct {
				name string
				p    auth.Principal
				want []string
			}{{"provider", provider, tc.provider}, {"operator", operator, tc.all}} {
				want := make([]string, 0, len(who.want))
				for _, k := range who.want {
					want = append(want, ids[k])
				}
				slices.Sort(want) // the page's order
				names := func(ids []string) []string {
					out := make([]string, 0, len(ids))
					for _, id := range ids {
						out = append(out, keys[id])
					}
					return out
				}
				n, err := db.MembersCount(ctx, who.p, tc.filter)
				if err != nil || n != len(want) {
					t.Errorf("%s: MembersCount(%+v) = %d, %v; want %d %v", who.name, tc.filter, n, err, len(want), names(want))
				}
				// One member a page, so that the cursor is part of the statement.
				var got []string
				page := store.Page{First: 1}
				for range len(want) + 1 {
					pg, err := db.MembersPage(ctx, who.p, tc.filter, page)
					if err != nil {
						t.Fatal(err)
					}
					for _, m := range pg.Items {
						got = append(got, m.ID)
					}
					if !pg.HasNextPage {
						break
					}
					page.After = pg.Cursors[len(pg.Cursors)-1]
				}
				if !slices.Equal(got, want) {
					t.Errorf("%s: MembersPage(%+v) = %v, want %v", who.name, tc.filter, names(got), names(want))
				}
			}
		})
	}
}

// keysOf returns the keys of the members a provider of org sees ("": all
// members, as an operator).
func keysOf(ms []searchMember, org string) []string {
	var out []string
	for _, m := range ms {
		if org == "" || m.org == org && !m.optedOut {
			out = append(out, m.key)
		}
	}
	return out
}
