package fhir

import (
	"time"

	"example.com/gateway/gateway"
)

// The FHIR R4 data types the gateway emits, each with only the elements it
// fills. Every optional element is omitempty (or a nil pointer), so an
// element the mapping leaves empty is absent from the JSON, never null.
// Dates and instants are pre-formatted strings.

// Meta is Resource.meta.
type Meta struct {
	LastUpdated string   `json:"lastUpdated,omitempty"`
	Profile     []string `json:"profile,omitempty"`
}

// Coding is a code from a code system.
type Coding struct {
	System  string `json:"system,omitempty"`
	Code    string `json:"code,omitempty"`
	Display string `json:"display,omitempty"`
}

// CodeableConcept is a concept as codings and/or text.
type CodeableConcept struct {
	Extension []Extension `json:"extension,omitempty"`
	Coding    []Coding    `json:"coding,omitempty"`
	Text      string      `json:"text,omitempty"`
}

// Reference is a relative reference "Type/id" (see Ref), or only a display
// or a data-absent-reason extension when the target is unknown.
type Reference struct {
	Extension  []Extension `json:"extension,omitempty"`
	Reference  string      `json:"reference,omitempty"`
	Identifier *Identifier `json:"identifier,omitempty"`
	Display    string      `json:"display,omitempty"`
}

// Identifier is a business identifier.
type Identifier struct {
	Use    string           `json:"use,omitempty"`
	Type   *CodeableConcept `json:"type,omitempty"`
	System string           `json:"system,omitempty"`
	Value  string           `json:"value,omitempty"`
}

// Period is a start and/or end date or dateTime.
type Period struct {
	Start string `json:"start,omitempty"`
	End   string `json:"end,omitempty"`
}

// Quantity is a measured amount. Value is a pointer so that 0 is emitted.
type Quantity struct {
	Extension []Extension `json:"extension,omitempty"`
	Value     *float64    `json:"value,omitempty"`
	Unit      string      `json:"unit,omitempty"`
	System    string      `json:"system,omitempty"`
	Code      string      `json:"code,omitempty"`
}

// Money is an amount in a currency. It only ever appears under Policy.Money.
type Money struct {
	Value    float64 `json:"value"`
	Currency string  `json:"currency"`
}

// Extension is a FHIR extension with the value types the gateway uses.
type Extension struct {
	URL                  string           `json:"url"`
	Extension            []Extension      `json:"extension,omitempty"`
	ValueCode            string           `json:"valueCode,omitempty"`
	ValueString          string           `json:"valueString,omitempty"`
	ValueDateTime        string           `json:"valueDateTime,omitempty"`
	ValueCodeableConcept *CodeableConcept `json:"valueCodeableConcept,omitempty"`
	ValueReference       *Reference       `json:"valueReference,omitempty"`
	ValueQuantity        *Quantity        `json:"valueQuantity,omitempty"`
}

// HumanName is a person's name.
type HumanName struct {
	Extension []Extension `json:"extension,omitempty"`
	Use       string      `json:"use,omitempty"`
	Family    string      `json:"family,omitempty"`
	Given     []string    `json:"given,omitempty"`
}

// Address is a postal address.
type Address struct {
	Use        string   `json:"use,omitempty"`
	Line       []string `json:"line,omitempty"`
	City       string   `json:"city,omitempty"`
	State      string   `json:"state,omitempty"`
	PostalCode string   `json:"postalCode,omitempty"`
	Country    string   `json:"country,omitempty"`
}

// ContactPoint is a phone number or email address.
type ContactPoint struct {
	System string `json:"system,omitempty"`
	Value  string `json:"value,omitempty"`
	Use    string `json:"use,omitempty"`
}

// Ref returns the relative reference "typ/id". Every reference the package
// emits goes through it (or through refOrAbsent), so all references have one
// form: relative, with the gateway's row ids.
func Ref(typ, id string) Reference { return Reference{Reference: typ + "/" + id} }

// PatientRef is the reference to the member with id memberID.
func PatientRef(memberID string) Reference { return Ref("Patient", memberID) }

// PayerRef is the reference to the payer's Organization (see Payer).
func PayerRef() Reference {
	return Reference{Reference: "Organization/" + PayerID, Display: PayerName}
}

// refOrAbsent is Ref(typ, *id), or a reference carrying only the
// data-absent-reason extension when id is nil or empty: the element is
// required but the record does not say what it points to.
func refOrAbsent(typ string, id *string) Reference {
	if id == nil || *id == "" {
		return Reference{Extension: absent()}
	}
	return Ref(typ, *id)
}

// absent is the data-absent-reason extension "unknown".
func absent() []Extension {
	return []Extension{{URL: extDataAbsentReason, ValueCode: "unknown"}}
}

// cc is a CodeableConcept of one coding.
func cc(system, code, display string) CodeableConcept {
	return CodeableConcept{Coding: []Coding{{System: system, Code: code, Display: display}}}
}

// ccp is cc as a pointer.
func ccp(system, code, display string) *CodeableConcept {
	c := cc(system, code, display)
	return &c
}

// instant formats t as a FHIR instant (RFC 3339, UTC); "" for the zero time.
func instant(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// period returns the Period from start to end, nil when both are zero.
func period(start, end gateway.Date) *Period {
	if start.IsZero() && end.IsZero() {
		return nil
	}
	return &Period{Start: start.String(), End: end.String()}
}

// money converts an amount in cents to FHIR Money in US dollars
// (1234.50 → 1234.5); nil for nil.
func money(m *gateway.Money) *Money {
	if m == nil {
		return nil
	}
	return &Money{Value: m.Float(), Currency: "USD"}
}

// decimal returns a pointer to v, for optional decimal elements that must
// show 0.
func decimal(v float64) *float64 { return &v }
