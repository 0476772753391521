package auth

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"example.com/gateway/gateway"
)

// AccessTokenLifetime is how long the gateway's access tokens live; SMART
// Backend Services recommends at most five minutes, and no refresh tokens
// are issued (clients authenticate again for a new token).
const AccessTokenLifetime = 5 * time.Minute

// ClientAssertionType is the client_assertion_type of private_key_jwt
// (RFC 7523 §2.2).
const ClientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

const tokenRequestMaxBytes = 64 << 10

// ClientDirectory is what the token issuer and the token verifier need from
// the database (store.DB).
type ClientDirectory interface {
	// ClientByID returns the client; gateway.ErrNotFound when there is none.
	ClientByID(ctx context.Context, id string) (gateway.APIClient, error)
	// ClientSecretHashes returns the SHA-256 hashes of the client's secrets
	// that have not expired.
	ClientSecretHashes(ctx context.Context, clientID string) ([][]byte, error)
	// UseJTI remembers a client assertion's jti until expires; fresh is false
	// when it was already used (a replay).
	UseJTI(ctx context.Context, clientID, jti string, expires time.Time) (fresh bool, err error)
	// RecordTokenIssued records an issued token (never its text) and the
	// client's last use.
	RecordTokenIssued(ctx context.Context, clientID, jti string, at time.Time) error
}

// IssuerConfig configures the gateway's own token issuer.
type IssuerConfig struct {
	PublicURL string // PUBLIC_URL: the issuer, and the access tokens' audience
	DevMode   bool   // allows http JWKS URLs on loopback hosts
	Logger    *slog.Logger
	Now       func() time.Time // default time.Now
}

// TokenIssuer is the gateway's OAuth 2.0 authorization server for API
// clients: the client_credentials token endpoint (SMART Backend Services)
// with client_secret_basic, client_secret_post and private_key_jwt client
// authentication, and the issuer's metadata and JWKS.
type TokenIssuer struct {
	issuer   string
	tokenURL string
	keys     *KeyRing
	clients  ClientDirectory
	jwks     *jwksFetcher
	throttle *throttle
	logger   *slog.Logger
	now      func() time.Time
}

// NewTokenIssuer returns the issuer of cfg.PublicURL, signing with keys.
func NewTokenIssuer(cfg IssuerConfig, keys *KeyRing, clients ClientDirectory) *TokenIssuer {
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	issuer := strings.TrimRight(cfg.PublicURL, "/")
	return &TokenIssuer{
		issuer:   issuer,
		tokenURL: issuer + "/oauth/token",
		keys:     keys,
		clients:  clients,
		jwks:     newJWKSFetcher(cfg.DevMode, now),
		throttle: newThrottle(),
		logger:   logger,
		now:      now,
	}
}

// Issuer is the iss of the gateway's access tokens: PUBLIC_URL.
func (i *TokenIssuer) Issuer() string { return i.issuer }

// Audience is the aud of the gateway's access tokens. It is PUBLIC_URL
// too: the gateway is both the issuer and the only resource server.
func (i *TokenIssuer) Audience() string { return i.issuer }

// TokenEndpoint is PUBLIC_URL/oauth/token, which a client assertion's aud
// must equal exactly.
func (i *TokenIssuer) TokenEndpoint() string { return i.tokenURL }

// assertionAlgs are the client assertion algorithms accepted: RS384 and
// ES384, which SMART Backend Services requires servers to support, and
// RS256 and ES256, which many client libraries default to. Never "none"
// or an HMAC algorithm: go-jose refuses to parse any other.
var assertionAlgs = []string{"RS384", "ES384", "RS256", "ES256"}

// Metadata is the gateway issuer's discovery document
// (/.well-known/openid-configuration, RFC 8414 §2 fields).
func (i *TokenIssuer) Metadata() map[string]any {
	return map[string]any{
		"issuer":                                i.issuer,
		"jwks_uri":                              i.issuer + "/.well-known/jwks.json",
		"token_endpoint":                        i.tokenURL,
		"grant_types_supported":                 []string{"client_credentials"},
		"token_endpoint_auth_methods_supported": []string{"private_key_jwt", "client_secret_basic", "client_secret_post"},
		"token_endpoint_auth_signing_alg_values_supported": assertionAlgs,
		"scopes_supported":                      ScopesSupported(),
		"response_types_supported":              []string{}, // no authorization endpoint
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{string(SigningAlg)}, // of its access tokens
		"service_documentation":                 i.issuer + "/docs",
	}
}

// SMARTConfiguration is the body of /fhir/.well-known/smart-configuration
// for backend services (SMART App Launch, Conformance).
func (i *TokenIssuer) SMARTConfiguration() map[string]any {
	return map[string]any{
		"issuer":                                i.issuer,
		"jwks_uri":                              i.issuer + "/.well-known/jwks.json",
		"token_endpoint":                        i.tokenURL,
		"grant_types_supported":                 []string{"client_credentials"},
		"token_endpoint_auth_methods_supported": []string{"private_key_jwt", "client_secret_basic", "client_secret_post"},
		"token_endpoint_auth_signing_alg_values_supported": assertionAlgs,
		"scopes_supported":                 ScopesSupported(),
		"capabilities":                     []string{"client-confidential-asymmetric", "client-confidential-symmetric", "permission-v1", "permission-v2"},
		"code_challenge_methods_supported": []string{"S256"},
	}
}

// ScopesSupported lists the SMART system scopes the gateway grants, v1 and v2.
func ScopesSupported() []string {
	out := []string{"system/*.read", "system/*.rs"}
	for _, t := range ResourceTypes {
		out = append(out, "system/"+t+".read", "system/"+t+".rs")
	}
	return out
}

// ServeConfiguration serves Metadata.
func (i *TokenIssuer) ServeConfiguration(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "public, max-age=3600")
	writeJSON(w, http.StatusOK, i.Metadata())
}

// ServeJWKS serves the public keys of every unretired signing key.
func (i *TokenIssuer) ServeJWKS(w http.ResponseWriter, r *http.Request) {
	set, err := i.keys.JWKS(r.Context())
	if err != nil {
		i.logger.ErrorContext(r.Context(), "jwks", "err", err)
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "temporarily_unavailable"})
		return
	}
	// Short enough that a relying party sees a rotated key well before it
	// signs (RotateSigningKey's publishAhead), long enough to be a cache.
	w.Header().Set("Cache-Control", "public, max-age=300")
	writeJSON(w, http.StatusOK, set)
}

// tokenError is an error response of the token endpoint (RFC 6749 §5.2).
type tokenError struct {
	status      int
	code        string
	description string
	basic       bool          // the client used HTTP Basic: 401 carries WWW-Authenticate
	retryAfter  time.Duration // 429
}

func (e *tokenError) Error() string { return e.code + ": " + e.description }

func invalidRequest(format string, args ...any) *tokenError {
	return &tokenError{status: http.StatusBadRequest, code: "invalid_request", description: fmt.Sprintf(format, args...)}
}

// authFailure is a failed client authentication. Its reason goes to the
// debug log only: the client always sees the same invalid_client answer, so
// it cannot tell an unknown client from a wrong secret, a revoked client or
// a bad signature (RFC 6749 §5.2).
type authFailure struct{ reason string }

func (e *authFailure) Error() string { return e.reason }

func failAuth(format string, args ...any) error {
	return &authFailure{reason: fmt.Sprintf(format, args...)}
}

const invalidClientDescription = "client authentication failed"

// tokenResponse is a successful token response (RFC 6749 §5.1).
type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int    `json:"expires_in"`
	Scope       string `json:"scope"`
}

// ServeToken is POST /oauth/token: the client_credentials grant (RFC 6749
// §4.4) as SMART Backend Services profiles it.
func (i *TokenIssuer) ServeToken(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Cache-Control", "no-store") // RFC 6749 §5.1
	h.Set("Pragma", "no-cache")
	resp, err := i.token(r)
	if err == nil {
		writeJSON(w, http.StatusOK, resp)
		return
	}
	var te *tokenError
	if !errors.As(err, &te) {
		i.logger.ErrorContext(r.Context(), "token endpoint", "err", err)
		// Failures here are the database's (keys, clients, jti): answer like
		// an outage, which a client retries, and say nothing more.
		te = &tokenError{status: http.StatusServiceUnavailable, code: "temporarily_unavailable",
			description: "the service is temporarily unavailable; retry shortly", retryAfter: time.Second}
	}
	if te.status == http.StatusUnauthorized && te.basic {
		h.Set("WWW-Authenticate", `Basic realm="`+i.issuer+`", charset="UTF-8"`)
	}
	if te.retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(int(te.retryAfter/time.Second)))
	}
	writeJSON(w, te.status, map[string]string{"error": te.code, "error_description": te.description})
}

func (i *TokenIssuer) token(r *http.Request) (*tokenResponse, error) {
	ctx := r.Context()
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "application/x-www-form-urlencoded" {
		return nil, invalidRequest("the request must be application/x-www-form-urlencoded")
	}
	r.Body = http.MaxBytesReader(nil, r.Body, tokenRequestMaxBytes)
	if err := r.ParseForm(); err != nil {
		return nil, invalidRequest("the request body is not a valid form")
	}
	form := r.PostForm // parameters travel in the body, never the URL (RFC 6749 §2.3.1)
	for k, v := range form {
		if len(v) > 1 { // RFC 6749 §3.2
			return nil, invalidRequest("parameter %s is repeated", k)
		}
	}
	switch gt := form.Get("grant_type"); {
	case gt == "":
		return nil, invalidRequest("grant_type is required")
	case gt != "client_credentials":
		return nil, &tokenError{status: http.StatusBadRequest, code: "unsupported_grant_type", description: "only client_credentials is supported"}
	}

	// Which client authentication method (RFC 6749 §2.3, RFC 7523 §2.2)?
	basicUser, basicPass, basic := r.BasicAuth()
	_, hasSecret := form["client_secret"]
	_, hasAssertion := form["client_assertion"]
	_, hasAssertionType := form["client_assertion_type"]
	methods := 0
	for _, used := range []bool{basic, hasSecret, hasAssertion || hasAssertionType} {
		if used {
			methods++
		}
	}
	invalidClient := &tokenError{status: http.StatusUnauthorized, code: "invalid_client", description: invalidClientDescription, basic: basic}
	switch {
	case methods == 0:
		return nil, &tokenError{status: http.StatusUnauthorized, code: "invalid_client", description: "client authentication is required"}
	case methods > 1: // RFC 7521 §4.2.1
		return nil, &tokenError{status: http.StatusUnauthorized, code: "invalid_client", description: "use exactly one client authentication method", basic: basic}
	case hasAssertion != hasAssertionType:
		return nil, invalidRequest("client_assertion and client_assertion_type go together")
	case hasAssertion && form.Get("client_assertion_type") != ClientAssertionType:
		return nil, invalidRequest("client_assertion_type must be %s", ClientAssertionType)
	}

	// The client id the request claims, before anything is verified: the
	// key of the failure throttle.
	var claimed, secret string
	switch {
	case basic:
		// RFC 6749 §2.3.1: both halves are form-urlencoded before Basic encoding.
		var err1, err2 error
		claimed, err1 = url.QueryUnescape(basicUser)
		secret, err2 = url.QueryUnescape(basicPass)
		if err1 != nil || err2 != nil {
			return nil, invalidClient
		}
		if id := form.Get("client_id"); id != "" && id != claimed {
			return nil, invalidClient
		}
	case hasSecret:
		claimed, secret = form.Get("client_id"), form.Get("client_secret")
	default:
		claimed = unverifiedSubject(form.Get("client_assertion"))
	}
	// A source address over its failure budget waits before anything is
	// verified (flood protection). A client id over its budget is checked
	// only once its credentials have failed: a correct credential always
	// works, so nobody can lock a client out by failing in its name.
	addr := RemoteIP(r)
	now := i.now()
	tooMany := func(wait time.Duration) error {
		return &tokenError{status: http.StatusTooManyRequests, code: "temporarily_unavailable",
			description: "too many failed authentication attempts; retry later", retryAfter: wait}
	}
	if wait, blocked := i.throttle.blocked("", addr, now); blocked {
		return nil, tooMany(wait)
	}

	var client gateway.APIClient
	var err error
	if hasAssertion {
		client, err = i.verifyAssertion(ctx, form.Get("client_assertion"), form.Get("client_id"))
	} else {
		client, err = i.verifySecret(ctx, claimed, secret)
	}
	var af *authFailure
	if errors.As(err, &af) {
		wait, overBudget := i.throttle.blocked(claimed, "", now)
		i.throttle.fail(claimed, addr, now)
		i.logger.DebugContext(ctx, "client authentication failed", "client_id", claimed, "reason", af.reason)
		if overBudget {
			return nil, tooMany(wait)
		}
		return nil, invalidClient
	}
	if err != nil {
		return nil, err
	}

	requested, ok := ParseScopes(form.Get("scope"))
	if !ok {
		return nil, &tokenError{status: http.StatusBadRequest, code: "invalid_scope", description: "unknown or unsupported scope (SMART system scopes: system/*.read, system/*.rs, system/<Type>.rs)"}
	}
	scope, granted := grantedScope(form.Get("scope"), requested, allowedScopes(client))
	if granted.IsEmpty() {
		return nil, &tokenError{status: http.StatusBadRequest, code: "invalid_scope", description: "none of the requested scopes is available to this client"}
	}
	return i.issue(ctx, client, scope, now)
}

// issue signs an access token for client and records it.
func (i *TokenIssuer) issue(ctx context.Context, client gateway.APIClient, scope string, now time.Time) (*tokenResponse, error) {
	claims := AccessTokenClaims{
		Issuer:     i.issuer,
		Subject:    client.ID,
		Audience:   i.Audience(),
		IssuedAt:   now.Unix(),
		Expiry:     now.Add(AccessTokenLifetime).Unix(),
		JTI:        rand.Text(),
		ClientID:   client.ID,
		Org:        client.OrganizationID,
		AccessType: client.AccessType,
		Env:        client.Environment,
		Scope:      scope,
	}
	tok, err := i.keys.Sign(ctx, claims)
	if err != nil {
		return nil, fmt.Errorf("sign access token: %w", err)
	}
	if err := i.clients.RecordTokenIssued(ctx, client.ID, claims.JTI, now); err != nil {
		return nil, fmt.Errorf("record token: %w", err)
	}
	i.logger.DebugContext(ctx, "access token issued", "client_id", client.ID, "jti", claims.JTI, "scope", scope)
	return &tokenResponse{AccessToken: tok, TokenType: "bearer", ExpiresIn: int(AccessTokenLifetime / time.Second), Scope: scope}, nil
}

// AccessTokenClaims are the claims of the gateway's access tokens (RFC 9068
// §2.2, plus the client's organization, access type and environment, which
// are checked against the stored client on every request).
type AccessTokenClaims struct {
	Issuer     string              `json:"iss"`
	Subject    string              `json:"sub"`
	Audience   string              `json:"aud"`
	IssuedAt   int64               `json:"iat"`
	Expiry     int64               `json:"exp"`
	JTI        string              `json:"jti"`
	ClientID   string              `json:"client_id"`
	Org        string              `json:"org"`
	AccessType gateway.AccessType  `json:"access_type"`
	Env        gateway.Environment `json:"env"`
	Scope      string              `json:"scope"`
}

// verifySecret authenticates client_secret_basic and client_secret_post.
func (i *TokenIssuer) verifySecret(ctx context.Context, clientID, secret string) (gateway.APIClient, error) {
	if clientID == "" || secret == "" {
		return gateway.APIClient{}, failAuth("client id or secret missing")
	}
	client, err := i.activeClient(ctx, clientID)
	if err != nil {
		return client, err
	}
	hashes, err := i.clients.ClientSecretHashes(ctx, clientID)
	if err != nil {
		return client, err
	}
	if !SecretMatches(secret, hashes) {
		return client, failAuth("secret does not match an unexpired secret")
	}
	return client, nil
}

func (i *TokenIssuer) activeClient(ctx context.Context, id string) (gateway.APIClient, error) {
	client, err := i.clients.ClientByID(ctx, id)
	if gateway.ErrorCode(err) == gateway.CodeNotFound {
		return client, failAuth("unknown client")
	}
	if err != nil {
		return client, err
	}
	if client.Status != gateway.ClientActive {
		return client, failAuth("client is %s", client.Status)
	}
	return client, nil
}

// allowedScopes is what a client may be granted: every resource type the
// gateway serves. What a client then reads is the policy's decision, keyed
// on its stored access type, never on its scopes.
func allowedScopes(gateway.APIClient) Scopes { return Scopes{All: true} }

// grantedScope returns requested ∩ allowed, spelled as the client asked
// (v1 or v2), and the granted Scopes.
func grantedScope(raw string, requested, allowed Scopes) (string, Scopes) {
	granted := requested.Intersect(allowed)
	if strings.TrimSpace(raw) == "" {
		return granted.String(), granted
	}
	var kept []string
	for _, f := range strings.Fields(raw) {
		s, _ := ParseScopes(f)
		if !s.Intersect(granted).IsEmpty() && !containsString(kept, f) {
			kept = append(kept, f)
		}
	}
	return strings.Join(kept, " "), granted
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// unverifiedSubject reads sub from an unverified JWT, for throttling only.
func unverifiedSubject(raw string) string {
	var c struct {
		Sub string `json:"sub"`
	}
	if err := unverifiedClaims(raw, &c); err != nil || len(c.Sub) > 200 {
		return ""
	}
	return c.Sub
}

// RemoteIP is the request's peer address without its port: the source
// address the failure throttle and the anonymous rate limit key on (behind
// a proxy, the proxy's).
func RemoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
