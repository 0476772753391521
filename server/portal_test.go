package server_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"example.com/gateway/gateway"
	"example.com/gateway/sandbox"
)

// The developer portal end to end: real HTTP, real tokens (the dev issuer
// for people, /oauth/token for clients), a real database.

const portalOperator = "operator@payer.test"

// portalGateway is a gateway in DEV_MODE with a small sandbox loaded.
func portalGateway(t *testing.T) *testGateway {
	t.Helper()
	g := newGateway(t, map[string]string{"DEV_MODE": "true", "DEV_OPERATORS": portalOperator})
	gen, err := sandbox.New(sandbox.Options{Members: 60, Seed: 11, Today: gateway.DateOf(time.Now())})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.DB.ReplaceSandbox(t.Context(), gen); err != nil {
		t.Fatal(err)
	}
	return g
}

// personToken signs a person in with the dev issuer.
func (g *testGateway) personToken(t *testing.T, email string) string {
	t.Helper()
	resp, err := http.PostForm(g.URL+"/dev/token", url.Values{"email": {email}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK || body.AccessToken == "" {
		t.Fatalf("dev token for %s: %s %v", email, resp.Status, err)
	}
	return body.AccessToken
}

// gqlReply is a GraphQL response.
type gqlReply struct {
	Data   map[string]any `json:"data"`
	Errors []struct {
		Message    string         `json:"message"`
		Path       []any          `json:"path"`
		Extensions map[string]any `json:"extensions"`
	} `json:"errors"`
}

// codes returns the extensions.code of each error.
func (r gqlReply) codes() []string {
	var out []string
	for _, e := range r.Errors {
		out = append(out, fmt.Sprint(e.Extensions["code"]))
	}
	return out
}

// fields returns the extensions.field of each error, sorted.
func (r gqlReply) fields() []string {
	var out []string
	for _, e := range r.Errors {
		out = append(out, fmt.Sprint(e.Extensions["field"]))
	}
	slices.Sort(out)
	return out
}

// gql posts a GraphQL request with token over HTTP.
func (g *testGateway) gql(t *testing.T, token, query string, vars map[string]any) gqlReply {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, _ := http.NewRequest(http.MethodPost, g.URL+"/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r gqlReply
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatalf("GraphQL answered %s with non-JSON: %v", resp.Status, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GraphQL answered %s: %+v", resp.Status, r.Errors)
	}
	return r
}

// must posts and fails the test on any error.
func (g *testGateway) must(t *testing.T, token, query string, vars map[string]any) map[string]any {
	t.Helper()
	r := g.gql(t, token, query, vars)
	if len(r.Errors) > 0 {
		t.Fatalf("errors: %+v\nquery: %s", r.Errors, query)
	}
	return r.Data
}

// at reads a dotted path (map keys, list indexes) from a decoded answer.
func portalAt(v any, path string) any {
	for _, p := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			v = x[p]
		case []any:
			i, err := strconv.Atoi(p)
			if err != nil || i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}

func portalStr(v any, path string) string { s, _ := portalAt(v, path).(string); return s }

// insertMember adds a production member with plain SQL (the payer's import
// does this in real life).
func insertMember(t *testing.T, g *testGateway, identifier, given, family, birth, gender string) string {
	t.Helper()
	var id string
	err := g.DB.GetContext(t.Context(), &id, `INSERT INTO members (id, member_identifier, given_name, family_name, birth_date, gender)
		VALUES (gen_random_uuid(), $1, $2, $3, $4, $5) RETURNING id`, identifier, given, family, birth, gender)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

const (
	qRegister = `mutation($input: RegisterOrganizationInput!) {
  registerOrganization(input: $input) { clientMutationId organization { id status inNetwork } } }`
	qCreateClient = `mutation($input: CreateClientInput!) {
  createClient(input: $input) { clientMutationId client { id environment accessType } clientSecret } }`
	qSave = `mutation($input: SaveAccessRequestInput!) {
  saveAccessRequest(input: $input) { accessRequest { id status missingFields { field } } } }`
	qSubmit = `mutation($input: SubmitAccessRequestInput!) {
  submitAccessRequest(input: $input) { clientMutationId accessRequest { id status } } }`
	qReview = `mutation($input: ReviewAccessRequestInput!) {
  reviewAccessRequest(input: $input) { accessRequest { status organization { status } } } }`
	qMember = `query($id: ID!) { member(id: $id) { id identifier } }`
)

// TestPortalEndToEnd is issue 4's scenario over HTTP with real tokens.
func TestPortalEndToEnd(t *testing.T) {
	t.Parallel()
	g := portalGateway(t)
	admin := g.personToken(t, "admin@clinic.test")
	op := g.personToken(t, portalOperator)

	// Register; the admin's next steps follow.
	d := g.must(t, admin, qRegister, map[string]any{"input": map[string]any{
		"clientMutationId": "r1", "name": "Clinic", "type": "PROVIDER_HEALTH_SYSTEM", "npi": "1234567893", "tin": "12-3456789"}})
	org := portalStr(d, "registerOrganization.organization.id")
	if portalStr(d, "registerOrganization.clientMutationId") != "r1" || portalStr(d, "registerOrganization.organization.status") != "SANDBOX" {
		t.Fatalf("register: %v", d)
	}
	// The same call again (a retry): the same organization.
	if d := g.must(t, admin, qRegister, map[string]any{"input": map[string]any{
		"clientMutationId": "r1", "name": "Clinic", "type": "PROVIDER_HEALTH_SYSTEM", "npi": "1234567893", "tin": "12-3456789"}}); portalStr(d, "registerOrganization.organization.id") != org {
		t.Errorf("retried registration: %v", d)
	}
	// Bad NPI and TIN: both reported, with their paths.
	r := g.gql(t, g.personToken(t, "other@else.test"), qRegister, map[string]any{"input": map[string]any{
		"name": "Else", "type": "PROVIDER_HEALTH_SYSTEM", "npi": "1234567890", "tin": "12-34"}})
	if !slices.Equal(r.fields(), []string{"input.npi", "input.tin"}) || !slices.Equal(r.codes(), []string{"BAD_USER_INPUT", "BAD_USER_INPUT"}) {
		t.Errorf("invalid registration: %+v", r.Errors)
	}
	v := g.must(t, admin, `{ viewer { kind role organization { id } nextSteps } }`, nil)
	if portalStr(v, "viewer.role") != "ADMIN" || portalStr(v, "viewer.organization.id") != org {
		t.Errorf("viewer %v", v)
	}

	// A sandbox client, its token, its members.
	d = g.must(t, admin, qCreateClient, map[string]any{"input": map[string]any{
		"organizationId": org, "name": "sandbox", "environment": "SANDBOX", "accessType": "PROVIDER_ACCESS"}})
	sbID, sbSecret := portalStr(d, "createClient.client.id"), portalStr(d, "createClient.clientSecret")
	sbToken := g.secretToken(t, sbID, sbSecret, "")
	d = g.must(t, sbToken, `{ members(first: 100) { totalCount edges { node { id } } } }`, nil)
	sandboxMembers := portalAt(d, "members.edges").([]any)
	if len(sandboxMembers) == 0 {
		t.Fatal("the sandbox client sees no member")
	}
	groups := g.must(t, admin, `{ attributionGroups { environment memberCount } }`, nil)
	if n, _ := portalAt(groups, "attributionGroups.0.memberCount").(float64); int(n) != len(sandboxMembers) {
		t.Errorf("sandbox group counts %v, the client sees %d", groups, len(sandboxMembers))
	}
	// Production is refused while the organization is not approved.
	r = g.gql(t, admin, qCreateClient, map[string]any{"input": map[string]any{
		"organizationId": org, "name": "prod", "environment": "PRODUCTION", "accessType": "PROVIDER_ACCESS"}})
	if !slices.Equal(r.codes(), []string{"FORBIDDEN"}) {
		t.Errorf("production client before approval: %+v", r.Errors)
	}

	// A request with errors: every one listed, with its path.
	d = g.must(t, admin, qSave, map[string]any{"input": map[string]any{"organizationId": org,
		"contacts": map[string]any{"technical": map[string]any{"name": "T", "email": "t@clinic.test", "phone": "+1 555 0100 100"}}}})
	req := portalStr(d, "saveAccessRequest.accessRequest.id")
	r = g.gql(t, admin, qSave, map[string]any{"input": map[string]any{"organizationId": org,
		"contacts": map[string]any{"security": map[string]any{"name": "S", "email": "not-an-email", "phone": "x"}}}})
	if !slices.Equal(r.fields(), []string{"contacts.security.email", "contacts.security.phone"}) {
		t.Errorf("invalid stage: %+v", r.Errors)
	}
	r = g.gql(t, admin, qSubmit, map[string]any{"input": map[string]any{"accessRequestId": req}})
	want := []string{"attestation", "contacts.legal", "contacts.security", "organization.address", "usage"}
	if !slices.Equal(r.fields(), want) || portalAt(r.Data, "submitAccessRequest") != nil {
		t.Errorf("submission with errors: fields %v, want %v; data %v", r.fields(), want, r.Data)
	}
	for _, c := range r.codes() {
		if c != "BAD_USER_INPUT" {
			t.Errorf("code %s", c)
		}
	}
	// Fix, submit; the sandbox client keeps working while pending.
	contact := func(n string) map[string]any {
		return map[string]any{"name": n, "email": n + "@clinic.test", "phone": "+1 555 010 0100"}
	}
	g.must(t, admin, qSave, map[string]any{"input": map[string]any{"organizationId": org,
		"organization": map[string]any{"legalName": "Clinic LLC", "npi": "1234567893", "tin": "123456789",
			"address": map[string]any{"line1": "1 Main St", "city": "Springfield", "state": "IL", "postalCode": "62701"}},
		"contacts": map[string]any{"technical": contact("tech"), "security": contact("sec"), "legal": contact("legal")},
		"usage": map[string]any{"intendedUse": "care coordination", "resourceTypes": []string{"Patient", "ExplanationOfBenefit"},
			"expectedMembers": 100, "treatmentRelationship": "PCP panels"},
		"attestation": map[string]any{"hipaaCompliance": true, "termsAccepted": true, "signerName": "Ann", "signerTitle": "CEO"}}})
	d = g.must(t, admin, qSubmit, map[string]any{"input": map[string]any{"clientMutationId": "s1", "accessRequestId": req}})
	if portalStr(d, "submitAccessRequest.accessRequest.status") != "PENDING_REVIEW" || portalStr(d, "submitAccessRequest.clientMutationId") != "s1" {
		t.Fatalf("submit: %v", d)
	}
	g.must(t, sbToken, `{ members(first: 1) { edges { node { id } } } }`, nil)

	// The organization may not approve itself; the operator approves and marks it in-network.
	r = g.gql(t, admin, qReview, map[string]any{"input": map[string]any{"accessRequestId": req, "decision": "APPROVE"}})
	if !slices.Equal(r.codes(), []string{"FORBIDDEN"}) {
		t.Errorf("self-approval: %+v", r.Errors)
	}
	d = g.must(t, op, qReview, map[string]any{"input": map[string]any{"accessRequestId": req, "decision": "APPROVE", "reason": "verified"}})
	if portalStr(d, "reviewAccessRequest.accessRequest.organization.status") != "PRODUCTION" {
		t.Fatalf("approve: %v", d)
	}
	g.must(t, op, `mutation($input: SetOrganizationInNetworkInput!) { setOrganizationInNetwork(input: $input) { organization { inNetwork } } }`,
		map[string]any{"input": map[string]any{"organizationId": org, "inNetwork": true}})
	out := g.must(t, op, `{ outbox(first: 50) { edges { node { to subject } } } }`, nil)
	if !strings.Contains(fmt.Sprint(out), "Production access approved: Clinic") {
		t.Errorf("no approval email in the outbox: %v", out)
	}

	// Production data: one member attributed by the operator, one not.
	attributed := insertMember(t, g, "M-1", "Ann", "Attributed", "1970-01-01", "FEMALE")
	unattributed := insertMember(t, g, "M-2", "Uma", "Unattributed", "1971-01-01", "FEMALE")
	found := g.must(t, op, `{ members(filter: {identifier: "M-1"}) { edges { node { id } } } }`, nil)
	if portalStr(found, "members.edges.0.node.id") != attributed {
		t.Fatalf("operator's member search: %v", found)
	}
	g.must(t, op, `mutation($input: AttributeMemberInput!) { attributeMember(input: $input) { attribution { id status } } }`,
		map[string]any{"input": map[string]any{"memberId": attributed, "organizationId": org, "periodStart": gateway.DateOf(time.Now()).AddDays(-30).String()}})

	d = g.must(t, admin, qCreateClient, map[string]any{"input": map[string]any{"clientMutationId": "p1",
		"organizationId": org, "name": "production", "environment": "PRODUCTION", "accessType": "PROVIDER_ACCESS"}})
	prodToken := g.secretToken(t, portalStr(d, "createClient.client.id"), portalStr(d, "createClient.clientSecret"), "")
	if d := g.must(t, prodToken, qMember, map[string]any{"id": attributed}); portalStr(d, "member.identifier") != "M-1" {
		t.Errorf("attributed member: %v", d)
	}
	r = g.gql(t, prodToken, qMember, map[string]any{"id": unattributed})
	if !slices.Equal(r.codes(), []string{"NOT_FOUND"}) {
		t.Errorf("unattributed member: %+v", r.Errors)
	}
	// The production client sees no sandbox member, the sandbox client no production one.
	sandboxMember := portalStr(sandboxMembers[0], "node.id")
	if r := g.gql(t, prodToken, qMember, map[string]any{"id": sandboxMember}); !slices.Equal(r.codes(), []string{"NOT_FOUND"}) {
		t.Errorf("sandbox member for production: %+v", r.Errors)
	}
	if r := g.gql(t, sbToken, qMember, map[string]any{"id": attributed}); !slices.Equal(r.codes(), []string{"NOT_FOUND"}) {
		t.Errorf("production member for sandbox: %+v", r.Errors)
	}
	clients := g.must(t, admin, `{ clients { edges { node { name lastUsedAt tokensIssuedLast24h } } } }`, nil)
	for _, e := range portalAt(clients, "clients.edges").([]any) {
		if n, _ := portalAt(e, "node.tokensIssuedLast24h").(float64); n != 1 || portalAt(e, "node.lastUsedAt") == nil {
			t.Errorf("client usage %v", e)
		}
	}

	// The sandbox Patient Access scenario: a consumer app's client bound to
	// one of the provider's sandbox members, who then opts out.
	appAdmin := g.personToken(t, "admin@app.test")
	d = g.must(t, appAdmin, qRegister, map[string]any{"input": map[string]any{
		"name": "Health App", "type": "CONSUMER_APPLICATION", "npi": "1245319599", "tin": "987654321"}})
	app := portalStr(d, "registerOrganization.organization.id")
	d = g.must(t, appAdmin, qCreateClient, map[string]any{"input": map[string]any{
		"organizationId": app, "name": "app", "environment": "SANDBOX", "accessType": "PATIENT_ACCESS"}})
	paID, paSecret := portalStr(d, "createClient.client.id"), portalStr(d, "createClient.clientSecret")
	const qBind = `mutation($input: BindPatientAccessClientInput!) { bindPatientAccessClient(input: $input) { client { boundMemberId } } }`
	if r := g.gql(t, appAdmin, qBind, map[string]any{"input": map[string]any{"clientId": paID, "memberId": sandboxMember}}); !slices.Equal(r.codes(), []string{"FORBIDDEN"}) {
		t.Errorf("the app binds itself: %+v", r.Errors)
	}
	d = g.must(t, op, qBind, map[string]any{"input": map[string]any{"clientId": paID, "memberId": sandboxMember}})
	if portalStr(d, "bindPatientAccessClient.client.boundMemberId") != sandboxMember {
		t.Fatalf("bind: %v", d)
	}
	paToken := g.secretToken(t, paID, paSecret, "")
	if d := g.must(t, paToken, qMember, map[string]any{"id": sandboxMember}); portalStr(d, "member.id") != sandboxMember {
		t.Fatalf("the app's member: %v", d)
	}
	const qOptOut = `mutation($input: SetProviderAccessOptOutInput!) {
  setProviderAccessOptOut(input: $input) { optOut { optedOut history { requestedBy recordedBy } } } }`
	if r := g.gql(t, sbToken, qOptOut, map[string]any{"input": map[string]any{"memberId": sandboxMember, "optedOut": true, "requestedBy": "MEMBER"}}); !slices.Equal(r.codes(), []string{"FORBIDDEN"}) {
		t.Errorf("a provider opts a member out: %+v", r.Errors)
	}
	d = g.must(t, paToken, qOptOut, map[string]any{"input": map[string]any{"memberId": sandboxMember, "optedOut": true, "requestedBy": "MEMBER"}})
	if portalAt(d, "setProviderAccessOptOut.optOut.optedOut") != true || portalStr(d, "setProviderAccessOptOut.optOut.history.0.recordedBy") != "client:"+paID {
		t.Errorf("opt out: %v", d)
	}
	if r := g.gql(t, sbToken, qMember, map[string]any{"id": sandboxMember}); !slices.Equal(r.codes(), []string{"NOT_FOUND"}) {
		t.Errorf("opted-out member for the provider: %+v", r.Errors)
	}
	if d := g.must(t, paToken, qMember, map[string]any{"id": sandboxMember}); portalStr(d, "member.id") != sandboxMember {
		t.Errorf("opted-out member for their own app: %v", d)
	}
	after := g.must(t, admin, `{ attributionGroups { environment memberCount } }`, nil)
	if n, _ := portalAt(after, "attributionGroups.0.memberCount").(float64); int(n) != len(sandboxMembers)-1 {
		t.Errorf("the group still counts the opted-out member: %v (was %d)", after, len(sandboxMembers))
	}
}

// walkthroughStep is one GraphQL document of docs/portal-walkthrough.md
// with its variables and whose token it carries.
type walkthroughStep struct {
	as, expect, name string
	query, vars      string
}

var (
	walkthroughAs     = regexp.MustCompile(`^<!-- as: ([a-z ]+?)(?:, expect: ([A-Z_]+))? -->$`)
	walkthroughOpName = regexp.MustCompile(`^(?:query|mutation)\s+(\w+)`)
	walkthroughRef    = regexp.MustCompile(`\{\{(\w+)\.([\w.]+)\}\}`)
)

// readWalkthrough parses the page: each ```graphql block after an
// <!-- as: … --> line, and the ```json block right after it, if any.
func readWalkthrough(t *testing.T, path string) []walkthroughStep {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var steps []walkthroughStep
	var as, expect, block, fence string
	var inBlock bool
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case inBlock && line == "```":
			inBlock = false
			switch fence {
			case "graphql":
				if as == "" {
					t.Fatalf("a graphql block without <!-- as: … -->:\n%s", block)
				}
				m := walkthroughOpName.FindStringSubmatch(block)
				if m == nil {
					t.Fatalf("a graphql block without an operation name:\n%s", block)
				}
				steps = append(steps, walkthroughStep{as: as, expect: expect, name: m[1], query: block})
				as, expect = "", ""
			case "json":
				if len(steps) == 0 || steps[len(steps)-1].vars != "" {
					t.Fatalf("a json block that follows no graphql block:\n%s", block)
				}
				steps[len(steps)-1].vars = block
			}
		case inBlock:
			block += line + "\n"
		case strings.HasPrefix(line, "```"):
			inBlock, fence, block = true, strings.TrimPrefix(line, "```"), ""
		case walkthroughAs.MatchString(line):
			m := walkthroughAs.FindStringSubmatch(line)
			as, expect = m[1], m[2]
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return steps
}

// TestPortalWalkthrough runs exactly the GraphQL documents of
// docs/portal-walkthrough.md, in order, with their variables.
func TestPortalWalkthrough(t *testing.T) {
	t.Parallel()
	g := portalGateway(t)
	// The payer's production members the page refers to.
	insertMember(t, g, "M-0042-0001", "Homer", "Example", "1956-05-12", "MALE")
	insertMember(t, g, "M-0042-0002", "Maude", "Example", "1961-07-04", "FEMALE")

	steps := readWalkthrough(t, "../docs/portal-walkthrough.md")
	if len(steps) < 20 {
		t.Fatalf("only %d steps read from the walkthrough", len(steps))
	}
	tokens := map[string]string{
		"admin":     g.personToken(t, "admin@springfield-clinic.test"),
		"colleague": g.personToken(t, "it-lead@springfield-clinic.test"),
		"operator":  g.personToken(t, portalOperator),
	}
	answers := map[string]any{}
	var mutations []string
	for _, s := range steps {
		vars := map[string]any{}
		if s.vars != "" {
			text := walkthroughRef.ReplaceAllStringFunc(s.vars, func(ref string) string {
				m := walkthroughRef.FindStringSubmatch(ref)
				v := portalStr(answers[m[1]], m[2])
				if v == "" {
					t.Fatalf("%s: %s refers to nothing", s.name, ref)
				}
				return v
			})
			if err := json.Unmarshal([]byte(text), &vars); err != nil {
				t.Fatalf("%s: variables: %v", s.name, err)
			}
		}
		token, ok := tokens[s.as]
		if !ok {
			t.Fatalf("%s: no token for %q", s.name, s.as)
		}
		r := g.gql(t, token, s.query, vars)
		if s.expect != "" {
			if len(r.Errors) == 0 {
				t.Fatalf("%s: expected %s errors, got %v", s.name, s.expect, r.Data)
			}
			for _, c := range r.codes() {
				if c != s.expect {
					t.Errorf("%s: error code %s, want %s", s.name, c, s.expect)
				}
			}
			continue
		}
		if len(r.Errors) > 0 {
			t.Fatalf("%s (as %s): %+v", s.name, s.as, r.Errors)
		}
		answers[s.name] = r.Data
		if strings.HasPrefix(strings.TrimSpace(s.query), "mutation") {
			mutations = append(mutations, s.name)
			// Every payload echoes its clientMutationId.
			for field, payload := range r.Data {
				if id, _ := vars["input"].(map[string]any)["clientMutationId"].(string); id != "" && portalStr(payload, "clientMutationId") != id {
					t.Errorf("%s: %s does not echo clientMutationId %q", s.name, field, id)
				}
			}
		}
		// A new sandbox client gets a token for the steps that read as it.
		if s.name == "CreateSandboxClient" {
			tokens["sandbox client"] = g.secretToken(t, portalStr(r.Data, "createClient.client.id"), portalStr(r.Data, "createClient.clientSecret"), "")
		}
	}

	// What the walkthrough promises, checked on its answers.
	checks := []struct {
		name, path, want string
	}{
		{"Viewer", "viewer.nextSteps.0", "REGISTER_ORGANIZATION"},
		{"RegisterOrganization", "registerOrganization.organization.tin", "123456789"},
		{"ColleagueViewer", "viewer.role", "USER"},
		{"Submit", "submitAccessRequest.accessRequest.organization.status", "PENDING_REVIEW"},
		{"Approve", "reviewAccessRequest.accessRequest.organization.status", "PRODUCTION"},
		{"CreateProductionClient", "createClient.client.environment", "PRODUCTION"},
		{"Attribute", "attributeMember.attribution.status", "ACTIVE"},
		{"SubmitRoster", "submitRoster.roster.rows.0.status", "PENDING"},
		{"SubmitRoster", "submitRoster.roster.rows.1.reason", "NO_MATCH"},
		{"SubmitRoster", "submitRoster.roster.rows.2.reason", "MISSING_FIELDS"},
		{"ConfirmMatch", "confirmRosterMatch.row.status", "CONFIRMED"},
		{"RevokeSandboxClient", "revokeClient.client.status", "REVOKED"},
		{"OptOut", "setProviderAccessOptOut.optOut.history.0.requestedBy", "PERSONAL_REPRESENTATIVE"},
	}
	for _, c := range checks {
		if got := fmt.Sprint(portalAt(answers[c.name], c.path)); got != c.want {
			t.Errorf("%s: %s = %s, want %s", c.name, c.path, got, c.want)
		}
	}
	if n, _ := portalAt(answers["SandboxMembers"], "members.totalCount").(float64); n == 0 {
		t.Error("the sandbox client saw no member")
	}
	if got := portalAt(answers["SaveUsageAndAttestation"], "saveAccessRequest.accessRequest.missingFields"); fmt.Sprint(got) != "[]" {
		t.Errorf("the complete draft still misses %v", got)
	}
	if s := portalStr(answers["Rotate"], "rotateClientSecret.clientSecret"); s == "" || s == portalStr(answers["CreateProductionClient"], "createClient.clientSecret") {
		t.Error("rotation returned no new secret")
	}
	// The walkthrough uses every portal mutation a new organization meets.
	want := []string{"registerOrganization", "createClient", "inviteUser", "saveAccessRequest", "submitAccessRequest",
		"reviewAccessRequest", "setOrganizationInNetwork", "setClientJwks", "rotateClientSecret", "attributeMember",
		"submitRoster", "confirmRosterMatch", "revokeClient", "setProviderAccessOptOut"}
	var used []string
	for _, s := range steps {
		for _, w := range want {
			if strings.Contains(s.query, w+"(input") && !slices.Contains(used, w) {
				used = append(used, w)
			}
		}
	}
	for _, w := range want {
		if !slices.Contains(used, w) {
			t.Errorf("the walkthrough never uses %s", w)
		}
	}
	if len(mutations) == 0 {
		t.Error("no mutation ran")
	}
	// The page is public documentation too.
	resp, err := http.Get(g.URL + "/docs/portal-walkthrough")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Contains(page, []byte("Portal walkthrough")) || bytes.Contains(page, []byte("<!-- as:")) {
		t.Errorf("GET /docs/portal-walkthrough: %s", resp.Status)
	}
}
