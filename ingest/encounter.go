package ingest

import (
	"bytes"
	"encoding/json"
	"strconv"

	"example.com/gateway/gateway"
)

type fEncounter struct {
	ResourceType string        `json:"resourceType"`
	ID           string        `json:"id"`
	Meta         *fMeta        `json:"meta"`
	Identifier   []fIdentifier `json:"identifier"`
	Status       string        `json:"status"`
	Class        *fCoding      `json:"class"`
	Type         []fConcept    `json:"type"`
	Subject      *fReference   `json:"subject"`
	Participant  []struct {
		Type       []fConcept  `json:"type"`
		Individual *fReference `json:"individual"`
	} `json:"participant"`
	Period          *fPeriod    `json:"period"`
	ReasonCode      []fConcept  `json:"reasonCode"`
	ServiceProvider *fReference `json:"serviceProvider"`
}

func (r *fEncounter) resourceType() string { return r.ResourceType }

var encounterStatuses = map[string]bool{
	"planned": true, "arrived": true, "triaged": true, "in-progress": true, "onleave": true,
	"finished": true, "cancelled": true, "entered-in-error": true, "unknown": true,
}

// encounter reads a US Core Encounter. Its identifier is the one of the
// payer's encounter-id system, else the first, else the resource id.
func (p *Parser) encounter(b *Batch, line int, text []byte) error {
	var r fEncounter
	if err := decode(text, "Encounter", &r); err != nil {
		return err
	}
	e := Encounter{Line: line}
	var err error
	if e.SourceID, err = sourceID(r.ID, "Encounter.id"); err != nil {
		return err
	}
	e.Identifier = identifierBySystem(r.Identifier, systemEncounterID)
	if e.Identifier == "" && len(r.Identifier) > 0 {
		e.Identifier = r.Identifier[0].Value
	}
	if e.Identifier == "" {
		e.Identifier = r.ID
	}
	if e.Identifier == "" {
		return missing("Encounter.identifier")
	}
	if err := checkText(e.Identifier, 64, "Encounter.identifier"); err != nil {
		return err
	}
	switch {
	case r.Status == "":
		return missing("Encounter.status")
	case !encounterStatuses[r.Status]:
		return bad("Encounter.status", "not an EncounterStatus code")
	}
	e.Status = r.Status
	if r.Class == nil || r.Class.Code == "" {
		return missing("Encounter.class")
	}
	e.Class = r.Class.Code
	if len(r.Type) > 0 {
		e.TypeCode, e.TypeDisplay = r.Type[0].first().Code, r.Type[0].display()
	}
	if e.Patient, err = requireRef(r.Subject, "Encounter.subject", "Patient"); err != nil {
		return err
	}
	if r.Period == nil || r.Period.Start == "" {
		return missing("Encounter.period.start")
	}
	// Only a planned encounter may start in the future.
	if r.Status != "planned" {
		if _, err := p.pastDate(r.Period.Start, "Encounter.period.start"); err != nil {
			return err
		}
	} else if _, err := date(r.Period.Start, "Encounter.period.start"); err != nil {
		return err
	}
	if e.PeriodStart, err = instantOf(r.Period.Start, "Encounter.period.start"); err != nil {
		return err
	}
	if r.Period.End != "" {
		if _, err := date(r.Period.End, "Encounter.period.end"); err != nil {
			return err
		}
		end, err := instantOf(r.Period.End, "Encounter.period.end")
		if err != nil {
			return err
		}
		if end.Before(e.PeriodStart) {
			return bad("Encounter.period.end", "period ends before it starts")
		}
		e.PeriodEnd = &end
	}
	for i, pt := range r.Participant {
		ref, err := reference(pt.Individual, "Encounter.participant["+strconv.Itoa(i)+"].individual", "Practitioner", "PractitionerRole", "RelatedPerson")
		if err != nil {
			return err
		}
		if ref.Type == "Practitioner" {
			e.Practitioner = ref
			break
		}
	}
	if e.Organization, err = reference(r.ServiceProvider, "Encounter.serviceProvider", "Organization"); err != nil {
		return err
	}
	if len(r.ReasonCode) > 0 {
		e.ReasonCode, e.ReasonDisplay = r.ReasonCode[0].first().Code, r.ReasonCode[0].display()
	}
	if err := checkText(e.TypeDisplay+e.ReasonDisplay, 1000, "Encounter"); err != nil {
		return err
	}
	e.SecurityLabels, e.Sensitive = securityLabels(r.Meta)
	b.Encounters = append(b.Encounters, e)
	return nil
}

type fClinical struct {
	ResourceType              string        `json:"resourceType"`
	ID                        string        `json:"id"`
	Meta                      *fMeta        `json:"meta"`
	Identifier                []fIdentifier `json:"identifier"`
	Subject                   *fReference   `json:"subject"`
	Patient                   *fReference   `json:"patient"`
	Status                    string        `json:"status"`
	ClinicalStatus            *fConcept     `json:"clinicalStatus"`
	Code                      *fConcept     `json:"code"`
	MedicationCodeableConcept *fConcept     `json:"medicationCodeableConcept"`
	VaccineCode               *fConcept     `json:"vaccineCode"`
	OnsetDateTime             string        `json:"onsetDateTime"`
	OnsetPeriod               *fPeriod      `json:"onsetPeriod"`
	RecordedDate              string        `json:"recordedDate"`
	EffectiveDateTime         string        `json:"effectiveDateTime"`
	EffectiveInstant          string        `json:"effectiveInstant"`
	EffectivePeriod           *fPeriod      `json:"effectivePeriod"`
	Issued                    string        `json:"issued"`
	AuthoredOn                string        `json:"authoredOn"`
	OccurrenceDateTime        string        `json:"occurrenceDateTime"`
	PerformedDateTime         string        `json:"performedDateTime"`
	PerformedPeriod           *fPeriod      `json:"performedPeriod"`
}

func (r *fClinical) resourceType() string { return r.ResourceType }

// clinical reads a US Core clinical resource. It is stored as received
// (minus id, meta.lastUpdated and meta.versionId), keyed by the source
// system's id (else its first identifier, system|value), with the typed
// columns the policy and the API filter on: the code, the status, and the
// date of service.
func (p *Parser) clinical(b *Batch, line int, text []byte, t gateway.ClinicalType) error {
	var r fClinical
	rt := string(t)
	if err := decode(text, rt, &r); err != nil {
		return err
	}
	c := Clinical{Line: line}
	c.ResourceType = t
	c.SourceID = r.ID
	if c.SourceID == "" && len(r.Identifier) > 0 && r.Identifier[0].Value != "" {
		c.SourceID = r.Identifier[0].System + "|" + r.Identifier[0].Value
	}
	if c.SourceID == "" {
		return missing(rt + ".id")
	}
	if err := checkText(c.SourceID, 200, rt+".id"); err != nil {
		return err
	}
	subject, field := r.Subject, "subject"
	if t == gateway.ClinicalImmunization || t == gateway.ClinicalAllergy {
		subject, field = r.Patient, "patient"
	}
	var err error
	if c.Patient, err = requireRef(subject, rt+"."+field, "Patient"); err != nil {
		return err
	}

	code, codePath := r.Code, rt+".code"
	status := r.Status
	var when string
	switch t {
	case gateway.ClinicalCondition:
		status = r.ClinicalStatus.first().Code
		when = firstNonEmpty(r.OnsetDateTime, periodStart(r.OnsetPeriod), r.RecordedDate)
	case gateway.ClinicalAllergy:
		status = r.ClinicalStatus.first().Code
		when = firstNonEmpty(r.OnsetDateTime, periodStart(r.OnsetPeriod), r.RecordedDate)
	case gateway.ClinicalObservation:
		when = firstNonEmpty(r.EffectiveDateTime, r.EffectiveInstant, periodStart(r.EffectivePeriod), r.Issued)
		if status == "" {
			return missing(rt + ".status")
		}
	case gateway.ClinicalMedication:
		code, codePath = r.MedicationCodeableConcept, rt+".medicationCodeableConcept"
		when = r.AuthoredOn
		if status == "" {
			return missing(rt + ".status")
		}
	case gateway.ClinicalImmunization:
		code, codePath = r.VaccineCode, rt+".vaccineCode"
		when = r.OccurrenceDateTime
		if status == "" {
			return missing(rt + ".status")
		}
	case gateway.ClinicalProcedure:
		when = firstNonEmpty(r.PerformedDateTime, periodStart(r.PerformedPeriod))
		if status == "" {
			return missing(rt + ".status")
		}
	}
	if code == nil || (code.first().Code == "" && code.Text == "") {
		return missing(codePath)
	}
	cd := code.first()
	if err := checkCode(cd.System, cd.Code, codePath); err != nil {
		return err
	}
	c.Code, c.CodeSystem, c.Display, c.Status = cd.Code, cd.System, code.display(), status
	if err := checkText(c.Display, 1000, codePath); err != nil {
		return err
	}
	if c.DateOfService, err = p.serviceDate(when, rt+".date"); err != nil {
		return err
	}
	c.SecurityLabels, c.Sensitive = securityLabels(r.Meta)
	for _, ref := range literalReferences(text) {
		typ, id, ok := splitReference(ref)
		if ok && (typ == "Practitioner" || typ == "Organization") {
			c.References = append(c.References, Ref{Type: typ, ID: id, Reference: ref})
		}
	}
	if c.Resource, err = stripServerElements(text); err != nil {
		return err
	}
	b.Clinical = append(b.Clinical, c)
	return nil
}

func periodStart(p *fPeriod) string {
	if p == nil {
		return ""
	}
	return p.Start
}

// serviceDate is the date of service of a clinical resource: partial dates
// count from their first day (2019 → 2019-01-01), so that the Provider
// Access floor of 2016-01-01 is applied conservatively.
func (p *Parser) serviceDate(s, path string) (gateway.Date, error) {
	switch len(s) {
	case 0:
		return gateway.Date{}, nil
	case 4:
		s += "-01-01"
	case 7:
		s += "-01"
	}
	return p.pastDate(s, path)
}

// stripServerElements returns the resource without id, meta.lastUpdated
// and meta.versionId (and without meta when nothing else is left in it):
// the gateway sets those when it serves the resource, and keeping the
// source's would make an unchanged resource look changed.
func stripServerElements(text []byte) (json.RawMessage, error) {
	var top map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(text))
	dec.UseNumber()
	if err := dec.Decode(&top); err != nil {
		return nil, err
	}
	delete(top, "id")
	if raw, ok := top["meta"]; ok {
		var meta map[string]json.RawMessage
		if err := json.Unmarshal(raw, &meta); err != nil {
			return nil, bad("meta", "meta must be an object")
		}
		delete(meta, "lastUpdated")
		delete(meta, "versionId")
		if len(meta) == 0 {
			delete(top, "meta")
		} else {
			m, err := json.Marshal(meta)
			if err != nil {
				return nil, err
			}
			top["meta"] = m
		}
	}
	return json.Marshal(top)
}
