package fhir

import (
	"encoding/json"
	"testing"

	"example.com/gateway/gateway"
)

// benchClaim is a typical professional claim: three lines, two diagnoses,
// a rendering practitioner, every amount set.
func benchClaim() (gateway.Claim, []gateway.ClaimLine, []gateway.ClaimDiagnosis, []gateway.ClaimProcedure) {
	c, lines, dx, _ := testClaim(gateway.ClaimProfessional)
	lines[1].DenialReason = ""
	return c, lines, dx[:2], nil
}

// BenchmarkExplanationOfBenefitJSON is the export's per-claim cost in this
// package: map a typical 3-line claim and marshal it (Provider Access, no
// money). json-bytes is the size of one EOB.
func BenchmarkExplanationOfBenefitJSON(b *testing.B) {
	c, lines, dx, px := benchClaim()
	benchmarkEOB(b, c, lines, dx, px, Policy{Money: false})
}

// BenchmarkExplanationOfBenefitJSONMoney is the same with money (Patient
// Access, full CARIN profile).
func BenchmarkExplanationOfBenefitJSONMoney(b *testing.B) {
	c, lines, dx, px := benchClaim()
	benchmarkEOB(b, c, lines, dx, px, Policy{Money: true})
}

func benchmarkEOB(b *testing.B, c gateway.Claim, lines []gateway.ClaimLine, dx []gateway.ClaimDiagnosis, px []gateway.ClaimProcedure, p Policy) {
	b.ReportAllocs()
	var n int
	for b.Loop() {
		out, err := json.Marshal(FromClaim(c, lines, dx, px, p))
		if err != nil {
			b.Fatal(err)
		}
		n = len(out)
	}
	b.SetBytes(int64(n))
	b.ReportMetric(float64(n), "json-bytes")
}

// BenchmarkExplanationOfBenefitJSONGenericMap marshals the same EOB held as
// a generic map[string]any, the alternative to lean structs. It measures the
// marshal alone (building such a map costs more on top), so it is a lower
// bound for that design.
func BenchmarkExplanationOfBenefitJSONGenericMap(b *testing.B) {
	c, lines, dx, px := benchClaim()
	raw, err := json.Marshal(FromClaim(c, lines, dx, px, Policy{}))
	if err != nil {
		b.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	var n int
	for b.Loop() {
		out, err := json.Marshal(m)
		if err != nil {
			b.Fatal(err)
		}
		n = len(out)
	}
	b.SetBytes(int64(n))
	b.ReportMetric(float64(n), "json-bytes")
}

// BenchmarkPriorAuthorizationJSON maps and marshals a two-item prior
// authorization.
func BenchmarkPriorAuthorizationJSON(b *testing.B) {
	pa, items := testPA(gateway.PAPartiallyApproved)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := json.Marshal(FromPriorAuthorization(pa, items, Policy{})); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFromClinical is the pass-through of a stored lab Observation
// (decode into a generic tree, rewrite, encode).
func BenchmarkFromClinical(b *testing.B) {
	r := gateway.ClinicalResource{
		ID: "cl1", MemberID: "m1", ResourceType: gateway.ClinicalObservation, LastUpdated: testLastUpdated,
		Resource: json.RawMessage(`{"resourceType":"Observation","id":"src-9","meta":{"versionId":"7"},"status":"final",` +
			`"category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"laboratory","display":"Laboratory"}]}],` +
			`"code":{"coding":[{"system":"http://loinc.org","code":"4548-4","display":"Hemoglobin A1c/Hemoglobin.total in Blood"}],"text":"HbA1c"},` +
			`"subject":{"reference":"Patient/src-1"},"effectiveDateTime":"2024-05-01T09:30:00Z","issued":"2024-05-01T12:00:00Z",` +
			`"performer":[{"reference":"Organization/lab-1"}],"valueQuantity":{"value":7.20,"unit":"%","system":"http://unitsofmeasure.org","code":"%"},` +
			`"interpretation":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation","code":"H"}]}],` +
			`"referenceRange":[{"high":{"value":5.6,"unit":"%","system":"http://unitsofmeasure.org","code":"%"}}]}`),
	}
	b.ReportAllocs()
	var n int
	for b.Loop() {
		out, err := FromClinical(r)
		if err != nil {
			b.Fatal(err)
		}
		n = len(out)
	}
	b.SetBytes(int64(n))
	b.ReportMetric(float64(n), "json-bytes")
}
