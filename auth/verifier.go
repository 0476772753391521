package auth

import "context"

// Verifier turns a bearer token into a Principal. A token is either the
// gateway's own access token (an API client) or a person's access token
// from the OpenID Connect provider; the unverified iss only picks which
// verifier decides, and a token of any other issuer is refused unread.
type Verifier struct {
	Clients *ClientTokenVerifier
	People  *People // nil when no OIDC_ISSUER_URL: people cannot sign in
}

// Verify returns the Principal of a valid bearer token. Errors wrapping
// ErrInvalidToken mean the token is refused; others are the gateway's own
// failures (the database, the identity provider unreachable).
func (v *Verifier) Verify(ctx context.Context, raw string) (Principal, error) {
	var c struct {
		Iss string `json:"iss"`
	}
	if err := unverifiedClaims(raw, &c); err != nil {
		return Principal{}, invalidToken("%v", err)
	}
	switch {
	case c.Iss == "":
		return Principal{}, invalidToken("no iss")
	case v.Clients != nil && c.Iss == v.Clients.Issuer():
		return v.Clients.Verify(ctx, raw)
	case v.People != nil && c.Iss == v.People.Issuer():
		return v.People.Verify(ctx, raw)
	}
	return Principal{}, invalidToken("issuer %q is not trusted", c.Iss)
}
