package fhir

import (
	"strings"

	"example.com/gateway/gateway"
)

// Encounter is FHIR R4 Encounter (US Core 6.1.0 us-core-encounter).
type Encounter struct {
	ResourceType    string                 `json:"resourceType"`
	ID              string                 `json:"id"`
	Meta            Meta                   `json:"meta"`
	Identifier      []Identifier           `json:"identifier,omitempty"`
	Status          string                 `json:"status"`
	Class           Coding                 `json:"class"`
	Type            []CodeableConcept      `json:"type"`
	Subject         Reference              `json:"subject"`
	Participant     []EncounterParticipant `json:"participant,omitempty"`
	Period          *Period                `json:"period,omitempty"`
	ReasonCode      []CodeableConcept      `json:"reasonCode,omitempty"`
	ServiceProvider *Reference             `json:"serviceProvider,omitempty"`
}

// EncounterParticipant is Encounter.participant.
type EncounterParticipant struct {
	Type       []CodeableConcept `json:"type,omitempty"`
	Individual Reference         `json:"individual"`
}

// FromEncounter maps an encounter to a US Core Encounter: class from
// v3-ActCode, type (CPT when the code is five digits, SNOMED CT when it is a
// longer number, else text; US Core requires one), the practitioner as
// primary performer, the organization as serviceProvider, the reason
// (ICD-10-CM or SNOMED CT by the same rule).
func FromEncounter(e gateway.Encounter) *Encounter {
	out := &Encounter{
		ResourceType: "Encounter",
		ID:           e.ID,
		Meta:         Meta{LastUpdated: instant(e.LastUpdated), Profile: []string{ProfileEncounter}},
		Status:       firstString(e.Status, "unknown"),
		Class:        Coding{System: systemActCode, Code: e.Class, Display: actCodeDisplay(e.Class)},
		Type:         []CodeableConcept{guessCoded(e.TypeCode, e.TypeDisplay, SystemCPT)},
		Subject:      PatientRef(e.MemberID),
		Period:       &Period{Start: instant(e.PeriodStart)},
	}
	if e.Identifier != "" {
		out.Identifier = []Identifier{{System: SystemEncounterID, Value: e.Identifier}}
	}
	if e.PeriodEnd != nil {
		out.Period.End = instant(*e.PeriodEnd)
	}
	if e.PractitionerID != nil && *e.PractitionerID != "" {
		out.Participant = []EncounterParticipant{{
			Type:       []CodeableConcept{cc(systemParticipationType, "PPRF", "primary performer")},
			Individual: Ref("Practitioner", *e.PractitionerID),
		}}
	}
	if e.OrganizationID != nil && *e.OrganizationID != "" {
		r := Ref("Organization", *e.OrganizationID)
		out.ServiceProvider = &r
	}
	if e.ReasonCode != "" || e.ReasonDisplay != "" {
		out.ReasonCode = []CodeableConcept{guessCoded(e.ReasonCode, e.ReasonDisplay, SystemICD10CM)}
	}
	return out
}

// guessCoded codes a bare code by its shape: a number of 6–18 digits is
// SNOMED CT, a five-digit number or an ICD-10-CM-shaped code (letter, digit,
// then digits, letters and a dot) is short (CPT or ICD-10-CM as the element
// expects); anything else stays text. No code and no text is data absent.
func guessCoded(code, display, short string) CodeableConcept {
	if code == "" {
		if display == "" {
			return CodeableConcept{Extension: absent()}
		}
		return CodeableConcept{Text: display}
	}
	digits := strings.Trim(code, "0123456789") == ""
	var system string
	switch {
	case digits && len(code) >= 6 && len(code) <= 18:
		system = SystemSNOMED
	case short == SystemCPT && digits && len(code) == 5:
		system = SystemCPT
	case short == SystemICD10CM && icd10Shaped(code):
		system = SystemICD10CM
	default:
		return CodeableConcept{Text: firstString(display, code)}
	}
	return CodeableConcept{Coding: []Coding{{System: system, Code: code, Display: display}}, Text: display}
}

func icd10Shaped(c string) bool {
	if len(c) < 3 || len(c) > 8 || c[0] < 'A' || c[0] > 'Z' || c[1] < '0' || c[1] > '9' {
		return false
	}
	for i := 2; i < len(c); i++ {
		if !(c[i] >= '0' && c[i] <= '9' || c[i] >= 'A' && c[i] <= 'Z' || c[i] == '.') {
			return false
		}
	}
	return true
}

func actCodeDisplay(c string) string {
	switch c {
	case "AMB":
		return "ambulatory"
	case "IMP":
		return "inpatient encounter"
	case "EMER":
		return "emergency"
	case "VR":
		return "virtual"
	case "HH":
		return "home health"
	case "OBSENC":
		return "observation encounter"
	case "SS":
		return "short stay"
	case "ACUTE":
		return "inpatient acute"
	case "NONAC":
		return "inpatient non-acute"
	case "PRENC":
		return "pre-admission"
	case "FLD":
		return "field"
	}
	return ""
}
