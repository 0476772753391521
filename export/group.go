package export

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"example.com/gateway/auth"
	"example.com/gateway/fhir"
	"example.com/gateway/gateway"
	"example.com/gateway/store"
)

// Attribution groups (Da Vinci PDex pdex-provider-group on Da Vinci ATR):
// each organization has one group per environment, its members the
// members attributed to it (ACTIVE or UPCOMING) who have not opted out,
// with their attribution periods. Only the caller's own group exists for
// it (§pdex-353/354: search results and totals are limited to the
// requester's groups; §pdex-356).

const (
	systemPDexMemberAttribution = "http://hl7.org/fhir/us/davinci-pdex/CodeSystem/PdexMemberAttributionCS"
	codePDexProviderGroup       = "pdexprovidergroup"
	groupAuditBatch             = 1000
)

// groupAccess checks that p may read its organization's group and returns
// the group's owner and the policy scope.
func (h *Handler) groupAccess(ctx context.Context, p auth.Principal) (org gateway.Organization, env gateway.Environment, scope auth.MemberScope, err error) {
	orgID, env, ok := p.ExportOwner()
	switch {
	case !ok:
		return org, env, scope, gateway.Errorf(gateway.CodeForbidden, "only Provider Access API clients have attribution groups")
	case !p.CanReadType("Group"):
		return org, env, scope, gateway.Errorf(gateway.CodeForbidden, "the access token does not grant reading Group (scope system/Group.rs)")
	}
	if err := h.Service.checkInNetwork(ctx, orgID, env); err != nil {
		return org, env, scope, err
	}
	org, err = h.Service.DB.OrganizationByID(ctx, orgID)
	if err != nil {
		return org, env, scope, err
	}
	return org, env, h.Service.DB.ScopeFor(p), nil
}

// readGroup is GET /fhir/Group/{id}.
func (h *Handler) readGroup(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	org, env, scope, err := h.groupAccess(r.Context(), p)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	id := gateway.AttributionGroupID(org.ID, env)
	if r.PathValue("id") != id {
		h.writeError(w, r, gateway.ErrNotFound)
		return
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	started := false
	err = h.streamGroup(r.Context(), p, scope, org, id, true, func() io.Writer {
		started = true
		w.Header().Set("Content-Type", contentFHIRJSON)
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		return bw
	})
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		if !started {
			h.writeError(w, r, err)
			return
		}
		h.Logger.ErrorContext(r.Context(), "group read failed mid-response", "err", err)
		panic(http.ErrAbortHandler) // the client sees a truncated response, never a wrong one
	}
}

// streamGroup writes the group as JSON, its members streamed in batches,
// each batch audited before it is written. begin is called once, before the
// first byte, and returns the writer.
func (h *Handler) streamGroup(ctx context.Context, p auth.Principal, scope auth.MemberScope, org gateway.Organization,
	id string, withMembers bool, begin func() io.Writer) error {
	var out io.Writer
	opened := false
	err := h.Service.DB.AttributionGroup(ctx, scope, withMembers, groupAuditBatch,
		func(s store.GroupSummary) error {
			g := fhir.NewGroup(id, org, nil, s.LastUpdated)
			n := s.Members
			g.Quantity = &n
			b, err := json.Marshal(g)
			if err != nil {
				return err
			}
			if !withMembers {
				// FHIR R4 _summary: a resource without some elements is tagged
				// SUBSETTED (fhir.Meta has no tag; the group's meta is the first).
				b = bytes.Replace(b, []byte(`"meta":{`), []byte(`"meta":{"tag":[`+subsettedTag+`],`), 1)
			}
			out = begin()
			// Members are written after the rest: drop the closing brace.
			_, err = out.Write(b[:len(b)-1])
			return err
		},
		func(members []store.GroupMember) error {
			ids := make([]string, len(members))
			for i, m := range members {
				ids[i] = m.MemberID
			}
			// Which members are attributed is member data: audited, a batch
			// at a time, before it is sent.
			if err := h.Service.DB.WriteReadAudit(ctx, p, store.AuditContext{
				RequestID: h.requestID(ctx), Operation: "fhir:Group.read",
			}, "Group", ids); err != nil {
				return err
			}
			for _, m := range members {
				sep := ","
				if !opened {
					sep, opened = `,"member":[`, true
				}
				entry := fhir.GroupMemberEntry{Entity: fhir.PatientRef(m.MemberID)}
				if !m.Start.IsZero() || !m.End.IsZero() {
					entry.Period = &fhir.Period{Start: m.Start.String(), End: m.End.String()}
				}
				b, err := json.Marshal(entry)
				if err != nil {
					return err
				}
				if _, err := io.WriteString(out, sep); err != nil {
					return err
				}
				if _, err := out.Write(b); err != nil {
					return err
				}
			}
			return nil
		})
	if err != nil {
		return err
	}
	end := "}"
	if opened {
		end = "]}"
	}
	_, err = io.WriteString(out, end)
	return err
}

func (h *Handler) requestID(ctx context.Context) string {
	if h.RequestID == nil {
		return ""
	}
	return h.RequestID(ctx)
}

// subsettedTag is the tag of a resource returned without some of its
// elements (FHIR R4 "_summary").
const subsettedTag = `{"system":"http://terminology.hl7.org/CodeSystem/v3-ObservationValue","code":"SUBSETTED","display":"subsetted"}`

// searchGroups is GET /fhir/Group: the caller's groups (at most its own)
// matching the search parameters PDex requires servers to support
// (identifier, characteristic, characteristic-value-reference, code), plus
// _id and _summary; _count is accepted. Other parameters answer 400, or are
// ignored under Prefer: handling=lenient.
func (h *Handler) searchGroups(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	org, env, scope, err := h.groupAccess(r.Context(), p)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	id := gateway.AttributionGroupID(org.ID, env)
	lenient := preferTokens(r.Header.Values("Prefer"))["handling=lenient"]
	match, summary, err := matchGroupSearch(r.URL.Query(), org, id, lenient)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	self := h.Service.PublicURL + r.URL.EscapedPath()
	if r.URL.RawQuery != "" {
		self += "?" + r.URL.RawQuery
	}
	total := 0
	if match {
		total = 1
	}
	head := fmt.Sprintf(`{"resourceType":"Bundle","type":"searchset","total":%d,"link":[{"relation":"self","url":%s}]`,
		total, quote(self))
	w.Header().Set("Content-Type", contentFHIRJSON)
	w.Header().Set("Cache-Control", "no-store")
	if !match || summary == "count" {
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, head+"}\n")
		return
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	started := false
	err = h.streamGroup(r.Context(), p, scope, org, id, summary != "true", func() io.Writer {
		started = true
		w.WriteHeader(http.StatusOK)
		fmt.Fprintf(bw, `%s,"entry":[{"fullUrl":%s,"search":{"mode":"match"},"resource":`, head,
			quote(h.Service.PublicURL+"/fhir/Group/"+id))
		return bw
	})
	if err == nil {
		_, err = io.WriteString(bw, "}]}\n")
	}
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		if !started {
			h.writeError(w, r, err)
			return
		}
		h.Logger.ErrorContext(r.Context(), "group search failed mid-response", "err", err)
		panic(http.ErrAbortHandler)
	}
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// matchGroupSearch evaluates the search parameters against the caller's
// group: values of one parameter are OR'ed (commas), repeated parameters
// AND'ed. It returns whether the group matches and the _summary mode.
func matchGroupSearch(q url.Values, org gateway.Organization, id string, lenient bool) (match bool, summary string, err error) {
	match = true
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		name, modifier, _ := strings.Cut(k, ":")
		for _, raw := range q[k] {
			values := splitUnescaped(raw)
			var ok bool
			switch {
			case name == "_summary" && modifier == "":
				switch raw {
				case "true", "false", "count":
					summary = raw
					continue
				}
				return false, "", invalid(k, "_summary=%s is not supported (true, false or count)", clipName(raw))
			case name == "_count" && modifier == "", name == "_total" && modifier == "":
				continue // one group at most: paging is moot
			case name == "_format" && modifier == "":
				if raw != "json" && raw != "application/fhir+json" && raw != "application/json" {
					return false, "", invalid(k, "_format=%s is not supported: this server speaks application/fhir+json", clipName(raw))
				}
				continue
			case name == "_id" && modifier == "":
				ok = slices.Contains(values, id)
			case (name == "identifier" && modifier == "") || (name == "characteristic-value-reference" && modifier == "identifier"):
				ok = slices.ContainsFunc(values, func(v string) bool { return identifierMatches(v, org) })
			case (name == "characteristic" || name == "code") && modifier == "":
				ok = slices.ContainsFunc(values, func(v string) bool {
					system, code, hasSystem := strings.Cut(v, "|")
					if !hasSystem {
						system, code = "", v
					}
					return code == codePDexProviderGroup && (system == "" || system == systemPDexMemberAttribution)
				})
			case name == "characteristic-value-reference" && modifier == "":
				ok = slices.ContainsFunc(values, func(v string) bool {
					return v == "Organization/"+org.ID || strings.HasSuffix(v, "/Organization/"+org.ID) || v == org.ID
				})
			default:
				if lenient {
					continue
				}
				return false, "", invalid(k, "search parameter %q is not supported on Group (supported: identifier, characteristic, characteristic-value-reference, code, _id, _summary, _count)", clipName(k))
			}
			match = match && ok
		}
	}
	return match, summary, nil
}

// identifierMatches matches a token against the organization's NPI
// (system http://hl7.org/fhir/sid/us-npi) or TIN (urn:oid:2.16.840.1.113883.4.4,
// with or without the dash).
func identifierMatches(token string, org gateway.Organization) bool {
	system, value, hasSystem := strings.Cut(token, "|")
	if !hasSystem {
		system, value = "", token
	}
	switch system {
	case "", fhir.SystemNPI:
		if value == org.NPI {
			return true
		}
	}
	switch system {
	case "", fhir.SystemTIN:
		return strings.ReplaceAll(value, "-", "") == org.TIN && org.TIN != ""
	}
	return false
}
