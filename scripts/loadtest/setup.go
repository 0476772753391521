package main

import (
	"cmp"
	"crypto/rand"
	"database/sql"
	"flag"
	"fmt"
	"math/big"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	_ "github.com/lib/pq"

	"example.com/gateway/gateway"
)

// The operator of DEV_MODE (DEV_OPERATORS' default).
const operatorEmail = "operator@example.test"

// registeredAttributionMax is what a registered organization's sandbox
// group holds at most (sandbox.OrgAttributionCount): larger groups belong
// to the synthetic organizations of the seeded data set.
const registeredAttributionMax = 40

func runSetup(args []string) error {
	fs := flag.NewFlagSet("setup", flag.ContinueOnError)
	base := fs.String("url", "http://127.0.0.1:8089", "the gateway")
	dsn := fs.String("dsn", "", "PostgreSQL of the gateway (audit rows, export jobs)")
	dir := fs.String("dir", ".", "where state.json and targets.json go")
	dashOrgs := fs.Int("dash-orgs", 8, "synthetic organizations whose clients send the dashboard queries")
	perOrg := fs.Int("clients-per-org", 2, "dashboard clients per synthetic organization")
	exportOrgs := fs.Int("export-orgs", 4, "organizations registered through the portal, one export client each")
	rate := fs.Float64("rate", 150, "requests per second, all kinds")
	tokenRate := fs.Float64("token-rate", 15, "of which token requests per second")
	exportRate := fs.Float64("export-rate", 2, "of which export kick-offs per second")
	duration := fs.Duration("duration", 60*time.Second, "length of the attack (sizes the targets file)")
	seed := fs.Uint64("seed", 1, "seed of the targets' choices")
	members := fs.Int("members", 0, "members seeded (spreads the member sample over all of them; 0: name prefixes only)")
	mix := fs.String("graphql-mix", "", "weights of the GraphQL operations, e.g. MemberSearch=0,MemberClaims=30 (others keep theirs)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dsn == "" {
		return fmt.Errorf("-dsn is required")
	}
	if *tokenRate+*exportRate > *rate {
		return fmt.Errorf("-token-rate + -export-rate exceed -rate")
	}
	if err := setGraphQLMix(*mix); err != nil {
		return err
	}
	db, err := sql.Open("postgres", *dsn)
	if err != nil {
		return err
	}
	defer db.Close()

	a := newAPI(*base)
	st := &State{Run: runID(), BaseURL: a.base, DSN: *dsn, Created: time.Now().UTC(),
		Rate: *rate, Duration: duration.String(),
		Mix: Mix{GraphQL: *rate - *tokenRate - *exportRate, Token: *tokenRate, Export: *exportRate}}
	start := time.Now()

	op, err := a.devToken(operatorEmail)
	if err != nil {
		return err
	}
	orgs, err := syntheticOrgs(a, op, *dashOrgs)
	if err != nil {
		return err
	}
	for k, o := range orgs {
		cs, err := dashboardClients(a, op, st.Run, k, o, *perOrg)
		if err != nil {
			return fmt.Errorf("clients of %s: %w", o.name, err)
		}
		st.Clients = append(st.Clients, cs...)
	}
	for k := range *exportOrgs {
		c, err := exportClient(a, st.Run, k)
		if err != nil {
			return fmt.Errorf("export organization %d: %w", k, err)
		}
		st.Clients = append(st.Clients, c)
	}
	if err := sampleMembers(a, st.Clients, *members); err != nil {
		return err
	}
	// Fresh tokens last: they live 5 minutes from here.
	for i := range st.Clients {
		c := &st.Clients[i]
		if c.Token, err = a.clientToken(c.ID, c.Secret); err != nil {
			return err
		}
		c.TokenAt = time.Now().UTC()
	}
	targets, err := writeTargets(filepath.Join(*dir, "targets.json"), st, *duration, *seed)
	if err != nil {
		return err
	}
	st.Targets = targets
	if err := db.QueryRow(`SELECT coalesce(max(id), 0), now() FROM audit_events`).Scan(&st.AuditBaseline, &st.JobsAfter); err != nil {
		return fmt.Errorf("audit baseline: %w", err)
	}
	if err := writeJSONFile(filepath.Join(*dir, "state.json"), st); err != nil {
		return err
	}
	nDash, nExp, sampled := 0, 0, 0
	for _, c := range st.Clients {
		if c.Role == "dashboard" {
			nDash++
		} else {
			nExp++
		}
		sampled += len(c.Members)
	}
	fmt.Printf("setup %s: %d dashboard clients in %d synthetic organizations, %d export clients in %d registered organizations, %d sampled members, %d targets in %s\n",
		st.Run, nDash, len(orgs), nExp, *exportOrgs, sampled, targets, time.Since(start).Round(time.Millisecond))
	for _, o := range orgs {
		fmt.Printf("  %-36s group %s: %d members\n", o.name, o.group, o.count)
	}
	var weights []string
	for _, op := range graphqlOps {
		weights = append(weights, fmt.Sprintf("%s=%d", op.name, op.weight))
	}
	fmt.Printf("GraphQL mix (weights): %s\n", strings.Join(weights, " "))
	return nil
}

// setGraphQLMix applies "Op=weight,…" to graphqlOps.
func setGraphQLMix(mix string) error {
	if mix == "" {
		return nil
	}
	total := 0
	for _, kv := range strings.Split(mix, ",") {
		name, w, ok := strings.Cut(strings.TrimSpace(kv), "=")
		n, err := strconv.Atoi(w)
		if !ok || err != nil || n < 0 {
			return fmt.Errorf("-graphql-mix: %q is not Operation=weight", kv)
		}
		i := slices.IndexFunc(graphqlOps, func(op graphqlOp) bool { return op.name == name })
		if i < 0 {
			return fmt.Errorf("-graphql-mix: no operation %q", name)
		}
		graphqlOps[i].weight = n
	}
	for _, op := range graphqlOps {
		total += op.weight
	}
	if total == 0 {
		return fmt.Errorf("-graphql-mix: every weight is 0")
	}
	return nil
}

// runID is a short unique name for this run's people, organizations and
// clients, so that a reused database keeps working.
func runID() string {
	return time.Now().UTC().Format("0102t150405") + strings.ToLower(rand.Text()[:4])
}

type org struct {
	id, name, group string
	count           int
}

// syntheticOrgs finds the seeded data set's organizations as an operator
// sees them: the organizations named in members' attributions whose
// sandbox group is larger than a registered organization's can be.
func syntheticOrgs(a *api, op string, want int) ([]org, error) {
	seen := map[string]bool{}
	var out []org
	after := any(nil)
	for page := 0; page < 10 && len(out) < want; page++ {
		var r struct {
			Members struct {
				Edges []struct {
					Node struct {
						Attributions []struct {
							OrganizationID string `json:"organizationId"`
						} `json:"attributions"`
					} `json:"node"`
				} `json:"edges"`
				PageInfo struct {
					HasNextPage bool   `json:"hasNextPage"`
					EndCursor   string `json:"endCursor"`
				} `json:"pageInfo"`
			} `json:"members"`
		}
		err := a.gql(op, `query LoadtestOrgs($after: String) {
  members(first: 100, after: $after) { edges { node { attributions { organizationId } } } pageInfo { hasNextPage endCursor } }
}`, map[string]any{"after": after}, &r)
		if err != nil {
			return nil, fmt.Errorf("operator members: %w", err)
		}
		for _, e := range r.Members.Edges {
			for _, at := range e.Node.Attributions {
				if seen[at.OrganizationID] {
					continue
				}
				seen[at.OrganizationID] = true
				var g struct {
					Organization struct {
						Name string `json:"name"`
					} `json:"organization"`
					AttributionGroups []struct {
						ID          string `json:"id"`
						Environment string `json:"environment"`
						MemberCount int    `json:"memberCount"`
					} `json:"attributionGroups"`
				}
				err := a.gql(op, `query LoadtestGroup($org: ID!) {
  organization(id: $org) { name }
  attributionGroups(organizationId: $org) { id environment memberCount }
}`, map[string]any{"org": at.OrganizationID}, &g)
				if err != nil {
					return nil, fmt.Errorf("groups of %s: %w", at.OrganizationID, err)
				}
				for _, gr := range g.AttributionGroups {
					if gr.Environment == "SANDBOX" && gr.MemberCount > registeredAttributionMax {
						out = append(out, org{id: at.OrganizationID, name: g.Organization.Name, group: gr.ID, count: gr.MemberCount})
					}
				}
			}
		}
		if !r.Members.PageInfo.HasNextPage {
			break
		}
		after = r.Members.PageInfo.EndCursor
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no synthetic organization found: is the sandbox seeded?")
	}
	slices.SortFunc(out, func(x, y org) int { return cmp.Compare(y.count, x.count) })
	return out[:min(want, len(out))], nil
}

const createClientDoc = `mutation LoadtestCreateClient($input: CreateClientInput!) {
  createClient(input: $input) { client { id } clientSecret }
}`

type createdClient struct {
	CreateClient struct {
		Client struct {
			ID string `json:"id"`
		} `json:"client"`
		ClientSecret string `json:"clientSecret"`
	} `json:"createClient"`
}

// dashboardClients makes n Provider Access sandbox clients of a synthetic
// organization the way a provider would: the operator invites a person, who
// signs in (joining the organization) and creates them.
func dashboardClients(a *api, op, run string, k int, o org, n int) ([]Client, error) {
	email := fmt.Sprintf("loadtest-%s-dash%d@example.test", run, k)
	err := a.gql(op, `mutation LoadtestInvite($input: InviteUserInput!) { inviteUser(input: $input) { invitation { id } } }`,
		map[string]any{"input": map[string]any{"organizationId": o.id, "email": email, "role": "USER"}}, nil)
	if err != nil {
		return nil, fmt.Errorf("invite: %w", err)
	}
	person, err := a.devToken(email)
	if err != nil {
		return nil, err
	}
	var v struct {
		Viewer struct {
			Organization *struct {
				ID string `json:"id"`
			} `json:"organization"`
		} `json:"viewer"`
	}
	if err := a.gql(person, `query LoadtestViewer { viewer { organization { id } } }`, nil, &v); err != nil {
		return nil, err
	}
	if v.Viewer.Organization == nil || v.Viewer.Organization.ID != o.id {
		return nil, fmt.Errorf("%s did not join %s", email, o.id)
	}
	var out []Client
	for j := range n {
		var r createdClient
		err := a.gql(person, createClientDoc, map[string]any{"input": map[string]any{
			"organizationId": o.id, "name": fmt.Sprintf("loadtest %s dashboard %d", run, j),
			"environment": "SANDBOX", "accessType": "PROVIDER_ACCESS"}}, &r)
		if err != nil {
			return nil, err
		}
		out = append(out, Client{ID: r.CreateClient.Client.ID, Secret: r.CreateClient.ClientSecret,
			Role: "dashboard", OrgID: o.id, OrgName: o.name, GroupID: o.group})
	}
	return out, nil
}

// exportClient registers an organization through the portal (a new person,
// a fresh valid NPI) and creates its sandbox client. The organization gets
// its own small set of sandbox attributions, which its exports read.
func exportClient(a *api, run string, k int) (Client, error) {
	email := fmt.Sprintf("loadtest-%s-export%d@example.test", run, k)
	person, err := a.devToken(email)
	if err != nil {
		return Client{}, err
	}
	name := fmt.Sprintf("Loadtest %s Export %d", run, k)
	var reg struct {
		RegisterOrganization struct {
			Organization struct {
				ID string `json:"id"`
			} `json:"organization"`
		} `json:"registerOrganization"`
	}
	for attempt := 0; ; attempt++ {
		err = a.gql(person, `mutation LoadtestRegister($input: RegisterOrganizationInput!) {
  registerOrganization(input: $input) { organization { id } }
}`, map[string]any{"input": map[string]any{"name": name, "type": "PROVIDER_HEALTH_SYSTEM",
			"npi": randomNPI(), "tin": randomDigits(9)}}, &reg)
		if err == nil || attempt == 3 || !strings.Contains(err.Error(), "CONFLICT") {
			break
		}
	}
	if err != nil {
		return Client{}, fmt.Errorf("register: %w", err)
	}
	orgID := reg.RegisterOrganization.Organization.ID
	var r createdClient
	err = a.gql(person, createClientDoc, map[string]any{"input": map[string]any{
		"organizationId": orgID, "name": "loadtest export", "environment": "SANDBOX", "accessType": "PROVIDER_ACCESS"}}, &r)
	if err != nil {
		return Client{}, err
	}
	return Client{ID: r.CreateClient.Client.ID, Secret: r.CreateClient.ClientSecret, Role: "export",
		OrgID: orgID, OrgName: name}, nil
}

// randomNPI returns a valid NPI: '2', eight random digits and the check
// digit (45 CFR 162.406).
func randomNPI() string {
	first9 := "2" + randomDigits(8)
	return first9 + string(gateway.NPICheckDigit(first9))
}

func randomDigits(n int) string {
	b := make([]byte, n)
	for i := range b {
		d, _ := rand.Int(rand.Reader, big.NewInt(10))
		b[i] = byte('0' + d.Int64())
	}
	return string(b)
}

// namePrefixes spread the member samples over the alphabet.
var namePrefixes = strings.Split("A B C D E F G H J K L M N P R S T W", " ")

type memberPage struct {
	Members struct {
		Edges []struct {
			Node MemberRef `json:"node"`
		} `json:"edges"`
	} `json:"members"`
}

const sampleDoc = `query LoadtestSample($name: String, $first: Int!) {
  attributionGroups { id environment }
  members(first: $first, filter: {name: $name}) { edges { node { id identifier givenName familyName birthDate } } }
}`

// sampleMembers gives each client its group id and a sample of the members
// its organization may read: the first few matching each of a set of name
// prefixes and, when seeded is known, members picked at random over the
// whole data set (by their sandbox identifier, "SBX", four digits of the
// seed, seven of the member number), so that the load reads members from
// everywhere in the tables. These reads are audited before the load's
// baseline, so they do not count.
func sampleMembers(a *api, clients []Client, seeded int) error {
	type result struct {
		org, group string
		sample     []MemberRef
		err        error
	}
	results := make(chan result)
	started := map[string]bool{}
	for i := range clients {
		c := clients[i]
		if started[c.OrgID] {
			continue
		}
		started[c.OrgID] = true
		go func() { // one organization per goroutine: each client has its own rate limit
			group, sample, err := sampleOrg(a, c, seeded)
			results <- result{c.OrgID, group, sample, err}
		}()
	}
	byOrg := map[string][]MemberRef{}
	groups := map[string]string{}
	var firstErr error
	for range started {
		r := <-results
		if r.err != nil && firstErr == nil {
			firstErr = r.err
		}
		byOrg[r.org], groups[r.org] = r.sample, r.group
	}
	if firstErr != nil {
		return firstErr
	}
	for i := range clients {
		c := &clients[i]
		c.Members, c.GroupID = byOrg[c.OrgID], groups[c.OrgID]
		if c.GroupID == "" {
			return fmt.Errorf("no sandbox attribution group for %s", c.OrgName)
		}
	}
	return nil
}

// sampleOrg returns the sandbox group of c's organization and a sample of
// its members.
func sampleOrg(a *api, c Client, seeded int) (string, []MemberRef, error) {
	tok, err := a.clientToken(c.ID, c.Secret)
	if err != nil {
		return "", nil, err
	}
	prefixes := namePrefixes
	first := 40
	if c.Role == "export" {
		prefixes, first = []string{""}, 100
	}
	seen := map[string]bool{}
	var sample []MemberRef
	group := ""
	for _, p := range prefixes {
		var r struct {
			memberPage
			AttributionGroups []struct {
				ID          string `json:"id"`
				Environment string `json:"environment"`
			} `json:"attributionGroups"`
		}
		vars := map[string]any{"first": first, "name": nil}
		if p != "" {
			vars["name"] = p
		}
		if err := a.gql(tok, sampleDoc, vars, &r); err != nil {
			return "", nil, fmt.Errorf("sample members of %s: %w", c.OrgName, err)
		}
		for _, g := range r.AttributionGroups {
			if g.Environment == "SANDBOX" {
				group = g.ID
			}
		}
		for _, e := range r.Members.Edges {
			if !seen[e.Node.ID] {
				seen[e.Node.ID] = true
				sample = append(sample, e.Node)
			}
		}
	}
	if len(sample) == 0 {
		return "", nil, fmt.Errorf("%s's clients see no member", c.OrgName)
	}
	if c.Role == "dashboard" && seeded > 0 {
		spread, err := spreadSample(a, tok, sample[0].Identifier, seeded, seen)
		if err != nil {
			return "", nil, fmt.Errorf("sample members of %s: %w", c.OrgName, err)
		}
		sample = append(sample, spread...)
	}
	return group, sample, nil
}

// spreadSample looks up random member numbers by identifier, 10 to a
// query (aliases), and returns those the client may read.
func spreadSample(a *api, tok, someIdentifier string, seeded int, seen map[string]bool) ([]MemberRef, error) {
	if len(someIdentifier) < 7 || !strings.HasPrefix(someIdentifier, "SBX") {
		return nil, nil
	}
	tag := someIdentifier[:len(someIdentifier)-7]
	var out []MemberRef
	for q := 0; q < 300 && len(out) < 200; q++ {
		var doc strings.Builder
		doc.WriteString("query LoadtestSpread {")
		for i := range 10 { // the gateway's limit of root fields
			n, _ := rand.Int(rand.Reader, big.NewInt(int64(seeded)))
			fmt.Fprintf(&doc, " m%d: members(first: 1, filter: {identifier: \"%s%07d\"}) { edges { node { id identifier givenName familyName birthDate } } }", i, tag, n.Int64())
		}
		doc.WriteString(" }")
		var r map[string]struct {
			Edges []struct {
				Node MemberRef `json:"node"`
			} `json:"edges"`
		}
		if err := a.gql(tok, doc.String(), nil, &r); err != nil {
			return nil, err
		}
		for _, m := range r {
			for _, e := range m.Edges {
				if !seen[e.Node.ID] {
					seen[e.Node.ID] = true
					out = append(out, e.Node)
				}
			}
		}
	}
	return out, nil
}
