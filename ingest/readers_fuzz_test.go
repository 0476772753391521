package ingest

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"example.com/gateway/gateway"
)

// readBatches reads all of data as kind in batches of at most 3 lines (so
// batch boundaries are exercised) and checks what every batch must hold:
// line numbers inside the batch's range and increasing from batch to
// batch, no line both a record and a reject, no line recorded twice. It
// returns the batches.
func readBatches(t *testing.T, kind Kind, data []byte, lines int) []*Batch {
	t.Helper()
	rd, err := NewReader(kind, bytes.NewReader(data), Options{Today: testToday, KeepRaw: true, MaxLineBytes: 4 << 10})
	if err != nil {
		return nil // a wrong or missing header loads nothing: fine
	}
	var out []*Batch
	last := 0
	for n := 0; ; n++ {
		if n > lines+2 {
			t.Fatalf("more batches (%d) than lines (%d)", n, lines)
		}
		b := &Batch{}
		err := rd.Next(b, 3, 1<<20)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("Next: %v (bytes.Reader cannot fail)", err)
		}
		if b.Lines <= 0 || b.Lines > 3 {
			t.Fatalf("batch of %d lines", b.Lines)
		}
		lo, hi := b.FirstLine, rd.Line()
		if lo <= last || hi < lo {
			t.Fatalf("batch lines %d..%d after line %d", lo, hi, last)
		}
		seen := map[int]string{}
		for _, l := range b.RecordLines() {
			if l < lo || l > hi {
				t.Fatalf("record on line %d outside the batch's %d..%d", l, lo, hi)
			}
			if seen[l] != "" {
				t.Fatalf("line %d recorded twice", l)
			}
			seen[l] = "record"
		}
		for _, r := range b.Rejects {
			if r.Line < lo || r.Line > hi {
				t.Fatalf("reject on line %d outside the batch's %d..%d: %v", r.Line, lo, hi, r)
			}
			if seen[r.Line] == "record" {
				t.Fatalf("line %d both a record and a reject (%v)", r.Line, r)
			}
			if r.Reason == "" {
				t.Fatalf("reject without a reason on line %d", r.Line)
			}
		}
		last = hi
		out = append(out, b)
	}
	return out
}

// FuzzReadAttributionCSV: any attribution file is read without panicking
// into records that each satisfy DESIGN.md §4's rules, or rejects.
func FuzzReadAttributionCSV(f *testing.F) {
	h := strings.Join(AttributionHeader, ",") + "\n"
	for _, s := range []string{
		h + "M1,1234567893,,2025-01-01,\nM2,1234567893,1245319599,2025-01-01,2025-12-31\n",
		h + "M1,1234567890,,2025-01-01,\n",              // bad NPI
		h + "M1,1234567893,,2025-02-30,\n",              // bad date
		h + "M1,1234567893,,2025-03-01,2025-01-01\n",    // ends before it starts
		h + "\"M1\n2\",1234567893,,2025-01-01,\n\n,,\n", // quoted newline, blank, short
		h + "M1,\"1234567893,,2025-01-01,\n",            // bare quote
		"\ufeff" + strings.ToUpper(h) + "M1,1234567893,,1900-01-01,\r\n",
		"member_identifier,organization_npi\nM1,1234567893\n",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, b := range readBatches(t, KindAttribution, data, bytes.Count(data, []byte("\n"))+1) {
			for _, a := range b.Attributions {
				switch {
				case a.MemberIdentifier == "" || len(a.MemberIdentifier) > 64 || strings.TrimSpace(a.MemberIdentifier) != a.MemberIdentifier:
					t.Fatalf("line %d: member identifier %q", a.Line, a.MemberIdentifier)
				case !gateway.ValidNPI(a.OrganizationNPI):
					t.Fatalf("line %d: organization NPI %q", a.Line, a.OrganizationNPI)
				case a.PractitionerNPI != "" && !gateway.ValidNPI(a.PractitionerNPI):
					t.Fatalf("line %d: practitioner NPI %q", a.Line, a.PractitionerNPI)
				case a.PeriodStart.IsZero():
					t.Fatalf("line %d: no period start", a.Line)
				case !a.PeriodEnd.IsZero() && a.PeriodEnd.Before(a.PeriodStart):
					t.Fatalf("line %d: period %v..%v", a.Line, a.PeriodStart, a.PeriodEnd)
				}
			}
			if len(b.Members)+len(b.Claims)+len(b.OptOuts)+len(b.Clinical) > 0 {
				t.Fatal("an attribution file produced other records")
			}
		}
	})
}

// FuzzReadOptOutCSV: the same for opt-out files.
func FuzzReadOptOutCSV(f *testing.F) {
	h := strings.Join(OptOutHeader, ",") + "\n"
	for _, s := range []string{
		h + "M1,true,MEMBER,,2025-01-01\nM2,false,PERSONAL_REPRESENTATIVE,Pat Doe,2025-06-01\n",
		h + "M1,maybe,MEMBER,,2025-01-01\n",
		h + "M1,1,personal_representative,,2025-01-01\n",
		h + "M1,0,MEMBER,,\n",
		h + "M1,yes,MEMBER,,2099-01-01\n",
		h + "\"M\"\"1\",t,MEMBER,,2025-01-01,extra\n",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, b := range readBatches(t, KindOptOut, data, bytes.Count(data, []byte("\n"))+1) {
			for _, o := range b.OptOuts {
				switch {
				case o.MemberIdentifier == "" || len(o.MemberIdentifier) > 64:
					t.Fatalf("line %d: member identifier %q", o.Line, o.MemberIdentifier)
				case o.RequestedBy != gateway.RequestedByMember && o.RequestedBy != gateway.RequestedByPersonalRepresentative:
					t.Fatalf("line %d: requested_by %q", o.Line, o.RequestedBy)
				case o.RequestedBy == gateway.RequestedByPersonalRepresentative && o.RepresentativeName == "":
					t.Fatalf("line %d: a representative without a name", o.Line)
				case len(o.RepresentativeName) > 200:
					t.Fatalf("line %d: representative name of %d bytes", o.Line, len(o.RepresentativeName))
				}
			}
			if len(b.Members)+len(b.Claims)+len(b.Attributions)+len(b.Clinical) > 0 {
				t.Fatal("an opt-out file produced other records")
			}
		}
	})
}

// FuzzReadFHIR: any NDJSON file is read without panicking; each line is a
// record, a skip or a reject, and a record's kept text is its line.
func FuzzReadFHIR(f *testing.F) {
	for _, s := range []string{
		`{"resourceType":"Patient","id":"p1","identifier":[{"type":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0203","code":"MB"}]},"value":"M1"}],"name":[{"family":"Doe","given":["Pat"]}],"birthDate":"1980-02-03","gender":"female"}`,
		`{"resourceType":"Coverage","id":"c1","status":"active","beneficiary":{"reference":"Patient/p1"},"period":{"start":"2024-01-01"}}`,
		`{"resourceType":"Encounter","id":"e1","status":"finished","class":{"code":"AMB"},"subject":{"reference":"Patient/p1"},"period":{"start":"2024-01-02T10:00:00Z"}}`,
		`{"resourceType":"ExplanationOfBenefit","use":"claim","status":"active","patient":{"reference":"Patient/p1"},"billablePeriod":{"start":"2024-01-02"}}`,
		`{"resourceType":"Condition","subject":{"reference":"Patient/p1"},"code":{"coding":[{"system":"http://snomed.info/sct","code":"44054006"}]},"recordedDate":"2024-01-02"}`,
		`{"resourceType":"Practitioner","identifier":[{"system":"http://hl7.org/fhir/sid/us-npi","value":"1245319599"}]}`,
		`{"resourceType":"Bundle"}`,
		`{"resourceType":"Patient"`,
		"\n\n[]\nnull\n\"x\"",
		"\ufeff{}",
	} {
		f.Add([]byte(s + "\n" + s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		lines := bytes.Split(data, []byte("\n"))
		for _, b := range readBatches(t, KindFHIR, data, len(lines)) {
			for _, l := range b.RecordLines() {
				raw := b.Raw(l)
				want := bytes.TrimSuffix(lines[l-1], []byte("\r"))
				if !bytes.Equal(raw, lines[l-1]) && !bytes.Equal(raw, want) {
					t.Fatalf("line %d kept as %q, read %q", l, raw, lines[l-1])
				}
			}
		}
	})
}
