package fhir

import (
	"strings"
	"testing"

	"example.com/gateway/gateway"
)

// Provider Access: every claim type, every money field set on the record,
// and not one monetary element in the JSON (DESIGN.md §1 rule 2).
func TestFromClaim_NoMoney(t *testing.T) {
	for _, ct := range claimTypes {
		t.Run(ct.name, func(t *testing.T) {
			c, lines, dx, px := testClaim(ct.typ)
			tree, _ := toTree(t, FromClaim(c, lines, dx, px, Policy{Money: false}))
			assertNoMoney(t, tree)
			// Not under another name either: no number of the record's amounts.
			amounts := map[float64]bool{1234.5: true, 980: true, 800: true, 15: true, 20: true, 10: true, 50: true,
				134.5: true, 180: true, 411.5: true, 326.67: true, 266.67: true, 6.67: true, 3.33: true, 16.67: true, 60: true}
			walk(tree, "", func(path, key string, val any) {
				if f, ok := val.(float64); ok && amounts[f] {
					t.Errorf("%s.%s = %v, one of the record's amounts", path, key, f)
				}
			})
			if got := get(tree, "meta", "profile", 0); got != ct.basis {
				t.Errorf("meta.profile = %v, want the Basis profile %s", got, ct.basis)
			}
			if n := len(get(tree, "meta", "profile").([]any)); n != 1 {
				t.Errorf("meta.profile has %d entries, want 1", n)
			}
			assertRequired(t, tree, ct.code, c)
			assertRefs(t, tree, c.MemberID)
			golden(t, "eob-"+ct.name, FromClaim(c, lines, dx, px, Policy{}))
		})
	}
}

// Patient Access: the amounts appear, with the right values, under the full
// (financial) profile.
func TestFromClaim_Money(t *testing.T) {
	for _, ct := range claimTypes {
		t.Run(ct.name, func(t *testing.T) {
			c, lines, dx, px := testClaim(ct.typ)
			tree, _ := toTree(t, FromClaim(c, lines, dx, px, Policy{Money: true}))
			if got := get(tree, "meta", "profile", 0); got != ct.full {
				t.Errorf("meta.profile = %v, want %s", got, ct.full)
			}
			totals := map[string]float64{}
			for _, tot := range get(tree, "total").([]any) {
				totals[get(tot, "category", "coding", 0, "code").(string)] = get(tot, "amount", "value").(float64)
				if cur := get(tot, "amount", "currency"); cur != "USD" {
					t.Errorf("total currency = %v", cur)
				}
			}
			want := map[string]float64{
				"submitted": 1234.5, "eligible": 980, "benefit": 800, "copay": 20, "coinsurance": 10,
				"deductible": 50, "noncovered": 134.5, "memberliability": 180,
			}
			for k, v := range want {
				if totals[k] != v {
					t.Errorf("total[%s] = %v, want %v", k, totals[k], v)
				}
			}
			if len(totals) != len(want) {
				t.Errorf("totals = %v, want %v", totals, want)
			}
			if got := get(tree, "payment", "amount", "value"); got != 800.0 {
				t.Errorf("payment.amount = %v, want 800", got)
			}
			if got := get(tree, "payment", "adjustment", "value"); got != 15.0 {
				t.Errorf("payment.adjustment = %v, want 15", got)
			}
			if got := get(tree, "payment", "date"); got != "2024-05-25" {
				t.Errorf("payment.date = %v", got)
			}
			amounts := map[string]float64{}
			for _, a := range get(tree, "item", 0, "adjudication").([]any) {
				if v, ok := get(a, "amount", "value").(float64); ok {
					amounts[get(a, "category", "coding", 0, "code").(string)] = v
				}
			}
			wantLine := map[string]float64{"submitted": 411.5, "eligible": 326.67, "benefit": 266.67, "copay": 6.67,
				"coinsurance": 3.33, "deductible": 16.67, "memberliability": 60}
			for k, v := range wantLine {
				if amounts[k] != v {
					t.Errorf("item[0].adjudication[%s] = %v, want %v", k, amounts[k], v)
				}
			}
			assertRequired(t, tree, ct.code, c)
		})
	}
}

// A Patient Access EOB of a claim that has no amounts can only be Basis.
func TestFromClaim_MoneyWithoutAmountsIsBasis(t *testing.T) {
	c, lines, dx, px := testClaim(gateway.ClaimProfessional)
	c.TotalSubmitted, c.TotalAllowed, c.TotalPaid, c.Copay, c.Coinsurance = nil, nil, nil, nil, nil
	c.Deductible, c.NonCovered, c.MemberLiability = nil, nil, nil
	e := FromClaim(c, lines, dx, px, Policy{Money: true})
	if e.Meta.Profile[0] != ProfileEOBProfessionalBasis || len(e.Total) != 0 {
		t.Errorf("profile %v with %d totals, want Basis and none", e.Meta.Profile, len(e.Total))
	}
}

func assertRequired(t *testing.T, tree map[string]any, claimType string, c gateway.Claim) {
	t.Helper()
	for _, k := range []string{"resourceType", "id", "meta", "identifier", "status", "type", "use", "patient",
		"billablePeriod", "created", "insurer", "provider", "outcome", "insurance", "item", "careTeam", "supportingInfo", "diagnosis"} {
		if _, ok := tree[k]; !ok {
			t.Errorf("required element %s missing", k)
		}
	}
	checks := []struct {
		path []any
		want any
	}{
		{[]any{"resourceType"}, "ExplanationOfBenefit"},
		{[]any{"id"}, c.ID},
		{[]any{"meta", "lastUpdated"}, "2025-03-14T15:09:26.535Z"},
		{[]any{"status"}, "active"},
		{[]any{"use"}, "claim"},
		{[]any{"type", "coding", 0, "system"}, "http://terminology.hl7.org/CodeSystem/claim-type"},
		{[]any{"type", "coding", 0, "code"}, claimType},
		{[]any{"patient", "reference"}, "Patient/" + c.MemberID},
		{[]any{"billablePeriod", "start"}, "2024-05-01"},
		{[]any{"billablePeriod", "end"}, "2024-05-04"},
		{[]any{"created"}, "2024-05-20"},
		{[]any{"insurer", "reference"}, "Organization/" + PayerID},
		{[]any{"provider", "reference"}, "Organization/" + *c.BillingOrganizationID},
		{[]any{"outcome"}, "complete"},
		{[]any{"insurance", 0, "focal"}, true},
		{[]any{"insurance", 0, "coverage", "reference"}, "Coverage/" + *c.CoverageID},
		{[]any{"identifier", 0, "type", "coding", 0, "code"}, "uc"},
		{[]any{"identifier", 0, "value"}, c.Identifier},
		{[]any{"careTeam", 0, "provider", "reference"}, "Practitioner/" + *c.RenderingPractitionerID},
		{[]any{"supportingInfo", 0, "category", "coding", 0, "code"}, "clmrecvddate"},
		{[]any{"supportingInfo", 0, "timingDate"}, "2024-05-10"},
		{[]any{"diagnosis", 0, "diagnosisCodeableConcept", "coding", 0, "system"}, SystemICD10CM},
		{[]any{"diagnosis", 0, "type", 0, "coding", 0, "code"}, "principal"},
		{[]any{"payment", "type", "coding", 0, "code"}, "partiallypaid"},
	}
	for _, ch := range checks {
		if got := get(tree, ch.path...); got != ch.want {
			t.Errorf("%v = %v, want %v", ch.path, got, ch.want)
		}
	}
	items := get(tree, "item").([]any)
	if len(items) != 3 {
		t.Fatalf("%d items, want 3", len(items))
	}
	for i, it := range items {
		if get(it, "sequence") != float64(i+1) {
			t.Errorf("item[%d].sequence = %v", i, get(it, "sequence"))
		}
		if code, _ := get(it, "productOrService", "coding", 0, "code").(string); code == "" {
			t.Errorf("item[%d].productOrService has no code", i)
		}
		if sys, _ := get(it, "productOrService", "coding", 0, "system").(string); !strings.Contains(sys, ":") {
			t.Errorf("item[%d].productOrService.system = %q, want a URI", i, sys)
		}
		if get(it, "servicedDate") == nil {
			t.Errorf("item[%d].servicedDate missing", i)
		}
	}
	if c.Type == gateway.ClaimInpatient || c.Type == gateway.ClaimOutpatient {
		if get(tree, "subType", "coding", 0, "code") == nil {
			t.Error("institutional claim without subType")
		}
		if get(tree, "item", 0, "revenue", "coding", 0, "code") != "0450" {
			t.Error("institutional item without revenue code")
		}
	}
	// benefitpaymentstatus: required at header or line level in every profile.
	var bps int
	walk(tree, "", func(_, key string, val any) {
		if key == "category" && get(val, "coding", 0, "code") == "benefitpaymentstatus" {
			bps++
		}
	})
	if bps == 0 {
		t.Error("no benefitpaymentstatus adjudication")
	}
}

func TestFromClaim_Details(t *testing.T) {
	c, lines, dx, px := testClaim(gateway.ClaimInpatient)
	e := FromClaim(c, lines, dx, px, Policy{})
	if e.SubType.Coding[0].Code != "inpatient" || e.CareTeam[0].Role.Coding[0].Code != "attending" {
		t.Errorf("subType %v, role %v", e.SubType, e.CareTeam[0].Role)
	}
	cats := map[string]SupportingInfo{}
	for _, s := range e.SupportingInfo {
		cats[s.Category.Coding[0].Code] = s
	}
	if ap := cats["admissionperiod"].TimingPeriod; ap == nil || ap.Start != "2024-05-01" || ap.End != "2024-05-04" {
		t.Errorf("admissionperiod = %+v", ap)
	}
	if cats["typeofbill"].Code.Coding[0].Code != "0111" || cats["drg"].Code.Coding[0].Code != "291" {
		t.Errorf("typeofbill/drg = %+v / %+v", cats["typeofbill"], cats["drg"])
	}
	if got := e.Diagnosis[2].Type[0].Coding[0].Code; got != "admitting" {
		t.Errorf("admitting diagnosis type = %s", got)
	}
	if got := e.Diagnosis[1].Type[0].Coding[0].Code; got != "other" {
		t.Errorf("secondary inpatient diagnosis type = %s, want other", got)
	}
	if e.Diagnosis[0].OnAdmission == nil || e.Diagnosis[0].OnAdmission.Coding[0].Code != "Y" {
		t.Errorf("onAdmission = %+v", e.Diagnosis[0].OnAdmission)
	}
	if e.Procedure[0].ProcedureCodeableConcept.Coding[0].System != SystemICD10PCS ||
		e.Procedure[0].Type[0].Coding[0].Code != "principal" || e.Procedure[1].Type[0].Coding[0].Code != "other" {
		t.Errorf("procedures = %+v", e.Procedure)
	}
	if sys := e.Item[2].ProductOrService.Coding[0].System; sys != SystemHCPCS {
		t.Errorf("Blue Button HCPCS URI not normalised: %s", sys)
	}
	if m := e.Item[2].Modifier; m[0].Coding[0].System != SystemHCPCS || m[1].Coding[0].System != SystemCPT {
		t.Errorf("modifier systems = %+v", m)
	}
	if r := e.Item[1].Adjudication; r[0].Category.Coding[0].Code != "adjustmentreason" || r[0].Reason.Coding[0].System != SystemCARC {
		t.Errorf("denied line adjudication = %+v", r)
	}

	c, lines, dx, px = testClaim(gateway.ClaimProfessional)
	e = FromClaim(c, lines, dx, px, Policy{})
	if e.SubType != nil || e.CareTeam[0].Role.Coding[0].Code != "rendering" {
		t.Errorf("professional subType %v role %v", e.SubType, e.CareTeam[0].Role)
	}
	if loc := e.Item[0].LocationCodeableConcept; loc == nil || loc.Coding[0].System != SystemPOS || loc.Coding[0].Code != "11" {
		t.Errorf("locationCodeableConcept = %+v", loc)
	}
	if got := e.Diagnosis[1].Type[0].Coding[0].Code; got != "secondary" {
		t.Errorf("professional secondary diagnosis type = %s", got)
	}
	if e.Item[0].Adjudication[0].Category.Coding[0].Code != "benefitpaymentstatus" {
		t.Errorf("professional item adjudication = %+v", e.Item[0].Adjudication)
	}

	c, lines, dx, px = testClaim(gateway.ClaimPharmacy)
	e = FromClaim(c, lines, dx, px, Policy{})
	var absentInfo int
	for _, s := range e.SupportingInfo {
		if (s.ValueQuantity != nil && len(s.ValueQuantity.Extension) == 1) || (s.Code != nil && len(s.Code.Extension) == 1) {
			absentInfo++
		}
	}
	if absentInfo != 3 || e.CareTeam[0].Role.Coding[0].Code != "prescribing" {
		t.Errorf("pharmacy: %d data-absent supportingInfo (want 3), role %v", absentInfo, e.CareTeam[0].Role)
	}
	if e.Item[0].ProductOrService.Coding[0].System != SystemNDC || e.Item[1].Adjudication[0].Category.Coding[0].Code != "rejectreason" {
		t.Errorf("pharmacy item = %+v", e.Item[1])
	}
}

func TestFromClaim_StatusAndMissingRefs(t *testing.T) {
	c, lines, dx, px := testClaim(gateway.ClaimProfessional)
	c.Status, c.Outcome = gateway.ClaimEnteredInError, "queued"
	c.CoverageID, c.BillingOrganizationID, c.RenderingPractitionerID = nil, nil, nil
	e := FromClaim(c, lines, dx, px, Policy{})
	if e.Status != "entered-in-error" || e.Outcome != "queued" || e.Payment != nil {
		t.Errorf("status %s outcome %s payment %+v", e.Status, e.Outcome, e.Payment)
	}
	if e.Provider.Reference != "" || len(e.Provider.Extension) != 1 || e.Insurance[0].Coverage.Reference != "" ||
		e.Insurance[0].Coverage.Extension[0].URL != extDataAbsentReason || e.CareTeam != nil {
		t.Errorf("missing references: provider %+v coverage %+v careTeam %+v", e.Provider, e.Insurance[0].Coverage, e.CareTeam)
	}
	c.Status = gateway.ClaimCancelled
	if s := FromClaim(c, lines, dx, px, Policy{}).Status; s != "cancelled" {
		t.Errorf("status = %s", s)
	}
}

func TestCodeSystem(t *testing.T) {
	for in, want := range map[string]string{
		"CPT": SystemCPT, "cpt": SystemCPT, "HCPCS": SystemHCPCS, "NDC": SystemNDC, "CDT": SystemCDT,
		"ICD-10-CM": SystemICD10CM, "ICD-10-PCS": SystemICD10PCS, "http://loinc.org": SystemLOINC,
		"https://bluebutton.cms.gov/resources/codesystem/hcpcs": SystemHCPCS, "LOCAL": "LOCAL",
	} {
		if got := CodeSystem(in); got != want {
			t.Errorf("CodeSystem(%q) = %q, want %q", in, got, want)
		}
	}
}
