package sandbox

import (
	"encoding/json"
	"math"
	"strconv"
	"time"

	"example.com/gateway/gateway"
)

// encounters generates 0–4 encounters (about 2).
func (b *builder) encounters() {
	r := b.r
	for j := range r.IntN(5) {
		kind := pick(r, encounterKinds)
		sens := b.sensitivity(0.05)
		reason := pick(r, diagnosesAcute)
		if chance(r, 0.4) {
			reason = pick(r, diagnosesChronic)
		}
		slot := slotPrimary
		switch kind.class {
		case "EMER", "IMP":
			slot = slotHospitalist
		}
		if sens != notSensitive {
			kind = encounterKind{"AMB", servicesSensitive[sens][0].code}
			reason = pick(r, diagnosesSensitive[sens])
			slot = slotBehavioral
		}
		org := b.careOrg()
		orgID, practitionerID := b.practitioner(org, slot)
		day := b.dos(0.03, 1)
		start := at(day, between(r, 7*4, 18*4)*15)
		var length time.Duration
		switch kind.class {
		case "EMER":
			length = time.Duration(between(r, 2*60, 9*60)) * time.Minute
		case "IMP":
			length = time.Duration(between(r, 2, 7)) * 24 * time.Hour
		default:
			length = time.Duration(between(r, 1, 4)*15) * time.Minute
		}
		e := Encounter{Encounter: gateway.Encounter{
			ID:             b.g.id(idEncounter, b.i, j),
			MemberID:       b.d.Member.ID,
			Identifier:     "SBXE" + b.key + twoDigits(j),
			Status:         "finished",
			Class:          kind.class,
			TypeCode:       kind.typ.code,
			TypeDisplay:    kind.typ.display,
			PeriodStart:    start,
			PractitionerID: practitionerID,
			OrganizationID: orgID,
			ReasonCode:     reason.code,
			ReasonDisplay:  reason.display,
		}}
		end := start.Add(length)
		switch {
		case chance(r, 0.04):
			e.Status = "cancelled"
		case !end.Before(b.today.Time()):
			e.Status = "in-progress"
		default:
			e.PeriodEnd = &end
		}
		if sens != notSensitive {
			e.Sensitive, e.SecurityLabels = true, sens.labels()
		}
		b.d.Encounters = append(b.d.Encounters, e)
	}
}

// priorAuthorizations generates 0–3 prior authorizations (about 1.2) in
// every status; about a quarter are for drugs.
func (b *builder) priorAuthorizations() {
	r := b.r
	n := 0
	switch u := r.IntN(100); {
	case u < 25:
	case u < 70:
		n = 1
	case u < 90:
		n = 2
	default:
		n = 3
	}
	for j := range n {
		b.d.PriorAuthorizations = append(b.d.PriorAuthorizations, b.priorAuthorization(j))
	}
}

func (b *builder) priorAuthorization(j int) PriorAuthorization {
	r := b.r
	var pa PriorAuthorization
	pa.ID = b.g.id(idPriorAuthorization, b.i, j)
	pa.MemberID = b.d.Member.ID
	pa.Identifier = "SBXPA" + b.key + twoDigits(j)
	switch u := r.IntN(100); {
	case u < 20:
		pa.Status = gateway.PAPending
	case u < 55:
		pa.Status = gateway.PAApproved
	case u < 70:
		pa.Status = gateway.PAPartiallyApproved
	case u < 90:
		pa.Status = gateway.PADenied
	default:
		pa.Status = gateway.PACancelled
	}
	sens := b.sensitivity(0.05)
	pa.Drug = chance(r, 0.25)

	// Items: specialty drugs (NDC) for drug PAs, else services of one category.
	type want struct {
		product code
		qty     int
		charge  gateway.Money
	}
	var items []want
	slot := slotSpecialist
	if pa.Drug {
		pa.ServiceCategory = "Pharmacy"
		slot = slotPrimary
		for range between(r, 1, 2) {
			d := b.drug(sens, true)
			sens = d.sensitive
			qty := pick(r, []int{1, 3, 6, 12})
			items = append(items, want{code{systemNDC, d.ndc, d.display}, qty, gateway.Money(d.unitCost * qty)})
		}
	} else {
		services := paServices
		if sens != notSensitive {
			services = paServicesSensitive[sens]
			slot = slotBehavioral
		}
		first := pick(r, services)
		pa.ServiceCategory = first.category
		items = append(items, want{first.item, first.quantity * between(r, 1, 2), 0})
		for range r.IntN(3) {
			s := pick(r, services)
			if s.category == first.category && s.item.code != items[len(items)-1].product.code {
				items = append(items, want{s.item, s.quantity, 0})
			}
		}
		for k := range items {
			items[k].charge = gateway.Money(between(r, 150, 6000)*100) * gateway.Money(max(1, items[k].qty/4))
		}
	}
	if sens != notSensitive {
		pa.Sensitive, pa.SecurityLabels = true, sens.labels()
	}
	org := b.careOrg()
	pa.OrganizationID, pa.RequestingPractitionerID = b.practitioner(org, slot)

	// Dates: pending ones are recent; decided ones within two weeks.
	if pa.Status == gateway.PAPending {
		pa.RequestedOn = b.today.AddDays(-r.IntN(12))
		pa.LastStatusChange = at(pa.RequestedOn, between(r, 8*60, 17*60))
	} else {
		pa.RequestedOn = b.today.AddDays(-between(r, 3, 900))
		decided := minDate(pa.RequestedOn.AddDays(between(r, 0, 14)), b.today)
		pa.LastStatusChange = at(decided, between(r, 8*60, 17*60))
		if pa.Status != gateway.PACancelled {
			pa.DecidedOn = decided
		}
	}
	var reason reason
	switch pa.Status {
	case gateway.PAApproved, gateway.PAPartiallyApproved:
		pa.AuthorizedStart = pa.DecidedOn.AddDays(r.IntN(15))
		pa.AuthorizedEnd = pa.AuthorizedStart.AddDays(pick(r, []int{30, 90, 180, 365}))
	case gateway.PADenied:
		reason = pick(r, paDenials)
		pa.DenialReasonCode, pa.DenialReason = reason.code, reason.text
	}

	// How much of an approval has been used by today.
	used := 0.0
	if !pa.AuthorizedStart.IsZero() && !b.today.Before(pa.AuthorizedStart) {
		total := pa.AuthorizedEnd.Time().Sub(pa.AuthorizedStart.Time())
		used = math.Min(1, float64(b.today.Time().Sub(pa.AuthorizedStart.Time()))/float64(total)) * r.Float64()
	}
	partial := r.IntN(len(items)) // the item a partial approval cuts
	for k, it := range items {
		item := gateway.PriorAuthorizationItem{
			PriorAuthorizationID: pa.ID,
			Sequence:             k + 1,
			ProductCode:          it.product.code,
			ProductSystem:        it.product.system,
			ProductDisplay:       it.product.display,
			QuantityRequested:    float64(it.qty),
			Status:               string(pa.Status),
			Submitted:            b.amount(it.charge),
		}
		switch pa.Status {
		case gateway.PAApproved:
			item.QuantityApproved = item.QuantityRequested
		case gateway.PAPartiallyApproved:
			item.QuantityApproved = item.QuantityRequested
			item.Status = string(gateway.PAApproved)
			if k == partial {
				if it.qty > 1 {
					item.QuantityApproved = float64(it.qty / 2)
					item.Status = string(gateway.PAPartiallyApproved)
				} else {
					item.QuantityApproved = 0
					item.Status = string(gateway.PADenied)
				}
				d := pick(r, paDenials[3:5])
				item.DenialReason = d.code + ": " + d.text
			}
		case gateway.PADenied:
			item.DenialReason = reason.code + ": " + reason.text
		}
		item.QuantityUsed = math.Floor(item.QuantityApproved * used)
		pa.Items = append(pa.Items, item)
	}
	return pa
}

// clinical generates US Core clinical resources: 1–3 conditions, 1–5
// observations, 0–2 medication requests, immunizations and procedures, and
// 0–1 allergy. About 5% of conditions, observations, medication requests and
// procedures are sensitive.
func (b *builder) clinical() {
	r := b.r
	for range between(r, 1, 3) {
		b.condition()
	}
	for range between(r, 1, 5) {
		b.observation()
	}
	for range r.IntN(3) {
		b.medicationRequest()
	}
	for range r.IntN(3) {
		b.immunization()
	}
	if chance(r, 0.5) {
		b.allergy()
	}
	for range r.IntN(3) {
		b.procedure()
	}
}

// clinicalRow starts a clinical resource row and its FHIR resource.
func (b *builder) clinicalRow(typ gateway.ClinicalType, c code, status string, date gateway.Date, sens sensitivity) (*ClinicalResource, *fhirResource) {
	k := len(b.d.Clinical)
	id := b.g.id(idClinical, b.i, k)
	b.d.Clinical = append(b.d.Clinical, ClinicalResource{ClinicalResource: gateway.ClinicalResource{
		ID:            id,
		MemberID:      b.d.Member.ID,
		ResourceType:  typ,
		SourceID:      id,
		Code:          c.code,
		CodeSystem:    c.system,
		Display:       c.display,
		Status:        status,
		DateOfService: date,
		Sensitive:     sens != notSensitive,
	}, SecurityLabels: sens.labels()})
	res := &fhirResource{ResourceType: string(typ), ID: id}
	if sens != notSensitive {
		res.Meta = &fhirMeta{}
		for _, l := range sens.labels() {
			res.Meta.Security = append(res.Meta.Security, fhirCoding{System: systemActCode, Code: l})
		}
		res.Meta.Security = append(res.Meta.Security, fhirCoding{System: systemConfidentiality, Code: "R", Display: "restricted"})
	}
	return &b.d.Clinical[k], res
}

// finish stores the resource's JSON in its row.
func (b *builder) finish(row *ClinicalResource, res *fhirResource) {
	raw, err := json.Marshal(res)
	if err != nil {
		panic(err) // only plain strings and numbers: cannot fail
	}
	row.Resource = raw
}

func (b *builder) patient() *fhirRef { return &fhirRef{Reference: "Patient/" + b.d.Member.ID} }

func (b *builder) condition() {
	r := b.r
	sens := b.sensitivity(0.05)
	c := pick(r, diagnosesChronic)
	if sens != notSensitive {
		c = pick(r, diagnosesSensitive[sens])
	}
	status := "active"
	if chance(r, 0.2) {
		status = "resolved"
	}
	onset := b.dos(0.03, 1)
	row, res := b.clinicalRow(gateway.ClinicalCondition, c, status, onset, sens)
	res.ClinicalStatus = concept(code{systemConditionClinical, status, ""})
	res.VerificationStatus = concept(code{systemConditionVerification, "confirmed", ""})
	res.Category = []fhirConcept{*concept(code{systemConditionCategory, "problem-list-item", "Problem List Item"})}
	res.Code = concept(c)
	res.Subject = b.patient()
	res.OnsetDateTime = onset.String()
	res.RecordedDate = minDate(onset.AddDays(r.IntN(30)), b.today).String()
	b.finish(row, res)
}

func (b *builder) observation() {
	r := b.r
	sens := b.sensitivity(0.05)
	if sens == substanceUse {
		sens = mentalHealth // no substance-use lab in the list: a PHQ-9 is close enough
	}
	l := pick(r, b.g.labs[sens])
	date := b.dos(0.03, 1)
	row, res := b.clinicalRow(gateway.ClinicalObservation, l.code, "final", date, sens)
	res.Status = "final"
	category := code{systemObservationCategory, "laboratory", "Laboratory"}
	switch {
	case l.vital:
		category = code{systemObservationCategory, "vital-signs", "Vital Signs"}
	case l.unit == "{score}":
		category = code{systemObservationCategory, "survey", "Survey"}
	}
	res.Category = []fhirConcept{*concept(category)}
	res.Code = concept(l.code)
	res.Subject = b.patient()
	res.EffectiveDateTime = at(date, between(r, 7*60, 17*60)).Format(time.RFC3339)
	v := l.low + (l.high-l.low)*r.Float64()
	res.ValueQuantity = &fhirQuantity{
		Value:  json.Number(strconv.FormatFloat(v, 'f', l.decimals, 64)),
		Unit:   l.unit,
		System: systemUCUM,
		Code:   l.unit,
	}
	b.finish(row, res)
}

func (b *builder) medicationRequest() {
	r := b.r
	sens := b.sensitivity(0.05)
	d := b.drug(sens, chance(r, 0.1))
	sens = d.sensitive
	status := pick(r, []string{"active", "active", "active", "completed", "completed", "stopped"})
	date := b.dos(0.03, 1)
	c := code{systemRxNorm, d.rxnorm, d.display}
	row, res := b.clinicalRow(gateway.ClinicalMedication, c, status, date, sens)
	res.Status = status
	res.Intent = "order"
	res.MedicationCodeableConcept = concept(c)
	res.Subject = b.patient()
	res.AuthoredOn = date.String()
	_, practitioner := b.practitioner(b.careOrg(), slotPrimary)
	res.Requester = &fhirRef{Reference: "Practitioner/" + *practitioner}
	b.finish(row, res)
}

func (b *builder) immunization() {
	r := b.r
	v := pick(r, vaccines)
	date := b.dos(0.03, 1)
	row, res := b.clinicalRow(gateway.ClinicalImmunization, v, "completed", date, notSensitive)
	res.Status = "completed"
	res.VaccineCode = concept(v)
	res.Patient = b.patient()
	res.OccurrenceDateTime = date.String()
	res.PrimarySource = ptr(true)
	b.finish(row, res)
}

func (b *builder) allergy() {
	r := b.r
	a := pick(r, allergies)
	date := b.dos(0.03, 1)
	row, res := b.clinicalRow(gateway.ClinicalAllergy, a, "active", date, notSensitive)
	res.ClinicalStatus = concept(code{systemAllergyClinical, "active", "Active"})
	res.VerificationStatus = concept(code{systemAllergyVerification, "confirmed", "Confirmed"})
	res.Code = concept(a)
	res.Patient = b.patient()
	res.RecordedDate = date.String()
	b.finish(row, res)
}

func (b *builder) procedure() {
	r := b.r
	sens := b.sensitivity(0.05)
	p := pick(r, clinicalProcedures)
	if sens != notSensitive {
		p = pick(r, servicesSensitive[sens]).code
	}
	date := b.dos(0.03, 1)
	row, res := b.clinicalRow(gateway.ClinicalProcedure, p, "completed", date, sens)
	res.Status = "completed"
	res.Code = concept(p)
	res.Subject = b.patient()
	res.PerformedDateTime = date.String()
	b.finish(row, res)
}

// FHIR R4: just the elements the sandbox's resources use.

const (
	systemActCode               = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
	systemConfidentiality       = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
	systemConditionClinical     = "http://terminology.hl7.org/CodeSystem/condition-clinical"
	systemConditionVerification = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
	systemConditionCategory     = "http://terminology.hl7.org/CodeSystem/condition-category"
	systemObservationCategory   = "http://terminology.hl7.org/CodeSystem/observation-category"
	systemAllergyClinical       = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
	systemAllergyVerification   = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
)

type fhirResource struct {
	ResourceType              string        `json:"resourceType"`
	ID                        string        `json:"id"`
	Meta                      *fhirMeta     `json:"meta,omitempty"`
	Status                    string        `json:"status,omitempty"`
	ClinicalStatus            *fhirConcept  `json:"clinicalStatus,omitempty"`
	VerificationStatus        *fhirConcept  `json:"verificationStatus,omitempty"`
	Intent                    string        `json:"intent,omitempty"`
	Category                  []fhirConcept `json:"category,omitempty"`
	Code                      *fhirConcept  `json:"code,omitempty"`
	VaccineCode               *fhirConcept  `json:"vaccineCode,omitempty"`
	MedicationCodeableConcept *fhirConcept  `json:"medicationCodeableConcept,omitempty"`
	Subject                   *fhirRef      `json:"subject,omitempty"`
	Patient                   *fhirRef      `json:"patient,omitempty"`
	EffectiveDateTime         string        `json:"effectiveDateTime,omitempty"`
	OnsetDateTime             string        `json:"onsetDateTime,omitempty"`
	RecordedDate              string        `json:"recordedDate,omitempty"`
	AuthoredOn                string        `json:"authoredOn,omitempty"`
	OccurrenceDateTime        string        `json:"occurrenceDateTime,omitempty"`
	PerformedDateTime         string        `json:"performedDateTime,omitempty"`
	PrimarySource             *bool         `json:"primarySource,omitempty"`
	Requester                 *fhirRef      `json:"requester,omitempty"`
	ValueQuantity             *fhirQuantity `json:"valueQuantity,omitempty"`
}

type fhirMeta struct {
	Security []fhirCoding `json:"security,omitempty"`
}

type fhirCoding struct {
	System  string `json:"system,omitempty"`
	Code    string `json:"code,omitempty"`
	Display string `json:"display,omitempty"`
}

type fhirConcept struct {
	Coding []fhirCoding `json:"coding"`
	Text   string       `json:"text,omitempty"`
}

type fhirRef struct {
	Reference string `json:"reference"`
}

type fhirQuantity struct {
	Value  json.Number `json:"value"`
	Unit   string      `json:"unit,omitempty"`
	System string      `json:"system,omitempty"`
	Code   string      `json:"code,omitempty"`
}

func concept(c code) *fhirConcept {
	return &fhirConcept{Coding: []fhirCoding{{System: c.system, Code: c.code, Display: c.display}}, Text: c.display}
}
