package fhir

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"example.com/gateway/gateway"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

var testLastUpdated = time.Date(2025, 3, 14, 15, 9, 26, 535000000, time.UTC)

func ptr[T any](v T) *T { return &v }

// usd is an amount in cents.
func usd(cents int64) *gateway.Money { m := gateway.Money(cents); return &m }

func date(s string) gateway.Date {
	d, err := gateway.ParseDate(s)
	if err != nil {
		panic(err)
	}
	return d
}

// testClaim is a hand-made claim of type t with every monetary field set:
// three lines (the second one denied), three diagnoses, two procedures.
func testClaim(t gateway.ClaimType) (gateway.Claim, []gateway.ClaimLine, []gateway.ClaimDiagnosis, []gateway.ClaimProcedure) {
	c := gateway.Claim{
		ID:                      "c0a80101-0000-4000-8000-0000000000" + map[gateway.ClaimType]string{gateway.ClaimInpatient: "01", gateway.ClaimOutpatient: "02", gateway.ClaimProfessional: "03", gateway.ClaimOral: "04", gateway.ClaimPharmacy: "05"}[t],
		MemberID:                "0b5e1c8a-1111-4aaa-8bbb-000000000001",
		Identifier:              "CLM-2024-000123",
		Type:                    t,
		Status:                  gateway.ClaimActive,
		Outcome:                 "complete",
		ServiceStart:            date("2024-05-01"),
		ServiceEnd:              date("2024-05-04"),
		Created:                 date("2024-05-10"),
		Processed:               date("2024-05-20"),
		CoverageID:              ptr("cccccccc-2222-4ccc-8ccc-000000000001"),
		BillingOrganizationID:   ptr("00000000-3333-4ddd-8ddd-000000000001"),
		RenderingPractitionerID: ptr("99999999-4444-4eee-8eee-000000000001"),
		FacilityName:            "Riverside Clinic",
		PlaceOfService:          "11",
		InNetwork:               true,
		LastUpdated:             testLastUpdated,

		TotalSubmitted:  usd(123450),
		TotalAllowed:    usd(98000),
		TotalPaid:       usd(80000),
		PaymentAmount:   usd(80000),
		PaymentDate:     date("2024-05-25"),
		PaymentAdjust:   usd(1500),
		Copay:           usd(2000),
		Coinsurance:     usd(1000),
		Deductible:      usd(5000),
		NonCovered:      usd(13450),
		MemberLiability: usd(18000),
	}
	lines := []gateway.ClaimLine{
		{Sequence: 1, ServiceDate: date("2024-05-01"), ProductCode: "99214", ProductSystem: "CPT", ProductDisplay: "Office visit, established patient", Modifiers: []string{"25"}, Quantity: 1},
		{Sequence: 2, ServiceDate: date("2024-05-01"), ProductCode: "93000", ProductSystem: "CPT", ProductDisplay: "Electrocardiogram", Quantity: 1, DenialReason: "50"},
		{Sequence: 3, ServiceDate: date("2024-05-02"), ProductCode: "J1885", ProductSystem: "https://bluebutton.cms.gov/resources/codesystem/hcpcs", ProductDisplay: "Ketorolac injection", Modifiers: []string{"RT", "59"}, Quantity: 2},
	}
	switch t {
	case gateway.ClaimInpatient, gateway.ClaimOutpatient:
		c.TypeOfBill = "0111"
		c.PlaceOfService = ""
		for i, rev := range []string{"0450", "0730", "0636"} {
			lines[i].RevenueCode = rev
		}
		if t == gateway.ClaimInpatient {
			c.DRG = "291"
		} else {
			c.TypeOfBill = "0131"
		}
	case gateway.ClaimOral:
		lines[0].ProductCode, lines[0].ProductSystem, lines[0].ProductDisplay, lines[0].Modifiers = "D0120", "CDT", "Periodic oral evaluation", nil
		lines[1].ProductCode, lines[1].ProductSystem, lines[1].ProductDisplay = "D1110", "CDT", "Prophylaxis - adult"
		lines[2].ProductCode, lines[2].ProductSystem, lines[2].ProductDisplay, lines[2].Modifiers = "D0274", "CDT", "Bitewings - four radiographic images", nil
	case gateway.ClaimPharmacy:
		c.PlaceOfService, c.FacilityName = "", ""
		for i, ndc := range []string{"0002-8215-01", "0093-7146-56", "0378-0208-01"} {
			lines[i].ProductCode, lines[i].ProductSystem, lines[i].Modifiers, lines[i].Quantity = ndc, "NDC", nil, 30
		}
		lines[1].DenialReason = "76" // NCPDP: plan limitations exceeded
	}
	for i := range lines {
		lines[i].ClaimID = c.ID
		lines[i].Submitted = usd(41150)
		lines[i].Allowed = usd(32667)
		lines[i].Paid = usd(26667)
		lines[i].Copay = usd(667)
		lines[i].Coinsurance = usd(333)
		lines[i].Deductible = usd(1667)
		lines[i].MemberLiability = usd(6000)
	}
	dx := []gateway.ClaimDiagnosis{
		{ClaimID: c.ID, Sequence: 1, Code: "I10", System: "ICD-10-CM", Display: "Essential (primary) hypertension", Type: "principal", PresentOnAdmission: "Y"},
		{ClaimID: c.ID, Sequence: 2, Code: "E11.9", System: "http://hl7.org/fhir/sid/icd-10-cm", Display: "Type 2 diabetes mellitus without complications", Type: "secondary", PresentOnAdmission: "N"},
		{ClaimID: c.ID, Sequence: 3, Code: "R07.9", Display: "Chest pain, unspecified", Type: "admitting"},
	}
	px := []gateway.ClaimProcedure{
		{ClaimID: c.ID, Sequence: 1, Code: "4A02X4Z", System: "ICD-10-PCS", Display: "Measurement of cardiac electrical activity", Date: date("2024-05-01")},
		{ClaimID: c.ID, Sequence: 2, Code: "3E033GC", Display: "Introduction of other therapeutic substance", Date: date("2024-05-02")},
	}
	if t != gateway.ClaimInpatient {
		px = nil // ICD-10-PCS procedures belong to inpatient claims
	}
	return c, lines, dx, px
}

var claimTypes = []struct {
	name  string
	typ   gateway.ClaimType
	basis string
	full  string
	code  string
}{
	{"inpatient", gateway.ClaimInpatient, ProfileEOBInpatientBasis, ProfileEOBInpatient, "institutional"},
	{"outpatient", gateway.ClaimOutpatient, ProfileEOBOutpatientBasis, ProfileEOBOutpatient, "institutional"},
	{"professional", gateway.ClaimProfessional, ProfileEOBProfessionalBasis, ProfileEOBProfessional, "professional"},
	{"oral", gateway.ClaimOral, ProfileEOBOralBasis, ProfileEOBOral, "oral"},
	{"pharmacy", gateway.ClaimPharmacy, ProfileEOBPharmacyBasis, ProfileEOBPharmacy, "pharmacy"},
}

// testPA is a hand-made prior authorization in status s, its items with
// submitted amounts.
func testPA(s gateway.PriorAuthorizationStatus) (gateway.PriorAuthorization, []gateway.PriorAuthorizationItem) {
	pa := gateway.PriorAuthorization{
		ID:                       "a0a0a0a0-5555-4fff-8fff-0000000000" + map[gateway.PriorAuthorizationStatus]string{gateway.PAPending: "01", gateway.PAApproved: "02", gateway.PAPartiallyApproved: "03", gateway.PADenied: "04", gateway.PACancelled: "05"}[s],
		MemberID:                 "0b5e1c8a-1111-4aaa-8bbb-000000000001",
		Identifier:               "PA-2024-7781",
		Status:                   s,
		ServiceCategory:          "Outpatient imaging",
		RequestedOn:              date("2024-06-03"),
		LastStatusChange:         testLastUpdated,
		RequestingPractitionerID: ptr("99999999-4444-4eee-8eee-000000000001"),
		OrganizationID:           ptr("00000000-3333-4ddd-8ddd-000000000001"),
		LastUpdated:              testLastUpdated,
	}
	items := []gateway.PriorAuthorizationItem{
		{PriorAuthorizationID: pa.ID, Sequence: 1, ProductCode: "70553", ProductSystem: "CPT", ProductDisplay: "MRI brain with and without contrast", QuantityRequested: 1, Submitted: usd(25075)},
		{PriorAuthorizationID: pa.ID, Sequence: 2, ProductCode: "97110", ProductSystem: "CPT", ProductDisplay: "Therapeutic exercise", QuantityRequested: 12, Submitted: usd(120000)},
	}
	if s != gateway.PAPending {
		pa.DecidedOn = date("2024-06-05")
	}
	switch s {
	case gateway.PAApproved:
		pa.AuthorizedStart, pa.AuthorizedEnd = date("2024-06-05"), date("2024-09-05")
		items[0].QuantityApproved, items[0].QuantityUsed = 1, 1
		items[1].QuantityApproved, items[1].QuantityUsed = 12, 4
	case gateway.PAPartiallyApproved:
		pa.AuthorizedStart, pa.AuthorizedEnd = date("2024-06-05"), date("2024-09-05")
		pa.DenialReasonCode, pa.DenialReason = "197", "Therapy visits above 8 require documentation of functional progress"
		items[0].QuantityApproved, items[0].QuantityUsed = 0, 0
		items[0].Status, items[0].DenialReason = "DENIED", "Imaging not indicated before 6 weeks of conservative therapy"
		items[1].QuantityApproved, items[1].QuantityUsed = 8, 3
	case gateway.PADenied:
		pa.DenialReasonCode, pa.DenialReason = "50", "Not medically necessary: criteria for advanced imaging not met"
	case gateway.PACancelled:
		items[0].Status = "CANCELLED"
	}
	return pa, items
}

// toTree marshals v as the export does and decodes it into a generic tree.
func toTree(t *testing.T, v any) (map[string]any, []byte) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m, b
}

// walk calls f for every object key in the tree, with its path.
func walk(v any, path string, f func(path, key string, val any)) {
	switch v := v.(type) {
	case map[string]any:
		for k, c := range v {
			f(path, k, c)
			walk(c, path+"."+k, f)
		}
	case []any:
		for _, c := range v {
			walk(c, path+"[]", f)
		}
	}
}

// assertNoMoney fails on any of MoneyElements anywhere in the tree: a key
// amount, total or benefitBalance, or a payment with anything but type
// (DOMAIN trap T2/T3; DESIGN.md §1 rule 2).
func assertNoMoney(t *testing.T, tree map[string]any) {
	t.Helper()
	walk(tree, "", func(path, key string, val any) {
		for _, e := range MoneyElements() {
			parent, child, nested := strings.Cut(e, ".")
			if !nested && key == e {
				t.Errorf("monetary element %s.%s present", path, key)
			}
			if m, ok := val.(map[string]any); nested && key == parent && ok && m[child] != nil {
				t.Errorf("monetary element %s.%s.%s present", path, key, child)
			}
		}
		if p, ok := val.(map[string]any); key == "payment" && ok {
			for k := range p {
				if k != "type" {
					t.Errorf("payment.%s present at %s", k, path)
				}
			}
		}
	})
}

var relativeRef = regexp.MustCompile(`^(Patient|Practitioner|Organization|Coverage|Encounter)/[A-Za-z0-9\-.]{1,64}$`)

// assertRefs checks that every reference in the tree is relative Type/id and
// that every Patient reference is to memberID.
func assertRefs(t *testing.T, tree map[string]any, memberID string) {
	t.Helper()
	n := 0
	walk(tree, "", func(path, key string, val any) {
		if key != "reference" {
			return
		}
		n++
		s, _ := val.(string)
		if !relativeRef.MatchString(s) {
			t.Errorf("%s.reference = %q, want relative Type/id", path, s)
		}
		if strings.HasPrefix(s, "Patient/") && s != "Patient/"+memberID {
			t.Errorf("%s.reference = %q, want Patient/%s", path, s, memberID)
		}
	})
	if n == 0 {
		t.Error("no reference at all")
	}
}

// golden compares v, indented, with testdata/name.json, or rewrites it under
// -update.
func golden(t *testing.T, name string, v any) {
	t.Helper()
	got, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", name+".json")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./fhir -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the mapping's output (go test ./fhir -update rewrites it after review):\n%s", path, firstDiff(want, got))
	}
}

func firstDiff(want, got []byte) string {
	wl, gl := strings.Split(string(want), "\n"), strings.Split(string(got), "\n")
	for i := 0; i < len(wl) && i < len(gl); i++ {
		if wl[i] != gl[i] {
			return "line " + strconv.Itoa(i+1) + ":\n  want " + wl[i] + "\n  got  " + gl[i]
		}
	}
	return "lengths differ: want " + strconv.Itoa(len(wl)) + " lines, got " + strconv.Itoa(len(gl))
}

// get follows a path of object keys and array indexes in a tree.
func get(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			a, _ := v.([]any)
			if k >= len(a) {
				return nil
			}
			v = a[k]
		}
	}
	return v
}
