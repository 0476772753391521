package fhir

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"example.com/gateway/gateway"
)

// FromClinical returns a stored clinical resource (FHIR R4 JSON as the payer
// sent it) as the gateway serves it:
//
//   - id is the row id;
//   - meta.lastUpdated is the row's last_updated and meta.profile the US
//     Core 6.1.0 profile of its type (Condition and Observation by category;
//     see ClinicalProfile); meta.versionId, meaningless here, is dropped and
//     the rest of meta (security labels, source) kept;
//   - subject (patient, for Immunization and AllergyIntolerance) is
//     Patient/<member id>, and so is every other reference to a Patient in
//     the resource: a member's resource refers to no other patient, and the
//     payer's patient ids are not the gateway's;
//   - decimals keep their digits (7.20 stays 7.20), and resourceType comes
//     first.
//
// It decodes the resource once into a generic tree. It returns an error
// when the JSON is not an object of the row's resource type.
func FromClinical(r gateway.ClinicalResource) (json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(r.Resource))
	dec.UseNumber() // FHIR decimals are exact: 7.20 must not become 7.2
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("clinical resource %s: %w", r.ID, err)
	}
	if rt, _ := m["resourceType"].(string); rt != string(r.ResourceType) {
		return nil, fmt.Errorf("clinical resource %s: resourceType %q, want %q", r.ID, rt, r.ResourceType)
	}
	delete(m, "resourceType") // written first, below
	m["id"] = r.ID

	meta, _ := m["meta"].(map[string]any)
	if meta == nil {
		meta = make(map[string]any, 2)
	}
	delete(meta, "versionId")
	meta["lastUpdated"] = instant(r.LastUpdated)
	meta["profile"] = []string{ClinicalProfile(r.ResourceType, m)}
	m["meta"] = meta

	patient := "Patient/" + r.MemberID
	rewritePatientRefs(m, patient)
	field := "subject"
	if r.ResourceType == gateway.ClinicalImmunization || r.ResourceType == gateway.ClinicalAllergy {
		field = "patient"
	}
	m[field] = map[string]any{"reference": patient}

	var buf bytes.Buffer
	buf.Grow(len(r.Resource) + 128)
	buf.WriteString(`{"resourceType":"`)
	buf.WriteString(string(r.ResourceType))
	buf.WriteString(`",`)
	body := len(`{"resourceType":"",`) + len(r.ResourceType)
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // narrative XHTML stays readable
	if err := enc.Encode(m); err != nil {
		return nil, fmt.Errorf("clinical resource %s: %w", r.ID, err)
	}
	out := buf.Bytes()
	// Splice: drop the encoded object's "{" and the encoder's newline.
	out = append(out[:body], out[body+1:len(out)-1]...)
	return out, nil
}

// ClinicalProfile is the US Core 6.1.0 profile a clinical resource of type t
// is declared to conform to. resource is the decoded resource, whose
// category decides for Condition (encounter diagnosis or problem / health
// concern) and Observation (laboratory, vital signs, smoking status, survey
// or else clinical result); nil means no category.
func ClinicalProfile(t gateway.ClinicalType, resource map[string]any) string {
	switch t {
	case gateway.ClinicalCondition:
		if hasCategory(resource, "encounter-diagnosis") {
			return ProfileConditionEncounterDx
		}
		return ProfileConditionProblems
	case gateway.ClinicalObservation:
		switch {
		case hasCategory(resource, "laboratory"):
			return ProfileObservationLab
		case hasCategory(resource, "vital-signs"):
			return ProfileVitalSigns
		case hasCategory(resource, "social-history") && hasCode(resource, "72166-2"):
			return ProfileSmokingStatus
		case hasCategory(resource, "survey"):
			return ProfileObservationScreening
		}
		return ProfileObservationClinical
	case gateway.ClinicalMedication:
		return ProfileMedicationRequest
	case gateway.ClinicalImmunization:
		return ProfileImmunization
	case gateway.ClinicalAllergy:
		return ProfileAllergyIntolerance
	case gateway.ClinicalProcedure:
		return ProfileProcedure
	}
	return ""
}

// hasCategory reports whether any category coding of resource has code.
func hasCategory(resource map[string]any, code string) bool {
	cats, _ := resource["category"].([]any)
	for _, c := range cats {
		if codingHas(c, code) {
			return true
		}
	}
	return false
}

// hasCode reports whether resource.code has a coding with code.
func hasCode(resource map[string]any, code string) bool {
	return codingHas(resource["code"], code)
}

func codingHas(concept any, code string) bool {
	c, _ := concept.(map[string]any)
	codings, _ := c["coding"].([]any)
	for _, cd := range codings {
		if m, _ := cd.(map[string]any); m != nil && m["code"] == code {
			return true
		}
	}
	return false
}

// rewritePatientRefs points every Reference to a Patient in v at patient,
// dropping its display and identifier (they described the payer's record).
func rewritePatientRefs(v any, patient string) {
	switch v := v.(type) {
	case map[string]any:
		if ref, ok := v["reference"].(string); ok && isPatientRef(ref) {
			v["reference"] = patient
			delete(v, "display")
			delete(v, "identifier")
		}
		for k, c := range v {
			if k != "meta" {
				rewritePatientRefs(c, patient)
			}
		}
	case []any:
		for _, c := range v {
			rewritePatientRefs(c, patient)
		}
	}
}

func isPatientRef(ref string) bool {
	if strings.HasPrefix(ref, "Patient/") {
		return true
	}
	// An absolute reference to a Patient on any server.
	i := strings.LastIndex(ref, "/Patient/")
	return i > 0 && strings.Contains(ref[:i], "://")
}
