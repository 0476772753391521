package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"example.com/gateway/fhir"
	"example.com/gateway/gateway"
)

// The FHIR R4 input side: the elements the gateway reads, decoded leniently
// (unknown elements are ignored) but typed (a string where a number belongs
// is a reject).

type fMeta struct {
	Security []fCoding `json:"security"`
	Profile  []string  `json:"profile"`
}

type fCoding struct {
	System  string `json:"system"`
	Code    string `json:"code"`
	Display string `json:"display"`
}

type fConcept struct {
	Coding []fCoding `json:"coding"`
	Text   string    `json:"text"`
}

// first returns the first coding with a code, or the zero coding.
func (c *fConcept) first() fCoding {
	if c == nil {
		return fCoding{}
	}
	for _, cd := range c.Coding {
		if cd.Code != "" {
			return cd
		}
	}
	return fCoding{}
}

// bySystem returns the first coding of system.
func (c *fConcept) bySystem(system string) (fCoding, bool) {
	if c == nil {
		return fCoding{}, false
	}
	for _, cd := range c.Coding {
		if cd.System == system && cd.Code != "" {
			return cd, true
		}
	}
	return fCoding{}, false
}

// display returns the first coding's display, else the text.
func (c *fConcept) display() string {
	if c == nil {
		return ""
	}
	if d := c.first().Display; d != "" {
		return d
	}
	return c.Text
}

type fIdentifier struct {
	Use    string    `json:"use"`
	Type   *fConcept `json:"type"`
	System string    `json:"system"`
	Value  string    `json:"value"`
}

type fReference struct {
	Reference  string       `json:"reference"`
	Identifier *fIdentifier `json:"identifier"`
	Display    string       `json:"display"`
}

type fPeriod struct {
	Start string `json:"start"`
	End   string `json:"end"`
}

type fQuantity struct {
	Value *json.Number `json:"value"`
}

type fMoney struct {
	Value    *json.Number `json:"value"`
	Currency string       `json:"currency"`
}

type fExtension struct {
	URL                  string       `json:"url"`
	Extension            []fExtension `json:"extension"`
	ValueCode            string       `json:"valueCode"`
	ValueDateTime        string       `json:"valueDateTime"`
	ValueCodeableConcept *fConcept    `json:"valueCodeableConcept"`
}

// header is what every line is first read as.
type header struct {
	ResourceType string `json:"resourceType"`
}

// Identifier systems and code systems the reader recognises: package
// fhir's (the mapping import reads in reverse) where it exports them, the
// canonical URIs otherwise.
const (
	systemV2IdentifierType = "http://terminology.hl7.org/CodeSystem/v2-0203"
	systemNPI              = fhir.SystemNPI
	systemTIN              = fhir.SystemTIN
	systemNDC              = fhir.SystemNDC
	systemRxNorm           = fhir.SystemRxNorm
	systemClaimID          = fhir.SystemClaimID
	systemPriorAuthID      = fhir.SystemPriorAuthorization
	systemCoverageID       = fhir.SystemCoverageID
	systemEncounterID      = fhir.SystemEncounterID
	systemCPT              = fhir.SystemCPT
	systemICD10CM          = fhir.SystemICD10CM
	systemClaimType        = "http://terminology.hl7.org/CodeSystem/claim-type"
	systemInstSubType      = "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBInstitutionalClaimSubType"
	systemConfidentiality  = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
	systemActCode          = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
	systemActReason        = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
	systemObservationValue = "http://terminology.hl7.org/CodeSystem/v3-ObservationValue"
	systemPayerTypeOID     = "urn:oid:2.16.840.1.113883.3.221.5"
	extDataAbsentReason    = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
	extReviewAction        = "http://hl7.org/fhir/us/davinci-pdex/StructureDefinition/extension-reviewAction"
	extReviewActionCode    = "http://hl7.org/fhir/us/davinci-pdex/StructureDefinition/extension-reviewActionCode"
	extWhenAdjudicated     = "http://hl7.org/fhir/us/davinci-pdex/StructureDefinition/base-ext-when-adjudicated"
	payerOrganizationID    = fhir.PayerID // the payer's own Organization
)

// sensitiveLabels are the meta.security codes that make a row sensitive
// (never shared through Provider Access, DESIGN.md §1 rule 5): restricted
// and very restricted confidentiality (v3-Confidentiality R, V), 42 CFR
// Part 2 and the v3-ActCode sensitivity codes of state-protected categories
// (substance use, HIV/AIDS, psychiatry and psychotherapy notes, sexual and
// domestic violence, sexuality and reproductive health, STDs, behavioural
// and mental health, genetic disease, sickle cell, social services).
var sensitiveLabels = map[string]bool{
	"R": true, "V": true,
	"42CFRPart2": true, "ETH": true, "SUD": true, "HIV": true, "PSY": true, "PSYTHPN": true,
	"SDV": true, "SEX": true, "STD": true, "BH": true, "MH": true, "GDIS": true, "SICKLE": true,
	"SOC": true, "TBOO": true,
}

// labelSystems are the code systems of security labels the gateway keeps.
var labelSystems = map[string]bool{
	systemConfidentiality: true, systemActCode: true, systemActReason: true, systemObservationValue: true, "": true,
}

// securityLabels returns the codes of meta.security and whether any makes
// the row sensitive.
func securityLabels(m *fMeta) (labels []string, sensitive bool) {
	if m == nil {
		return nil, false
	}
	for _, c := range m.Security {
		if c.Code == "" || !(labelSystems[c.System] || sensitiveLabels[c.Code]) {
			continue
		}
		labels = append(labels, c.Code)
		if sensitiveLabels[c.Code] {
			sensitive = true
		}
	}
	return labels, sensitive
}

// rejectErr is a validation failure inside a resource.
type rejectErr struct{ path, reason string }

func (e *rejectErr) Error() string { return e.path + ": " + e.reason }

func bad(path, format string, args ...any) error {
	return &rejectErr{path: path, reason: fmt.Sprintf(format, args...)}
}

func missing(path string) error { return &rejectErr{path: path, reason: "required element missing"} }

// fhirLine reads one NDJSON line into b and reports whether it became a
// record.
func (p *Parser) fhirLine(b *Batch, line int, text []byte) bool {
	text = bytes.TrimSpace(text)
	if len(text) == 0 {
		return false // blank lines are not resources (a trailing newline, say)
	}
	before := b.Records()
	rt, err := p.resource(b, line, text)
	if err != nil {
		r := Reject{Line: line, Reason: err.Error(), Type: rt}
		var re *rejectErr
		var te *json.UnmarshalTypeError
		var se *json.SyntaxError
		switch {
		case errors.As(err, &re):
			r.Path, r.Reason = re.path, re.reason
		case errors.As(err, &te):
			r.Path = rt
			if te.Field != "" {
				r.Path = rt + "." + te.Field
			}
			r.Reason = fmt.Sprintf("wrong JSON type: %s where %s is expected", te.Value, jsonKind(te.Type.Kind().String()))
		case errors.As(err, &se):
			r.Reason = "invalid JSON: " + se.Error()
		}
		b.Rejects = append(b.Rejects, r)
		return false
	}
	return b.Records() > before
}

func jsonKind(k string) string {
	switch k {
	case "struct", "map":
		return "an object"
	case "slice", "array":
		return "an array"
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "ptr":
		return "a value"
	}
	return "a number"
}

// resource decodes one resource and appends its record. It returns the
// resource type (when known) and the reason the line is rejected.
func (p *Parser) resource(b *Batch, line int, text []byte) (string, error) {
	if text[0] != '{' {
		return "", errors.New("invalid JSON: a line must be one JSON object")
	}
	rt := peekResourceType(text)
	if rt == "" {
		var h header
		if err := json.Unmarshal(text, &h); err != nil {
			return "", err
		}
		rt = h.ResourceType
	}
	var err error
	switch rt {
	case "":
		return "", missing("resourceType")
	case "Patient":
		err = p.patient(b, line, text)
	case "Practitioner":
		err = p.practitioner(b, line, text)
	case "Organization":
		err = p.organization(b, line, text)
	case "Coverage":
		err = p.coverage(b, line, text)
	case "ExplanationOfBenefit":
		err = p.explanationOfBenefit(b, line, text)
	case "Encounter":
		err = p.encounter(b, line, text)
	case "Condition", "Observation", "MedicationRequest", "Immunization", "AllergyIntolerance", "Procedure":
		err = p.clinical(b, line, text, gateway.ClinicalType(rt))
	default:
		return "(unsupported)", bad("resourceType", "unsupported resourceType %q", truncate(rt, 40))
	}
	return rt, err
}

// peekResourceType returns the resourceType when the object starts with it
// (as every resource the gateway writes does); "" otherwise. The full
// decode checks it again.
func peekResourceType(text []byte) string {
	const prefix = `{"resourceType":"`
	if !bytes.HasPrefix(text, []byte(prefix)) {
		return ""
	}
	rest := text[len(prefix):]
	end := bytes.IndexByte(rest, '"')
	if end <= 0 || end > 40 || bytes.IndexByte(rest[:end], '\\') >= 0 {
		return ""
	}
	return string(rest[:end])
}

// decode unmarshals text into v and checks its resourceType.
func decode(text []byte, rt string, v interface{ resourceType() string }) error {
	if err := json.Unmarshal(text, v); err != nil {
		return err
	}
	if got := v.resourceType(); got != rt {
		return bad("resourceType", "resourceType %q does not match the resource", truncate(got, 40))
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// reference parses a Reference whose target must be one of types. A
// reference with neither a reference nor an identifier (only a display or
// a data-absent-reason extension) is the zero Ref. The payer's own
// Organization ("Organization/payer") is the zero Ref too: it is not a row.
func reference(r *fReference, path string, types ...string) (Ref, error) {
	if r == nil {
		return Ref{}, nil
	}
	if r.Reference != "" {
		typ, id, ok := splitReference(r.Reference)
		if !ok {
			return Ref{}, bad(path, "reference is not of the form Type/id")
		}
		if !contains(types, typ) {
			return Ref{}, bad(path, "reference to a %s where %s is expected", truncate(typ, 40), strings.Join(types, " or "))
		}
		if typ == "Organization" && id == payerOrganizationID {
			return Ref{}, nil
		}
		ref := Ref{Type: typ, ID: id, Reference: r.Reference}
		if r.Identifier != nil {
			ref.Identifier = r.Identifier.Value
		}
		return ref, nil
	}
	if r.Identifier != nil && r.Identifier.Value != "" {
		if len(types) != 1 {
			return Ref{}, bad(path, "a logical reference (identifier only) must say its type")
		}
		return Ref{Type: types[0], Identifier: r.Identifier.Value}, nil
	}
	return Ref{}, nil
}

// splitReference splits "Type/id", "Type/id/_history/v", an absolute URL
// ending so, or "urn:uuid:…" (type unknown: rejected by the caller's type
// check unless it names the type in an earlier segment).
func splitReference(s string) (typ, id string, ok bool) {
	if i := strings.Index(s, "/_history/"); i >= 0 {
		s = s[:i]
	}
	j := strings.LastIndexByte(s, '/')
	if j <= 0 || j == len(s)-1 {
		return "", "", false
	}
	id = s[j+1:]
	rest := s[:j]
	k := strings.LastIndexByte(rest, '/')
	typ = rest[k+1:]
	if typ == "" || typ[0] < 'A' || typ[0] > 'Z' || !validID(id) {
		return "", "", false
	}
	return typ, id, true
}

// validID reports whether id is a FHIR id: 1–64 of A–Z, a–z, 0–9, "-", ".".
func validID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// requireRef is reference for a required element.
func requireRef(r *fReference, path string, types ...string) (Ref, error) {
	ref, err := reference(r, path, types...)
	if err == nil && ref.IsZero() {
		err = missing(path)
	}
	return ref, err
}

// Dates. FHIR dates may be partial (YYYY, YYYY-MM); the gateway's columns
// are full dates, so a partial date is rejected where a column needs it.

var minDate = gateway.NewDate(1850, 1, 1)

// date parses a FHIR date or dateTime to its calendar date ("" → zero).
func date(s, path string) (gateway.Date, error) {
	if s == "" {
		return gateway.Date{}, nil
	}
	if len(s) < 10 {
		return gateway.Date{}, bad(path, "partial date: a full date (YYYY-MM-DD) is required")
	}
	d, err := gateway.ParseDate(s[:10])
	if err != nil || (len(s) > 10 && s[10] != 'T') {
		return gateway.Date{}, bad(path, "not a FHIR date")
	}
	if d.Before(minDate) || d.After(gateway.NewDate(9999, 12, 31)) {
		return gateway.Date{}, bad(path, "date out of range")
	}
	if len(s) > 10 {
		if _, err := instantOf(s, path); err != nil {
			return gateway.Date{}, err
		}
	}
	return d, nil
}

// pastDate is date for dates that cannot be in the future (a birth date, a
// date of service, a claim's creation): after today is impossible.
func (p *Parser) pastDate(s, path string) (gateway.Date, error) {
	d, err := date(s, path)
	if err == nil && !d.IsZero() && d.After(p.Today) {
		err = bad(path, "date is in the future")
	}
	return d, err
}

// instantOf parses a FHIR dateTime (with a time zone when it has a time)
// or a full date (midnight UTC).
func instantOf(s, path string) (time.Time, error) {
	if len(s) == 10 {
		d, err := gateway.ParseDate(s)
		if err != nil {
			return time.Time{}, bad(path, "not a FHIR date")
		}
		return d.Time(), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, bad(path, "not a FHIR dateTime (YYYY-MM-DDThh:mm:ss with a time zone)")
	}
	return t, nil
}

// money parses an amount into cents; nil for an absent amount.
func money(m *fMoney, path string) (*gateway.Money, error) {
	if m == nil || m.Value == nil {
		return nil, nil
	}
	if m.Currency != "" && m.Currency != "USD" {
		return nil, bad(path+".currency", "only USD amounts are supported")
	}
	v, err := gateway.ParseMoney(m.Value.String())
	if err != nil || v >= 1e12 || v <= -1e12 {
		return nil, bad(path+".value", "not an amount with at most two decimals below 10 billion")
	}
	return &v, nil
}

// quantity parses a quantity's value; def when absent.
func quantity(q *fQuantity, path string, def float64) (float64, error) {
	if q == nil || q.Value == nil {
		return def, nil
	}
	v, err := q.Value.Float64()
	if err != nil || v < 0 || v >= 1e8 {
		return 0, bad(path+".value", "not a quantity between 0 and 100 million")
	}
	return v, nil
}

// number parses a decimal.
func number(n *json.Number, path string) (float64, error) {
	if n == nil {
		return 0, nil
	}
	v, err := n.Float64()
	if err != nil || v < 0 || v >= 1e8 {
		return 0, bad(path, "not a quantity between 0 and 100 million")
	}
	return v, nil
}

// identifierBySystem returns the value of the first identifier of system.
func identifierBySystem(ids []fIdentifier, system string) string {
	for _, id := range ids {
		if id.System == system && id.Value != "" {
			return id.Value
		}
	}
	return ""
}

// sourceID is the source system's id of a resource: its id.
func sourceID(id string, path string) (string, error) {
	if id != "" && !validID(id) {
		return "", bad(path, "not a FHIR id (1–64 letters, digits, '-' and '.')")
	}
	return id, nil
}

// literalReferences returns the reference strings of every element named
// "reference" in a resource's JSON text (a scan, not a decode: clinical
// resources are kept as text).
func literalReferences(text []byte) []string {
	var out []string
	key := []byte(`"reference"`)
	for i := 0; i < len(text); {
		j := bytes.Index(text[i:], key)
		if j < 0 {
			break
		}
		start := i + j
		i = start + len(key)
		if start > 0 && text[start-1] == '\\' {
			continue // inside a string
		}
		k := i
		for k < len(text) && isSpace(text[k]) {
			k++
		}
		if k >= len(text) || text[k] != ':' {
			continue
		}
		k++
		for k < len(text) && isSpace(text[k]) {
			k++
		}
		if k >= len(text) || text[k] != '"' {
			continue
		}
		end := k + 1
		for end < len(text) && text[end] != '"' {
			if text[end] == '\\' {
				end++
			}
			end++
		}
		if end >= len(text) {
			break
		}
		var s string
		if json.Unmarshal(text[k:end+1], &s) == nil {
			out = append(out, s)
		}
		i = end + 1
	}
	return out
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// checkText rejects text longer than max characters (names, displays).
func checkText(s string, max int, path string) error {
	if len(s) > max {
		return bad(path, "longer than %d characters", max)
	}
	return nil
}
