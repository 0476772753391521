package export

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"example.com/gateway/gateway"
)

// Kick-off parameters (FHIR Bulk Data 2.0 "Query Parameters"; Da Vinci ATR
// davinci-data-export; PDex §pdex-359–375), from the query string of a GET
// or POST and from a POST body that is a FHIR Parameters resource (or a
// form). A parameter repeated (or given in both places) is merged as if
// comma-joined.

// maxKickoffBody bounds a POST kick-off's Parameters body.
const maxKickoffBody = 1 << 20

// kickoffParam is one parameter occurrence. Values from the query string
// are split on commas; _typeFilter's on unencoded commas before decoding.
type kickoffParam struct {
	name   string
	values []string
}

// ParseKickoff reads a kick-off request into a Request for operation op
// (gateway.OpGroupExport, OpDavinciDataExport or OpPatientExport) on group
// groupID ("" for Patient/$export). requestURL is the manifest's request
// (FHIR Bulk Data: the kick-off URL, with its query for GET; without
// parameters for POST). Errors are BAD_USER_INPUT naming the parameter or
// header: Prefer must contain respond-async; Accept, when present, must
// accept FHIR JSON.
func ParseKickoff(r *http.Request, op, groupID, requestURL string) (Request, error) {
	req := Request{Operation: op, GroupID: groupID, RequestURL: requestURL}
	prefs := preferTokens(r.Header.Values("Prefer"))
	if !prefs["respond-async"] {
		return req, invalid("Prefer", "the Prefer header must include respond-async (FHIR Bulk Data kick-off request)")
	}
	req.Lenient = prefs["handling=lenient"]
	if !acceptsFHIRJSON(r.Header.Values("Accept")) {
		return req, invalid("Accept", "the Accept header must allow application/fhir+json")
	}

	params, err := queryParams(r.URL.RawQuery)
	if err != nil {
		return req, err
	}
	if r.Method == http.MethodPost {
		body, err := bodyParams(r)
		if err != nil {
			return req, err
		}
		params = append(params, body...)
	}

	single := map[string]string{}
	for _, p := range params {
		switch p.name {
		case "_outputFormat", "_since", "_until", "exportType":
			for _, v := range p.values {
				if prev, ok := single[p.name]; ok && prev != v {
					return req, invalid(p.name, "%s may be given once", p.name)
				}
				single[p.name] = v
			}
		case "_type":
			if req.Types == nil {
				req.Types = []string{}
			}
			req.Types = append(req.Types, p.values...)
		case "_typeFilter":
			req.TypeFilters = append(req.TypeFilters, p.values...)
		case "patient":
			if req.PatientIDs == nil {
				req.PatientIDs = []string{}
			}
			for _, ref := range p.values {
				req.PatientIDs = append(req.PatientIDs, patientID(ref))
				req.PatientRefs = append(req.PatientRefs, ref)
			}
		case "_elements", "includeAssociatedData", "organizeOutputBy", "allowPartialManifests":
			// Not implemented (documented). FHIR Bulk Data: refuse, or
			// ignore under lenient handling.
			if !req.Lenient {
				return req, invalid(p.name, "%s is not supported by this server", p.name)
			}
			req.Notes = append(req.Notes, p.name+" is not supported by this server (ignored: Prefer: handling=lenient)")
		default:
			if !req.Lenient {
				return req, invalid(p.name, "unknown parameter %q", clipName(p.name))
			}
			req.Notes = append(req.Notes, "unknown parameter "+clip(p.name)+" (ignored: Prefer: handling=lenient)")
		}
	}

	if v, ok := single["_outputFormat"]; ok {
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "application/fhir+ndjson", "application/ndjson", "ndjson":
			req.OutputFormat = "application/fhir+ndjson"
		default:
			return req, invalid("_outputFormat", "_outputFormat %s is not supported: use application/fhir+ndjson", clip(v))
		}
	}
	for _, name := range []string{"_since", "_until"} {
		v, ok := single[name]
		if !ok {
			continue
		}
		t, err := parseInstant(v)
		if err != nil {
			return req, invalid(name, "%s %s is not a FHIR instant (e.g. 2024-01-31T00:00:00Z)", name, clip(v))
		}
		if name == "_since" {
			req.Since = &t
		} else {
			req.Until = &t
		}
	}
	if v, ok := single["exportType"]; ok {
		t, ok := gateway.ExportTypeFromCanonical(strings.TrimSpace(v))
		if !ok {
			return req, invalid("exportType", "exportType %s is not one of %s, %s, %s", clip(v),
				gateway.CanonicalProviderDownload, gateway.CanonicalProviderDelta, gateway.CanonicalProviderSnapshot)
		}
		req.ExportType = t
	}
	return req, nil
}

// preferTokens returns the preferences of Prefer headers as a set of
// lower-case tokens ("respond-async", "handling=lenient"): a list separated
// by commas or semicolons, quotes removed (RFC 7240).
func preferTokens(headers []string) map[string]bool {
	out := map[string]bool{}
	for _, h := range headers {
		for _, tok := range strings.FieldsFunc(h, func(r rune) bool { return r == ',' || r == ';' }) {
			k, v, _ := strings.Cut(strings.TrimSpace(tok), "=")
			tok = strings.ToLower(strings.TrimSpace(k))
			if v = strings.Trim(strings.TrimSpace(v), `"`); v != "" {
				tok += "=" + strings.ToLower(v)
			}
			out[tok] = true
		}
	}
	return out
}

// acceptsFHIRJSON: a missing Accept is taken as application/fhir+json
// (FHIR Bulk Data: the server may assume it).
func acceptsFHIRJSON(headers []string) bool {
	if len(headers) == 0 {
		return true
	}
	for _, h := range headers {
		for _, r := range strings.Split(h, ",") {
			mt, _, err := mime.ParseMediaType(strings.TrimSpace(r))
			if err != nil {
				continue
			}
			switch mt {
			case "application/fhir+json", "application/json", "application/*", "*/*", "application/json+fhir":
				return true
			}
		}
	}
	return false
}

// queryParams splits a raw query string into parameters. Values are split
// on commas; a _typeFilter value on the commas that are not percent-encoded,
// each part then decoded once (FHIR Bulk Data: "_typeFilter values are
// URL-encoded FHIR queries").
func queryParams(raw string) ([]kickoffParam, error) {
	var out []kickoffParam
	for _, kv := range strings.Split(raw, "&") {
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		name, err := url.QueryUnescape(k)
		if err != nil {
			return nil, invalid("query", "malformed query string")
		}
		if name == "" {
			return nil, invalid("query", "a query parameter has no name")
		}
		p := kickoffParam{name: name}
		// Values are comma-separated. A _typeFilter is itself a URL-encoded
		// FHIR query, whose own commas arrive encoded (%2C): split it on
		// literal commas only. Every other list splits after decoding, as
		// URL builders (url.Values, URLSearchParams) encode the commas of
		// _type=Patient,Coverage.
		var parts []string
		if name == "_typeFilter" {
			for _, part := range strings.Split(v, ",") {
				val, err := url.QueryUnescape(part)
				if err != nil {
					return nil, invalid(name, "malformed value of %s", clipName(name))
				}
				parts = append(parts, val)
			}
		} else {
			val, err := url.QueryUnescape(v)
			if err != nil {
				return nil, invalid(name, "malformed value of %s", clipName(name))
			}
			parts = strings.Split(val, ",")
		}
		for _, val := range parts {
			if name != "_typeFilter" && name != "_since" && name != "_until" {
				val = strings.TrimSpace(val)
			}
			if val != "" {
				p.values = append(p.values, val)
			}
		}
		if name == "_since" || name == "_until" || name == "exportType" || name == "_outputFormat" {
			// A single value that may itself contain no comma: rejoin.
			if s, err := url.QueryUnescape(v); err == nil {
				p.values = []string{s}
			}
		}
		out = append(out, p)
	}
	return out, nil
}

// parametersBody is a FHIR Parameters resource with the value types a
// kick-off uses.
type parametersBody struct {
	ResourceType string `json:"resourceType"`
	Parameter    []struct {
		Name           string  `json:"name"`
		ValueString    *string `json:"valueString"`
		ValueCode      *string `json:"valueCode"`
		ValueCanonical *string `json:"valueCanonical"`
		ValueURI       *string `json:"valueUri"`
		ValueInstant   *string `json:"valueInstant"`
		ValueDateTime  *string `json:"valueDateTime"`
		ValueBoolean   *bool   `json:"valueBoolean"`
		ValueReference *struct {
			Reference string `json:"reference"`
		} `json:"valueReference"`
	} `json:"parameter"`
}

// bodyParams reads a POST kick-off's body: a FHIR Parameters resource
// (application/fhir+json or application/json), a form, or nothing. Each
// Parameters parameter is one value (no comma splitting: a _typeFilter's
// commas separate search values).
func bodyParams(r *http.Request) ([]kickoffParam, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxKickoffBody+1))
	if err != nil {
		return nil, invalid("body", "the request body could not be read")
	}
	if len(body) > maxKickoffBody {
		return nil, invalid("body", "the Parameters body is larger than %d bytes", maxKickoffBody)
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		return nil, nil
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch mt {
	case "application/x-www-form-urlencoded":
		return queryParams(string(body))
	case "", "application/fhir+json", "application/json", "application/json+fhir":
	default:
		return nil, invalid("Content-Type", "a POST kick-off body must be a FHIR Parameters resource (application/fhir+json)")
	}
	var pb parametersBody
	if err := json.Unmarshal(body, &pb); err != nil || pb.ResourceType != "Parameters" {
		return nil, invalid("body", "the POST body is not a FHIR Parameters resource")
	}
	var out []kickoffParam
	for i, p := range pb.Parameter {
		if p.Name == "" {
			// Parameters.parameter.name is 1..1 (FHIR R4 Parameters).
			return nil, invalid("parameter["+strconv.Itoa(i)+"]", "parameter[%d] has no name", i)
		}
		var v string
		switch {
		case p.ValueString != nil:
			v = *p.ValueString
		case p.ValueCode != nil:
			v = *p.ValueCode
		case p.ValueCanonical != nil:
			v = *p.ValueCanonical
		case p.ValueURI != nil:
			v = *p.ValueURI
		case p.ValueInstant != nil:
			v = *p.ValueInstant
		case p.ValueDateTime != nil:
			v = *p.ValueDateTime
		case p.ValueReference != nil:
			v = p.ValueReference.Reference
		case p.ValueBoolean != nil:
			v = "false"
			if *p.ValueBoolean {
				v = "true"
			}
		default:
			return nil, invalid(p.Name, "parameter %q has no value of a supported type", clipName(p.Name))
		}
		values := []string{v}
		if p.Name == "_type" {
			// A comma list even as one valueString; empty entries are
			// dropped, as in a query string.
			values = nil
			for _, t := range strings.Split(v, ",") {
				if t = strings.TrimSpace(t); t != "" {
					values = append(values, t)
				}
			}
		}
		out = append(out, kickoffParam{name: p.Name, values: values})
	}
	return out, nil
}

// patientID returns the member id of a Patient reference ("Patient/id",
// or an absolute URL ending in it); "" when it is not one (then it matches
// no member).
func patientID(ref string) string {
	ref = strings.TrimSpace(ref)
	i := strings.LastIndex(ref, "Patient/")
	if i < 0 || (i > 0 && ref[i-1] != '/') {
		return ""
	}
	id := ref[i+len("Patient/"):]
	if j := strings.IndexAny(id, "/?#"); j >= 0 {
		id = id[:j]
	}
	return id
}

// parseInstant parses a FHIR instant: RFC 3339 with seconds and a zone. A
// '+' of the zone decoded as a space (an unencoded '+' in a query string)
// is taken back.
func parseInstant(v string) (time.Time, error) {
	v = strings.TrimSpace(v)
	if i := strings.LastIndexByte(v, ' '); i > 0 && strings.Count(v, " ") == 1 {
		v = v[:i] + "+" + v[i+1:]
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, errors.New("not an instant")
	}
	return t, nil
}

// clipName quotes at most 60 characters of a parameter name for a message.
func clipName(s string) string {
	if len(s) > 60 {
		s = s[:60]
	}
	return s
}
