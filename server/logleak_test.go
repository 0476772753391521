package server_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"example.com/gateway/gateway"
	"example.com/gateway/sandbox"
	"example.com/gateway/store"
)

// TestLogsLeakNothing runs a representative set of requests through the
// whole gateway on the seeded sandbox (GraphQL member reads as a Provider
// Access and a Patient Access client, queries that put PHI in arguments
// and in refused queries, FHIR group reads, an export kick-off and its
// status, token requests with right and wrong secrets, invalid bearer
// tokens) with the logger at debug, then checks that the log holds no
// seeded name, birth date, member identifier, phone or address, no client
// secret and no bearer token, and that every request line carries its
// request_id (issue 7, "Observability").
func TestLogsLeakNothing(t *testing.T) {
	t.Parallel()
	const members = 30
	g := startFHIRGateway(t, members)
	gen, err := sandbox.New(sandbox.Options{Members: members, Seed: 42, Today: sandboxToday})
	if err != nil {
		t.Fatal(err)
	}
	var seeded []gateway.Member
	for m := range gen.Members() {
		seeded = append(seeded, m.Member)
	}
	org := g.Orgs[0]
	client, token := g.token(t, org.ID, gateway.EnvSandbox, "system/*.read")
	requests := 0
	gql := func(tok, query string, vars map[string]any) map[string]any {
		t.Helper()
		body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
		r := g.call(t, http.MethodPost, "/graphql", tok, string(body), "Content-Type", "application/json")
		requests++
		var out map[string]any
		json.Unmarshal(r.body, &out)
		if r.status >= 500 {
			t.Fatalf("GraphQL %d: %s", r.status, r.body)
		}
		return out
	}

	// Provider Access: every member field, and the member data beneath.
	page := gql(token, `{ members(first: 50) { edges { node { id identifier givenName familyName birthDate phone addressLine city postalCode
	  claims(first: 5) { edges { node { identifier } } } encounters(first: 5) { edges { node { id } } } } } } }`, nil)
	edges, _ := dig(page, "data", "members", "edges").([]any)
	if len(edges) == 0 {
		t.Fatalf("the provider sees no member: %v", page)
	}
	first, _ := dig(edges[0], "node").(map[string]any)
	memberID, _ := first["id"].(string)
	family, _ := first["familyName"].(string)
	ident, _ := first["identifier"].(string)
	birth, _ := first["birthDate"].(string)
	gql(token, `query($id: ID!) { member(id: $id) { givenName familyName priorAuthorizations(first: 5) { edges { node { id } } } conditions { edges { node { id } } } } }`,
		map[string]any{"id": memberID})
	// PHI in arguments: a filter, a bad variable, a refused query.
	gql(token, `query($f: MemberFilter) { members(filter: $f) { totalCount } }`,
		map[string]any{"f": map[string]any{"name": family, "identifier": ident, "birthDate": birth}})
	gql(token, `query($f: MemberFilter) { members(filter: $f) { totalCount } }`,
		map[string]any{"f": map[string]any{"birthDate": birth + "x" + family}})
	gql(token, `{ members(filter: {name: "`+family+`"}) { nosuchfield } }`, nil)
	gql(token, `{ member(id: "`+ident+`") { id } }`, nil)

	// Patient Access, bound to the member.
	app, err := g.DB.CreateOrganization(t.Context(), gateway.Organization{Name: "App " + memberID[:6],
		Type: gateway.OrgConsumerApplication, NPI: fhirNPI(), TIN: "123456789"})
	if err != nil {
		t.Fatal(err)
	}
	pa, paSecret, err := g.DB.CreateClient(t.Context(), store.NewClient{OrganizationID: app.ID, Name: "pa",
		Environment: gateway.EnvSandbox, AccessType: gateway.PatientAccess, BoundMemberID: &memberID})
	if err != nil {
		t.Fatal(err)
	}
	paToken := tokenFor(t, g, pa.ID, paSecret)
	requests++
	gql(paToken, `{ member(id: "`+memberID+`") { identifier givenName familyName birthDate claims { edges { node { identifier } } } } }`, nil)

	// FHIR: groups, a kick-off and its status.
	r := g.call(t, http.MethodGet, "/fhir/Group", token, "")
	requests++
	var bundle struct {
		Entry []struct {
			Resource struct{ ID string } `json:"resource"`
		} `json:"entry"`
	}
	json.Unmarshal(r.body, &bundle)
	if len(bundle.Entry) == 0 {
		t.Fatalf("no group: %d %s", r.status, r.body)
	}
	r = g.call(t, http.MethodGet, "/fhir/Group/"+bundle.Entry[0].Resource.ID+"/$export?_type=Patient,ExplanationOfBenefit&patient=Patient/"+memberID, token, "",
		"Prefer", "respond-async", "Accept", "application/fhir+json")
	requests++
	if r.status != http.StatusAccepted {
		t.Fatalf("kick-off: %d %s", r.status, r.body)
	}
	g.poll(t, r.header.Get("Content-Location"), token)
	requests++
	g.call(t, http.MethodGet, "/fhir/Patient/"+memberID, token, "")
	requests++

	// Token requests: a wrong secret, the right one in the form, a
	// forged bearer token, a bearer token of the right shape.
	wrongSecret := "WRONG-" + strings.Repeat("s3cr3t", 6)
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {client.ID}, "client_secret": {wrongSecret}}
	g.call(t, http.MethodPost, "/oauth/token", "", form.Encode(), "Content-Type", "application/x-www-form-urlencoded")
	form.Set("client_secret", paSecret)
	form.Set("client_id", pa.ID)
	g.call(t, http.MethodPost, "/oauth/token", "", form.Encode(), "Content-Type", "application/x-www-form-urlencoded")
	forged := token[:len(token)-8] + "AAAAAAAA"
	gql(forged, `{ viewer { __typename } }`, nil)
	gql("not-a-jwt-"+ident, `{ viewer { __typename } }`, nil)
	requests += 2

	logs := g.log.String()
	if !strings.Contains(logs, `"msg":"request"`) {
		t.Fatalf("no request lines in the log:\n%s", logs)
	}
	// Forbidden strings: PHI of every seeded member, secrets and tokens.
	forbidden := map[string]string{
		"client secret":         paSecret,
		"wrong client secret":   wrongSecret,
		"provider bearer token": token,
		"Patient Access token":  paToken,
		"forged token":          forged,
		"token signature":       token[strings.LastIndexByte(token, '.')+1:],
	}
	today := sandboxToday.String()
	for _, m := range seeded {
		forbidden["member identifier of "+m.ID] = m.Identifier
		forbidden["family name of "+m.ID] = m.FamilyName
		forbidden["given and family name of "+m.ID] = m.GivenName + " " + m.FamilyName
		if m.Phone != "" {
			forbidden["phone of "+m.ID] = m.Phone
		}
		if m.AddressLine != "" {
			forbidden["address of "+m.ID] = m.AddressLine
		}
		if b := m.BirthDate.String(); !m.BirthDate.IsZero() && b != today {
			forbidden["birth date of "+m.ID] = b
		}
	}
	lines := strings.Split(strings.TrimSpace(logs), "\n")
	requestLines := 0
	for i, line := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("log line %d is not JSON: %s", i+1, line)
			continue
		}
		if rec["msg"] == "request" {
			requestLines++
			if id, _ := rec["request_id"].(string); id == "" {
				t.Errorf("request line without request_id: %s", line)
			}
		}
		if _, inRequest := rec["principal"]; inRequest {
			if id, _ := rec["request_id"].(string); id == "" {
				t.Errorf("line logged in a request without request_id: %s", line)
			}
		}
		for what, s := range forbidden {
			if s != "" && containsWord(line, s) {
				t.Errorf("log line %d holds the %s (%q): %s", i+1, what, s, line)
			}
		}
	}
	if requestLines < requests {
		t.Errorf("%d request lines for %d requests", requestLines, requests)
	}
}

// containsWord reports whether s occurs in line not inside a longer word
// (a family name "Lee" must not match "sleep"; a date or identifier must
// not match inside a longer number).
func containsWord(line, s string) bool {
	re := regexp.MustCompile(`(^|[^\pL\pN])` + regexp.QuoteMeta(s) + `($|[^\pL\pN])`)
	return re.MatchString(line)
}

func dig(v any, path ...string) any {
	for _, p := range path {
		m, _ := v.(map[string]any)
		v = m[p]
	}
	return v
}

func tokenFor(t testing.TB, g *fhirGateway, id, secret string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, g.URL+"/oauth/token", strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, secret)
	r := do(t, req)
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if r.status != http.StatusOK || json.Unmarshal(r.body, &body) != nil || body.AccessToken == "" {
		t.Fatalf("token: %d %s", r.status, r.body)
	}
	return body.AccessToken
}
