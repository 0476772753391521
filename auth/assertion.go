package auth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"example.com/gateway/gateway"
)

const (
	// assertionMaxLifetime: a client assertion's exp is at most five minutes
	// in the future (SMART Backend Services, "Protocol details").
	assertionMaxLifetime = 5 * time.Minute
	// clockSkew tolerated between the client's clock and ours on exp, nbf
	// and iat. A used jti is remembered until exp plus this skew.
	clockSkew    = 30 * time.Second
	maxJTILength = 255
)

var joseAssertionAlgs = []jose.SignatureAlgorithm{jose.RS384, jose.ES384, jose.RS256, jose.ES256}

// verifyAssertion authenticates a private_key_jwt client assertion as SMART
// Backend Services (client-confidential-asymmetric) and RFC 7523 §3 require:
// an allowed alg; a kid that resolves to exactly one key of the client's
// registered JWKS, inline or at its registered URL; a jku header only if it
// is that registered URL; iss == sub == a registered, active client_id; aud
// equal to the token endpoint URL; exp present, not past and at most five
// minutes ahead; a jti never seen before. Every failure is an authFailure.
func (i *TokenIssuer) verifyAssertion(ctx context.Context, raw, formClientID string) (gateway.APIClient, error) {
	tok, err := jwt.ParseSigned(raw, joseAssertionAlgs)
	if err != nil {
		return gateway.APIClient{}, failAuth("assertion: %v", err)
	}
	if len(tok.Headers) != 1 {
		return gateway.APIClient{}, failAuth("assertion: want one signature")
	}
	h := tok.Headers[0]
	if h.KeyID == "" {
		return gateway.APIClient{}, failAuth("assertion: no kid")
	}
	if typ, ok := h.ExtraHeaders[jose.HeaderType]; ok {
		if s, _ := typ.(string); !strings.EqualFold(s, "JWT") {
			return gateway.APIClient{}, failAuth("assertion: typ %v", typ)
		}
	}
	var unverified jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&unverified); err != nil {
		return gateway.APIClient{}, failAuth("assertion claims: %v", err)
	}
	if unverified.Issuer == "" || unverified.Issuer != unverified.Subject {
		return gateway.APIClient{}, failAuth("assertion: iss and sub must both be the client_id")
	}
	if formClientID != "" && formClientID != unverified.Issuer {
		return gateway.APIClient{}, failAuth("assertion: client_id parameter differs from iss")
	}
	client, err := i.activeClient(ctx, unverified.Issuer)
	if err != nil {
		return client, err
	}

	key, err := i.assertionKey(ctx, client, h)
	if err != nil {
		return client, err
	}
	var claims jwt.Claims
	if err := tok.Claims(key.Key, &claims); err != nil {
		return client, failAuth("assertion signature: %v", err)
	}
	now := i.now()
	switch {
	case claims.Issuer != client.ID || claims.Subject != client.ID:
		return client, failAuth("assertion: iss/sub")
	case !claims.Audience.Contains(i.tokenURL):
		return client, failAuth("assertion: aud %v is not %s", []string(claims.Audience), i.tokenURL)
	case claims.Expiry == nil:
		return client, failAuth("assertion: no exp")
	case claims.Expiry.Time().Before(now.Add(-clockSkew)):
		return client, failAuth("assertion: expired")
	case claims.Expiry.Time().After(now.Add(assertionMaxLifetime + clockSkew)):
		return client, failAuth("assertion: exp more than 5 minutes ahead")
	case claims.NotBefore != nil && claims.NotBefore.Time().After(now.Add(clockSkew)):
		return client, failAuth("assertion: not valid yet")
	case claims.IssuedAt != nil && claims.IssuedAt.Time().After(now.Add(clockSkew)):
		return client, failAuth("assertion: issued in the future")
	case claims.ID == "" || len(claims.ID) > maxJTILength:
		return client, failAuth("assertion: jti missing or too long")
	}
	// Only a verified assertion spends its jti, so forged ones cannot burn
	// a client's jtis. The row outlives every instant the assertion could
	// still pass the exp check.
	fresh, err := i.clients.UseJTI(ctx, client.ID, claims.ID, claims.Expiry.Time().Add(clockSkew))
	if err != nil {
		return client, err
	}
	if !fresh {
		return client, failAuth("assertion: jti replayed")
	}
	return client, nil
}

// assertionKey finds the one registered key that may verify an assertion
// with header h (SMART client-confidential-asymmetric, "Signature
// Verification"): from the JWKS URL when a jku names it (and only then may
// jku be present), else from the inline JWKS and the JWKS URL.
func (i *TokenIssuer) assertionKey(ctx context.Context, client gateway.APIClient, h jose.Header) (jose.JSONWebKey, error) {
	jku, hasJKU := h.ExtraHeaders["jku"]
	if hasJKU {
		if s, _ := jku.(string); s == "" || s != client.JWKSURL {
			return jose.JSONWebKey{}, failAuth("assertion: jku is not the registered JWKS URL")
		}
	}
	var keys []jose.JSONWebKey
	if !hasJKU && len(client.JWKS) > 0 && string(client.JWKS) != "null" {
		inline, err := ParseClientJWKS(client.JWKS)
		if err != nil {
			return jose.JSONWebKey{}, failAuth("registered JWKS: %v", err)
		}
		keys = inline
	}
	if client.JWKSURL != "" && (hasJKU || !hasKID(keys, h.KeyID)) {
		fetched, err := i.jwks.keys(ctx, client.JWKSURL, h.KeyID)
		if err != nil {
			return jose.JSONWebKey{}, failAuth("JWKS URL: %v", err)
		}
		keys = append(keys, fetched...)
	}
	var found []jose.JSONWebKey
	for _, k := range keys {
		if k.KeyID == h.KeyID && keyFits(k, h.Algorithm) {
			found = append(found, k)
		}
	}
	if len(found) != 1 {
		return jose.JSONWebKey{}, failAuth("assertion: %d registered keys match kid %q and alg %s", len(found), h.KeyID, h.Algorithm)
	}
	return found[0], nil
}

// unverifiedClaims decodes a compact JWS's payload without verifying it:
// only to route a token to its verifier or to key a throttle, never to
// decide anything.
func unverifiedClaims(raw string, v any) error {
	if len(raw) > maxTokenLength {
		return errors.New("token too long")
	}
	first := strings.IndexByte(raw, '.')
	if first < 0 {
		return errors.New("not a JWT")
	}
	rest := raw[first+1:]
	second := strings.IndexByte(rest, '.')
	if second < 0 || strings.IndexByte(rest[second+1:], '.') >= 0 {
		return errors.New("not a compact JWS")
	}
	payload, err := base64.RawURLEncoding.DecodeString(rest[:second])
	if err != nil {
		return err
	}
	return json.Unmarshal(payload, v)
}

// maxTokenLength bounds the bearer tokens and assertions the gateway parses.
const maxTokenLength = 16 << 10
