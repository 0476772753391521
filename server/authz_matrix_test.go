package server_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"example.com/gateway/auth"
	"example.com/gateway/gateway"
	"example.com/gateway/store"
)

// TestAuthorizationMatrix is issue 3's authorization matrix: every principal
// × every member × every member field and nested list, through real HTTP
// POST /graphql of a real gateway on real PostgreSQL, with real tokens: the
// gateway's own client tokens (/oauth/token), the DEV_MODE issuer's people
// tokens (/dev/token, verified by go-oidc through discovery), and an
// in-process OIDC provider (real discovery and JWKS) configured on a second
// instance over the same database.
//
// The expected answer of every cell is computed from a model of the data
// (mxMember) and of the policy (mxPrincipal.mode), not copied from output:
// flipping any rule (say, letting Provider Access see sensitive rows, or
// UPCOMING beyond the window) changes an expected set and fails the cell.
func TestAuthorizationMatrix(t *testing.T) {
	t.Parallel()
	start := time.Now()
	g := newGateway(t, map[string]string{"DEV_MODE": "true", "DEV_OPERATORS": "op@example.test"})
	ctx := t.Context()
	now := time.Now()
	g.DB.Now = func() time.Time { return now } // "today" does not move at midnight during the test
	today := now
	day := func(n int) string { return gateway.DateOf(today.AddDate(0, 0, n)).String() }

	// Organizations.
	mkOrg := func(name string, typ gateway.OrganizationType, status gateway.OrganizationStatus, inNetwork bool) gateway.Organization {
		o, err := g.DB.CreateOrganization(ctx, gateway.Organization{Name: name + " " + validNPI(), Type: typ, NPI: validNPI(),
			TIN: "123456789", Status: status, InNetwork: inNetwork})
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	orgA := mkOrg("Org A", gateway.OrgProviderHealthSystem, gateway.OrgStatusProduction, true)
	orgB := mkOrg("Org B", gateway.OrgProviderHealthSystem, gateway.OrgStatusProduction, true)
	aco := mkOrg("ACO", gateway.OrgAccountableCareOrganization, gateway.OrgStatusProduction, true)
	orgC := mkOrg("Org C", gateway.OrgProviderHealthSystem, gateway.OrgStatusProduction, false)
	app := mkOrg("App", gateway.OrgConsumerApplication, gateway.OrgStatusSandbox, false)
	// orgC was in-network once: SetOrganizationInNetwork is how an operator takes it out.
	if err := g.DB.SetOrganizationInNetwork(ctx, orgC.ID, true); err != nil {
		t.Fatal(err)
	}
	if err := g.DB.SetOrganizationInNetwork(ctx, orgC.ID, false); err != nil {
		t.Fatal(err)
	}

	// Rows, with plain SQL.
	ins := func(q string, args ...any) string {
		t.Helper()
		var id string
		if err := g.DB.QueryRowxContext(ctx, q, args...).Scan(&id); err != nil {
			t.Fatalf("%v\n%s", err, q)
		}
		return id
	}
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := g.DB.ExecContext(ctx, q, args...); err != nil {
			t.Fatalf("%v\n%s", err, q)
		}
	}
	var members []*mxMember
	byKey := map[string]*mxMember{}
	member := func(key string, sandbox bool) *mxMember {
		m := &mxMember{key: key, identifier: "MX-" + strings.ToUpper(key), sandbox: sandbox, given: "Given" + key}
		m.id = ins(`INSERT INTO members (id, member_identifier, given_name, family_name, birth_date, gender,
		    address_line, city, state, postal_code, phone, sandbox)
		  VALUES (gen_random_uuid(), $1, $2, 'Matrix', '1980-02-03', 'FEMALE', '1 Main St', 'Springfield', 'IL', '62701', '555-0100', $3)
		  RETURNING id`, m.identifier, m.given, sandbox)
		members = append(members, m)
		byKey[key] = m
		return m
	}
	attribute := func(m *mxMember, org string, startDay int, end string, sandbox bool) {
		var e any
		if end != "" {
			e = end
		}
		exec(`INSERT INTO attributions (id, member_id, organization_id, period_start, period_end, source, sandbox)
		      VALUES (gen_random_uuid(), $1, $2, $3, $4, $5, $6)`, m.id, org, day(startDay), e,
			map[bool]string{true: "SANDBOX", false: "PAYER"}[sandbox], sandbox)
		m.attrs = append(m.attrs, mxAttr{org: org, sandbox: sandbox})
	}
	claim := func(m *mxMember, ident, serviceStart string, sensitive bool, lines int) {
		id := ins(`INSERT INTO claims (id, member_id, identifier, type, status, service_start, created, processed,
		    facility_name, place_of_service, drg, sensitive,
		    total_submitted, total_allowed, total_paid, payment_amount, payment_date, payment_adjustment,
		    copay, coinsurance, deductible, noncovered, member_liability)
		  VALUES (gen_random_uuid(), $1, $2, 'PROFESSIONAL', 'ACTIVE', $3, $3, $3, 'Springfield General', '11', '470', $4,
		    1234.50, 1000.00, 900.00, 900.00, $3, 0.00, 20.00, 30.00, 50.00, 234.50, 100.00)
		  RETURNING id`, m.id, ident, serviceStart, sensitive)
		for i := 1; i <= lines; i++ {
			exec(`INSERT INTO claim_lines (claim_id, sequence, service_date, product_code, product_system,
			        product_display, modifiers, quantity, submitted, allowed, paid, copay, coinsurance, deductible, member_liability)
			      VALUES ($1, $2, $3, $4, 'http://www.ama-assn.org/go/cpt', 'Office visit', '{25}', 1,
			        100.25, 80.00, 70.00, 10.00, 0.00, 0.00, 10.00)`, id, i, serviceStart, fmt.Sprintf("9921%d", i))
		}
		exec(`INSERT INTO claim_diagnoses (claim_id, sequence, code, system, display, type)
		      VALUES ($1, 1, 'E11.9', 'http://hl7.org/fhir/sid/icd-10-cm', 'Type 2 diabetes', 'principal')`, id)
		exec(`INSERT INTO claim_procedures (claim_id, sequence, code, system, display, performed_on)
		      VALUES ($1, 1, '99213', 'http://www.ama-assn.org/go/cpt', 'Office visit', $2)`, id, serviceStart)
		m.claims = append(m.claims, mxClaim{ident: ident, sensitive: sensitive, old: serviceStart < "2016-01-01", lines: lines})
	}
	encounter := func(m *mxMember, ident, startDate string, sensitive bool) {
		exec(`INSERT INTO encounters (id, member_id, identifier, status, class, type_code, type_display,
		        period_start, period_end, sensitive)
		      VALUES (gen_random_uuid(), $1, $2, 'finished', 'AMB', '99213', 'Office visit', $3::timestamptz,
		        $3::timestamptz + interval '30 minutes', $4)`, m.id, ident, startDate+"T09:00:00Z", sensitive)
		m.encs = append(m.encs, mxRow{ident: ident, sensitive: sensitive, old: startDate < "2016-01-01"})
	}
	priorAuth := func(m *mxMember, ident string, drug bool) {
		id := ins(`INSERT INTO prior_authorizations (id, member_id, identifier, status, drug, service_category,
		    requested_on, last_status_change, denial_reason_code, denial_reason, sensitive)
		  VALUES (gen_random_uuid(), $1, $2, 'APPROVED', $3, 'imaging', $4::date, $4::date::timestamptz, '', '', false)
		  RETURNING id`, m.id, ident, drug, day(-20))
		exec(`INSERT INTO prior_authorization_items (prior_authorization_id, sequence, product_code, product_system,
		        quantity_requested, status, submitted)
		      VALUES ($1, 1, '70551', 'http://www.ama-assn.org/go/cpt', 1, 'requested', 450.00)`, id)
		m.pas = append(m.pas, mxPA{ident: ident, drug: drug})
	}
	clinical := func(m *mxMember, field, code, dos string, sensitive bool) {
		typ := mxClinicalTypes[field]
		resource := fmt.Sprintf(`{"resourceType":%q,"id":%q,"code":{"coding":[{"code":%q}]}}`, typ, code, code)
		exec(`INSERT INTO clinical_resources (id, member_id, resource_type, source_id, code, code_system, display,
		        status, date_of_service, resource, sensitive)
		      VALUES (gen_random_uuid(), $1, $2, $3, $4, 'http://snomed.info/sct', 'Display', 'active', $5, $6, $7)`,
			m.id, typ, m.key+"-"+code, code, dos, resource, sensitive)
		if m.clinical == nil {
			m.clinical = map[string][]mxRow{}
		}
		m.clinical[field] = append(m.clinical[field], mxRow{ident: code, sensitive: sensitive, old: dos < "2016-01-01"})
	}
	coverage := func(m *mxMember, ident string) {
		exec(`INSERT INTO coverages (id, member_id, identifier, status, plan_name, payer_name, period_start)
		      VALUES (gen_random_uuid(), $1, $2, 'active', 'Gold PPO', 'Example Health Plan', '2024-01-01')`, m.id, ident)
		m.coverage = append(m.coverage, ident)
	}

	// Members (the columns of the matrix).
	active := member("active", false) // A: ACTIVE, every kind of data; ACO and C: ACTIVE; B: ended
	attribute(active, orgA.ID, -100, "", false)
	attribute(active, aco.ID, -10, "", false)
	attribute(active, orgC.ID, -10, "", false)
	attribute(active, orgB.ID, -400, day(-1), false)
	claim(active, "C-ACTIVE-1", "2024-01-10", false, 2)
	claim(active, "C-ACTIVE-2", "2025-01-15", false, 1)
	encounter(active, "E-ACTIVE", "2024-04-01", false)
	priorAuth(active, "PA-ACTIVE", false)
	priorAuth(active, "PA-ACTIVE-DRUG", true)
	for i, f := range mxClinicalFields {
		clinical(active, f, fmt.Sprintf("10%d", i), "2024-02-0"+fmt.Sprint(i+1), false)
	}
	coverage(active, "COV-ACTIVE")

	upcoming := member("upcoming", false) // A: starts in 10 days (within 30)
	attribute(upcoming, orgA.ID, 10, "", false)
	claim(upcoming, "C-UPCOMING", "2024-05-05", false, 1)
	encounter(upcoming, "E-UPCOMING", "2024-05-05", false)
	coverage(upcoming, "COV-UPCOMING")

	beyond := member("beyond", false) // A: starts in 45 days (beyond the window)
	attribute(beyond, orgA.ID, 45, "", false)
	claim(beyond, "C-BEYOND", "2024-05-05", false, 1)

	ended := member("ended", false) // A: ended yesterday
	attribute(ended, orgA.ID, -300, day(-1), false)
	claim(ended, "C-ENDED", "2024-05-05", false, 1)

	never := member("never", false) // no attribution at all
	claim(never, "C-NEVER", "2024-05-05", false, 1)

	optedOut := member("optedout", false) // A: ACTIVE, opted out
	attribute(optedOut, orgA.ID, -100, "", false)
	claim(optedOut, "C-OPTEDOUT", "2024-05-05", false, 1)
	exec(`INSERT INTO provider_access_opt_outs (member_id) VALUES ($1)`, optedOut.id)

	otherOrg := member("otherorg", false) // B: ACTIVE; ACO: UPCOMING in 5 days; C: ACTIVE
	attribute(otherOrg, orgB.ID, -10, "", false)
	attribute(otherOrg, aco.ID, 5, "", false)
	attribute(otherOrg, orgC.ID, -10, "", false)
	claim(otherOrg, "C-OTHERORG", "2024-05-05", false, 2)
	priorAuth(otherOrg, "PA-OTHERORG", false)
	priorAuth(otherOrg, "PA-OTHERORG-DRUG", true)

	sandbox := member("sandbox", true) // sandbox member, A's sandbox attribution; bound to the Patient Access client
	attribute(sandbox, orgA.ID, -20, "", true)
	claim(sandbox, "C-SANDBOX", "2024-05-05", false, 2)
	claim(sandbox, "C-SANDBOX-SENSITIVE", "2024-06-06", true, 1)
	claim(sandbox, "C-SANDBOX-2015", "2015-12-31", false, 1)
	priorAuth(sandbox, "PA-SANDBOX", false)
	priorAuth(sandbox, "PA-SANDBOX-DRUG", true)
	coverage(sandbox, "COV-SANDBOX")

	sensitive := member("sensitive", false) // A: ACTIVE; a sensitive claim, encounter and condition beside normal ones
	attribute(sensitive, orgA.ID, -50, "", false)
	claim(sensitive, "C-SENSITIVE", "2024-03-03", true, 1)
	claim(sensitive, "C-NORMAL", "2024-04-04", false, 1)
	encounter(sensitive, "E-SENSITIVE", "2024-03-03", true)
	encounter(sensitive, "E-NORMAL", "2024-04-04", false)
	clinical(sensitive, "conditions", "200", "2024-03-03", true)
	clinical(sensitive, "conditions", "201", "2024-04-04", false)

	pre2016 := member("pre2016", false) // A: ACTIVE; data before and after 2016-01-01
	attribute(pre2016, orgA.ID, -50, "", false)
	claim(pre2016, "C-2015", "2015-12-31", false, 2)
	claim(pre2016, "C-2020", "2020-06-01", false, 1)
	encounter(pre2016, "E-2014", "2014-05-01", false)
	encounter(pre2016, "E-2020", "2020-05-01", false)
	clinical(pre2016, "immunizations", "300", "2015-10-10", false)
	clinical(pre2016, "immunizations", "301", "2020-10-10", false)

	// Principals (the rows of the matrix).
	provClient := func(org gateway.Organization, env gateway.Environment, at gateway.AccessType, bound *string) (gateway.APIClient, string) {
		return g.client(t, store.NewClient{OrganizationID: org.ID, Environment: env, AccessType: at, BoundMemberID: bound})
	}
	cA, sA := provClient(orgA, gateway.EnvProduction, gateway.ProviderAccess, nil)
	cB, sB := provClient(orgB, gateway.EnvProduction, gateway.ProviderAccess, nil)
	cACO, sACO := provClient(aco, gateway.EnvProduction, gateway.ProviderAccess, nil)
	cC, sC := provClient(orgC, gateway.EnvProduction, gateway.ProviderAccess, nil)
	cSandboxA, sSandboxA := provClient(orgA, gateway.EnvSandbox, gateway.ProviderAccess, nil)
	cPatient, sPatient := provClient(app, gateway.EnvSandbox, gateway.PatientAccess, nil)
	// An operator binds the Patient Access client to one sandbox member (no
	// store method without an operator's Mutation: plain SQL, as the
	// portal's bindPatientAccessClient would leave it).
	exec(`UPDATE clients SET bound_member_id = $2 WHERE id = $1`, cPatient.ID, sandbox.id)
	// A sandbox Patient Access client bound, by mistake, to a production
	// member: the environment still separates the data sets.
	cPatientProd, sPatientProd := provClient(app, gateway.EnvSandbox, gateway.PatientAccess, nil)
	exec(`UPDATE clients SET bound_member_id = $2 WHERE id = $1`, cPatientProd.ID, active.id)
	cRevoked, sRevoked := provClient(orgA, gateway.EnvProduction, gateway.ProviderAccess, nil)

	tokA := g.secretToken(t, cA.ID, sA, "")
	devToken := func(email string) string {
		t.Helper()
		resp, err := http.PostForm(g.URL+"/dev/token", url.Values{"email": {email}})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		json.NewDecoder(resp.Body).Decode(&body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("dev token: %s %v", resp.Status, body)
		}
		return body["access_token"].(string)
	}
	userTok := devToken("user-a@example.test")
	user := g.whoami(t, userTok)
	if user.Kind != "PERSON" {
		t.Fatalf("org user: %+v", user)
	}
	exec(`UPDATE users SET organization_id = $2, role = 'ADMIN' WHERE id = $1`, user.ID, orgA.ID)
	opTok := devToken("op@example.test")

	// A second instance over the same database whose people come from an
	// in-process OIDC provider (real discovery and JWKS over HTTP).
	idp := newTestProvider(t)
	g2 := newGatewayOn(t, g.DB, map[string]string{
		"OIDC_ISSUER_URL":    idp.URL,
		"OIDC_AUDIENCE":      "gateway-api",
		"OPERATOR_CLAIM":     "groups=payer-operators",
		"KEY_ENCRYPTION_KEY": base64.StdEncoding.EncodeToString(g.Server.Config.KeyEncryptionKey),
	})
	idpClaims := func(sub, aud string, groups []string) map[string]any {
		m := map[string]any{"iss": idp.URL, "sub": sub, "aud": aud, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
			"email": sub + "@example.test", "email_verified": true}
		if groups != nil {
			m["groups"] = groups
		}
		return m
	}
	idpUserTok := idp.token(t, idpClaims("idp-user-a", "gateway-api", nil))
	idpUser := g2.whoami(t, idpUserTok)
	if idpUser.Kind != "PERSON" {
		t.Fatalf("OIDC org user: %+v", idpUser)
	}
	exec(`UPDATE users SET organization_id = $2 WHERE id = $1`, idpUser.ID, orgA.ID)
	idpOpTok := idp.token(t, idpClaims("idp-op", "gateway-api", []string{"payer-operators"}))

	// Tokens that must not authenticate.
	keyRing := func(edit func(*auth.AccessTokenClaims)) string {
		c := auth.AccessTokenClaims{Issuer: g.URL, Subject: cA.ID, Audience: g.URL, IssuedAt: time.Now().Unix(),
			Expiry: time.Now().Add(5 * time.Minute).Unix(), JTI: "mx-" + validNPI(), ClientID: cA.ID, Org: orgA.ID,
			AccessType: gateway.ProviderAccess, Env: gateway.EnvProduction, Scope: "system/*.rs"}
		if edit != nil {
			edit(&c)
		}
		tok, err := g.Server.Auth.Keys.Sign(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	expired := keyRing(func(c *auth.AccessTokenClaims) {
		c.IssuedAt = time.Now().Add(-10 * time.Minute).Unix()
		c.Expiry = time.Now().Add(-time.Minute).Unix()
	})
	wrongAud := keyRing(func(c *auth.AccessTokenClaims) { c.Audience = "https://elsewhere.example" })
	forged := flipSignature(t, tokA)
	// The same claims as a valid token of cA, signed by a key the gateway never had, under its kid.
	strangerKey := newTestKey(t, jose.RS256)
	strangerKey.kid = g.Server.Auth.Keys.CurrentKID()
	var aClaims map[string]any
	if parsed, err := jwt.ParseSigned(tokA, []jose.SignatureAlgorithm{auth.SigningAlg}); err != nil {
		t.Fatal(err)
	} else {
		parsed.UnsafeClaimsWithoutVerification(&aClaims)
	}
	otherKey := sign(t, strangerKey, nil, aClaims)
	// A valid token of another OIDC issuer (the provider g2 trusts, not g), with g's people audience.
	otherIssuer := idp.token(t, idpClaims("idp-user-a", "provider-access-gateway", nil))

	// The revoked client: its token works, then stops within 5 s of RevokeClient.
	tokRevoked := g.secretToken(t, cRevoked.ID, sRevoked, "")
	if id := g.whoami(t, tokRevoked); id.Kind != "CLIENT" {
		t.Fatalf("revoked client's token before revocation: %+v", id)
	}
	if err := g.DB.RevokeClient(ctx, cRevoked.ID); err != nil {
		t.Fatal(err)
	}
	for revokedAt := time.Now(); ; time.Sleep(100 * time.Millisecond) {
		if id := g.whoami(t, tokRevoked); id.Kind == "" && id.Rejected {
			break
		}
		if time.Since(revokedAt) > 5*time.Second {
			t.Fatal("a revoked client's token still authenticates after 5 s")
		}
	}

	prov := func(org gateway.Organization, sandbox bool) mxMode {
		return mxMode{kind: "provider", org: org.ID, sandbox: sandbox}
	}
	full := mxMode{kind: "full"}
	none := mxMode{kind: "none"}
	unauth := mxMode{kind: "unauthenticated"}
	all := []string{}
	for _, m := range members {
		all = append(all, m.key)
	}
	principals := []struct {
		name    string
		gw      *testGateway
		token   string
		mode    mxMode
		visible []string // member keys
	}{
		{"provider A", g, tokA, prov(orgA, false), []string{"active", "upcoming", "sensitive", "pre2016"}},
		{"provider A, key-ring token (control)", g, keyRing(nil), prov(orgA, false), []string{"active", "upcoming", "sensitive", "pre2016"}},
		{"provider B", g, g.secretToken(t, cB.ID, sB, ""), prov(orgB, false), []string{"otherorg"}},
		{"ACO", g, g.secretToken(t, cACO.ID, sACO, ""), prov(aco, false), []string{"active", "otherorg"}},
		{"provider C, not in-network", g, g.secretToken(t, cC.ID, sC, ""), prov(orgC, false), nil},
		{"patient access (sandbox, bound)", g, g.secretToken(t, cPatient.ID, sPatient, ""), full, []string{"sandbox"}},
		{"sandbox patient client bound to a production member", g, g.secretToken(t, cPatientProd.ID, sPatientProd, ""), full, nil},
		{"sandbox provider A", g, g.secretToken(t, cSandboxA.ID, sSandboxA, ""), prov(orgA, true), []string{"sandbox"}},
		{"org user of A (dev issuer)", g, userTok, none, nil},
		{"operator (dev issuer)", g, opTok, full, all},
		{"org user of A (OIDC provider)", g2, idpUserTok, none, nil},
		{"operator (OIDC provider group)", g2, idpOpTok, full, all},
		{"no token", g, "", unauth, nil},
		{"expired token", g, expired, unauth, nil},
		{"revoked client", g, tokRevoked, unauth, nil},
		{"wrong audience", g, wrongAud, unauth, nil},
		{"signed by another key", g, otherKey, unauth, nil},
		{"forged signature", g, forged, unauth, nil},
		{"another issuer's token", g, otherIssuer, unauth, nil},
	}

	query := mxMemberQuery()
	absentID := "00000000-0000-4000-8000-" + fmt.Sprintf("%012d", time.Now().UnixNano()%1e12)
	cells := 0
	for _, p := range principals {
		t.Run(p.name, func(t *testing.T) {
			// The members connection: totalCount and ids are exactly the visible set.
			res := mxPost(t, p.gw, p.token, `{ members(first: 100) { totalCount edges { node { id } } } }`, nil)
			if p.mode.kind == "unauthenticated" {
				mxWantUnauthenticated(t, res, "members")
			} else {
				if len(res.Errors) != 0 {
					t.Fatalf("members: errors %s", res.body)
				}
				var want []string
				for _, k := range p.visible {
					want = append(want, byKey[k].id)
				}
				var got []string
				for _, e := range mxList(mxGet(res.data, "members.edges")) {
					got = append(got, mxGet(e, "node.id").(string))
				}
				if tc := mxGet(res.data, "members.totalCount"); fmt.Sprint(tc) != fmt.Sprint(len(want)) || !sameStrings(got, want) {
					t.Errorf("members: totalCount %v, ids %v; want %d: %v", tc, mxKeys(members, got), len(want), p.visible)
				}
			}

			// Not found and forbidden answer the same: the absent member's answer is the reference.
			absent := mxPost(t, p.gw, p.token, query, map[string]any{"id": absentID})
			if p.mode.kind != "unauthenticated" {
				mxWantNotFound(t, absent)
			}
			for _, m := range members {
				cells++
				t.Run(m.key, func(t *testing.T) {
					res := mxPost(t, p.gw, p.token, query, map[string]any{"id": m.id})
					switch {
					case p.mode.kind == "unauthenticated":
						mxWantUnauthenticated(t, res, "member")
					case !slices.Contains(p.visible, m.key):
						mxWantNotFound(t, res)
						if !bytes.Equal(mxErrorsJSON(res), mxErrorsJSON(absent)) || res.status != absent.status {
							t.Errorf("forbidden and absent differ:\n%s\n%s", res.body, absent.body)
						}
					default:
						mxCheckMember(t, res, m, p.mode)
					}
				})
			}
		})
	}
	t.Logf("%d principals × %d members (+ an absent id and the members connection): %d cells in %v",
		len(principals), len(members), cells, time.Since(start).Round(time.Millisecond))
}

// The model of the data.

type mxRow struct {
	ident          string
	sensitive, old bool
}

type mxClaim struct {
	ident          string
	sensitive, old bool
	lines          int
}

type mxPA struct {
	ident string
	drug  bool
}

type mxAttr struct {
	org     string
	sandbox bool
}

type mxMember struct {
	key, id, identifier, given string
	sandbox                    bool
	claims                     []mxClaim
	encs                       []mxRow
	pas                        []mxPA
	clinical                   map[string][]mxRow // by GraphQL field
	coverage                   []string
	attrs                      []mxAttr
}

// mxMode is what the policy says about a principal's reads.
type mxMode struct {
	kind    string // provider, full (patient access, operators), none (org users), unauthenticated
	org     string // provider: its organization
	sandbox bool   // provider: its data set
}

var mxClinicalFields = []string{"conditions", "observations", "medications", "immunizations", "allergies", "procedures"}

var mxClinicalTypes = map[string]string{"conditions": "Condition", "observations": "Observation",
	"medications": "MedicationRequest", "immunizations": "Immunization", "allergies": "AllergyIntolerance", "procedures": "Procedure"}

var mxClaimMoney = []string{"totalSubmitted", "totalAllowed", "totalPaid", "paymentAmount", "paymentDate", "paymentAdjustment",
	"copay", "coinsurance", "deductible", "nonCovered", "memberLiability"}

var mxLineMoney = []string{"submitted", "allowed", "paid", "copay", "coinsurance", "deductible", "memberLiability"}

// The amounts every claim row of the test carries (see claim in the test).
var mxClaimAmounts = map[string]string{"totalSubmitted": "1234.50", "totalAllowed": "1000.00", "totalPaid": "900.00",
	"paymentAmount": "900.00", "paymentAdjustment": "0.00", "copay": "20.00", "coinsurance": "30.00", "deductible": "50.00",
	"nonCovered": "234.50", "memberLiability": "100.00"}

var mxLineAmounts = map[string]string{"submitted": "100.25", "allowed": "80.00", "paid": "70.00", "copay": "10.00",
	"coinsurance": "0.00", "deductible": "0.00", "memberLiability": "10.00"}

func mxMemberQuery() string {
	conn := func(field, node string) string {
		return fmt.Sprintf("%s(first: 50) { pageInfo { hasNextPage } edges { cursor node { %s } } }\n", field, node)
	}
	clinicalNode := "id resourceType code { system code display } status dateOfService lastUpdated resource"
	var b strings.Builder
	b.WriteString(`query($id: ID!) { member(id: $id) {
  id identifier givenName familyName birthDate gender addressLine city state postalCode phone lastUpdated
`)
	b.WriteString(conn("claims", `id memberId identifier type status outcome serviceStart serviceEnd created processed coverageId
    billingOrganizationId renderingPractitionerId facilityName placeOfService typeOfBill drg inNetwork sensitive lastUpdated
    `+strings.Join(mxClaimMoney, " ")+`
    lines { sequence serviceDate productCode productSystem productDisplay modifiers quantity revenueCode placeOfService denialReason
      `+strings.Join(mxLineMoney, " ")+` }
    diagnoses { sequence code system display type presentOnAdmission }
    procedures { sequence code system display performedOn }`))
	b.WriteString(conn("encounters", `id identifier status class typeCode typeDisplay periodStart periodEnd practitionerId
    organizationId reasonCode reasonDisplay lastUpdated`))
	b.WriteString(conn("priorAuthorizations", `id identifier status drug serviceCategory requestedOn decidedOn authorizedStart
    authorizedEnd lastStatusChange requestingPractitionerId organizationId denialReasonCode denialReason lastUpdated
    items { sequence productCode productSystem productDisplay quantityRequested quantityApproved quantityUsed status denialReason submitted }`))
	for _, f := range mxClinicalFields {
		b.WriteString(conn(f, clinicalNode))
	}
	b.WriteString(`coverage { id identifier status typeCode typeDisplay planName groupNumber relationship payerName periodStart periodEnd lastUpdated }
  attributions { id organizationId practitionerId periodStart periodEnd source status lastUpdated }
} }`)
	return b.String()
}

// mxCheckMember checks a visible member's answer against the model.
func mxCheckMember(t *testing.T, res mxResult, m *mxMember, mode mxMode) {
	t.Helper()
	if res.status != http.StatusOK {
		t.Fatalf("status %d: %s", res.status, res.body)
	}
	mem, ok := mxGet(res.data, "member").(map[string]any)
	if !ok {
		t.Fatalf("member not visible: %s", res.body)
	}
	if mem["id"] != m.id || mem["identifier"] != m.identifier || mem["givenName"] != m.given || mem["city"] != "Springfield" {
		t.Errorf("member scalars: %v", mem)
	}
	provider := mode.kind == "provider"
	visible := func(sensitive, old bool) bool { return !provider || (!sensitive && !old) }

	// Claims: the set, their content, and money.
	var wantClaims []string
	wantForbidden := 0
	lines := map[string]int{}
	for _, c := range m.claims {
		if visible(c.sensitive, c.old) {
			wantClaims = append(wantClaims, c.ident)
			lines[c.ident] = c.lines
			wantForbidden += len(mxClaimMoney) + len(mxLineMoney)*c.lines
		}
	}
	var gotClaims, forbiddenPaths []string
	for i, e := range mxList(mxGet(mem, "claims.edges")) {
		c := mxGet(e, "node").(map[string]any)
		ident := c["identifier"].(string)
		gotClaims = append(gotClaims, ident)
		if c["memberId"] != m.id || len(mxList(c["diagnoses"])) != 1 || mxGet(c, "diagnoses.0.code") != "E11.9" ||
			mxGet(c, "procedures.0.code") != "99213" || len(mxList(c["lines"])) != lines[ident] {
			t.Errorf("claim %s: %v", ident, c)
		}
		base := fmt.Sprintf("member.claims.edges.%d.node.", i)
		for _, f := range mxClaimMoney {
			forbiddenPaths = append(forbiddenPaths, base+f)
			mxCheckMoney(t, provider, ident+"."+f, c[f], mxClaimAmounts[f], c["serviceStart"])
		}
		for j, l := range mxList(c["lines"]) {
			if mxGet(l, "productCode") != fmt.Sprintf("9921%d", j+1) {
				t.Errorf("claim %s line %d: %v", ident, j, l)
			}
			for _, f := range mxLineMoney {
				forbiddenPaths = append(forbiddenPaths, fmt.Sprintf("%slines.%d.%s", base, j, f))
				mxCheckMoney(t, provider, fmt.Sprintf("%s.lines.%d.%s", ident, j, f), l.(map[string]any)[f], mxLineAmounts[f], nil)
			}
		}
	}
	if !sameStrings(gotClaims, wantClaims) {
		t.Errorf("claims %v, want %v", gotClaims, wantClaims)
	}

	// Prior authorizations: no drug ones for Provider Access; items' submitted is money.
	var wantPAs, gotPAs []string
	for _, pa := range m.pas {
		if !provider || !pa.drug {
			wantPAs = append(wantPAs, pa.ident)
			wantForbidden++ // one item each
		}
	}
	for i, e := range mxList(mxGet(mem, "priorAuthorizations.edges")) {
		pa := mxGet(e, "node").(map[string]any)
		gotPAs = append(gotPAs, pa["identifier"].(string))
		for j, it := range mxList(pa["items"]) {
			forbiddenPaths = append(forbiddenPaths, fmt.Sprintf("member.priorAuthorizations.edges.%d.node.items.%d.submitted", i, j))
			mxCheckMoney(t, provider, pa["identifier"].(string)+".submitted", it.(map[string]any)["submitted"], "450.00", nil)
		}
	}
	if !sameStrings(gotPAs, wantPAs) {
		t.Errorf("prior authorizations %v, want %v", gotPAs, wantPAs)
	}

	// Encounters and the clinical lists: no sensitive rows, nothing before 2016 for Provider Access.
	rows := func(field string, model []mxRow, key func(any) string) {
		var want, got []string
		for _, r := range model {
			if visible(r.sensitive, r.old) {
				want = append(want, r.ident)
			}
		}
		for _, e := range mxList(mxGet(mem, field+".edges")) {
			got = append(got, key(mxGet(e, "node")))
		}
		if !sameStrings(got, want) {
			t.Errorf("%s %v, want %v", field, got, want)
		}
	}
	rows("encounters", m.encs, func(n any) string { return mxGet(n, "identifier").(string) })
	for _, f := range mxClinicalFields {
		rows(f, m.clinical[f], func(n any) string {
			if rt := mxGet(n, "resourceType"); rt != mxClinicalTypes[f] {
				t.Errorf("%s holds a %v", f, rt)
			}
			return mxGet(n, "code.code").(string)
		})
	}

	// Coverage: all of it; attributions: Provider Access sees its own organization's (of its data set) only.
	var gotCov []string
	for _, c := range mxList(mem["coverage"]) {
		gotCov = append(gotCov, mxGet(c, "identifier").(string))
	}
	if !sameStrings(gotCov, m.coverage) {
		t.Errorf("coverage %v, want %v", gotCov, m.coverage)
	}
	var wantOrgs, gotOrgs []string
	for _, a := range m.attrs {
		if !provider || (a.org == mode.org && a.sandbox == mode.sandbox) {
			wantOrgs = append(wantOrgs, a.org)
		}
	}
	for _, a := range mxList(mem["attributions"]) {
		gotOrgs = append(gotOrgs, mxGet(a, "organizationId").(string))
	}
	if !sameStrings(gotOrgs, wantOrgs) {
		t.Errorf("attributions of %v, want %v", gotOrgs, wantOrgs)
	}

	// Errors: Provider Access gets exactly one FORBIDDEN per monetary field
	// read, at its path; everyone else who sees the member gets none.
	var gotPaths []string
	for _, e := range res.Errors {
		if e.code() != gateway.CodeForbidden {
			t.Errorf("unexpected error %+v", e)
		}
		gotPaths = append(gotPaths, e.path())
	}
	switch {
	case !provider && len(res.Errors) > 0:
		t.Errorf("%d errors for a principal that may read money: %s", len(res.Errors), res.body)
	case provider && (len(gotPaths) != wantForbidden || !sameStrings(gotPaths, forbiddenPaths)):
		t.Errorf("FORBIDDEN at %d paths %v; want %d: %v", len(gotPaths), gotPaths, wantForbidden, forbiddenPaths)
	}
}

// mxCheckMoney checks one monetary field: null for Provider Access, the
// stored amount for everyone else (paymentDate: the service date).
func mxCheckMoney(t *testing.T, provider bool, what string, got any, want string, serviceStart any) {
	t.Helper()
	if provider {
		if got != nil {
			t.Errorf("%s = %v for Provider Access, want null", what, got)
		}
		return
	}
	if want == "" { // paymentDate
		if got != serviceStart {
			t.Errorf("%s = %v, want %v", what, got, serviceStart)
		}
		return
	}
	if n, ok := got.(json.Number); !ok || n.String() != want {
		t.Errorf("%s = %v, want %s", what, got, want)
	}
}

func mxWantUnauthenticated(t *testing.T, res mxResult, field string) {
	t.Helper()
	if res.status != http.StatusOK || len(res.Errors) != 1 || res.Errors[0].code() != gateway.CodeUnauthenticated ||
		res.Errors[0].path() != field || mxGet(res.data, field) != nil {
		t.Errorf("want UNAUTHENTICATED at %s: status %d %s", field, res.status, res.body)
	}
}

func mxWantNotFound(t *testing.T, res mxResult) {
	t.Helper()
	if res.status != http.StatusOK || len(res.Errors) != 1 || res.Errors[0].code() != gateway.CodeNotFound ||
		res.Errors[0].path() != "member" || mxGet(res.data, "member") != nil {
		t.Errorf("want NOT_FOUND at member: status %d %s", res.status, res.body)
	}
}

// HTTP and JSON plumbing.

type mxError struct {
	Message    string         `json:"message"`
	Path       []any          `json:"path"`
	Extensions map[string]any `json:"extensions"`
	Locations  any            `json:"locations"`
}

func (e mxError) code() string { s, _ := e.Extensions["code"].(string); return s }

func (e mxError) path() string {
	var parts []string
	for _, p := range e.Path {
		parts = append(parts, fmt.Sprint(p))
	}
	return strings.Join(parts, ".")
}

type mxResult struct {
	status  int
	body    []byte
	rawData json.RawMessage
	data    any
	Errors  []mxError
}

func mxErrorsJSON(r mxResult) []byte {
	b, _ := json.Marshal(r.Errors)
	return b
}

func mxPost(t *testing.T, gw *testGateway, token, query string, vars map[string]any) mxResult {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, _ := http.NewRequest(http.MethodPost, gw.URL+"/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	res := mxResult{status: resp.StatusCode, body: buf.Bytes()}
	var raw struct {
		Data   json.RawMessage `json:"data"`
		Errors []mxError       `json:"errors"`
	}
	if err := json.Unmarshal(res.body, &raw); err != nil {
		t.Fatalf("status %d, not JSON: %s", resp.StatusCode, res.body)
	}
	res.rawData, res.Errors = raw.Data, raw.Errors
	dec := json.NewDecoder(bytes.NewReader(raw.Data))
	dec.UseNumber()
	if len(raw.Data) > 0 {
		if err := dec.Decode(&res.data); err != nil {
			t.Fatalf("data: %v", err)
		}
	}
	return res
}

// mxGet follows a dotted path of keys and list indexes; nil when absent.
func mxGet(v any, path string) any {
	for _, k := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			v = x[k]
		case []any:
			var i int
			if _, err := fmt.Sscan(k, &i); err != nil || i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}

func mxList(v any) []any { l, _ := v.([]any); return l }

func mxKeys(members []*mxMember, ids []string) []string {
	var out []string
	for _, id := range ids {
		k := id
		for _, m := range members {
			if m.id == id {
				k = m.key
			}
		}
		out = append(out, k)
	}
	return out
}

func sameStrings(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	sort.Strings(a)
	sort.Strings(b)
	return slices.Equal(a, b)
}

// flipSignature returns tok with its signature's bytes flipped.
func flipSignature(t *testing.T, tok string) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWS: %q", tok)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		t.Fatal(err)
	}
	sig[0] ^= 0xff
	sig[len(sig)/2] ^= 0x01
	sig[len(sig)-1] ^= 0x80
	return parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(sig)
}
