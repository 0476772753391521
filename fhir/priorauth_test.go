package fhir

import (
	"strings"
	"testing"

	"example.com/gateway/gateway"
)

func TestFromPriorAuthorization(t *testing.T) {
	tests := []struct {
		status       gateway.PriorAuthorizationStatus
		eobStatus    string
		outcome      string
		actions      []string // review action per item
		headerDenial string   // header denialreason code, "" for none
	}{
		{gateway.PAPending, "active", "queued", []string{"A4", "A4"}, ""},
		{gateway.PAApproved, "active", "complete", []string{"A1", "A1"}, ""},
		{gateway.PAPartiallyApproved, "active", "partial", []string{"A3", "A2"}, "197"},
		{gateway.PADenied, "active", "complete", []string{"A3", "A3"}, "50"},
		{gateway.PACancelled, "cancelled", "complete", []string{"C", "C"}, ""},
	}
	for _, tt := range tests {
		t.Run(string(tt.status), func(t *testing.T) {
			pa, items := testPA(tt.status)
			tree, _ := toTree(t, FromPriorAuthorization(pa, items, Policy{Money: false}))
			assertNoMoney(t, tree)
			assertRefs(t, tree, pa.MemberID)
			checks := []struct {
				path []any
				want any
			}{
				{[]any{"resourceType"}, "ExplanationOfBenefit"},
				{[]any{"meta", "profile", 0}, ProfilePDexPriorAuthorization},
				{[]any{"meta", "lastUpdated"}, "2025-03-14T15:09:26.535Z"},
				{[]any{"use"}, "preauthorization"},
				{[]any{"status"}, tt.eobStatus},
				{[]any{"outcome"}, tt.outcome},
				{[]any{"type", "coding", 0, "code"}, "institutional"}, // "Outpatient imaging"
				{[]any{"patient", "reference"}, "Patient/" + pa.MemberID},
				{[]any{"created"}, "2024-06-03"},
				{[]any{"insurer", "reference"}, "Organization/payer"},
				{[]any{"provider", "reference"}, "Organization/" + *pa.OrganizationID},
				{[]any{"careTeam", 0, "provider", "reference"}, "Practitioner/" + *pa.RequestingPractitionerID},
				{[]any{"preAuthRef", 0}, "PA-2024-7781"},
				{[]any{"insurance", 0, "focal"}, true},
				{[]any{"insurance", 0, "coverage", "extension", 0, "url"}, extDataAbsentReason},
				{[]any{"item", 0, "productOrService", "coding", 0, "system"}, SystemCPT},
				{[]any{"item", 1, "quantity", "value"}, 12.0},
			}
			for _, ch := range checks {
				if got := get(tree, ch.path...); got != ch.want {
					t.Errorf("%v = %v, want %v", ch.path, got, ch.want)
				}
			}
			for i, want := range tt.actions {
				adj := get(tree, "item", i, "adjudication", 0)
				if got := get(adj, "extension", 0, "extension", 0, "valueCodeableConcept", "coding", 0, "code"); got != want {
					t.Errorf("item[%d] review action = %v, want %s", i, got, want)
				}
				if url := get(adj, "extension", 0, "url"); url != extReviewAction {
					t.Errorf("item[%d] extension url = %v", i, url)
				}
				slice := get(adj, "category", "coding", 0, "code")
				switch want {
				case "A3":
					if slice != "denialreason" || get(adj, "reason", "text") == nil {
						t.Errorf("denied item[%d]: %v with reason %v", i, slice, get(adj, "reason"))
					}
				default:
					if slice != "allowedunits" || get(adj, "value") == nil {
						t.Errorf("item[%d] first adjudication %v value %v, want allowedunits", i, slice, get(adj, "value"))
					}
				}
				if (want == "A4") != (len(get(adj, "extension").([]any)) == 1) {
					t.Errorf("item[%d]: when-adjudicated present = %v for %s", i, len(get(adj, "extension").([]any)) == 2, want)
				}
			}
			if tt.headerDenial != "" {
				if got := get(tree, "adjudication", 0, "reason", "coding", 0, "code"); got != tt.headerDenial {
					t.Errorf("header denial code = %v, want %s", got, tt.headerDenial)
				}
				if got, _ := get(tree, "adjudication", 0, "reason", "text").(string); got != pa.DenialReason {
					t.Errorf("header denial text = %q", got)
				}
			} else if get(tree, "adjudication") != nil {
				t.Errorf("unexpected header adjudication %v", get(tree, "adjudication"))
			}
			if tt.status == gateway.PAPending {
				if get(tree, "preAuthRefPeriod") != nil {
					t.Error("pending PA has an authorized period")
				}
			}

			tree, raw := toTree(t, FromPriorAuthorization(pa, items, Policy{Money: true}))
			if !strings.Contains(string(raw), `"amount":{"value":250.75,"currency":"USD"}`) {
				t.Errorf("Money: item submitted amount 250.75 missing")
			}
			if got := get(tree, "meta", "profile", 0); got != ProfilePDexPriorAuthorization {
				t.Errorf("Money: profile %v", got)
			}
		})
	}
}

func TestFromPriorAuthorization_Details(t *testing.T) {
	pa, items := testPA(gateway.PAApproved)
	e := FromPriorAuthorization(pa, items, Policy{})
	if len(e.PreAuthRefPeriod) != 1 || e.PreAuthRefPeriod[0] != (Period{"2024-06-05", "2024-09-05"}) {
		t.Errorf("preAuthRefPeriod = %+v", e.PreAuthRefPeriod)
	}
	a := e.Item[1].Adjudication
	if len(a) != 2 || *a[0].Value != 12 || a[1].Category.Coding[0].Code != "consumedunits" || *a[1].Value != 4 {
		t.Errorf("approved item adjudication = %+v", a)
	}
	if a[0].Extension[1].URL != extWhenAdjudicated || a[0].Extension[1].ValueDateTime != "2024-06-05" {
		t.Errorf("when-adjudicated = %+v", a[0].Extension)
	}

	pa, items = testPA(gateway.PAPartiallyApproved)
	e = FromPriorAuthorization(pa, items, Policy{})
	if r := e.Item[0].Adjudication[0].Reason; r.Text != items[0].DenialReason || r.Coding != nil {
		t.Errorf("item denial reason = %+v, want the item's own text", r)
	}
	if v := *e.Item[1].Adjudication[0].Value; v != 8 {
		t.Errorf("partially approved item allowed units = %v, want 8", v)
	}

	pa, items = testPA(gateway.PADenied)
	e = FromPriorAuthorization(pa, items, Policy{})
	if r := e.Item[0].Adjudication[0].Reason; r.Text != pa.DenialReason || r.Coding[0].Code != "50" || r.Coding[0].System != SystemCARC {
		t.Errorf("denied item reason = %+v, want the PA's", r)
	}

	pa.Drug = true
	pa.OrganizationID = nil
	e = FromPriorAuthorization(pa, items, Policy{})
	if e.Type.Coding[0].Code != "pharmacy" || e.Provider.Reference != "Practitioner/"+*pa.RequestingPractitionerID || e.CareTeam != nil {
		t.Errorf("drug PA type %v provider %v careTeam %v", e.Type, e.Provider, e.CareTeam)
	}
}

func TestGoldenPriorAuthorization(t *testing.T) {
	pa, items := testPA(gateway.PAPartiallyApproved)
	golden(t, "priorauthorization-partially-approved", FromPriorAuthorization(pa, items, Policy{}))
}
