package auth

import "slices"

// IsEmpty reports whether s grants nothing.
func (s Scopes) IsEmpty() bool { return !s.All && len(s.Types) == 0 }

// Intersect returns the resource types both s and o grant.
func (s Scopes) Intersect(o Scopes) Scopes {
	switch {
	case s.All && o.All:
		return Scopes{All: true}
	case s.All:
		return Scopes{Types: slices.Clone(o.Types)}
	case o.All:
		return Scopes{Types: slices.Clone(s.Types)}
	}
	var out Scopes
	for _, t := range s.Types {
		if slices.Contains(o.Types, t) {
			out.Types = append(out.Types, t)
		}
	}
	return out
}
