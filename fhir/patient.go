package fhir

import (
	"strings"

	"example.com/gateway/gateway"
)

// Patient is FHIR R4 Patient (US Core 6.1.0 us-core-patient).
type Patient struct {
	ResourceType string         `json:"resourceType"`
	ID           string         `json:"id"`
	Meta         Meta           `json:"meta"`
	Identifier   []Identifier   `json:"identifier"`
	Name         []HumanName    `json:"name"`
	Telecom      []ContactPoint `json:"telecom,omitempty"`
	Gender       string         `json:"gender"`
	BirthDate    string         `json:"birthDate,omitempty"`
	Address      []Address      `json:"address,omitempty"`
}

// FromMember maps a member to a US Core Patient. Its identifier is the
// member identifier, typed v2-0203 MB (the form import reads back,
// DESIGN.md §4 "Import formats"); a member without any name gets the
// data-absent-reason extension on its name (US Core us-core-6).
func FromMember(m gateway.Member) *Patient {
	p := &Patient{
		ResourceType: "Patient",
		ID:           m.ID,
		Meta:         Meta{LastUpdated: instant(m.LastUpdated), Profile: []string{ProfilePatient}},
		Identifier: []Identifier{{
			Use:    "usual",
			Type:   ccp(systemV2IdentifierType, "MB", "Member Number"),
			System: SystemMemberID,
			Value:  m.Identifier,
		}},
		Gender:    gender(m.Gender),
		BirthDate: m.BirthDate.String(),
	}
	name := HumanName{Family: m.FamilyName}
	if m.GivenName != "" {
		name.Given = []string{m.GivenName}
	}
	if m.FamilyName == "" && m.GivenName == "" {
		name.Extension = absent()
	}
	p.Name = []HumanName{name}
	if m.Phone != "" {
		p.Telecom = []ContactPoint{{System: "phone", Value: m.Phone}}
	}
	if m.AddressLine != "" || m.City != "" || m.State != "" || m.PostalCode != "" {
		a := Address{City: m.City, State: m.State, PostalCode: m.PostalCode}
		if m.AddressLine != "" {
			a.Line = []string{m.AddressLine}
		}
		p.Address = []Address{a}
	}
	return p
}

// gender maps the member's gender to FHIR AdministrativeGender.
func gender(g gateway.Gender) string {
	switch g {
	case gateway.GenderMale:
		return "male"
	case gateway.GenderFemale:
		return "female"
	case gateway.GenderOther:
		return "other"
	}
	return "unknown"
}

// Coverage is FHIR R4 Coverage (CARIN BB C4BB-Coverage).
type Coverage struct {
	ResourceType string           `json:"resourceType"`
	ID           string           `json:"id"`
	Meta         Meta             `json:"meta"`
	Identifier   []Identifier     `json:"identifier,omitempty"`
	Status       string           `json:"status"`
	Type         *CodeableConcept `json:"type,omitempty"`
	SubscriberID string           `json:"subscriberId,omitempty"`
	Beneficiary  Reference        `json:"beneficiary"`
	Relationship *CodeableConcept `json:"relationship,omitempty"`
	Period       *Period          `json:"period,omitempty"`
	Payor        []Reference      `json:"payor"`
	Class        []CoverageClass  `json:"class,omitempty"`
}

// CoverageClass is Coverage.class (group, plan).
type CoverageClass struct {
	Type  CodeableConcept `json:"type"`
	Value string          `json:"value"`
	Name  string          `json:"name,omitempty"`
}

// FromCoverage maps a coverage to a CARIN BB Coverage. The payor is the
// payer Organization (PayerRef) named with the coverage's payer name; the
// coverage identifier doubles as subscriberId (required 1..1), since the
// row has no separate subscriber id.
func FromCoverage(c gateway.Coverage) *Coverage {
	cv := &Coverage{
		ResourceType: "Coverage",
		ID:           c.ID,
		Meta:         Meta{LastUpdated: instant(c.LastUpdated), Profile: []string{ProfileC4BBCoverage}},
		Status:       firstString(c.Status, "active"),
		SubscriberID: c.Identifier,
		Beneficiary:  PatientRef(c.MemberID),
		Period:       period(c.PeriodStart, c.PeriodEnd),
		Payor:        []Reference{PayerRef()},
	}
	if c.Identifier != "" {
		cv.Identifier = []Identifier{{System: SystemCoverageID, Value: c.Identifier}}
	}
	if c.PayerName != "" {
		cv.Payor[0].Display = c.PayerName
	}
	if c.TypeCode != "" || c.TypeDisplay != "" {
		// Payer type: PHDSC Source of Payment codes are numeric ("1"
		// Medicare, "5" private health insurance…), v3-ActCode ones are not
		// ("HIP", "PPO"…).
		system := systemActCode
		if c.TypeCode != "" && strings.Trim(c.TypeCode, "0123456789") == "" {
			system = systemPayerType
		}
		t := CodeableConcept{Text: c.TypeDisplay}
		if c.TypeCode != "" {
			t.Coding = []Coding{{System: system, Code: c.TypeCode, Display: c.TypeDisplay}}
		}
		cv.Type = &t
	}
	rel := strings.ToLower(firstString(c.Relationship, "self"))
	cv.Relationship = ccp(systemSubscriberRelation, rel, "")
	if c.GroupNumber != "" {
		cv.Class = append(cv.Class, CoverageClass{Type: cc(systemCoverageClass, "group", "Group"), Value: c.GroupNumber})
	}
	if c.PlanName != "" {
		cv.Class = append(cv.Class, CoverageClass{Type: cc(systemCoverageClass, "plan", "Plan"), Value: c.PlanName, Name: c.PlanName})
	}
	return cv
}
