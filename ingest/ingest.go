// Package ingest reads the payer's import files — FHIR R4 NDJSON and the
// attribution and opt-out CSVs of DESIGN.md §4 ("Import formats") — into
// records that package store loads. Each line is validated on its own: a
// line becomes either one record or one Reject with the reason and the
// element at fault, never both and never half of a record.
//
// It owns the reading of those formats and nothing else: no SQL, no file or
// network I/O beyond the io.Reader it is given, no clock (the caller passes
// today). Whether a reference resolves is the store's question: records
// carry references as the source wrote them (Ref), and the store resolves
// them in its set-based merge. It reads the shapes package fhir writes (a
// FHIR export of the gateway imports back unchanged) and shares its
// identifier systems.
package ingest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"

	"example.com/gateway/gateway"
)

// Kind is the format of an import file (`import --kind`).
type Kind string

const (
	KindFHIR        Kind = "fhir"        // FHIR R4 NDJSON, one resource per line
	KindAttribution Kind = "attribution" // attribution CSV
	KindOptOut      Kind = "optout"      // opt-out CSV
)

// ParseKind returns the Kind named s.
func ParseKind(s string) (Kind, error) {
	switch k := Kind(s); k {
	case KindFHIR, KindAttribution, KindOptOut:
		return k, nil
	}
	return "", fmt.Errorf("unknown kind %q: want fhir, attribution or optout", s)
}

// Reject is a line that is not loaded: its 1-based line number in its file,
// why, and the element at fault (a FHIRPath-like path such as
// "Patient.birthDate" or "ExplanationOfBenefit.item[1].productOrService", a
// CSV column name, or "" for the whole line). Reasons name elements, never
// their values: a rejects file carries no PHI.
type Reject struct {
	Line   int    `json:"line"`
	Reason string `json:"reason"`
	Path   string `json:"path"`
	// Type is the resource type (or "attribution"/"optout") when known, for
	// the per-kind counts; not written to the rejects file.
	Type string `json:"-"`
}

func (r Reject) Error() string {
	if r.Path == "" {
		return fmt.Sprintf("line %d: %s", r.Line, r.Reason)
	}
	return fmt.Sprintf("line %d: %s: %s", r.Line, r.Path, r.Reason)
}

// Ref is a reference to another resource as the source system wrote it. The
// store resolves it, in this order, to a row that is not sandbox data: a
// resource of Type with id ID loaded by an earlier line or import (the
// source system's ids are remembered), a row whose gateway id is ID, or a
// row whose business identifier is Identifier (members: member identifier;
// practitioners and organizations: NPI; coverages and encounters: their
// identifier). The zero Ref is "no reference".
type Ref struct {
	Type       string // Patient, Practitioner, Organization or Coverage
	ID         string // "Type/id" (relative or absolute), the id part
	Identifier string // Reference.identifier.value (a logical reference)
	Reference  string // Reference.reference as written
}

// IsZero reports whether r refers to nothing.
func (r Ref) IsZero() bool { return r.ID == "" && r.Identifier == "" }

// Member is a Patient: the member and the source system's id of it.
type Member struct {
	Line     int
	SourceID string
	gateway.Member
}

// Practitioner is a Practitioner, identified by NPI.
type Practitioner struct {
	Line     int
	SourceID string
	gateway.Practitioner
}

// Organization is a provider Organization, identified by NPI.
type Organization struct {
	Line     int
	SourceID string
	gateway.Organization
	Address string // JSON object of the first address, "{}" when none
}

// Coverage is a Coverage of a member.
type Coverage struct {
	Line     int
	SourceID string
	Patient  Ref
	gateway.Coverage
}

// Claim is an ExplanationOfBenefit with use=claim.
type Claim struct {
	Line                  int
	Patient               Ref
	Coverage              Ref
	BillingOrganization   Ref
	RenderingPractitioner Ref
	gateway.Claim
	SecurityLabels []string
	Lines          []gateway.ClaimLine
	Diagnoses      []gateway.ClaimDiagnosis
	Procedures     []gateway.ClaimProcedure
}

// PriorAuthorization is an ExplanationOfBenefit with use=preauthorization.
type PriorAuthorization struct {
	Line                   int
	Patient                Ref
	RequestingPractitioner Ref
	Organization           Ref
	gateway.PriorAuthorization
	SecurityLabels []string
	Items          []gateway.PriorAuthorizationItem
}

// Encounter is an Encounter.
type Encounter struct {
	Line         int
	SourceID     string
	Patient      Ref
	Practitioner Ref
	Organization Ref
	gateway.Encounter
	SecurityLabels []string
}

// Clinical is a US Core clinical resource (Condition, Observation,
// MedicationRequest, Immunization, AllergyIntolerance, Procedure), kept as
// JSON with its typed columns. Resource is the resource as received, minus
// id, meta.lastUpdated and meta.versionId (the gateway sets those when it
// serves it). References lists its literal references to practitioners and
// organizations anywhere in the resource: the store resolves them like the
// others and rewrites them to the gateway's ids. (References to the patient
// need no rewrite: the gateway points every one of them at the member when
// it serves the resource; references to other types are kept as written.)
type Clinical struct {
	Line    int
	Patient Ref
	gateway.ClinicalResource
	SecurityLabels []string
	References     []Ref
}

// Attribution is one row of an attribution CSV.
type Attribution struct {
	Line             int
	MemberIdentifier string
	OrganizationNPI  string
	PractitionerNPI  string // "": organization-level
	PeriodStart      gateway.Date
	PeriodEnd        gateway.Date // zero: open
}

// OptOut is one row of an opt-out CSV.
type OptOut struct {
	Line               int
	MemberIdentifier   string
	OptedOut           bool
	RequestedBy        gateway.OptOutRequester
	RepresentativeName string
	EffectiveDate      gateway.Date
}

// Batch is a run of consecutive lines of one file, read into records. The
// store loads a batch in one transaction.
type Batch struct {
	Kind      Kind
	FirstLine int // line number of the first line in the batch
	Lines     int // lines read into the batch, blank lines included

	Members             []Member
	Practitioners       []Practitioner
	Organizations       []Organization
	Coverages           []Coverage
	Claims              []Claim
	PriorAuthorizations []PriorAuthorization
	Encounters          []Encounter
	Clinical            []Clinical
	Attributions        []Attribution
	OptOuts             []OptOut
	// Skipped are valid lines with nothing to store (the payer's own
	// Organization), counted as unchanged, by resource type.
	Skipped map[string]int

	Rejects []Reject

	// Where each line read into a record is, so that a line whose
	// references do not resolve yet can be retried later: its text in raw
	// when the reader's KeepRaw is set (Raw), else its place in the file
	// (Position).
	raw      []byte
	rawLine  []rawSpan
	inMemory bool // the spans index raw
}

// rawSpan is a line's text: raw[off:off+n], or n bytes at offset off of
// the file when raw is not kept.
type rawSpan struct {
	line int
	off  int64
	n    int
}

// Reset empties b for reuse, keeping its capacity.
func (b *Batch) Reset() {
	*b = Batch{
		Kind:                b.Kind,
		Members:             b.Members[:0],
		Practitioners:       b.Practitioners[:0],
		Organizations:       b.Organizations[:0],
		Coverages:           b.Coverages[:0],
		Claims:              b.Claims[:0],
		PriorAuthorizations: b.PriorAuthorizations[:0],
		Encounters:          b.Encounters[:0],
		Clinical:            b.Clinical[:0],
		Attributions:        b.Attributions[:0],
		OptOuts:             b.OptOuts[:0],
		Rejects:             b.Rejects[:0],
		raw:                 b.raw[:0],
		rawLine:             b.rawLine[:0],
	}
}

// Records returns the number of records in b (lines that were neither
// rejected nor skipped).
func (b *Batch) Records() int {
	return len(b.Members) + len(b.Practitioners) + len(b.Organizations) + len(b.Coverages) +
		len(b.Claims) + len(b.PriorAuthorizations) + len(b.Encounters) + len(b.Clinical) +
		len(b.Attributions) + len(b.OptOuts)
}

// Raw returns the text of line as read (without its newline), or nil when
// the line is not in b or raw text was not kept.
func (b *Batch) Raw(line int) []byte {
	s, ok := b.span(line)
	if !ok || !b.inMemory {
		return nil
	}
	return b.raw[s.off : s.off+int64(s.n)]
}

// Position returns where line is in its file (byte offset and length,
// without the newline) when raw text was not kept.
func (b *Batch) Position(line int) (offset int64, length int, ok bool) {
	s, ok := b.span(line)
	if !ok || b.inMemory {
		return 0, 0, false
	}
	return s.off, s.n, true
}

func (b *Batch) span(line int) (rawSpan, bool) {
	// Lines are appended in order: binary search.
	lo, hi := 0, len(b.rawLine)
	for lo < hi {
		m := (lo + hi) / 2
		if b.rawLine[m].line < line {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo < len(b.rawLine) && b.rawLine[lo].line == line {
		return b.rawLine[lo], true
	}
	return rawSpan{}, false
}

// Range returns a copy of b's records whose lines are in [lo, hi) (without
// rejects or skips), for bisecting a batch the database refused.
func (b *Batch) Range(lo, hi int) *Batch {
	return b.filter(func(line int) bool { return line >= lo && line < hi })
}

func (b *Batch) filter(keep func(line int) bool) *Batch {
	out := &Batch{Kind: b.Kind, FirstLine: b.FirstLine, Lines: b.Lines, raw: b.raw, rawLine: b.rawLine, inMemory: b.inMemory}
	out.Members = filterLines(b.Members, keep, func(r *Member) int { return r.Line })
	out.Practitioners = filterLines(b.Practitioners, keep, func(r *Practitioner) int { return r.Line })
	out.Organizations = filterLines(b.Organizations, keep, func(r *Organization) int { return r.Line })
	out.Coverages = filterLines(b.Coverages, keep, func(r *Coverage) int { return r.Line })
	out.Claims = filterLines(b.Claims, keep, func(r *Claim) int { return r.Line })
	out.PriorAuthorizations = filterLines(b.PriorAuthorizations, keep, func(r *PriorAuthorization) int { return r.Line })
	out.Encounters = filterLines(b.Encounters, keep, func(r *Encounter) int { return r.Line })
	out.Clinical = filterLines(b.Clinical, keep, func(r *Clinical) int { return r.Line })
	out.Attributions = filterLines(b.Attributions, keep, func(r *Attribution) int { return r.Line })
	out.OptOuts = filterLines(b.OptOuts, keep, func(r *OptOut) int { return r.Line })
	return out
}

func filterLines[T any](s []T, keep func(int) bool, line func(*T) int) []T {
	var out []T
	for i := range s {
		if keep(line(&s[i])) {
			out = append(out, s[i])
		}
	}
	return out
}

// Partition splits b's records into n batches that can load concurrently:
// a member's records (the Patient, and whatever refers to it: coverage,
// claims, prior authorizations, encounters, clinical resources, attribution
// and opt-out rows) go to the same batch, by a hash of the member's key, so
// that the lines of one member load in order; organizations and
// practitioners go to the first batch. Rejects and skips stay with the
// first batch. The batches share b's line texts.
func (b *Batch) Partition(n int) []*Batch {
	if n <= 1 {
		return []*Batch{b}
	}
	parts := make([]*Batch, n)
	for i := range parts {
		parts[i] = &Batch{Kind: b.Kind, FirstLine: b.FirstLine, Lines: b.Lines, raw: b.raw, rawLine: b.rawLine, inMemory: b.inMemory}
	}
	parts[0].Rejects, parts[0].Skipped = b.Rejects, b.Skipped
	parts[0].Organizations, parts[0].Practitioners = b.Organizations, b.Practitioners
	pick := func(key string) *Batch {
		// FNV-1a: stable, cheap.
		h := uint32(2166136261)
		for i := 0; i < len(key); i++ {
			h = (h ^ uint32(key[i])) * 16777619
		}
		return parts[h%uint32(n)]
	}
	ref := func(r Ref) string { return cmpOr(r.ID, r.Identifier) }
	for i := range b.Members {
		m := &b.Members[i]
		p := pick(cmpOr(m.SourceID, m.Identifier))
		p.Members = append(p.Members, *m)
	}
	for i := range b.Coverages {
		p := pick(ref(b.Coverages[i].Patient))
		p.Coverages = append(p.Coverages, b.Coverages[i])
	}
	for i := range b.Claims {
		p := pick(ref(b.Claims[i].Patient))
		p.Claims = append(p.Claims, b.Claims[i])
	}
	for i := range b.PriorAuthorizations {
		p := pick(ref(b.PriorAuthorizations[i].Patient))
		p.PriorAuthorizations = append(p.PriorAuthorizations, b.PriorAuthorizations[i])
	}
	for i := range b.Encounters {
		p := pick(ref(b.Encounters[i].Patient))
		p.Encounters = append(p.Encounters, b.Encounters[i])
	}
	for i := range b.Clinical {
		p := pick(ref(b.Clinical[i].Patient))
		p.Clinical = append(p.Clinical, b.Clinical[i])
	}
	for i := range b.Attributions {
		p := pick(b.Attributions[i].MemberIdentifier)
		p.Attributions = append(p.Attributions, b.Attributions[i])
	}
	for i := range b.OptOuts {
		p := pick(b.OptOuts[i].MemberIdentifier)
		p.OptOuts = append(p.OptOuts, b.OptOuts[i])
	}
	return parts
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// RecordLines returns the line numbers of b's records, in ascending order.
func (b *Batch) RecordLines() []int {
	lines := make([]int, 0, b.Records())
	add := func(n int) { lines = append(lines, n) }
	for i := range b.Members {
		add(b.Members[i].Line)
	}
	for i := range b.Practitioners {
		add(b.Practitioners[i].Line)
	}
	for i := range b.Organizations {
		add(b.Organizations[i].Line)
	}
	for i := range b.Coverages {
		add(b.Coverages[i].Line)
	}
	for i := range b.Claims {
		add(b.Claims[i].Line)
	}
	for i := range b.PriorAuthorizations {
		add(b.PriorAuthorizations[i].Line)
	}
	for i := range b.Encounters {
		add(b.Encounters[i].Line)
	}
	for i := range b.Clinical {
		add(b.Clinical[i].Line)
	}
	for i := range b.Attributions {
		add(b.Attributions[i].Line)
	}
	for i := range b.OptOuts {
		add(b.OptOuts[i].Line)
	}
	slices.Sort(lines)
	return lines
}

// TypeOfLine returns the resource type (or kind) of the record on line, ""
// when there is none.
func (b *Batch) TypeOfLine(line int) string {
	for i := range b.Members {
		if b.Members[i].Line == line {
			return "Patient"
		}
	}
	for i := range b.Practitioners {
		if b.Practitioners[i].Line == line {
			return "Practitioner"
		}
	}
	for i := range b.Organizations {
		if b.Organizations[i].Line == line {
			return "Organization"
		}
	}
	for i := range b.Coverages {
		if b.Coverages[i].Line == line {
			return "Coverage"
		}
	}
	for i := range b.Claims {
		if b.Claims[i].Line == line {
			return "ExplanationOfBenefit"
		}
	}
	for i := range b.PriorAuthorizations {
		if b.PriorAuthorizations[i].Line == line {
			return "ExplanationOfBenefit"
		}
	}
	for i := range b.Encounters {
		if b.Encounters[i].Line == line {
			return "Encounter"
		}
	}
	for i := range b.Clinical {
		if b.Clinical[i].Line == line {
			return string(b.Clinical[i].ResourceType)
		}
	}
	for i := range b.Attributions {
		if b.Attributions[i].Line == line {
			return string(KindAttribution)
		}
	}
	for i := range b.OptOuts {
		if b.OptOuts[i].Line == line {
			return string(KindOptOut)
		}
	}
	return ""
}

// Options configure a Reader.
type Options struct {
	// Today is the date against which "in the future" is judged (birth
	// dates, dates of service, effective dates). Required.
	Today gateway.Date
	// KeepRaw keeps the text of every FHIR line in its batch (Batch.Raw),
	// for input that cannot be read again (standard input); otherwise a
	// batch records where its lines are (Batch.Position).
	KeepRaw bool
	// MaxLineBytes rejects longer lines (default 16 MiB).
	MaxLineBytes int
}

// Reader reads one file of one Kind into batches.
type Reader struct {
	kind  Kind
	opts  Options
	r     *bufio.Reader
	line  int
	off   int64 // offset of the next line
	csv   *csvReader
	parse *Parser
	long  []byte
}

// NewReader returns a Reader of r. For the CSV kinds it reads and checks
// the header line first, and returns an error when it is not the header of
// DESIGN.md §4: a file with the wrong columns loads nothing.
func NewReader(kind Kind, r io.Reader, opts Options) (*Reader, error) {
	if opts.Today.IsZero() {
		return nil, errors.New("ingest: Options.Today is required")
	}
	if opts.MaxLineBytes <= 0 {
		opts.MaxLineBytes = 16 << 20
	}
	rd := &Reader{kind: kind, opts: opts, r: bufio.NewReaderSize(r, 256<<10), parse: &Parser{Today: opts.Today}}
	switch kind {
	case KindFHIR:
	case KindAttribution, KindOptOut:
		c, err := newCSVReader(kind, rd.r, opts.Today)
		if err != nil {
			return nil, err
		}
		rd.csv = c
	default:
		return nil, fmt.Errorf("ingest: unknown kind %q", kind)
	}
	return rd, nil
}

// Line returns the number of the last line read.
func (rd *Reader) Line() int {
	if rd.csv != nil {
		return rd.csv.line
	}
	return rd.line
}

// Next resets b and reads up to maxLines lines (or about maxBytes of text,
// whichever comes first) into it. It returns io.EOF, with b empty, when the
// file is exhausted; any other error is a read error of the file.
func (rd *Reader) Next(b *Batch, maxLines, maxBytes int) error {
	b.Reset()
	b.Kind = rd.kind
	if rd.csv != nil {
		return rd.csv.next(b, maxLines)
	}
	b.FirstLine = rd.line + 1
	bytesRead := 0
	for b.Lines < maxLines && bytesRead < maxBytes {
		start := rd.off
		text, n, err := rd.readLine()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		rd.off += int64(n)
		rd.line++
		b.Lines++
		bytesRead += n
		if text == nil { // too long: rejected by readLine
			b.Rejects = append(b.Rejects, Reject{Line: rd.line, Reason: fmt.Sprintf("line longer than %d bytes", rd.opts.MaxLineBytes)})
			continue
		}
		if rd.parse.fhirLine(b, rd.line, text) {
			if rd.opts.KeepRaw {
				b.keep(rd.line, text)
			} else {
				b.rawLine = append(b.rawLine, rawSpan{line: rd.line, off: start, n: len(text)})
			}
		}
	}
	if b.Lines == 0 {
		return io.EOF
	}
	return nil
}

// readLine returns the next line without its line ending and the number
// of bytes it took in the file; a nil line (and no error) for a line over
// MaxLineBytes, which is consumed; io.EOF at the end.
func (rd *Reader) readLine() ([]byte, int, error) {
	rd.long = rd.long[:0]
	tooLong := false
	n := 0
	for {
		chunk, err := rd.r.ReadSlice('\n')
		n += len(chunk)
		if err == bufio.ErrBufferFull {
			if !tooLong {
				rd.long = append(rd.long, chunk...)
				if len(rd.long) > rd.opts.MaxLineBytes {
					tooLong, rd.long = true, rd.long[:0]
				}
			}
			continue
		}
		if err != nil && err != io.EOF {
			return nil, n, err
		}
		if err == io.EOF && n == 0 {
			return nil, 0, io.EOF
		}
		if tooLong {
			return nil, n, nil
		}
		line := chunk
		if len(rd.long) > 0 {
			rd.long = append(rd.long, chunk...)
			line = rd.long
			if len(line) > rd.opts.MaxLineBytes {
				return nil, n, nil
			}
		}
		line = bytes.TrimSuffix(line, []byte("\n"))
		return line, n, nil
	}
}

// Parser turns single FHIR lines into records. ParseLine is what a Reader
// does with each line; it is exported for lines read elsewhere (a retry of
// lines whose references did not resolve yet).
type Parser struct {
	Today gateway.Date

	stdJSON bool              // tests: decode ExplanationOfBenefit with encoding/json
	strs    map[string]string // interned strings of the fast decoder
}

// ParseLine reads one FHIR NDJSON line (number line) into b: one record, a
// skip or a reject. The text of a record is kept for Batch.Raw.
func (p *Parser) ParseLine(b *Batch, line int, text []byte) {
	if p.fhirLine(b, line, text) {
		b.keep(line, text)
	}
}

// keep keeps the text of line in b.
func (b *Batch) keep(line int, text []byte) {
	off := len(b.raw)
	b.inMemory = true
	b.raw = append(b.raw, text...)
	b.rawLine = append(b.rawLine, rawSpan{line: line, off: int64(off), n: len(text)})
}
