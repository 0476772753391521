package fhir

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"example.com/gateway/gateway"
)

func testMember() gateway.Member {
	return gateway.Member{
		ID: "0b5e1c8a-1111-4aaa-8bbb-000000000001", Identifier: "M123456789",
		GivenName: "Ana", FamilyName: "Reyes", BirthDate: date("1961-02-17"), Gender: gateway.GenderFemale,
		AddressLine: "12 Elm St", City: "Springfield", State: "IL", PostalCode: "62701", Phone: "555-0100",
		LastUpdated: testLastUpdated,
	}
}

func testOrg() gateway.Organization {
	return gateway.Organization{ID: "00000000-3333-4ddd-8ddd-000000000001", Name: "Riverside Health", Type: gateway.OrgProviderHealthSystem,
		NPI: "1234567893", TIN: "991234567", CreatedAt: testLastUpdated}
}

// Every resource carries meta.lastUpdated (an RFC 3339 instant) and
// meta.profile.
func TestMetaEverywhere(t *testing.T) {
	c, lines, dx, px := testClaim(gateway.ClaimProfessional)
	pa, items := testPA(gateway.PAApproved)
	resources := map[string]any{
		"Patient":      FromMember(testMember()),
		"Coverage":     FromCoverage(gateway.Coverage{ID: "cov1", MemberID: "m1", LastUpdated: testLastUpdated}),
		"Practitioner": FromPractitioner(gateway.Practitioner{ID: "pr1", NPI: "1234567893", LastUpdated: testLastUpdated}),
		"Organization": FromOrganization(testOrg()),
		"Payer":        Payer(testLastUpdated),
		"EOB":          FromClaim(c, lines, dx, px, Policy{}),
		"PA":           FromPriorAuthorization(pa, items, Policy{}),
		"Encounter":    FromEncounter(gateway.Encounter{ID: "e1", MemberID: "m1", Class: "AMB", PeriodStart: testLastUpdated, LastUpdated: testLastUpdated}),
		"Group":        NewGroup("g1", testOrg(), nil, testLastUpdated),
	}
	for name, r := range resources {
		tree, _ := toTree(t, r)
		lu, _ := get(tree, "meta", "lastUpdated").(string)
		if _, err := time.Parse(time.RFC3339Nano, lu); err != nil {
			t.Errorf("%s: meta.lastUpdated %q: %v", name, lu, err)
		}
		if p, _ := get(tree, "meta", "profile", 0).(string); !strings.HasPrefix(p, "http://hl7.org/fhir/us/") {
			t.Errorf("%s: meta.profile %q", name, p)
		}
		if get(tree, "id") == "" || get(tree, "resourceType") == nil {
			t.Errorf("%s: no id or resourceType", name)
		}
	}
}

func TestFromMember(t *testing.T) {
	m := testMember()
	tree, _ := toTree(t, FromMember(m))
	checks := []struct {
		path []any
		want any
	}{
		{[]any{"resourceType"}, "Patient"},
		{[]any{"id"}, m.ID},
		{[]any{"meta", "profile", 0}, "http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"},
		{[]any{"identifier", 0, "type", "coding", 0, "system"}, "http://terminology.hl7.org/CodeSystem/v2-0203"},
		{[]any{"identifier", 0, "type", "coding", 0, "code"}, "MB"},
		{[]any{"identifier", 0, "system"}, SystemMemberID},
		{[]any{"identifier", 0, "value"}, "M123456789"},
		{[]any{"name", 0, "family"}, "Reyes"},
		{[]any{"name", 0, "given", 0}, "Ana"},
		{[]any{"gender"}, "female"},
		{[]any{"birthDate"}, "1961-02-17"},
		{[]any{"address", 0, "line", 0}, "12 Elm St"},
		{[]any{"address", 0, "postalCode"}, "62701"},
		{[]any{"telecom", 0, "system"}, "phone"},
		{[]any{"telecom", 0, "value"}, "555-0100"},
	}
	for _, ch := range checks {
		if got := get(tree, ch.path...); got != ch.want {
			t.Errorf("%v = %v, want %v", ch.path, got, ch.want)
		}
	}
	for g, want := range map[gateway.Gender]string{gateway.GenderMale: "male", gateway.GenderOther: "other", gateway.GenderUnknown: "unknown", "": "unknown"} {
		m.Gender = g
		if got := FromMember(m).Gender; got != want {
			t.Errorf("gender %q → %q, want %q", g, got, want)
		}
	}
	bare := FromMember(gateway.Member{ID: "x", Identifier: "M1"})
	if bare.Name[0].Extension[0].URL != extDataAbsentReason || bare.Address != nil || bare.Telecom != nil || bare.BirthDate != "" {
		t.Errorf("bare member = %+v", bare)
	}
}

func TestFromCoverage(t *testing.T) {
	c := gateway.Coverage{ID: "cov1", MemberID: "m1", Identifier: "SUB-778", Status: "active", TypeCode: "HIP", TypeDisplay: "health insurance plan policy",
		PlanName: "Gold PPO", GroupNumber: "GRP-42", Relationship: "self", PayerName: "Acme Health", PeriodStart: date("2024-01-01"), LastUpdated: testLastUpdated}
	tree, _ := toTree(t, FromCoverage(c))
	checks := []struct {
		path []any
		want any
	}{
		{[]any{"meta", "profile", 0}, ProfileC4BBCoverage},
		{[]any{"status"}, "active"},
		{[]any{"subscriberId"}, "SUB-778"},
		{[]any{"beneficiary", "reference"}, "Patient/m1"},
		{[]any{"relationship", "coding", 0, "code"}, "self"},
		{[]any{"payor", 0, "reference"}, "Organization/payer"},
		{[]any{"payor", 0, "display"}, "Acme Health"},
		{[]any{"period", "start"}, "2024-01-01"},
		{[]any{"type", "coding", 0, "system"}, systemActCode},
		{[]any{"class", 0, "type", "coding", 0, "code"}, "group"},
		{[]any{"class", 0, "value"}, "GRP-42"},
		{[]any{"class", 1, "type", "coding", 0, "code"}, "plan"},
		{[]any{"class", 1, "name"}, "Gold PPO"},
	}
	for _, ch := range checks {
		if got := get(tree, ch.path...); got != ch.want {
			t.Errorf("%v = %v, want %v", ch.path, got, ch.want)
		}
	}
	if get(tree, "period", "end") != nil {
		t.Error("open coverage has a period end")
	}
	c.TypeCode = "5"
	if s := FromCoverage(c).Type.Coding[0].System; s != systemPayerType {
		t.Errorf("numeric payer type system = %s", s)
	}
}

func TestFromPractitionerAndOrganization(t *testing.T) {
	pr := FromPractitioner(gateway.Practitioner{ID: "pr1", NPI: "1234567893", GivenName: "Lee", FamilyName: "Wong", LastUpdated: testLastUpdated})
	if pr.Identifier[0].System != SystemNPI || pr.Identifier[0].Value != "1234567893" || pr.Name[0].Family != "Wong" ||
		pr.Meta.Profile[0] != ProfileC4BBPractitioner {
		t.Errorf("practitioner = %+v", pr)
	}
	o := FromOrganization(testOrg())
	if len(o.Identifier) != 2 || o.Identifier[0].System != SystemNPI || o.Identifier[1].System != SystemTIN ||
		o.Identifier[1].Value != "991234567" || !o.Active || o.Name != "Riverside Health" {
		t.Errorf("organization = %+v", o)
	}
	p := Payer(testLastUpdated)
	if p.ID != PayerID || p.Name != PayerName || PayerRef().Reference != "Organization/"+p.ID {
		t.Errorf("payer %+v does not match PayerRef %+v", p, PayerRef())
	}
}

func TestNewGroup(t *testing.T) {
	members := []GroupMember{
		{MemberID: "m1", Start: date("2024-01-01")},
		{MemberID: "m2", Start: date("2025-04-01"), End: date("2025-12-31")},
	}
	tree, _ := toTree(t, NewGroup("g1", testOrg(), members, testLastUpdated))
	checks := []struct {
		path []any
		want any
	}{
		{[]any{"resourceType"}, "Group"},
		{[]any{"meta", "profile", 0}, ProfilePDexProviderGroup},
		{[]any{"type"}, "person"},
		{[]any{"actual"}, true},
		{[]any{"active"}, true},
		{[]any{"code", "coding", 0, "system"}, "http://hl7.org/fhir/us/davinci-pdex/CodeSystem/PdexMemberAttributionCS"},
		{[]any{"code", "coding", 0, "code"}, "pdexprovidergroup"},
		{[]any{"identifier", 0, "system"}, SystemNPI},
		{[]any{"identifier", 1, "system"}, SystemTIN},
		{[]any{"characteristic", 0, "code", "coding", 0, "code"}, "pdexprovidergroup"},
		{[]any{"characteristic", 0, "valueReference", "identifier", "system"}, SystemNPI},
		{[]any{"characteristic", 0, "valueReference", "identifier", "value"}, "1234567893"},
		{[]any{"characteristic", 0, "exclude"}, false},
		{[]any{"characteristic", 0, "period", "start"}, "2025-03-14"},
		{[]any{"extension", 0, "url"}, extAttributionListStatus},
		{[]any{"managingEntity", "reference"}, "Organization/payer"},
		{[]any{"quantity"}, 2.0},
		{[]any{"member", 0, "entity", "reference"}, "Patient/m1"},
		{[]any{"member", 0, "period", "start"}, "2024-01-01"},
		{[]any{"member", 1, "period", "end"}, "2025-12-31"},
	}
	for _, ch := range checks {
		if got := get(tree, ch.path...); got != ch.want {
			t.Errorf("%v = %v, want %v", ch.path, got, ch.want)
		}
	}
	if get(tree, "member", 0, "period", "end") != nil {
		t.Error("open attribution has a period end")
	}
	walk(tree, "", func(path, key string, _ any) {
		if strings.Contains(strings.ToLower(key), "opted") || strings.Contains(strings.ToLower(path), "opted") {
			t.Errorf("opt-out information at %s.%s", path, key)
		}
	})
}

func TestFromEncounter(t *testing.T) {
	end := testLastUpdated.Add(time.Hour)
	e := gateway.Encounter{ID: "e1", MemberID: "m1", Identifier: "ENC-1", Status: "finished", Class: "AMB",
		TypeCode: "99213", TypeDisplay: "Office visit", PeriodStart: testLastUpdated, PeriodEnd: &end,
		PractitionerID: ptr("pr1"), OrganizationID: ptr("o1"), ReasonCode: "I10", ReasonDisplay: "Hypertension", LastUpdated: testLastUpdated}
	tree, _ := toTree(t, FromEncounter(e))
	assertRefs(t, tree, "m1")
	checks := []struct {
		path []any
		want any
	}{
		{[]any{"meta", "profile", 0}, ProfileEncounter},
		{[]any{"status"}, "finished"},
		{[]any{"class", "system"}, "http://terminology.hl7.org/CodeSystem/v3-ActCode"},
		{[]any{"class", "code"}, "AMB"},
		{[]any{"type", 0, "coding", 0, "system"}, SystemCPT},
		{[]any{"type", 0, "coding", 0, "code"}, "99213"},
		{[]any{"subject", "reference"}, "Patient/m1"},
		{[]any{"period", "start"}, "2025-03-14T15:09:26.535Z"},
		{[]any{"period", "end"}, "2025-03-14T16:09:26.535Z"},
		{[]any{"participant", 0, "individual", "reference"}, "Practitioner/pr1"},
		{[]any{"serviceProvider", "reference"}, "Organization/o1"},
		{[]any{"reasonCode", 0, "coding", 0, "system"}, SystemICD10CM},
		{[]any{"identifier", 0, "value"}, "ENC-1"},
	}
	for _, ch := range checks {
		if got := get(tree, ch.path...); got != ch.want {
			t.Errorf("%v = %v, want %v", ch.path, got, ch.want)
		}
	}
	e.TypeCode, e.ReasonCode = "185349003", "38341003"
	got := FromEncounter(e)
	if got.Type[0].Coding[0].System != SystemSNOMED || got.ReasonCode[0].Coding[0].System != SystemSNOMED {
		t.Errorf("SNOMED codes: %+v %+v", got.Type, got.ReasonCode)
	}
	e.TypeCode, e.TypeDisplay = "", ""
	if got := FromEncounter(e).Type[0]; len(got.Extension) != 1 {
		t.Errorf("encounter without type: %+v, want data absent (US Core: type 1..*)", got)
	}
}

func TestFromClinical(t *testing.T) {
	obs := gateway.ClinicalResource{
		ID: "cl1", MemberID: "m1", ResourceType: gateway.ClinicalObservation, LastUpdated: testLastUpdated,
		Resource: json.RawMessage(`{"resourceType":"Observation","id":"src-9","meta":{"versionId":"7","security":[{"code":"N"}]},
			"status":"final","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"laboratory"}]}],
			"code":{"coding":[{"system":"http://loinc.org","code":"4548-4"}]},"subject":{"reference":"urn:uuid:abc","display":"Ana Reyes"},
			"performer":[{"reference":"Patient/src-patient-1"},{"reference":"Organization/lab-1"}],
			"text":{"div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">HbA1c &lt; 7.20</div>"},
			"valueQuantity":{"value":7.20,"unit":"%"}}`),
	}
	raw, err := FromClinical(obs)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(raw), `{"resourceType":"Observation",`) {
		t.Errorf("resourceType not first: %.60s", raw)
	}
	if !strings.Contains(string(raw), `"value":7.20`) {
		t.Errorf("decimal lost its digits: %s", raw)
	}
	if !strings.Contains(string(raw), `<div`) {
		t.Errorf("narrative HTML-escaped: %s", raw)
	}
	var tree map[string]any
	if err := json.Unmarshal(raw, &tree); err != nil {
		t.Fatalf("invalid JSON %s: %v", raw, err)
	}
	checks := []struct {
		path []any
		want any
	}{
		{[]any{"id"}, "cl1"},
		{[]any{"meta", "lastUpdated"}, "2025-03-14T15:09:26.535Z"},
		{[]any{"meta", "profile", 0}, ProfileObservationLab},
		{[]any{"meta", "security", 0, "code"}, "N"},
		{[]any{"meta", "versionId"}, nil},
		{[]any{"subject", "reference"}, "Patient/m1"},
		{[]any{"subject", "display"}, nil},
		{[]any{"performer", 0, "reference"}, "Patient/m1"},
		{[]any{"performer", 1, "reference"}, "Organization/lab-1"},
	}
	for _, ch := range checks {
		if got := get(tree, ch.path...); got != ch.want {
			t.Errorf("%v = %v, want %v", ch.path, got, ch.want)
		}
	}

	for typ, want := range map[gateway.ClinicalType]string{
		gateway.ClinicalCondition:    ProfileConditionProblems,
		gateway.ClinicalMedication:   ProfileMedicationRequest,
		gateway.ClinicalImmunization: ProfileImmunization,
		gateway.ClinicalAllergy:      ProfileAllergyIntolerance,
		gateway.ClinicalProcedure:    ProfileProcedure,
	} {
		r := gateway.ClinicalResource{ID: "x", MemberID: "m1", ResourceType: typ, LastUpdated: testLastUpdated,
			Resource: json.RawMessage(`{"resourceType":"` + string(typ) + `","patient":{"reference":"Patient/old"}}`)}
		raw, err := FromClinical(r)
		if err != nil {
			t.Fatal(err)
		}
		var tree map[string]any
		if err := json.Unmarshal(raw, &tree); err != nil {
			t.Fatal(err)
		}
		if got := get(tree, "meta", "profile", 0); got != want {
			t.Errorf("%s profile = %v, want %s", typ, got, want)
		}
		field := "subject"
		if typ == gateway.ClinicalImmunization || typ == gateway.ClinicalAllergy {
			field = "patient"
		}
		if got := get(tree, field, "reference"); got != "Patient/m1" {
			t.Errorf("%s.%s = %v", typ, field, got)
		}
		if got := get(tree, "patient", "reference"); got != nil && got != "Patient/m1" {
			t.Errorf("%s.patient = %v", typ, got)
		}
	}

	enc := gateway.ClinicalResource{ID: "x", MemberID: "m1", ResourceType: gateway.ClinicalCondition,
		Resource: json.RawMessage(`{"resourceType":"Condition","category":[{"coding":[{"code":"encounter-diagnosis"}]}]}`)}
	if raw, _ := FromClinical(enc); !strings.Contains(string(raw), ProfileConditionEncounterDx) {
		t.Errorf("encounter diagnosis profile missing: %s", raw)
	}

	for name, bad := range map[string]string{"wrong type": `{"resourceType":"Condition"}`, "not JSON": `{`, "not an object": `[]`} {
		if _, err := FromClinical(gateway.ClinicalResource{ID: "x", ResourceType: gateway.ClinicalObservation, Resource: json.RawMessage(bad)}); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestNewOperationOutcome(t *testing.T) {
	b, err := json.Marshal(NewOperationOutcome("error", "not-found", "not found"))
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"not-found","diagnostics":"not found"}]}`; string(b) != want {
		t.Errorf("got %s, want %s", b, want)
	}
}
