package main

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"time"
)

// The provider dashboard's GraphQL operations, with their share of the
// GraphQL requests. Each reads members the way a dashboard does: a search
// by name (a page of members), a look-up by member identifier, one member's
// claims with their lines, encounters, prior authorizations, a chart
// summary, and a panel of members with their latest claims. None asks for
// a monetary field, so a correct answer has no error.
type graphqlOp struct {
	name   string
	weight int
	doc    string
}

var graphqlOps = []graphqlOp{
	{"MemberSearch", 22, `query MemberSearch($name: String!, $birthDate: Date) {
  members(first: 20, filter: {name: $name, birthDate: $birthDate}) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { node { id identifier givenName familyName birthDate gender city state } }
  }
}`},
	{"MemberLookup", 8, `query MemberLookup($identifier: String!) {
  members(first: 1, filter: {identifier: $identifier}) {
    edges { node { id identifier givenName familyName birthDate gender addressLine city state postalCode phone
      coverage { id identifier status typeDisplay planName groupNumber periodStart periodEnd }
      attributions { status periodStart periodEnd source } } }
  }
}`},
	{"MemberClaims", 24, `query MemberClaims($id: ID!, $filter: ClaimFilter) {
  member(id: $id) {
    id identifier givenName familyName birthDate
    claims(first: 10, filter: $filter) {
      pageInfo { hasNextPage endCursor }
      edges { node { id identifier type status outcome serviceStart serviceEnd created processed
        facilityName placeOfService typeOfBill drg inNetwork lastUpdated
        lines { sequence serviceDate productCode productSystem productDisplay modifiers quantity revenueCode placeOfService denialReason }
        diagnoses { sequence code system display type presentOnAdmission }
        procedures { sequence code display performedOn } } }
    }
  }
}`},
	{"MemberEncounters", 14, `query MemberEncounters($id: ID!) {
  member(id: $id) {
    id givenName familyName
    encounters(first: 20) {
      pageInfo { hasNextPage endCursor }
      edges { node { id identifier status class typeCode typeDisplay periodStart periodEnd practitionerId organizationId reasonCode reasonDisplay } }
    }
  }
}`},
	{"MemberPriorAuthorizations", 12, `query MemberPriorAuthorizations($id: ID!, $statuses: [PriorAuthorizationStatus!]) {
  member(id: $id) {
    id givenName familyName
    priorAuthorizations(first: 10, filter: {statuses: $statuses}) {
      edges { node { id identifier status serviceCategory requestedOn decidedOn authorizedStart authorizedEnd
        lastStatusChange denialReasonCode denialReason
        items { sequence productCode productSystem productDisplay quantityRequested quantityApproved quantityUsed status denialReason } } }
    }
  }
}`},
	{"MemberChart", 12, `query MemberChart($id: ID!) {
  member(id: $id) {
    id identifier givenName familyName birthDate gender
    coverage { identifier status planName periodStart periodEnd }
    conditions(first: 10) { edges { node { id resourceType status dateOfService code { system code display } } } }
    observations(first: 10) { edges { node { id status dateOfService code { code display } } } }
    medications(first: 5) { edges { node { id status dateOfService code { code display } } } }
    claims(first: 5) { edges { node { id type status serviceStart facilityName lines { sequence productCode productDisplay } } } }
    encounters(first: 5) { edges { node { id class typeDisplay periodStart } } }
    priorAuthorizations(first: 5) { edges { node { id status serviceCategory requestedOn } } }
  }
}`},
	{"PanelRecentClaims", 8, `query PanelRecentClaims($name: String!) {
  members(first: 10, filter: {name: $name}) {
    totalCount
    edges { node { id identifier givenName familyName
      claims(first: 3) { edges { node { id type status serviceStart facilityName } } } } }
  }
}`},
}

// target is one vegeta target (-format=json).
type target struct {
	Method string              `json:"method"`
	URL    string              `json:"url"`
	Body   string              `json:"body,omitempty"` // base64
	Header map[string][]string `json:"header"`
}

// writeTargets writes enough targets for rate × duration requests, so that
// vegeta never sends one twice (each has its own X-Request-Id, which the
// gateway echoes and records in the audit rows), and returns their number.
// The kinds are interleaved evenly at the Mix's rates.
func writeTargets(path string, st *State, duration time.Duration, seed uint64) (int, error) {
	r := rand.New(rand.NewPCG(seed, 0x10ad7e57))
	var dash, exp, all []*Client
	for i := range st.Clients {
		c := &st.Clients[i]
		all = append(all, c)
		if c.Role == "dashboard" {
			dash = append(dash, c)
		} else {
			exp = append(exp, c)
		}
	}
	if len(dash) == 0 {
		return 0, fmt.Errorf("no dashboard client")
	}
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	enc := json.NewEncoder(w)

	total := int(math.Ceil(st.Rate*duration.Seconds())) + 10
	totalWeight := 0
	for _, op := range graphqlOps {
		totalWeight += op.weight
	}
	var tokenAcc, exportAcc float64
	var nGraphQL, nToken, nExport int
	for seq := range total {
		id := func(kind string) string { return fmt.Sprintf("lt.%s.%07d.%s", st.Run, seq, kind) }
		var t target
		exportAcc += st.Mix.Export / st.Rate
		tokenAcc += st.Mix.Token / st.Rate
		switch {
		case exportAcc >= 1 && (len(exp) > 0 || len(dash) > 0):
			exportAcc--
			t = exportTarget(st.BaseURL, r, nExport, exp, dash, id)
			nExport++
		case tokenAcc >= 1:
			tokenAcc--
			c := all[nToken%len(all)]
			t = target{Method: "POST", URL: st.BaseURL + "/oauth/token",
				Body: b64("grant_type=client_credentials&scope=system%2F%2A.read"),
				Header: map[string][]string{
					"Authorization": {"Basic " + b64(c.ID+":"+c.Secret)},
					"Content-Type":  {"application/x-www-form-urlencoded"},
					"X-Request-Id":  {id("token")},
				}}
			nToken++
		default:
			c := dash[nGraphQL%len(dash)]
			nGraphQL++
			pick := r.IntN(totalWeight)
			op := graphqlOps[0]
			for _, o := range graphqlOps {
				if pick < o.weight {
					op = o
					break
				}
				pick -= o.weight
			}
			body, _ := json.Marshal(map[string]any{"query": op.doc, "operationName": op.name,
				"variables": graphqlVars(op.name, r, c.Members)})
			t = target{Method: "POST", URL: st.BaseURL + "/graphql", Body: base64.StdEncoding.EncodeToString(body),
				Header: map[string][]string{
					"Authorization": {"Bearer " + c.Token},
					"Content-Type":  {"application/json"},
					"X-Request-Id":  {id(op.name)},
				}}
		}
		if err := enc.Encode(t); err != nil {
			return 0, err
		}
	}
	return total, w.Flush()
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// graphqlVars picks the variables of an operation from the client's sample
// of members.
func graphqlVars(op string, r *rand.Rand, sample []MemberRef) map[string]any {
	m := sample[r.IntN(len(sample))]
	switch op {
	case "MemberSearch", "PanelRecentClaims":
		v := map[string]any{"name": namePrefix(r, m)}
		if op == "MemberSearch" && r.IntN(4) == 0 && m.BirthDate != "" {
			v["birthDate"] = m.BirthDate // name and date of birth: the patient at the desk
		}
		return v
	case "MemberLookup":
		return map[string]any{"identifier": m.Identifier}
	case "MemberClaims":
		v := map[string]any{"id": m.ID}
		switch r.IntN(4) {
		case 0:
			v["filter"] = map[string]any{"servicePeriod": map[string]any{"from": "2024-01-01"}}
		case 1:
			v["filter"] = map[string]any{"types": []string{"PROFESSIONAL", "INSTITUTIONAL_OUTPATIENT"}}
		}
		return v
	case "MemberPriorAuthorizations":
		v := map[string]any{"id": m.ID}
		if r.IntN(2) == 0 {
			v["statuses"] = []string{"PENDING", "APPROVED", "DENIED"}
		}
		return v
	}
	return map[string]any{"id": m.ID}
}

// namePrefix is what a person types in a search box: the first letters of
// the family name, sometimes with the given name's.
func namePrefix(r *rand.Rand, m MemberRef) string {
	fam := []rune(m.FamilyName)
	p := string(fam[:min(len(fam), 1+r.IntN(4))])
	if r.IntN(4) == 0 {
		giv := []rune(m.GivenName)
		p = string(giv[:min(len(giv), 2)]) + " " + p
	}
	return strings.TrimSpace(p)
}

// exportTarget is the n-th export kick-off: in turn a whole-group export, a
// group export of some types ($davinci-data-export), a Patient/$export with
// a _typeFilter (these three by the registered organizations' clients, whose
// groups are small), and a $davinci-data-export of three members of a
// synthetic organization's large group (POST with a Parameters body).
func exportTarget(base string, r *rand.Rand, n int, exp, dash []*Client, id func(string) string) target {
	hdr := func(c *Client, kind string) map[string][]string {
		return map[string][]string{
			"Authorization": {"Bearer " + c.Token},
			"Prefer":        {"respond-async"},
			"Accept":        {"application/fhir+json"},
			"X-Request-Id":  {id(kind)},
		}
	}
	variant := n % 4
	if len(exp) == 0 {
		variant = 3
	}
	if variant < 3 {
		c := exp[(n/4*3+variant)%len(exp)]
		switch variant {
		case 0:
			return target{Method: "GET", URL: base + "/fhir/Group/" + c.GroupID + "/$export", Header: hdr(c, "export-group")}
		case 1:
			return target{Method: "GET", URL: base + "/fhir/Group/" + c.GroupID +
				"/$davinci-data-export?_type=Patient,ExplanationOfBenefit,Encounter", Header: hdr(c, "export-types")}
		default:
			return target{Method: "GET", URL: base + "/fhir/Patient/$export?_type=ExplanationOfBenefit,Condition" +
				"&_typeFilter=ExplanationOfBenefit%3Ftype%3Dprofessional", Header: hdr(c, "export-patient")}
		}
	}
	c := dash[r.IntN(len(dash))]
	var params []map[string]any
	for range 3 {
		m := c.Members[r.IntN(len(c.Members))]
		params = append(params, map[string]any{"name": "patient", "valueReference": map[string]any{"reference": "Patient/" + m.ID}})
	}
	body, _ := json.Marshal(map[string]any{"resourceType": "Parameters", "parameter": params})
	h := hdr(c, "export-members")
	h["Content-Type"] = []string{"application/fhir+json"}
	return target{Method: "POST", URL: base + "/fhir/Group/" + c.GroupID + "/$davinci-data-export",
		Body: base64.StdEncoding.EncodeToString(body), Header: h}
}
