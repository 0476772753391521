// Package auth decides who is calling and what they may see. It turns
// credentials into a Principal (API clients through the gateway's own token
// issuer, people through OpenID Connect) and holds the policy: which members,
// which fields and which operations a Principal may read. The store applies
// the policy's MemberScope in SQL; nothing outside this package reads tokens
// or claims, and nothing outside it decides access.
package auth

import (
	"context"
	"log/slog"

	"example.com/gateway/gateway"
)

// Kind is what sort of caller a Principal is.
type Kind string

const (
	KindClient   Kind = "CLIENT"   // an API client (client_credentials)
	KindPerson   Kind = "PERSON"   // a signed-in person of an organization
	KindOperator Kind = "OPERATOR" // a signed-in payer operator
)

// A Principal is an authenticated caller. Its fields are unexported so that
// only this package can mint one: a store method that takes a Principal
// cannot be handed a forged organization. The zero Principal belongs to no
// organization and sees nothing.
type Principal struct {
	kind          Kind
	id            string // client id or user id
	orgID         string
	accessType    gateway.AccessType
	env           gateway.Environment
	boundMemberID string
	email         string
	scopes        Scopes
}

func (p Principal) Kind() Kind                       { return p.kind }
func (p Principal) ID() string                       { return p.id }
func (p Principal) OrgID() string                    { return p.orgID }
func (p Principal) AccessType() gateway.AccessType   { return p.accessType }
func (p Principal) Environment() gateway.Environment { return p.env }
func (p Principal) BoundMemberID() string            { return p.boundMemberID }
func (p Principal) Email() string                    { return p.email }
func (p Principal) Scopes() Scopes                   { return p.scopes }
func (p Principal) IsZero() bool                     { return p.kind == "" }
func (p Principal) IsOperator() bool                 { return p.kind == KindOperator }
func (p Principal) IsClient() bool                   { return p.kind == KindClient }

// LogValue logs who is calling without anything from the token.
func (p Principal) LogValue() slog.Value {
	return slog.GroupValue(slog.String("kind", string(p.kind)), slog.String("id", p.id), slog.String("org", p.orgID))
}

// ClientPrincipal returns the Principal of an API client whose token carried
// these verified claims. Only the token verifier and the export runner (for
// a job's owner) call it.
func ClientPrincipal(c gateway.APIClient, scopes Scopes) Principal {
	p := Principal{
		kind:       KindClient,
		id:         c.ID,
		orgID:      c.OrganizationID,
		accessType: c.AccessType,
		env:        c.Environment,
		scopes:     scopes,
	}
	if c.BoundMemberID != nil {
		p.boundMemberID = *c.BoundMemberID
	}
	return p
}

// PersonPrincipal returns the Principal of a signed-in person; operators get
// KindOperator.
func PersonPrincipal(u gateway.User, operator bool) Principal {
	p := Principal{kind: KindPerson, id: u.ID, email: u.Email}
	if u.OrganizationID != nil {
		p.orgID = *u.OrganizationID
	}
	if operator {
		p.kind = KindOperator
	}
	return p
}

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the request's Principal; the zero Principal (which
// sees nothing) when there is none.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}
