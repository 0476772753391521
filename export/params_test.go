package export

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"example.com/gateway/gateway"
	"example.com/gateway/store"
)

func kickoffRequest(method, target, body string, headers ...string) *http.Request {
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	r.Header.Set("Prefer", "respond-async")
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			r.Header.Del(headers[i])
		} else {
			r.Header.Set(headers[i], headers[i+1])
		}
	}
	return r
}

func TestParseKickoff(t *testing.T) {
	t.Parallel()
	const base = "/fhir/Group/g1/$export"
	tests := []struct {
		name    string
		r       *http.Request
		op      string
		want    func(t *testing.T, req Request)
		errPath string // BAD_USER_INPUT naming this parameter
	}{
		{name: "minimal, no Accept", r: kickoffRequest("GET", base, "", "Accept", ""),
			want: func(t *testing.T, req Request) {
				if req.Types != nil || req.Lenient || req.Since != nil {
					t.Errorf("%+v", req)
				}
			}},
		{name: "Prefer token list with lenient", r: kickoffRequest("GET", base+"?_elements=id", "", "Prefer", "respond-async, handling=lenient"),
			want: func(t *testing.T, req Request) {
				if !req.Lenient || len(req.Notes) != 1 {
					t.Errorf("%+v", req)
				}
			}},
		{name: "Prefer with semicolon and quotes", r: kickoffRequest("GET", base, "", "Prefer", `handling="lenient"; respond-async`),
			want: func(t *testing.T, req Request) {
				if !req.Lenient {
					t.Error("lenient not seen")
				}
			}},
		{name: "missing Prefer", r: kickoffRequest("GET", base, "", "Prefer", ""), errPath: "Prefer"},
		{name: "Prefer without respond-async", r: kickoffRequest("GET", base, "", "Prefer", "handling=lenient"), errPath: "Prefer"},
		{name: "Accept text/csv", r: kickoffRequest("GET", base, "", "Accept", "text/csv"), errPath: "Accept"},
		{name: "Accept fhir+json", r: kickoffRequest("GET", base, "", "Accept", "application/fhir+json")},
		{name: "_outputFormat text/csv", r: kickoffRequest("GET", base+"?_outputFormat=text/csv", ""), errPath: "_outputFormat"},
		{name: "_outputFormat ndjson", r: kickoffRequest("GET", base+"?_outputFormat=ndjson", ""),
			want: func(t *testing.T, req Request) {
				if req.OutputFormat != "application/fhir+ndjson" {
					t.Error(req.OutputFormat)
				}
			}},
		{name: "_outputFormat encoded", r: kickoffRequest("GET", base+"?_outputFormat=application%2Ffhir%2Bndjson", "")},
		{name: "bad _since", r: kickoffRequest("GET", base+"?_since=yesterday", ""), errPath: "_since"},
		{name: "_since date only", r: kickoffRequest("GET", base+"?_since=2024-01-01", ""), errPath: "_since"},
		{name: "_since with unencoded plus", r: kickoffRequest("GET", base+"?_since=2024-01-01T00:00:00+02:00", ""),
			want: func(t *testing.T, req Request) {
				if req.Since == nil || !req.Since.Equal(time.Date(2023, 12, 31, 22, 0, 0, 0, time.UTC)) {
					t.Errorf("since %v", req.Since)
				}
			}},
		{name: "repeated _type merged", r: kickoffRequest("GET", base+"?_type=Patient,Coverage&_type=ExplanationOfBenefit", ""),
			want: func(t *testing.T, req Request) {
				if !slices.Equal(req.Types, []string{"Patient", "Coverage", "ExplanationOfBenefit"}) {
					t.Error(req.Types)
				}
			}},
		{name: "_type with encoded commas, as url.Values sends it", r: kickoffRequest("GET", base+"?"+url.Values{"_type": {"Patient,ExplanationOfBenefit"}}.Encode(), ""),
			want: func(t *testing.T, req Request) {
				if !slices.Equal(req.Types, []string{"Patient", "ExplanationOfBenefit"}) {
					t.Error(req.Types)
				}
			}},
		{name: "_typeFilter split on unencoded commas, decoded once",
			r: kickoffRequest("GET", base+"?_typeFilter=ExplanationOfBenefit%3Ftype%3Dpharmacy%252Coral,Encounter%3Fstatus%3Dfinished&_typeFilter=Coverage%3Fstatus%3Dactive", ""),
			want: func(t *testing.T, req Request) {
				want := []string{"ExplanationOfBenefit?type=pharmacy%2Coral", "Encounter?status=finished", "Coverage?status=active"}
				if !slices.Equal(req.TypeFilters, want) {
					t.Errorf("%q", req.TypeFilters)
				}
			}},
		{name: "exportType canonical", r: kickoffRequest("GET", base+"?exportType=hl7.fhir.us.davinci-pdex%23provider-delta", ""),
			want: func(t *testing.T, req Request) {
				if req.ExportType != gateway.ProviderDelta {
					t.Error(req.ExportType)
				}
			}},
		{name: "unknown exportType", r: kickoffRequest("GET", base+"?exportType=full", ""), errPath: "exportType"},
		{name: "_elements refused", r: kickoffRequest("GET", base+"?_elements=id", ""), errPath: "_elements"},
		{name: "includeAssociatedData refused", r: kickoffRequest("GET", base+"?includeAssociatedData=LatestProvenanceResources", ""), errPath: "includeAssociatedData"},
		{name: "unknown parameter", r: kickoffRequest("GET", base+"?foo=bar", ""), errPath: "foo"},
		{name: "POST Parameters", op: gateway.OpDavinciDataExport,
			r: kickoffRequest("POST", "/fhir/Group/g1/$davinci-data-export", `{"resourceType":"Parameters","parameter":[
				{"name":"_type","valueString":"Patient,ExplanationOfBenefit"},
				{"name":"_since","valueInstant":"2024-05-01T00:00:00Z"},
				{"name":"exportType","valueCanonical":"hl7.fhir.us.davinci-pdex#provider-download"},
				{"name":"_typeFilter","valueString":"ExplanationOfBenefit?type=pharmacy,oral"},
				{"name":"patient","valueReference":{"reference":"Patient/abc"}},
				{"name":"patient","valueReference":{"reference":"https://x.example/fhir/Patient/def"}}]}`,
				"Content-Type", "application/fhir+json"),
			want: func(t *testing.T, req Request) {
				if !slices.Equal(req.Types, []string{"Patient", "ExplanationOfBenefit"}) || req.Since == nil ||
					!slices.Equal(req.TypeFilters, []string{"ExplanationOfBenefit?type=pharmacy,oral"}) ||
					!slices.Equal(req.PatientIDs, []string{"abc", "def"}) || req.ExportType != gateway.ProviderDownload {
					t.Errorf("%+v", req)
				}
			}},
		{name: "POST body not Parameters", r: kickoffRequest("POST", base, `{"resourceType":"Patient"}`), errPath: "body"},
		{name: "POST with empty body", r: kickoffRequest("POST", base+"?_type=Patient", "")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			op := tt.op
			if op == "" {
				op = gateway.OpGroupExport
			}
			req, err := ParseKickoff(tt.r, op, "g1", "https://x/fhir")
			if tt.errPath != "" {
				e, ok := err.(*gateway.Error)
				if !ok || e.Code != gateway.CodeInvalid || e.Path != tt.errPath {
					t.Fatalf("error %v, want BAD_USER_INPUT on %s", err, tt.errPath)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.want != nil {
				tt.want(t, req)
			}
		})
	}
}

func TestTypeFilterParseAndMatch(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{
		"ExplanationOfBenefit", "ExplanationOfBenefit?", "Claim?status=active", "ExplanationOfBenefit?_include=x",
		"ExplanationOfBenefit?type=foo", "ExplanationOfBenefit?service-date=soon", "Patient?name=x", "Practitioner?_lastUpdated=gt2020",
	} {
		if _, err := parseTypeFilter(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
	fs, err := compileFilters([]string{
		"ExplanationOfBenefit?type=pharmacy,oral&service-date=ge2020-01-01",
		"ExplanationOfBenefit?use=preauthorization",
		"Encounter?status=finished&date=lt2021",
		"Condition?code=http://hl7.org/fhir/sid/icd-10-cm|E11.9",
	})
	if err != nil {
		t.Fatal(err)
	}
	d := func(s string) gateway.Date { v, _ := gateway.ParseDate(s); return v }
	claim := func(typ gateway.ClaimType, dos string) any {
		return &storeClaim{Claim: gateway.Claim{Type: typ, ServiceStart: d(dos)}}
	}
	cases := []struct {
		typ  string
		row  any
		want bool
	}{
		{"ExplanationOfBenefit", claim(gateway.ClaimPharmacy, "2021-05-01"), true},
		{"ExplanationOfBenefit", claim(gateway.ClaimOral, "2019-05-01"), false},
		{"ExplanationOfBenefit", claim(gateway.ClaimProfessional, "2021-05-01"), false},
		{"ExplanationOfBenefit", &storePA{PriorAuthorization: gateway.PriorAuthorization{RequestedOn: d("2010-01-01")}}, true},
		{"Encounter", &gateway.Encounter{Status: "finished", PeriodStart: time.Date(2020, 3, 1, 0, 0, 0, 0, time.UTC)}, true},
		{"Encounter", &gateway.Encounter{Status: "finished", PeriodStart: time.Date(2021, 3, 1, 0, 0, 0, 0, time.UTC)}, false},
		{"Encounter", &gateway.Encounter{Status: "planned", PeriodStart: time.Date(2020, 3, 1, 0, 0, 0, 0, time.UTC)}, false},
		{"Condition", &gateway.ClinicalResource{Code: "E11.9", CodeSystem: "http://hl7.org/fhir/sid/icd-10-cm"}, true},
		{"Condition", &gateway.ClinicalResource{Code: "I10", CodeSystem: "http://hl7.org/fhir/sid/icd-10-cm"}, false},
		{"Patient", &gateway.Member{}, true}, // no filter for the type
	}
	for i, c := range cases {
		if got := fs.keep(c.typ, c.row); got != c.want {
			t.Errorf("case %d (%s): keep = %v, want %v", i, c.typ, got, c.want)
		}
	}
}

type (
	storeClaim = store.ClaimRecord
	storePA    = store.PriorAuthorizationRecord
)

func TestFiltersMayMatchUse(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		filters         []string
		claim, priorAut bool
	}{
		{nil, true, true},
		{[]string{"ExplanationOfBenefit?use=claim"}, true, false},
		{[]string{"ExplanationOfBenefit?use=preauthorization&type=oral"}, false, true},
		{[]string{"ExplanationOfBenefit?use=claim", "ExplanationOfBenefit?type=oral"}, true, true},
		{[]string{"ExplanationOfBenefit?use=claim,preauthorization"}, true, true},
		{[]string{"Encounter?status=finished"}, true, true},
	} {
		fs, err := compileFilters(c.filters)
		if err != nil {
			t.Fatal(err)
		}
		if fs.mayMatchUse("claim") != c.claim || fs.mayMatchUse("preauthorization") != c.priorAut {
			t.Errorf("%v: claim %v preauthorization %v", c.filters, fs.mayMatchUse("claim"), fs.mayMatchUse("preauthorization"))
		}
	}
}
