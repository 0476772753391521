package export

import (
	"errors"
	"example.com/gateway/store"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"example.com/gateway/gateway"
)

// FuzzParseKickoff: any kick-off request (method, query string, Prefer,
// Accept, Content-Type, body) parses or is refused with BAD_USER_INPUT
// naming the parameter; it never panics and never accepts a request the
// FHIR Bulk Data kick-off rules refuse.
func FuzzParseKickoff(f *testing.F) {
	type seed struct {
		post                               bool
		query, prefer, accept, ctype, body string
	}
	for _, s := range []seed{
		{false, "", "respond-async", "", "", ""},
		{false, "_type=Patient,ExplanationOfBenefit&_since=2024-01-01T00:00:00Z", "respond-async", "application/fhir+json", "", ""},
		{false, "_since=2024-01-01T00:00:00+01:00", "respond-async", "", "", ""},
		{false, "_since=2024-01-01T00:00:00 01:00&_until=2025-01-01T00:00:00Z", "respond-async", "", "", ""},
		{false, "_typeFilter=ExplanationOfBenefit%3Ftype%3Dpharmacy%252Cprofessional,Encounter%3Fstatus%3Dfinished", "respond-async", "", "", ""},
		{false, "_elements=id&bogus=1", "respond-async, handling=lenient", "", "", ""},
		{false, "exportType=hl7.fhir.us.davinci-pdex#provider-delta", `handling="lenient"; respond-async`, "*/*", "", ""},
		{false, "patient=Patient/123,https://x/fhir/Patient/9?x", "respond-async", "", "", ""},
		{false, "%zz=1", "respond-async", "", "", ""},
		{false, "_since=%", "respond-async", "text/csv", "", ""},
		{true, "", "respond-async", "", "application/fhir+json",
			`{"resourceType":"Parameters","parameter":[{"name":"_type","valueString":"Patient,Coverage"},{"name":"_since","valueInstant":"2024-01-01T00:00:00Z"},{"name":"patient","valueReference":{"reference":"Patient/1"}},{"name":"includeAssociatedData","valueBoolean":true}]}`},
		{true, "", "respond-async", "", "application/x-www-form-urlencoded", "_type=Patient&_outputFormat=ndjson"},
		{true, "_type=Patient", "respond-async", "", "text/plain", "x"},
		{true, "", "respond-async", "", "", `{"resourceType":"Parameters","parameter":[{"name":"x"}]}`},
		{true, "", "respond-async", "", "application/json", `[`},
		{false, "", "", "", "", ""},
	} {
		f.Add(s.post, s.query, s.prefer, s.accept, s.ctype, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, post bool, query, prefer, accept, ctype string, body []byte) {
		method := http.MethodGet
		if post {
			method = http.MethodPost
		}
		r := httptest.NewRequest(method, "/fhir/Group/g1/$export", strings.NewReader(string(body)))
		r.URL.RawQuery = query // any bytes, as a client could send them
		for name, v := range map[string]string{"Prefer": prefer, "Accept": accept, "Content-Type": ctype} {
			if v != "" {
				r.Header.Set(name, v)
			}
		}
		req, err := ParseKickoff(r, gateway.OpGroupExport, "g1", "https://gw.example/fhir/Group/g1/$export")
		if err != nil {
			var ge *gateway.Error
			if !errors.As(err, &ge) || ge.Code != gateway.CodeInvalid {
				t.Fatalf("error %v (%T) is not BAD_USER_INPUT", err, err)
			}
			if ge.Path == "" || ge.Message == "" {
				t.Fatalf("BAD_USER_INPUT without a parameter or message: %+v", ge)
			}
			if len(ge.Message) > 2000 {
				t.Fatalf("message of %d bytes echoes the input unbounded", len(ge.Message))
			}
			return
		}
		// Accepted: the rules of a kick-off hold.
		if !preferTokens([]string{prefer})["respond-async"] {
			t.Fatalf("accepted without Prefer: respond-async (%q)", prefer)
		}
		if accept != "" && !acceptsFHIRJSON([]string{accept}) {
			t.Fatalf("accepted with Accept %q", accept)
		}
		if req.Operation != gateway.OpGroupExport || req.GroupID != "g1" {
			t.Fatalf("operation or group changed: %+v", req)
		}
		if req.OutputFormat != "" && req.OutputFormat != "application/fhir+ndjson" {
			t.Fatalf("output format %q", req.OutputFormat)
		}
		for _, tm := range []*time.Time{req.Since, req.Until} {
			if tm != nil && tm.IsZero() && !strings.Contains(query+string(body), "0001-01-01") {
				t.Fatalf("zero instant accepted from %q", query)
			}
		}
		if len(req.PatientIDs) != len(req.PatientRefs) {
			t.Fatalf("%d patient ids for %d references", len(req.PatientIDs), len(req.PatientRefs))
		}
		for _, id := range req.PatientIDs {
			if strings.ContainsAny(id, "/?#") {
				t.Fatalf("patient id %q keeps a path, query or fragment", id)
			}
		}
		if slices.Contains(req.Types, "") {
			t.Fatalf("empty _type accepted: %q", req.Types)
		}
		if !req.Lenient && len(req.Notes) > 0 {
			t.Fatalf("notes without lenient handling: %q", req.Notes)
		}
		if req.ExportType != "" {
			if _, err := url.Parse(string(req.ExportType)); err != nil {
				t.Fatalf("export type %q", req.ExportType)
			}
		}
	})
}

// FuzzTypeFilter: a _typeFilter value compiles only to a supported type
// and supported search parameters; anything else is BAD_USER_INPUT. A
// compiled filter can be evaluated against a row without panicking.
func FuzzTypeFilter(f *testing.F) {
	for _, s := range []string{
		"ExplanationOfBenefit?type=pharmacy,professional&service-date=ge2024-01-01",
		"ExplanationOfBenefit?use=preauthorization&status=active",
		"Encounter?date=lt2023&class=AMB",
		"Condition?code=http://snomed.info/sct|44054006",
		"Observation?_lastUpdated=gt2024-03-01T10:00:00Z",
		"Patient?_lastUpdated=2024",
		"Practitioner?name=x",
		"Coverage?status=active\\,cancelled",
		"ExplanationOfBenefit?",
		"?type=pharmacy",
		"Encounter?date=ge2024-02-30",
		"Immunization?date=eq9999-12-31T23:59:59.999999999+14:00",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		fs, err := compileFilters([]string{s})
		if err != nil {
			// Enqueue turns the message into BAD_USER_INPUT (or a lenient
			// note): it must say something, and not amplify the input
			// beyond Go quoting (%q writes a 4-byte rune as up to 10
			// bytes). Today it echoes the whole value unclipped, where
			// ParseKickoff clips its own values.
			if msg := err.Error(); msg == "" || len(msg) > 10*len(s)+300 {
				t.Fatalf("compileFilters(%q): message of %d bytes", s, len(msg))
			}
			return
		}
		for typ, list := range fs {
			allowed, ok := filterParams[typ]
			if !ok {
				t.Fatalf("compileFilters(%q) accepted type %q", s, typ)
			}
			for _, tf := range list {
				for _, c := range tf.clauses {
					if !slices.Contains(allowed, c.param) {
						t.Fatalf("compileFilters(%q) accepted %s?%s", s, typ, c.param)
					}
					if len(c.values) == 0 {
						t.Fatalf("compileFilters(%q): clause %s without values", s, c.param)
					}
				}
			}
			for _, row := range sampleRows() {
				fs.keep(typ, row)
			}
		}
		fs.mayMatchUse("claim")
		fs.mayMatchUse("preauthorization")
	})
}

// sampleRows are one row of each type a filter may be evaluated on, with
// dates set, and the zero rows (missing dates must not panic either).
func sampleRows() []any {
	d := gateway.NewDate(2024, time.March, 5)
	now := time.Date(2024, 3, 5, 10, 0, 0, 0, time.UTC)
	end := now.Add(time.Hour)
	return []any{
		&gateway.Member{LastUpdated: now}, &gateway.Member{},
		&gateway.Coverage{LastUpdated: now, Status: "active"}, &gateway.Coverage{},
		&store.ClaimRecord{Claim: gateway.Claim{LastUpdated: now, ServiceStart: d, ServiceEnd: d}}, &store.ClaimRecord{},
		&store.PriorAuthorizationRecord{PriorAuthorization: gateway.PriorAuthorization{LastUpdated: now, RequestedOn: d}},
		&store.PriorAuthorizationRecord{},
		&gateway.Encounter{LastUpdated: now, PeriodStart: now, PeriodEnd: &end, Status: "finished", Class: "AMB"}, &gateway.Encounter{},
		&gateway.ClinicalResource{LastUpdated: now, DateOfService: d, Code: "44054006", CodeSystem: "SNOMED"},
		&gateway.ClinicalResource{},
	}
}
