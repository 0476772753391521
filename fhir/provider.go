package fhir

import (
	"time"

	"example.com/gateway/gateway"
)

// Practitioner is FHIR R4 Practitioner (C4BB-Practitioner, US Core).
type Practitioner struct {
	ResourceType string       `json:"resourceType"`
	ID           string       `json:"id"`
	Meta         Meta         `json:"meta"`
	Identifier   []Identifier `json:"identifier"`
	Name         []HumanName  `json:"name"`
}

// FromPractitioner maps a practitioner, identified by NPI.
func FromPractitioner(pr gateway.Practitioner) *Practitioner {
	name := HumanName{Family: pr.FamilyName}
	if pr.GivenName != "" {
		name.Given = []string{pr.GivenName}
	}
	if pr.FamilyName == "" {
		name.Extension = absent() // US Core: name.family 1..1
	}
	return &Practitioner{
		ResourceType: "Practitioner",
		ID:           pr.ID,
		Meta:         Meta{LastUpdated: instant(pr.LastUpdated), Profile: []string{ProfileC4BBPractitioner, ProfilePractitioner}},
		Identifier:   []Identifier{{System: SystemNPI, Value: pr.NPI}},
		Name:         []HumanName{name},
	}
}

// Organization is FHIR R4 Organization (C4BB-Organization, US Core).
type Organization struct {
	ResourceType string            `json:"resourceType"`
	ID           string            `json:"id"`
	Meta         Meta              `json:"meta"`
	Identifier   []Identifier      `json:"identifier,omitempty"`
	Active       bool              `json:"active"`
	Type         []CodeableConcept `json:"type,omitempty"`
	Name         string            `json:"name"`
}

// FromOrganization maps a provider organization, identified by NPI and TIN.
// gateway.Organization has no last-updated time: meta.lastUpdated is its
// creation time.
func FromOrganization(o gateway.Organization) *Organization {
	return &Organization{
		ResourceType: "Organization",
		ID:           o.ID,
		Meta:         Meta{LastUpdated: instant(o.CreatedAt), Profile: []string{ProfileC4BBOrganization, ProfileOrganization}},
		Identifier:   orgIdentifiers(o),
		Active:       true,
		Type:         []CodeableConcept{cc(systemOrganizationType, "prov", "Healthcare Provider")},
		Name:         o.Name,
	}
}

// Payer is the payer's own Organization (PayerID), the target of every
// insurer, payor and managingEntity reference.
func Payer(lastUpdated time.Time) *Organization {
	return &Organization{
		ResourceType: "Organization",
		ID:           PayerID,
		Meta:         Meta{LastUpdated: instant(lastUpdated), Profile: []string{ProfileC4BBOrganization, ProfileOrganization}},
		Active:       true,
		Type:         []CodeableConcept{cc(systemOrganizationType, "pay", "Payer")},
		Name:         PayerName,
	}
}

func orgIdentifiers(o gateway.Organization) []Identifier {
	ids := make([]Identifier, 0, 2)
	if o.NPI != "" {
		ids = append(ids, Identifier{System: SystemNPI, Value: o.NPI})
	}
	if o.TIN != "" {
		ids = append(ids, Identifier{Type: ccp(systemV2IdentifierType, "TAX", "Tax ID number"), System: SystemTIN, Value: o.TIN})
	}
	return ids
}

// Group is FHIR R4 Group as PDex pdex-provider-group (on Da Vinci ATR
// atr-group) uses it.
type Group struct {
	ResourceType   string                `json:"resourceType"`
	ID             string                `json:"id"`
	Meta           Meta                  `json:"meta"`
	Extension      []Extension           `json:"extension,omitempty"`
	Identifier     []Identifier          `json:"identifier,omitempty"`
	Active         bool                  `json:"active"`
	Type           string                `json:"type"`
	Actual         bool                  `json:"actual"`
	Code           CodeableConcept       `json:"code"`
	Name           string                `json:"name,omitempty"`
	Quantity       *int                  `json:"quantity,omitempty"`
	ManagingEntity *Reference            `json:"managingEntity,omitempty"`
	Characteristic []GroupCharacteristic `json:"characteristic,omitempty"`
	Member         []GroupMemberEntry    `json:"member,omitempty"`
}

// GroupCharacteristic is Group.characteristic.
type GroupCharacteristic struct {
	Code           CodeableConcept `json:"code"`
	ValueReference Reference       `json:"valueReference"`
	Exclude        bool            `json:"exclude"`
	Period         *Period         `json:"period,omitempty"`
}

// GroupMemberEntry is Group.member.
type GroupMemberEntry struct {
	Entity Reference `json:"entity"`
	Period *Period   `json:"period,omitempty"`
}

// GroupMember is one attributed member of a group and the attribution's
// period (End zero: open).
type GroupMember struct {
	MemberID   string
	Start, End gateway.Date
}

// NewGroup builds the attribution group id of organization org (PDex
// pdex-provider-group: code and characteristic PdexMemberAttributionCS
// #pdexprovidergroup, the characteristic's value the organization by NPI
// with period.start the list's last update, type person, actual true,
// identifiers NPI and TIN, ATR attribution list status "final", member[]
// Reference(Patient) with the attribution period). Which members belong in
// it (attributed, ACTIVE or UPCOMING, not opted out) is the caller's
// decision; opted-out members must not be passed, and no opted-out count is
// emitted (PDex §pdex-343/344).
func NewGroup(id string, org gateway.Organization, members []GroupMember, lastUpdated time.Time) *Group {
	code := cc(systemPDexMemberAttribution, "pdexprovidergroup", "PDex Provider Group")
	g := &Group{
		ResourceType: "Group",
		ID:           id,
		Meta:         Meta{LastUpdated: instant(lastUpdated), Profile: []string{ProfilePDexProviderGroup}},
		Extension:    []Extension{{URL: extAttributionListStatus, ValueCode: "final"}},
		Identifier:   orgIdentifiers(org),
		Active:       true,
		Type:         "person",
		Actual:       true,
		Code:         code,
		Name:         "Members attributed to " + org.Name,
		Quantity:     new(len(members)),
		ManagingEntity: &Reference{
			Reference: "Organization/" + PayerID, Display: PayerName,
		},
		Characteristic: []GroupCharacteristic{{
			Code:           code,
			ValueReference: Reference{Identifier: &Identifier{System: SystemNPI, Value: org.NPI}, Display: org.Name},
			Exclude:        false,
			Period:         &Period{Start: gateway.DateOf(lastUpdated.UTC()).String()},
		}},
	}
	if len(members) > 0 {
		g.Member = make([]GroupMemberEntry, len(members))
		for i, m := range members {
			g.Member[i] = GroupMemberEntry{Entity: PatientRef(m.MemberID), Period: period(m.Start, m.End)}
		}
	}
	return g
}
