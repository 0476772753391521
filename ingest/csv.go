package ingest

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"

	"example.com/gateway/gateway"
)

// The CSV headers of DESIGN.md §4 ("Import formats"), checked exactly
// (column names are case-insensitive, surrounding spaces and a UTF-8 byte
// order mark are ignored).
var (
	AttributionHeader = []string{"member_identifier", "organization_npi", "practitioner_npi", "period_start", "period_end"}
	OptOutHeader      = []string{"member_identifier", "opted_out", "requested_by", "representative_name", "effective_date"}
)

type csvReader struct {
	kind  Kind
	r     *csv.Reader
	today gateway.Date
	line  int
}

func newCSVReader(kind Kind, r io.Reader, today gateway.Date) (*csvReader, error) {
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	cr.FieldsPerRecord = -1 // checked per record, so that a short row is one reject
	want := AttributionHeader
	if kind == KindOptOut {
		want = OptOutHeader
	}
	h, err := cr.Read()
	if err == io.EOF {
		return nil, fmt.Errorf("%s: empty file: the header %s is required", kind, strings.Join(want, ","))
	}
	if err != nil {
		return nil, fmt.Errorf("%s: header: %w", kind, err)
	}
	ok := len(h) == len(want)
	for i := 0; ok && i < len(h); i++ {
		col := strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h[i], "\ufeff")))
		ok = col == want[i]
	}
	if !ok {
		return nil, fmt.Errorf("%s: the header must be %s", kind, strings.Join(want, ","))
	}
	return &csvReader{kind: kind, r: cr, today: today, line: 1}, nil
}

func (c *csvReader) next(b *Batch, maxLines int) error {
	for b.Lines < maxLines {
		rec, err := c.r.Read()
		if err == io.EOF {
			break
		}
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			// The csv package reports the line where the record starts.
			c.line = max(c.line+1, pe.StartLine)
			if b.Lines == 0 {
				b.FirstLine = c.line
			}
			b.Lines++
			b.Rejects = append(b.Rejects, Reject{Line: c.line, Reason: "invalid CSV: " + pe.Err.Error(), Type: string(c.kind)})
			continue
		}
		if err != nil {
			return err
		}
		line, _ := c.r.FieldPos(0)
		c.line = line
		if b.Lines == 0 {
			b.FirstLine = line
		}
		b.Lines++
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue // a blank line
		}
		var rerr error
		if c.kind == KindAttribution {
			rerr = c.attribution(b, line, rec)
		} else {
			rerr = c.optOut(b, line, rec)
		}
		if rerr != nil {
			r := Reject{Line: line, Reason: rerr.Error(), Type: string(c.kind)}
			var re *rejectErr
			if errors.As(rerr, &re) {
				r.Path, r.Reason = re.path, re.reason
			}
			b.Rejects = append(b.Rejects, r)
		}
	}
	if b.Lines == 0 {
		return io.EOF
	}
	return nil
}

func fieldCount(rec []string, want []string) error {
	if len(rec) != len(want) {
		return fmt.Errorf("%d columns where %d are expected", len(rec), len(want))
	}
	return nil
}

func csvDate(s, col string) (gateway.Date, error) {
	d, err := gateway.ParseDate(s)
	if err != nil {
		return d, bad(col, "not a date (YYYY-MM-DD)")
	}
	if d.Before(minDate) {
		return d, bad(col, "date out of range")
	}
	return d, nil
}

func (c *csvReader) attribution(b *Batch, line int, rec []string) error {
	if err := fieldCount(rec, AttributionHeader); err != nil {
		return err
	}
	a := Attribution{
		Line:             line,
		MemberIdentifier: strings.TrimSpace(rec[0]),
		OrganizationNPI:  strings.TrimSpace(rec[1]),
		PractitionerNPI:  strings.TrimSpace(rec[2]),
	}
	switch {
	case a.MemberIdentifier == "":
		return missing("member_identifier")
	case len(a.MemberIdentifier) > 64:
		return bad("member_identifier", "longer than 64 characters")
	case a.OrganizationNPI == "":
		return missing("organization_npi")
	case !gateway.ValidNPI(a.OrganizationNPI):
		return bad("organization_npi", "invalid NPI: ten digits with a Luhn check digit are required")
	case a.PractitionerNPI != "" && !gateway.ValidNPI(a.PractitionerNPI):
		return bad("practitioner_npi", "invalid NPI: ten digits with a Luhn check digit are required")
	}
	start, end := strings.TrimSpace(rec[3]), strings.TrimSpace(rec[4])
	if start == "" {
		return missing("period_start")
	}
	var err error
	if a.PeriodStart, err = csvDate(start, "period_start"); err != nil {
		return err
	}
	if end != "" {
		if a.PeriodEnd, err = csvDate(end, "period_end"); err != nil {
			return err
		}
		if a.PeriodEnd.Before(a.PeriodStart) {
			return bad("period_end", "period ends before it starts")
		}
	}
	b.Attributions = append(b.Attributions, a)
	return nil
}

func (c *csvReader) optOut(b *Batch, line int, rec []string) error {
	if err := fieldCount(rec, OptOutHeader); err != nil {
		return err
	}
	o := OptOut{
		Line:               line,
		MemberIdentifier:   strings.TrimSpace(rec[0]),
		RequestedBy:        gateway.OptOutRequester(strings.ToUpper(strings.TrimSpace(rec[2]))),
		RepresentativeName: strings.TrimSpace(rec[3]),
	}
	switch {
	case o.MemberIdentifier == "":
		return missing("member_identifier")
	case len(o.MemberIdentifier) > 64:
		return bad("member_identifier", "longer than 64 characters")
	}
	switch strings.ToLower(strings.TrimSpace(rec[1])) {
	case "true", "1", "yes", "y", "t":
		o.OptedOut = true
	case "false", "0", "no", "n", "f":
	case "":
		return missing("opted_out")
	default:
		return bad("opted_out", "not a boolean (true or false)")
	}
	switch o.RequestedBy {
	case gateway.RequestedByMember:
	case gateway.RequestedByPersonalRepresentative:
		if o.RepresentativeName == "" {
			return bad("representative_name", "required when requested_by is PERSONAL_REPRESENTATIVE")
		}
	case "":
		return missing("requested_by")
	default:
		return bad("requested_by", "must be MEMBER or PERSONAL_REPRESENTATIVE")
	}
	if len(o.RepresentativeName) > 200 {
		return bad("representative_name", "longer than 200 characters")
	}
	eff := strings.TrimSpace(rec[4])
	if eff == "" {
		return missing("effective_date")
	}
	var err error
	if o.EffectiveDate, err = csvDate(eff, "effective_date"); err != nil {
		return err
	}
	if o.EffectiveDate.After(c.today) {
		return bad("effective_date", "date is in the future")
	}
	b.OptOuts = append(b.OptOuts, o)
	return nil
}
