package ingest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"example.com/gateway/fhir"
	"example.com/gateway/gateway"
	"example.com/gateway/sandbox"
)

var testToday = gateway.NewDate(2026, 1, 15)

// readAll reads a whole file of kind into one batch.
func readAll(t *testing.T, kind Kind, r io.Reader) *Batch {
	t.Helper()
	rd, err := NewReader(kind, r, Options{Today: testToday})
	if err != nil {
		t.Fatal(err)
	}
	b := &Batch{}
	if err := rd.Next(b, 1<<20, 1<<30); err != nil {
		t.Fatal(err)
	}
	if err := rd.Next(&Batch{}, 1, 1); err != io.EOF {
		t.Fatalf("second Next = %v, want io.EOF", err)
	}
	return b
}

func readFile(t *testing.T, kind Kind, name string) *Batch {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "testdata", "import", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return readAll(t, kind, f)
}

func TestSampleFilesParse(t *testing.T) {
	b := readFile(t, KindFHIR, "providers.ndjson")
	if len(b.Organizations) != 2 || len(b.Practitioners) != 2 || len(b.Rejects) != 0 {
		t.Fatalf("providers: %d orgs, %d practitioners, rejects %v", len(b.Organizations), len(b.Practitioners), b.Rejects)
	}
	if o := b.Organizations[0]; o.NPI != "1234567893" || o.TIN != "123456789" || o.Name != "Riverside Health" || o.SourceID != "org-riverside" {
		t.Errorf("organization = %+v", o)
	}
	if p := b.Practitioners[0]; p.NPI != "1987654328" || p.FamilyName != "Okafor" || p.SpecialtyCode != "207Q00000X" {
		t.Errorf("practitioner = %+v", p)
	}

	b = readFile(t, KindFHIR, "members.ndjson")
	if len(b.Members) != 3 || len(b.Coverages) != 2 || len(b.Rejects) != 0 {
		t.Fatalf("members: %d members, %d coverages, rejects %v", len(b.Members), len(b.Coverages), b.Rejects)
	}
	m := b.Members[0]
	if m.Identifier != "M1001" || m.GivenName != "Alice" || m.Gender != gateway.GenderFemale ||
		m.BirthDate != gateway.NewDate(1980, 4, 12) || m.City != "Springfield" || m.Phone != "555-0101" {
		t.Errorf("member = %+v", m)
	}
	if b.Members[2].Identifier != "M1003" { // no MB type: the first identifier
		t.Errorf("member identifier without MB = %q", b.Members[2].Identifier)
	}
	if c := b.Coverages[0]; c.Identifier != "C1001" || c.Patient != (Ref{Type: "Patient", ID: "pat-1", Reference: "Patient/pat-1"}) ||
		c.GroupNumber != "G-100" || c.PlanName != "Choice PPO" || c.TypeCode != "PPO" {
		t.Errorf("coverage = %+v", c)
	}

	b = readFile(t, KindFHIR, "claims.ndjson")
	if len(b.Claims) != 4 || len(b.PriorAuthorizations) != 2 || len(b.Rejects) != 0 {
		t.Fatalf("claims: %d claims, %d prior authorizations, rejects %v", len(b.Claims), len(b.PriorAuthorizations), b.Rejects)
	}
	c := b.Claims[0]
	if c.Identifier != "CLM-1001" || c.Type != gateway.ClaimProfessional || c.Created != gateway.NewDate(2024, 3, 8) ||
		c.Processed != gateway.NewDate(2024, 3, 20) || c.PlaceOfService != "11" || c.Lines[0].PlaceOfService != "" {
		t.Errorf("claim = %+v", c.Claim)
	}
	if c.TotalPaid == nil || *c.TotalPaid != 9550 || c.PaymentAmount == nil || *c.PaymentAmount != 9550 ||
		c.Lines[0].Allowed == nil || *c.Lines[0].Allowed != 12050 || c.Lines[0].Copay == nil || *c.Lines[0].Copay != 2500 {
		t.Errorf("claim money: total paid %v, payment %v, line %+v", c.TotalPaid, c.PaymentAmount, c.Lines[0])
	}
	if c.BillingOrganization.ID != "org-riverside" || c.RenderingPractitioner.ID != "pr-okafor" || c.Coverage.ID != "cov-1" {
		t.Errorf("claim references = %+v %+v %+v", c.BillingOrganization, c.RenderingPractitioner, c.Coverage)
	}
	if s := b.Claims[1]; !s.Sensitive || !reflect.DeepEqual(s.SecurityLabels, []string{"42CFRPart2", "R"}) {
		t.Errorf("sensitive claim: sensitive %v labels %v", s.Sensitive, s.SecurityLabels)
	}
	if c := b.Claims[2]; c.Type != gateway.ClaimOutpatient || c.ServiceStart != gateway.NewDate(2015, 6, 1) {
		t.Errorf("pre-2016 outpatient claim = %+v", c.Claim)
	}
	pa := b.PriorAuthorizations[0]
	if pa.Identifier != "PA-2001" || pa.Status != gateway.PAApproved || pa.Drug || pa.DecidedOn != gateway.NewDate(2024, 6, 3) ||
		pa.ServiceCategory != "Advanced imaging" || pa.RequestingPractitioner.ID != "pr-okafor" || pa.Items[0].QuantityApproved != 1 {
		t.Errorf("prior authorization = %+v items %+v", pa.PriorAuthorization, pa.Items)
	}
	if pa := b.PriorAuthorizations[1]; pa.Status != gateway.PADenied || !pa.Drug || pa.DenialReasonCode != "50" ||
		pa.DenialReason != "Not medically necessary: step therapy not tried" {
		t.Errorf("denied drug prior authorization = %+v", pa.PriorAuthorization)
	}

	b = readFile(t, KindFHIR, "clinical.ndjson")
	if len(b.Encounters) != 1 || len(b.Clinical) != 8 || len(b.Rejects) != 0 {
		t.Fatalf("clinical: %d encounters, %d clinical, rejects %v", len(b.Encounters), len(b.Clinical), b.Rejects)
	}
	if e := b.Encounters[0]; e.Identifier != "E5001" || e.Class != "AMB" || !e.PeriodStart.Equal(time.Date(2024, 3, 4, 15, 30, 0, 0, time.UTC)) ||
		e.Practitioner.ID != "pr-okafor" || e.Organization.ID != "org-riverside" || e.ReasonCode != "E11.9" {
		t.Errorf("encounter = %+v", e)
	}
	cond := b.Clinical[0]
	if cond.SourceID != "cond-1" || cond.Code != "E11.9" || cond.Status != "active" || cond.DateOfService != gateway.NewDate(2019, 5, 1) ||
		len(cond.References) != 1 || cond.References[0] != (Ref{Type: "Practitioner", ID: "pr-okafor", Reference: "Practitioner/pr-okafor"}) {
		t.Errorf("condition = %+v", cond)
	}
	if bytes.Contains(cond.Resource, []byte(`"id"`)) {
		t.Errorf("stored resource keeps its id: %s", cond.Resource)
	}
	if psy := b.Clinical[3]; !psy.Sensitive || psy.SecurityLabels[0] != "PSY" {
		t.Errorf("sensitive condition = %+v", psy)
	}
	if imm := b.Clinical[4]; imm.ResourceType != gateway.ClinicalImmunization || imm.Patient.ID != "pat-3" || imm.Code != "141" {
		t.Errorf("immunization = %+v", imm)
	}
}

func TestBadLines(t *testing.T) {
	b := readFile(t, KindFHIR, "bad.ndjson")
	want := map[int]string{ // line → path
		2: "",
		3: "resourceType",
		4: "Patient.identifier",
		6: "Practitioner.identifier",
		7: "ExplanationOfBenefit.billablePeriod.start",
	}
	got := map[int]string{}
	for _, r := range b.Rejects {
		got[r.Line] = r.Path
		if r.Reason == "" {
			t.Errorf("line %d: no reason", r.Line)
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("rejects = %v, want %v (%+v)", got, want, b.Rejects)
	}
	// Line 5 (a dangling reference) parses: the store finds it dangling.
	if len(b.Members) != 1 || len(b.Claims) != 2 {
		t.Errorf("valid lines: %d members, %d claims", len(b.Members), len(b.Claims))
	}
	if lines := b.RecordLines(); !reflect.DeepEqual(lines, []int{1, 5, 8}) {
		t.Errorf("record lines = %v", lines)
	}
}

func TestRejectReasons(t *testing.T) {
	eob := func(mod string) string {
		base := `{"resourceType":"ExplanationOfBenefit","identifier":[{"system":"urn:example:payer:claim-id","value":"C1"}],` +
			`"status":"active","type":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/claim-type","code":"professional"}]},` +
			`"use":"claim","patient":{"reference":"Patient/p1"},"billablePeriod":{"start":"2024-01-01"},"created":"2024-01-10"`
		return base + mod + "}"
	}
	tests := []struct {
		name, line, path, reason string
	}{
		{"not an object", `[1,2]`, "", "invalid JSON"},
		{"trailing garbage", `{"resourceType":"Patient","identifier":[{"value":"M1"}]} x`, "", "invalid JSON"},
		{"no resourceType", `{"id":"x"}`, "resourceType", "required"},
		{"wrong JSON type", `{"resourceType":"Patient","identifier":[{"value":"M1"}],"birthDate":19800101}`, "Patient.birthDate", "wrong JSON type"},
		{"birth date in the future", `{"resourceType":"Patient","identifier":[{"value":"M1"}],"birthDate":"2099-01-01"}`, "Patient.birthDate", "future"},
		{"partial birth date", `{"resourceType":"Patient","identifier":[{"value":"M1"}],"birthDate":"1980"}`, "Patient.birthDate", "partial"},
		{"bad gender", `{"resourceType":"Patient","identifier":[{"value":"M1"}],"gender":"F"}`, "Patient.gender", "AdministrativeGender"},
		{"eob type mismatch", eob(`,"item":[{"sequence":"one"}]`), "ExplanationOfBenefit.item[0].sequence", "wrong JSON type"},
		{"eob item without product", eob(`,"item":[{"sequence":1}]`), "ExplanationOfBenefit.item[0].productOrService", "required"},
		{"eob bad NDC", eob(`,"item":[{"sequence":1,"productOrService":{"coding":[{"system":"http://hl7.org/fhir/sid/ndc","code":"12"}]}}]`), "ExplanationOfBenefit.item[0].productOrService", "NDC"},
		{"eob amount with three decimals", eob(`,"total":[{"category":{"coding":[{"code":"benefit"}]},"amount":{"value":1.234}}]`), "ExplanationOfBenefit.total[0].amount.value", "amount"},
		{"eob period backwards", eob(`,"billablePeriod":{"start":"2024-02-01","end":"2024-01-01"}`), "ExplanationOfBenefit.billablePeriod.end", "before"},
		{"eob wrong reference type", eob(`,"patient":{"reference":"Practitioner/x"}`), "ExplanationOfBenefit.patient", "Patient"},
		{"eob unknown use", `{"resourceType":"ExplanationOfBenefit","use":"predetermination"}`, "ExplanationOfBenefit.use", "unsupported"},
		{"organization without TIN", `{"resourceType":"Organization","identifier":[{"system":"http://hl7.org/fhir/sid/us-npi","value":"1234567893"}],"name":"X"}`, "Organization.identifier", "TIN"},
		{"encounter without class", `{"resourceType":"Encounter","identifier":[{"value":"E1"}],"status":"finished","subject":{"reference":"Patient/p"},"period":{"start":"2024-01-01"}}`, "Encounter.class", "required"},
		{"observation without subject", `{"resourceType":"Observation","id":"o1","status":"final","code":{"text":"x"}}`, "Observation.subject", "required"},
		{"condition in the future", `{"resourceType":"Condition","id":"c1","code":{"text":"x"},"subject":{"reference":"Patient/p"},"onsetDateTime":"2099-05-05"}`, "Condition.date", "future"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := readAll(t, KindFHIR, strings.NewReader(tt.line+"\n"))
			if len(b.Rejects) != 1 {
				t.Fatalf("rejects = %+v, records %d", b.Rejects, b.Records())
			}
			r := b.Rejects[0]
			if r.Path != tt.path || !strings.Contains(r.Reason, tt.reason) || r.Line != 1 {
				t.Errorf("reject = %+v, want path %q reason containing %q", r, tt.path, tt.reason)
			}
		})
	}
}

func TestLongLineAndBlankLines(t *testing.T) {
	in := "\n" + `{"resourceType":"Patient","identifier":[{"value":"M1"}]}` + "\r\n\n" + strings.Repeat("x", 300) + "\n"
	rd, err := NewReader(KindFHIR, strings.NewReader(in), Options{Today: testToday, MaxLineBytes: 100})
	if err != nil {
		t.Fatal(err)
	}
	b := &Batch{}
	if err := rd.Next(b, 100, 1<<20); err != nil {
		t.Fatal(err)
	}
	if len(b.Members) != 1 || b.Members[0].Line != 2 || len(b.Rejects) != 1 || b.Rejects[0].Line != 4 || b.Lines != 4 {
		t.Fatalf("members %+v rejects %+v lines %d", b.Members, b.Rejects, b.Lines)
	}
	off, n, ok := b.Position(2)
	if !ok || in[off:off+int64(n)] != `{"resourceType":"Patient","identifier":[{"value":"M1"}]}`+"\r" {
		t.Errorf("Position(2) = %d, %d, %v", off, n, ok)
	}
}

func TestBatchLimits(t *testing.T) {
	var sb strings.Builder
	for i := 0; i < 25; i++ {
		sb.WriteString(`{"resourceType":"Patient","identifier":[{"value":"M` + string(rune('A'+i)) + `"}]}` + "\n")
	}
	rd, _ := NewReader(KindFHIR, strings.NewReader(sb.String()), Options{Today: testToday, KeepRaw: true})
	var firsts []int
	for {
		b := &Batch{}
		err := rd.Next(b, 10, 1<<20)
		if err == io.EOF {
			break
		}
		firsts = append(firsts, b.FirstLine)
		if raw := b.Raw(b.FirstLine); !bytes.HasPrefix(raw, []byte(`{"resourceType":"Patient"`)) {
			t.Errorf("Raw(%d) = %q", b.FirstLine, raw)
		}
	}
	if !reflect.DeepEqual(firsts, []int{1, 11, 21}) {
		t.Errorf("batches start at %v", firsts)
	}
}

func TestCSV(t *testing.T) {
	b := readFile(t, KindAttribution, "attribution.csv")
	if len(b.Attributions) != 3 || len(b.Rejects) != 0 {
		t.Fatalf("attribution: %+v rejects %+v", b.Attributions, b.Rejects)
	}
	if a := b.Attributions[1]; a.Line != 3 || a.PractitionerNPI != "" || a.PeriodEnd != gateway.NewDate(2099, 12, 31) {
		t.Errorf("attribution row = %+v", a)
	}
	b = readFile(t, KindOptOut, "optout.csv")
	if len(b.OptOuts) != 1 || !b.OptOuts[0].OptedOut || b.OptOuts[0].RequestedBy != gateway.RequestedByPersonalRepresentative {
		t.Fatalf("optout: %+v rejects %+v", b.OptOuts, b.Rejects)
	}

	bad := "member_identifier,organization_npi,practitioner_npi,period_start,period_end\n" +
		"M1,1234567890,,2024-01-01,\n" + // bad NPI
		",1234567893,,2024-01-01,\n" + // no member
		"M1,1234567893,,2024-13-01,\n" + // bad date
		"M1,1234567893,,2024-02-01,2024-01-01\n" + // backwards
		"M1,1234567893\n" + // short row
		"M1,1234567893,1987654328,2024-01-01,\n" // fine
	b = readAll(t, KindAttribution, strings.NewReader(bad))
	paths := map[int]string{}
	for _, r := range b.Rejects {
		paths[r.Line] = r.Path
	}
	want := map[int]string{2: "organization_npi", 3: "member_identifier", 4: "period_start", 5: "period_end", 6: ""}
	if !reflect.DeepEqual(paths, want) || len(b.Attributions) != 1 || b.Attributions[0].Line != 7 {
		t.Errorf("rejects %v (want %v), rows %+v", paths, want, b.Attributions)
	}

	optBad := "member_identifier,opted_out,requested_by,representative_name,effective_date\n" +
		"M1,maybe,MEMBER,,2024-01-01\n" +
		"M1,true,PERSONAL_REPRESENTATIVE,,2024-01-01\n" +
		"M1,true,NEIGHBOUR,,2024-01-01\n" +
		"M1,false,member,,2099-01-01\n" +
		"M1,false,member,,2024-01-01\n"
	b = readAll(t, KindOptOut, strings.NewReader(optBad))
	paths = map[int]string{}
	for _, r := range b.Rejects {
		paths[r.Line] = r.Path
	}
	want = map[int]string{2: "opted_out", 3: "representative_name", 4: "requested_by", 5: "effective_date"}
	if !reflect.DeepEqual(paths, want) || len(b.OptOuts) != 1 || b.OptOuts[0].RequestedBy != gateway.RequestedByMember {
		t.Errorf("rejects %v (want %v), rows %+v", paths, want, b.OptOuts)
	}

	for _, header := range []string{"", "member_identifier,organization_npi\n", "a,b,c,d,e\n"} {
		if _, err := NewReader(KindAttribution, strings.NewReader(header), Options{Today: testToday}); err == nil {
			t.Errorf("header %q accepted", header)
		}
	}
	if _, err := NewReader(KindOptOut, strings.NewReader("\ufeffMember_Identifier, opted_out,requested_by,representative_name,effective_date\n"), Options{Today: testToday}); err != nil {
		t.Errorf("BOM and case: %v", err)
	}
}

// generatedEOBs maps a small sandbox data set to ExplanationOfBenefit lines
// with the full mapping (money included).
func generatedEOBs(t testing.TB, members int) [][]byte {
	g, err := sandbox.New(sandbox.Options{Members: members, Seed: 7, Today: testToday})
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for d := range g.Members() {
		for _, c := range d.Claims {
			b, _ := json.Marshal(fhir.FromClaim(c.Claim, c.Lines, c.Diagnoses, c.Procedures, fhir.Policy{Money: true}))
			out = append(out, b)
		}
		for _, p := range d.PriorAuthorizations {
			b, _ := json.Marshal(fhir.FromPriorAuthorization(p.PriorAuthorization, p.Items, fhir.Policy{Money: true}))
			out = append(out, b)
		}
	}
	return out
}

// TestFastDecoderMatchesEncodingJSON checks the ExplanationOfBenefit fast
// path against encoding/json: the same records, the same rejects.
func TestFastDecoderMatchesEncodingJSON(t *testing.T) {
	lines := generatedEOBs(t, 60)
	f, err := os.Open(filepath.Join("..", "testdata", "import", "claims.ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		lines = append(lines, append([]byte(nil), sc.Bytes()...))
	}
	f.Close()
	lines = append(lines,
		[]byte(`{"resourceType":"ExplanationOfBenefit","use":"claim","item":[{"sequence":1,"quantity":{"value":true}}]}`),
		[]byte(`{"resourceType":"ExplanationOfBenefit","use":"claim","status":"active","identifier":[{"value":"x\u00e9\"y"}]}`),
		[]byte(`{"resourceType":"ExplanationOfBenefit","use":null,"patient":null,"item":[]}`),
	)
	fast, std := &Parser{Today: testToday}, &Parser{Today: testToday, stdJSON: true}
	for i, l := range lines {
		a, b := &Batch{}, &Batch{}
		fast.ParseLine(a, i+1, l)
		std.ParseLine(b, i+1, l)
		a.raw, b.raw, a.rawLine, b.rawLine = nil, nil, nil, nil
		// The same lines are rejected; the paths may be written differently
		// (encoding/json does not index arrays).
		for _, b := range []*Batch{a, b} {
			for j := range b.Rejects {
				b.Rejects[j] = Reject{Line: b.Rejects[j].Line}
			}
		}
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("line %d: fast and encoding/json differ:\nfast %+v\nstd  %+v\n%s", i+1, a, b, l)
		}
	}
	if len(lines) < 100 {
		t.Fatalf("only %d lines", len(lines))
	}
}

// FuzzFastDecoder: the fast path never panics, rejects all invalid JSON,
// and calls no valid JSON invalid (a value of the wrong type is a reject of
// its own, which may come before a syntax error later in the line).
func FuzzFastDecoder(f *testing.F) {
	for _, l := range generatedEOBs(f, 3) {
		f.Add(l)
	}
	f.Add([]byte(`{"resourceType":"ExplanationOfBenefit","a":[1,-2.5e3,true,false,null,{"b":"\u0041"}]}`))
	f.Add([]byte(`{"a":01}`))
	f.Add([]byte(`{"a":"\x01"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var e fEOB
		err := decodeEOB(data, &e, nil)
		_, isSyntax := err.(syntaxError)
		switch valid := json.Valid(data); {
		case !valid && err == nil:
			t.Fatalf("invalid JSON accepted: %q", data)
		case valid && isSyntax:
			t.Fatalf("valid JSON called invalid (%v): %q", err, data)
		}
	})
}

func TestValidNPIMatchesGenerator(t *testing.T) {
	g, err := sandbox.New(sandbox.Options{Members: 0, Seed: 3, Today: testToday})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range g.Practitioners() {
		if !gateway.ValidNPI(p.NPI) {
			t.Errorf("generator's NPI %s invalid", p.NPI)
		}
	}
	for _, bad := range []string{"", "123456789", "12345678901", "1234567890", "123456789a", "0000000001"} {
		if gateway.ValidNPI(bad) {
			t.Errorf("ValidNPI(%q) = true", bad)
		}
	}
}
