// Package fhir maps the gateway's records (package gateway) to FHIR R4
// (4.0.1) resources: US Core 6.1.0 Patient, Encounter, Practitioner,
// Organization and clinical resources, CARIN BB 2.1 Coverage and
// ExplanationOfBenefit, PDex prior authorizations and PDex/ATR provider
// attribution groups.
//
// It owns the shape of every FHIR resource the gateway emits, and nothing
// else. It is pure: no I/O, no clock, no database, no logging, no
// configuration. It takes no policy decision of its own: it applies the
// Policy it is given (Policy.Money, which the caller derives from
// auth.MemberScope), and whether a record may be read at all is decided
// before it gets here (package auth, in the SQL of package store).
//
// # Money (DESIGN.md §1 rule 2, CARIN BB Basis profiles)
//
// With Policy.Money false the mapping never builds a monetary element: no
// amount, total, benefitBalance, or payment amount, date or adjustment, in
// claims and prior authorizations alike (the CARIN "Basis" profiles only do
// not require them; they do not forbid them, so they are never filled in
// the first place rather than stripped afterwards). EOBs then declare the
// Basis profile. With Policy.Money true, an EOB that has at least one total
// declares the full (financial) CARIN profile.
//
// # References
//
// References are always relative, "Type/id" with the gateway's own row ids
// (Bulk Data: relative or absolute, applied consistently). The payer itself is
// the Organization PayerID, which Payer maps. A reference the records cannot
// fill (a claim without coverage, for instance) carries the data-absent-reason
// extension instead of an invented id.
//
// # Names
//
// Resource types carry their FHIR names (Patient, ExplanationOfBenefit…);
// the mappings are named after their source record (FromMember, FromClaim,
// FromPriorAuthorization…), and builders without a record are New…
// (NewGroup, NewOperationOutcome).
//
// # Why lean structs
//
// The resources are small hand-written structs with omitempty tags, not a
// generic map and not a generated model of all of FHIR. Measured with
// BenchmarkExplanationOfBenefitJSON (a typical 3-line professional claim,
// Money=false, 5.1 KB of compact JSON; Go 1.26, AMD EPYC, 2 vCPU): map +
// json.Marshal ≈ 15 µs, 76 allocations, 11 KB allocated per EOB (about
// 5 µs mapping, 12 µs marshalling), i.e. ≈ 65 k EOB/s on one core, well
// inside the ≈ 35 k EOB/s per stream the export reaches end to end
// (NOTES.md). The same EOB as a generic map[string]any takes ≈ 44 µs and
// 450 allocations to marshal alone, before any cost of building the map
// (BenchmarkExplanationOfBenefitJSONGenericMap). The generated R4 models of
// github.com/samply/golang-fhir-models (v0.3.2, measured outside this
// module so as not to add the dependency) take ≈ 50–56 µs to marshal the
// same EOB alone, since every enum and resource marshals through its own
// MarshalJSON; they also emit "diagnosisReference": {} on every diagnosis
// (a non-pointer choice element), which is invalid FHIR, and would bring
// all of R4 into the binary for a dozen shapes.
package fhir
