package auth

import (
	"slices"
	"strings"
)

// ResourceTypes are the FHIR resource types a Provider Access client may be
// granted (SMART system scopes name them).
var ResourceTypes = []string{
	"Patient", "Coverage", "ExplanationOfBenefit", "Encounter",
	"Condition", "Observation", "MedicationRequest", "Immunization",
	"AllergyIntolerance", "Procedure", "Practitioner", "Organization", "Group",
}

// Scopes is the set of resource types a token grants read access to.
// The empty set grants nothing; All grants every type.
type Scopes struct {
	All   bool
	Types []string // sorted, when !All
}

// Allows reports whether the scopes grant reading resourceType.
func (s Scopes) Allows(resourceType string) bool {
	return s.All || slices.Contains(s.Types, resourceType)
}

// String renders the scopes as SMART v2 system scopes.
func (s Scopes) String() string {
	if s.All {
		return "system/*.rs"
	}
	out := make([]string, len(s.Types))
	for i, t := range s.Types {
		out[i] = "system/" + t + ".rs"
	}
	return strings.Join(out, " ")
}

// ParseScopes reads a space-separated scope parameter of SMART v1
// (system/*.read, system/Type.read) and v2 (system/*.rs, system/Type.rs)
// system scopes. An empty request asks for everything the client may have.
// It returns ok=false when any requested scope is unknown (invalid_scope).
func ParseScopes(requested string) (s Scopes, ok bool) {
	fields := strings.Fields(requested)
	if len(fields) == 0 {
		return Scopes{All: true}, true
	}
	for _, f := range fields {
		rest, found := strings.CutPrefix(f, "system/")
		if !found {
			return Scopes{}, false
		}
		typ, perm, found := strings.Cut(rest, ".")
		if !found || !(perm == "read" || perm == "rs" || perm == "r" || perm == "s") {
			return Scopes{}, false
		}
		switch {
		case typ == "*":
			s.All = true
		case slices.Contains(ResourceTypes, typ):
			if !slices.Contains(s.Types, typ) {
				s.Types = append(s.Types, typ)
			}
		default:
			return Scopes{}, false
		}
	}
	if s.All {
		s.Types = nil
	}
	slices.Sort(s.Types)
	return s, true
}
