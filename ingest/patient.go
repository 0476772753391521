package ingest

import (
	"encoding/json"
	"strings"

	"example.com/gateway/gateway"
)

type fHumanName struct {
	Use    string   `json:"use"`
	Family string   `json:"family"`
	Given  []string `json:"given"`
}

type fAddress struct {
	Line       []string `json:"line"`
	City       string   `json:"city"`
	State      string   `json:"state"`
	PostalCode string   `json:"postalCode"`
	Country    string   `json:"country"`
}

type fContactPoint struct {
	System string `json:"system"`
	Value  string `json:"value"`
}

type fPatient struct {
	ResourceType string          `json:"resourceType"`
	ID           string          `json:"id"`
	Identifier   []fIdentifier   `json:"identifier"`
	Name         []fHumanName    `json:"name"`
	Telecom      []fContactPoint `json:"telecom"`
	Gender       string          `json:"gender"`
	BirthDate    string          `json:"birthDate"`
	Address      []fAddress      `json:"address"`
}

func (r *fPatient) resourceType() string { return r.ResourceType }

// patient reads a Patient: the member identifier is the identifier typed MB
// (HL7 v2-0203), else the first identifier (DESIGN.md §4).
func (p *Parser) patient(b *Batch, line int, text []byte) error {
	var r fPatient
	if err := decode(text, "Patient", &r); err != nil {
		return err
	}
	m := Member{Line: line}
	var err error
	if m.SourceID, err = sourceID(r.ID, "Patient.id"); err != nil {
		return err
	}
	for _, id := range r.Identifier {
		if cd, ok := id.Type.bySystem(systemV2IdentifierType); ok && cd.Code == "MB" && id.Value != "" {
			m.Identifier = id.Value
			break
		}
	}
	if m.Identifier == "" && len(r.Identifier) > 0 {
		m.Identifier = r.Identifier[0].Value
	}
	if m.Identifier == "" {
		return missing("Patient.identifier")
	}
	if err := checkText(m.Identifier, 64, "Patient.identifier"); err != nil {
		return err
	}
	if n := pickName(r.Name); n != nil {
		m.FamilyName = n.Family
		m.GivenName = strings.Join(n.Given, " ")
	}
	if err := checkText(m.FamilyName+m.GivenName, 200, "Patient.name"); err != nil {
		return err
	}
	switch r.Gender {
	case "male":
		m.Gender = gateway.GenderMale
	case "female":
		m.Gender = gateway.GenderFemale
	case "other":
		m.Gender = gateway.GenderOther
	case "unknown", "":
		m.Gender = gateway.GenderUnknown
	default:
		return bad("Patient.gender", "not an AdministrativeGender code (male, female, other, unknown)")
	}
	if m.BirthDate, err = p.pastDate(r.BirthDate, "Patient.birthDate"); err != nil {
		return err
	}
	for _, t := range r.Telecom {
		if t.System == "phone" && t.Value != "" {
			m.Phone = t.Value
			break
		}
	}
	if len(r.Address) > 0 {
		a := r.Address[0]
		m.AddressLine = strings.Join(a.Line, ", ")
		m.City, m.State, m.PostalCode = a.City, a.State, a.PostalCode
	}
	if err := checkText(m.AddressLine+m.City+m.State+m.PostalCode+m.Phone, 500, "Patient.address"); err != nil {
		return err
	}
	b.Members = append(b.Members, m)
	return nil
}

// pickName returns the official name, else the usual one, else the first.
func pickName(names []fHumanName) *fHumanName {
	for _, use := range []string{"official", "usual"} {
		for i := range names {
			if names[i].Use == use {
				return &names[i]
			}
		}
	}
	if len(names) > 0 {
		return &names[0]
	}
	return nil
}

type fPractitioner struct {
	ResourceType  string        `json:"resourceType"`
	ID            string        `json:"id"`
	Identifier    []fIdentifier `json:"identifier"`
	Name          []fHumanName  `json:"name"`
	Qualification []struct {
		Code fConcept `json:"code"`
	} `json:"qualification"`
}

func (r *fPractitioner) resourceType() string { return r.ResourceType }

// practitioner reads a Practitioner, identified by its NPI.
func (p *Parser) practitioner(b *Batch, line int, text []byte) error {
	var r fPractitioner
	if err := decode(text, "Practitioner", &r); err != nil {
		return err
	}
	pr := Practitioner{Line: line}
	var err error
	if pr.SourceID, err = sourceID(r.ID, "Practitioner.id"); err != nil {
		return err
	}
	if pr.NPI, err = npi(r.Identifier, "Practitioner.identifier"); err != nil {
		return err
	}
	if n := pickName(r.Name); n != nil {
		pr.FamilyName = n.Family
		pr.GivenName = strings.Join(n.Given, " ")
	}
	if len(r.Qualification) > 0 {
		q := r.Qualification[0].Code
		pr.SpecialtyCode, pr.SpecialtyName = q.first().Code, q.display()
	}
	if err := checkText(pr.FamilyName+pr.GivenName+pr.SpecialtyName, 300, "Practitioner.name"); err != nil {
		return err
	}
	b.Practitioners = append(b.Practitioners, pr)
	return nil
}

// npi returns the identifier of system us-npi, checked (gateway.ValidNPI).
func npi(ids []fIdentifier, path string) (string, error) {
	v := identifierBySystem(ids, systemNPI)
	if v == "" {
		return "", bad(path, "required NPI (system %s) missing", systemNPI)
	}
	if !gateway.ValidNPI(v) {
		return "", bad(path, "invalid NPI: ten digits with a Luhn check digit are required")
	}
	return v, nil
}

type fOrganization struct {
	ResourceType string        `json:"resourceType"`
	ID           string        `json:"id"`
	Identifier   []fIdentifier `json:"identifier"`
	Type         []fConcept    `json:"type"`
	Name         string        `json:"name"`
	Address      []fAddress    `json:"address"`
}

func (r *fOrganization) resourceType() string { return r.ResourceType }

// organization reads a provider Organization, identified by its NPI, with
// its TIN (the gateway's organizations all have one). The payer's own
// Organization (type pay, or id "payer" as the gateway's export writes it)
// is skipped: it is not a row.
func (p *Parser) organization(b *Batch, line int, text []byte) error {
	var r fOrganization
	if err := decode(text, "Organization", &r); err != nil {
		return err
	}
	orgType := gateway.OrgProviderHealthSystem
	for _, t := range r.Type {
		switch t.first().Code {
		case "pay", "ins":
			orgType = gateway.OrgPayer
		}
	}
	if r.ID == payerOrganizationID || (orgType == gateway.OrgPayer && identifierBySystem(r.Identifier, systemNPI) == "") {
		if b.Skipped == nil {
			b.Skipped = map[string]int{}
		}
		b.Skipped["Organization"]++
		return nil
	}
	o := Organization{Line: line, Address: "{}"}
	var err error
	if o.SourceID, err = sourceID(r.ID, "Organization.id"); err != nil {
		return err
	}
	o.Type = orgType
	if o.NPI, err = npi(r.Identifier, "Organization.identifier"); err != nil {
		return err
	}
	o.TIN = identifierBySystem(r.Identifier, systemTIN)
	if o.TIN == "" {
		for _, id := range r.Identifier {
			if cd, ok := id.Type.bySystem(systemV2IdentifierType); ok && cd.Code == "TAX" {
				o.TIN = id.Value
			}
		}
	}
	o.TIN = strings.ReplaceAll(o.TIN, "-", "")
	switch {
	case o.TIN == "":
		return bad("Organization.identifier", "required TIN (system %s) missing", systemTIN)
	case len(o.TIN) != 9 || strings.Trim(o.TIN, "0123456789") != "":
		return bad("Organization.identifier", "invalid TIN: nine digits are required")
	}
	o.Name = strings.TrimSpace(r.Name)
	if o.Name == "" {
		return missing("Organization.name")
	}
	if err := checkText(o.Name, 200, "Organization.name"); err != nil {
		return err
	}
	if len(r.Address) > 0 {
		a, _ := json.Marshal(r.Address[0])
		o.Address = string(a)
	}
	b.Organizations = append(b.Organizations, o)
	return nil
}

type fCoverage struct {
	ResourceType string        `json:"resourceType"`
	ID           string        `json:"id"`
	Identifier   []fIdentifier `json:"identifier"`
	Status       string        `json:"status"`
	Type         *fConcept     `json:"type"`
	SubscriberID string        `json:"subscriberId"`
	Beneficiary  *fReference   `json:"beneficiary"`
	Relationship *fConcept     `json:"relationship"`
	Period       *fPeriod      `json:"period"`
	Payor        []fReference  `json:"payor"`
	Class        []struct {
		Type  fConcept `json:"type"`
		Value string   `json:"value"`
		Name  string   `json:"name"`
	} `json:"class"`
}

func (r *fCoverage) resourceType() string { return r.ResourceType }

// coverage reads a CARIN BB Coverage. Its identifier is the one of the
// payer's coverage-id system, else the first identifier, else subscriberId.
func (p *Parser) coverage(b *Batch, line int, text []byte) error {
	var r fCoverage
	if err := decode(text, "Coverage", &r); err != nil {
		return err
	}
	c := Coverage{Line: line}
	var err error
	if c.SourceID, err = sourceID(r.ID, "Coverage.id"); err != nil {
		return err
	}
	c.Identifier = identifierBySystem(r.Identifier, systemCoverageID)
	if c.Identifier == "" && len(r.Identifier) > 0 {
		c.Identifier = r.Identifier[0].Value
	}
	if c.Identifier == "" {
		c.Identifier = r.SubscriberID
	}
	if c.Identifier == "" {
		return missing("Coverage.identifier")
	}
	if err := checkText(c.Identifier, 64, "Coverage.identifier"); err != nil {
		return err
	}
	switch r.Status {
	case "active", "cancelled", "draft", "entered-in-error":
		c.Status = r.Status
	case "":
		return missing("Coverage.status")
	default:
		return bad("Coverage.status", "not a FinancialResourceStatusCodes code")
	}
	if c.Patient, err = requireRef(r.Beneficiary, "Coverage.beneficiary", "Patient"); err != nil {
		return err
	}
	if r.Type != nil {
		c.TypeCode = r.Type.first().Code
		c.TypeDisplay = r.Type.display()
	}
	c.Relationship = "self"
	if r.Relationship != nil {
		if code := r.Relationship.first().Code; code != "" {
			c.Relationship = code
		}
	}
	if r.Period != nil {
		if c.PeriodStart, err = date(r.Period.Start, "Coverage.period.start"); err != nil {
			return err
		}
		if c.PeriodEnd, err = date(r.Period.End, "Coverage.period.end"); err != nil {
			return err
		}
		if !c.PeriodEnd.IsZero() && c.PeriodEnd.Before(c.PeriodStart) {
			return bad("Coverage.period.end", "period ends before it starts")
		}
	}
	if len(r.Payor) > 0 {
		c.PayerName = r.Payor[0].Display
	}
	for _, cl := range r.Class {
		switch cl.Type.first().Code {
		case "group":
			c.GroupNumber = cl.Value
		case "plan":
			c.PlanName = cl.Name
			if c.PlanName == "" {
				c.PlanName = cl.Value
			}
		}
	}
	if err := checkText(c.TypeDisplay+c.PlanName+c.GroupNumber+c.PayerName, 1000, "Coverage"); err != nil {
		return err
	}
	b.Coverages = append(b.Coverages, c)
	return nil
}
