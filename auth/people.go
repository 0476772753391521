package auth

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"example.com/gateway/gateway"
)

// UserDirectory is what people's sign-in needs from the database (store.DB).
type UserDirectory interface {
	// UserFromSignIn returns the user of (issuer, subject), creating it on
	// first sign-in and keeping its email current.
	UserFromSignIn(ctx context.Context, issuer, subject, email, name string) (gateway.User, error)
}

// PeopleConfig configures people's sign-in through OpenID Connect.
type PeopleConfig struct {
	IssuerURL string // OIDC_ISSUER_URL
	Audience  string // OIDC_AUDIENCE: the aud the access tokens must carry

	// OperatorClaim and OperatorValue recognise payer operators
	// (OPERATOR_CLAIM claim=value): the claim is a string equal to the value
	// or an array of strings containing it. A claim name that is not a
	// top-level claim is read as a dotted path ("realm_access.roles").
	OperatorClaim string
	OperatorValue string
	// DevOperators are emails that are operators; set only in DEV_MODE.
	DevOperators []string

	HTTPClient *http.Client     // discovery and JWKS; default: 10 s timeout
	Now        func() time.Time // default time.Now
}

const discoveryRetryEvery = 5 * time.Second

// People verifies people's access tokens from the OpenID Connect provider
// with go-oidc: discovery, JWKS (refetched when a kid is unknown, so the
// provider's key rotation just works), issuer, audience and expiry.
// Discovery happens on first use, not at start-up: in DEV_MODE the provider
// is the gateway itself, which is not listening yet.
type People struct {
	cfg   PeopleConfig
	users UserDirectory

	mu          sync.Mutex
	verifier    *oidc.IDTokenVerifier
	nextAttempt time.Time
	lastErr     error
}

// NewPeople returns the verifier of cfg.IssuerURL's tokens.
func NewPeople(cfg PeopleConfig, users UserDirectory) *People {
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &People{cfg: cfg, users: users}
}

// Issuer is the iss the verifier accepts: OIDC_ISSUER_URL.
func (p *People) Issuer() string { return p.cfg.IssuerURL }

// oidcVerifier discovers the provider once; after a failure it tries again
// at most every discoveryRetryEvery, refusing tokens in between.
func (p *People) oidcVerifier(ctx context.Context) (*oidc.IDTokenVerifier, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.verifier != nil {
		return p.verifier, nil
	}
	now := p.cfg.Now()
	if now.Before(p.nextAttempt) {
		return nil, p.lastErr
	}
	// Not the request's cancellation: a client hanging up must not leave
	// every later request waiting for the retry interval.
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	provider, err := oidc.NewProvider(oidc.ClientContext(dctx, p.cfg.HTTPClient), p.cfg.IssuerURL)
	if err != nil {
		p.nextAttempt, p.lastErr = now.Add(discoveryRetryEvery), fmt.Errorf("OpenID Connect discovery of %s: %w", p.cfg.IssuerURL, err)
		return nil, p.lastErr
	}
	p.verifier = provider.Verifier(&oidc.Config{ClientID: p.cfg.Audience, Now: p.cfg.Now})
	return p.verifier, nil
}

// personClaims are the claims read from a person's access token.
type personClaims struct {
	Email         string `json:"email"`
	EmailVerified any    `json:"email_verified"` // a boolean; some providers send "true"
	Name          string `json:"name"`
}

// Verify returns the Principal of a person's valid access token: the
// audience is OIDC_AUDIENCE, and a verified email is required. The first
// sign-in creates the user. Errors wrapping ErrInvalidToken mean the token
// is refused.
func (p *People) Verify(ctx context.Context, raw string) (Principal, error) {
	v, err := p.oidcVerifier(ctx)
	if err != nil {
		return Principal{}, err
	}
	tok, err := v.Verify(ctx, raw)
	if err != nil {
		return Principal{}, invalidToken("%v", err)
	}
	var c personClaims
	if err := tok.Claims(&c); err != nil {
		return Principal{}, invalidToken("claims: %v", err)
	}
	switch {
	case tok.Subject == "":
		return Principal{}, invalidToken("no sub")
	case c.Email == "" || !strings.Contains(c.Email, "@"):
		return Principal{}, invalidToken("no email")
	case c.EmailVerified != true && c.EmailVerified != "true":
		return Principal{}, invalidToken("email not verified")
	}
	operator := p.isOperator(tok, c.Email)
	user, err := p.users.UserFromSignIn(ctx, tok.Issuer, tok.Subject, c.Email, c.Name)
	if err != nil {
		return Principal{}, fmt.Errorf("sign in: %w", err)
	}
	return PersonPrincipal(user, operator), nil
}

func (p *People) isOperator(tok *oidc.IDToken, email string) bool {
	if slices.ContainsFunc(p.cfg.DevOperators, func(e string) bool { return strings.EqualFold(e, email) }) {
		return true
	}
	if p.cfg.OperatorClaim == "" || p.cfg.OperatorValue == "" {
		return false
	}
	var all map[string]any
	if err := tok.Claims(&all); err != nil {
		return false
	}
	return claimHas(lookupClaim(all, p.cfg.OperatorClaim), p.cfg.OperatorValue)
}

// lookupClaim finds claim name: a top-level claim first (names such as
// "https://example.com/roles" contain dots), else a dotted path.
func lookupClaim(claims map[string]any, name string) any {
	if v, ok := claims[name]; ok {
		return v
	}
	var cur any = claims
	for _, part := range strings.Split(name, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[part]
	}
	return cur
}

func claimHas(v any, want string) bool {
	switch v := v.(type) {
	case string:
		return v == want
	case []any:
		for _, e := range v {
			if s, ok := e.(string); ok && s == want {
				return true
			}
		}
	}
	return false
}
