package export

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"example.com/gateway/fhir"
	"example.com/gateway/gateway"
	"example.com/gateway/store"
)

// _typeFilter (FHIR Bulk Data 2.0, "_typeFilter Query Parameter"): each
// value is a FHIR search query "Type?param=value&…"; several filters for one
// type are OR'ed, the parameters of one filter AND'ed, and comma-separated
// values of one parameter OR'ed (FHIR search). The supported subset uses
// search parameters of CARIN BB, US Core and FHIR R4 (§pdex-375) that the
// gateway's records carry:
//
//	every type but Practitioner, Organization: _lastUpdated (prefixes eq ne gt ge lt le)
//	ExplanationOfBenefit: type (claim-type code: institutional, oral, pharmacy,
//	    professional), use (claim, preauthorization), status, service-date
//	Encounter: status, class, date
//	Coverage: status
//	Condition, Observation, MedicationRequest, Immunization,
//	    AllergyIntolerance, Procedure: status, code, date (date of service)
//
// Anything else is unsupported: 400, or ignored under Prefer:
// handling=lenient (and then listed in the manifest's error file).

// typeFilter is one parsed filter: a type and the AND of its clauses.
type typeFilter struct {
	resourceType string
	clauses      []clause
}

// clause is one search parameter: the OR of its values.
type clause struct {
	param  string
	values []filterValue
}

type filterValue struct {
	system, code string    // token
	prefix       string    // date: eq ne gt ge lt le
	lo, hi       time.Time // date: the value's range [lo, hi)
}

var filterParams = map[string][]string{
	"Patient":              {"_lastUpdated"},
	"Coverage":             {"_lastUpdated", "status"},
	"ExplanationOfBenefit": {"_lastUpdated", "type", "use", "status", "service-date"},
	"Encounter":            {"_lastUpdated", "status", "class", "date"},
	"Condition":            {"_lastUpdated", "status", "code", "date"},
	"Observation":          {"_lastUpdated", "status", "code", "date"},
	"MedicationRequest":    {"_lastUpdated", "status", "code", "date"},
	"Immunization":         {"_lastUpdated", "status", "code", "date"},
	"AllergyIntolerance":   {"_lastUpdated", "status", "code", "date"},
	"Procedure":            {"_lastUpdated", "status", "code", "date"},
}

func isDateParam(p string) bool {
	return p == "_lastUpdated" || p == "service-date" || p == "date"
}

// parseTypeFilter parses one decoded filter "Type?param=value&…".
func parseTypeFilter(s string) (typeFilter, error) {
	typ, query, ok := strings.Cut(s, "?")
	if !ok || typ == "" || query == "" {
		return typeFilter{}, fmt.Errorf("_typeFilter %s is not a FHIR query of the form Type?param=value", clip(s))
	}
	allowed, ok := filterParams[typ]
	if !ok {
		return typeFilter{}, fmt.Errorf("_typeFilter on %s is not supported", clip(typ))
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return typeFilter{}, fmt.Errorf("_typeFilter %s: malformed query", clip(s))
	}
	f := typeFilter{resourceType: typ}
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !slices.Contains(allowed, k) {
			return typeFilter{}, fmt.Errorf("_typeFilter: search parameter %s of %s is not supported (supported: %s)", clip(k), typ, strings.Join(allowed, ", "))
		}
		for _, raw := range q[k] { // a repeated parameter: AND
			c := clause{param: k}
			for _, v := range splitUnescaped(raw) { // comma-separated values: OR
				fv, err := parseFilterValue(typ, k, v)
				if err != nil {
					return typeFilter{}, err
				}
				c.values = append(c.values, fv)
			}
			f.clauses = append(f.clauses, c)
		}
	}
	return f, nil
}

// splitUnescaped splits a FHIR search value on commas not escaped as "\,".
func splitUnescaped(s string) []string {
	var out []string
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\\' && i+1 < len(s) && (s[i+1] == ',' || s[i+1] == '\\' || s[i+1] == '$' || s[i+1] == '|'):
			b.WriteByte(s[i+1])
			i++
		case s[i] == ',':
			out = append(out, b.String())
			b.Reset()
		default:
			b.WriteByte(s[i])
		}
	}
	return append(out, b.String())
}

func parseFilterValue(typ, param, v string) (filterValue, error) {
	if v == "" {
		return filterValue{}, fmt.Errorf("_typeFilter: empty value for %s of %s", param, typ)
	}
	if isDateParam(param) {
		prefix := "eq"
		if len(v) > 2 && strings.Contains("eq ne gt ge lt le", v[:2]) && v[2] >= '0' && v[2] <= '9' {
			prefix, v = v[:2], v[2:]
		}
		lo, hi, err := dateRange(v)
		if err != nil {
			return filterValue{}, fmt.Errorf("_typeFilter: %s of %s: %v", param, typ, err)
		}
		return filterValue{prefix: prefix, lo: lo, hi: hi}, nil
	}
	fv := filterValue{code: v}
	if sys, code, ok := strings.Cut(v, "|"); ok {
		fv.system, fv.code = sys, code
	}
	switch {
	case param == "type" && !slices.Contains([]string{"institutional", "oral", "pharmacy", "professional", "vision"}, fv.code):
		return fv, fmt.Errorf("_typeFilter: type %s of %s is not a claim-type code", clip(fv.code), typ)
	case param == "use" && fv.code != "claim" && fv.code != "preauthorization":
		return fv, fmt.Errorf("_typeFilter: use %s of %s is not claim or preauthorization", clip(fv.code), typ)
	}
	return fv, nil
}

// dateRange returns the range a FHIR date, dateTime or instant value
// covers: a year, a month, a day or an instant.
func dateRange(v string) (lo, hi time.Time, err error) {
	for _, f := range []struct {
		layout string
		next   func(time.Time) time.Time
	}{
		{"2006", func(t time.Time) time.Time { return t.AddDate(1, 0, 0) }},
		{"2006-01", func(t time.Time) time.Time { return t.AddDate(0, 1, 0) }},
		{"2006-01-02", func(t time.Time) time.Time { return t.AddDate(0, 0, 1) }},
		{time.RFC3339Nano, func(t time.Time) time.Time { return t.Add(time.Microsecond) }},
	} {
		if t, err := time.Parse(f.layout, v); err == nil {
			return t, f.next(t), nil
		}
	}
	return lo, hi, fmt.Errorf("%s is not a FHIR date or instant", clip(v))
}

// matchDate reports whether a resource whose value covers [lo, hi) matches
// the value with its prefix (FHIR search "Date parameters": ranges).
func (v filterValue) matchDate(lo, hi time.Time) bool {
	if lo.IsZero() {
		return false // no such date: matches no date filter
	}
	if hi.Before(lo) {
		hi = lo
	}
	switch v.prefix {
	case "ne":
		return !(!lo.Before(v.lo) && !hi.After(v.hi))
	case "gt":
		return hi.After(v.hi)
	case "ge":
		return hi.After(v.lo)
	case "lt":
		return lo.Before(v.lo)
	case "le":
		return lo.Before(v.hi)
	}
	// eq: the resource's range lies within the value's.
	return !lo.Before(v.lo) && !hi.After(v.hi)
}

func (v filterValue) matchToken(system, code string) bool {
	return (v.system == "" || v.system == system) && strings.EqualFold(v.code, code)
}

// filters are a job's compiled _typeFilter values.
type filters map[string][]typeFilter

func compileFilters(values []string) (filters, error) {
	if len(values) == 0 {
		return nil, nil
	}
	fs := filters{}
	for _, v := range values {
		f, err := parseTypeFilter(v)
		if err != nil {
			return nil, err
		}
		fs[f.resourceType] = append(fs[f.resourceType], f)
	}
	return fs, nil
}

// keep is store.ExportBatch.Keep: a row is exported when its type has no
// filter or any filter of its type matches.
func (fs filters) keep(resourceType string, row any) bool {
	list := fs[resourceType]
	if len(list) == 0 {
		return true
	}
	for _, f := range list {
		if f.match(row) {
			return true
		}
	}
	return false
}

func (f typeFilter) match(row any) bool {
	for _, c := range f.clauses {
		ok := false
		for _, v := range c.values {
			if matchValue(c.param, v, row) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

const systemClaimType = "http://terminology.hl7.org/CodeSystem/claim-type"

func matchValue(param string, v filterValue, row any) bool {
	day := func(d gateway.Date) time.Time { return d.Time() }
	dayEnd := func(start, end gateway.Date) time.Time {
		if end.IsZero() {
			end = start
		}
		if end.IsZero() {
			return time.Time{}
		}
		return end.Time().AddDate(0, 0, 1)
	}
	instant := func(t time.Time) (time.Time, time.Time) { return t, t.Add(time.Microsecond) }
	switch r := row.(type) {
	case *gateway.Member:
		if param == "_lastUpdated" {
			return v.matchDate(instant(r.LastUpdated))
		}
	case *gateway.Coverage:
		switch param {
		case "_lastUpdated":
			return v.matchDate(instant(r.LastUpdated))
		case "status":
			return v.matchToken("", r.Status)
		}
	case *store.ClaimRecord:
		c := &r.Claim
		switch param {
		case "_lastUpdated":
			return v.matchDate(instant(c.LastUpdated))
		case "type":
			return v.matchToken(systemClaimType, claimTypeCode(c.Type))
		case "use":
			return v.matchToken("", "claim")
		case "status":
			return v.matchToken("", claimStatusCode(c.Status))
		case "service-date":
			return v.matchDate(day(c.ServiceStart), dayEnd(c.ServiceStart, c.ServiceEnd))
		}
	case *store.PriorAuthorizationRecord:
		pa := &r.PriorAuthorization
		switch param {
		case "_lastUpdated":
			return v.matchDate(instant(pa.LastUpdated))
		case "type":
			// The claim-type the mapping gives the authorization (rare
			// filter: mapping twice is cheaper than duplicating its rule).
			e := fhir.FromPriorAuthorization(*pa, nil, fhir.Policy{})
			return len(e.Type.Coding) > 0 && v.matchToken(e.Type.Coding[0].System, e.Type.Coding[0].Code)
		case "use":
			return v.matchToken("", "preauthorization")
		case "status":
			status := "active"
			if pa.Status == gateway.PACancelled {
				status = "cancelled"
			}
			return v.matchToken("", status)
		case "service-date":
			start := pa.AuthorizedStart
			if start.IsZero() {
				start = pa.RequestedOn
			}
			return v.matchDate(day(start), dayEnd(start, pa.AuthorizedEnd))
		}
	case *gateway.Encounter:
		switch param {
		case "_lastUpdated":
			return v.matchDate(instant(r.LastUpdated))
		case "status":
			return v.matchToken("", r.Status)
		case "class":
			return v.matchToken("", r.Class)
		case "date":
			end := r.PeriodStart.Add(time.Microsecond)
			if r.PeriodEnd != nil && r.PeriodEnd.After(end) {
				end = *r.PeriodEnd
			}
			return v.matchDate(r.PeriodStart, end)
		}
	case *gateway.ClinicalResource:
		switch param {
		case "_lastUpdated":
			return v.matchDate(instant(r.LastUpdated))
		case "status":
			return v.matchToken("", r.Status)
		case "code":
			return v.matchToken(fhir.CodeSystem(r.CodeSystem), r.Code) || v.matchToken(r.CodeSystem, r.Code)
		case "date":
			return v.matchDate(day(r.DateOfService), dayEnd(r.DateOfService, gateway.Date{}))
		}
	}
	return false
}

func claimTypeCode(t gateway.ClaimType) string {
	switch t {
	case gateway.ClaimInpatient, gateway.ClaimOutpatient:
		return "institutional"
	case gateway.ClaimOral:
		return "oral"
	case gateway.ClaimPharmacy:
		return "pharmacy"
	}
	return "professional"
}

// claimStatusCode is ExplanationOfBenefit.status of a claim (as the mapping
// sets it).
func claimStatusCode(s gateway.ClaimStatus) string {
	switch s {
	case gateway.ClaimCancelled:
		return "cancelled"
	case gateway.ClaimEnteredInError:
		return "entered-in-error"
	}
	return "active"
}

// mayMatchUse reports whether some row of ExplanationOfBenefit with use
// (claim or preauthorization) can pass the filters: false when every filter
// of the type requires the other use, so the rows need not be read at all.
func (fs filters) mayMatchUse(use string) bool {
	list := fs["ExplanationOfBenefit"]
	if len(list) == 0 {
		return true
	}
	for _, f := range list {
		ok := true
		for _, c := range f.clauses {
			if c.param != "use" {
				continue
			}
			ok = slices.ContainsFunc(c.values, func(v filterValue) bool { return v.code == use })
			if !ok {
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}
