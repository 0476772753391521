package auth

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"example.com/gateway/gateway"
)

// ErrInvalidToken wraps every reason a bearer token is refused (bad
// signature, wrong issuer or audience, expired, revoked client, …). Other
// errors from the verifiers are failures of the gateway (the database).
var ErrInvalidToken = errors.New("invalid token")

func invalidToken(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidToken, fmt.Sprintf(format, args...))
}

// ClientStatusTTL is how long an instance trusts what it read of a client
// (status, bound member). A revoked client's tokens stop working on every
// instance within this time, well inside the 5 seconds DESIGN.md §2 allows,
// while a busy client costs one primary-key query per instance per TTL
// instead of one per request.
const ClientStatusTTL = 2 * time.Second

const clientCacheMax = 10000

// ClientTokenVerifier verifies the gateway's own access tokens: go-oidc's
// verifier (issuer, audience, expiry, algorithm) over the database keys,
// with no discovery, then the client's stored record: still ACTIVE, and the
// same organization, access type and environment as the token claims. The
// environment check on every request keeps sandbox and production apart.
type ClientTokenVerifier struct {
	issuer   string
	verifier *oidc.IDTokenVerifier
	clients  ClientDirectory
	now      func() time.Time
	ttl      time.Duration

	mu    sync.Mutex
	cache map[string]cachedClient
}

type cachedClient struct {
	client gateway.APIClient
	until  time.Time
}

// NewClientTokenVerifier verifies tokens of issuer (PUBLIC_URL) for audience.
func NewClientTokenVerifier(issuer, audience string, keys *KeyRing, clients ClientDirectory, now func() time.Time) *ClientTokenVerifier {
	if now == nil {
		now = time.Now
	}
	cfg := &oidc.Config{ClientID: audience, SupportedSigningAlgs: []string{string(SigningAlg)}, Now: now}
	return &ClientTokenVerifier{
		issuer:   issuer,
		verifier: oidc.NewVerifier(issuer, keys, cfg),
		clients:  clients,
		now:      now,
		ttl:      ClientStatusTTL,
		cache:    map[string]cachedClient{},
	}
}

// SetStatusTTL sets how long a read of a client is trusted (default
// ClientStatusTTL); 0 reads the client on every request. Call it before
// the verifier is used.
func (v *ClientTokenVerifier) SetStatusTTL(d time.Duration) { v.ttl = d }

// Issuer is the iss the verifier accepts.
func (v *ClientTokenVerifier) Issuer() string { return v.issuer }

// Verify returns the Principal of a valid access token. Errors wrapping
// ErrInvalidToken mean the token is refused.
func (v *ClientTokenVerifier) Verify(ctx context.Context, raw string) (Principal, error) {
	tok, err := v.verifier.Verify(ctx, raw)
	if err != nil {
		return Principal{}, invalidToken("%v", err)
	}
	var c AccessTokenClaims
	if err := tok.Claims(&c); err != nil {
		return Principal{}, invalidToken("claims: %v", err)
	}
	if c.ClientID == "" || c.ClientID != tok.Subject {
		return Principal{}, invalidToken("client_id and sub differ")
	}
	scopes, ok := ParseScopes(c.Scope)
	if !ok || c.Scope == "" {
		return Principal{}, invalidToken("scope %q", c.Scope)
	}
	client, err := v.client(ctx, c.ClientID)
	if gateway.ErrorCode(err) == gateway.CodeNotFound {
		return Principal{}, invalidToken("unknown client")
	}
	if err != nil {
		return Principal{}, err
	}
	switch {
	case client.Status != gateway.ClientActive:
		return Principal{}, invalidToken("client is %s", client.Status)
	case client.Environment != c.Env:
		return Principal{}, invalidToken("environment %s, client is %s", c.Env, client.Environment)
	case client.OrganizationID != c.Org:
		return Principal{}, invalidToken("organization differs from the client's")
	case client.AccessType != c.AccessType:
		return Principal{}, invalidToken("access type differs from the client's")
	}
	return ClientPrincipal(client, scopes), nil
}

// client reads a client, trusting a read for at most ClientStatusTTL.
func (v *ClientTokenVerifier) client(ctx context.Context, id string) (gateway.APIClient, error) {
	now := v.now()
	v.mu.Lock()
	e, ok := v.cache[id]
	v.mu.Unlock()
	if ok && now.Before(e.until) {
		return e.client, nil
	}
	c, err := v.clients.ClientByID(ctx, id)
	if err != nil {
		return c, err
	}
	v.mu.Lock()
	if len(v.cache) >= clientCacheMax {
		for k, e := range v.cache {
			if !now.Before(e.until) {
				delete(v.cache, k)
			}
		}
		if len(v.cache) >= clientCacheMax {
			clear(v.cache)
		}
	}
	v.cache[id] = cachedClient{client: c, until: now.Add(v.ttl)}
	v.mu.Unlock()
	return c, nil
}
