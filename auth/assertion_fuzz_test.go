package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"example.com/gateway/gateway"
)

// assertionFuzzKit is a token issuer with one active private_key_jwt
// client ("c1", an inline JWKS with one P-256 key, kid k1) at a fixed
// instant, and assertions built against it that must all be refused: the
// registered key signs only assertions that break one rule each, so no
// mutation of them can be valid without forging a signature.
type assertionFuzzKit struct {
	issuer   *TokenIssuer
	verifier *Verifier
	seeds    []string
	good     string // valid: proves the seeds fail for their one broken rule
}

var fuzzNow = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

func newAssertionFuzzKit(tb testing.TB) *assertionFuzzKit {
	tb.Helper()
	clock := func() time.Time { return fuzzNow }
	registered, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	stranger, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pub := jose.JSONWebKey{Key: &registered.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"}
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{pub}})
	if err != nil {
		tb.Fatal(err)
	}
	dir := &memClients{c: gateway.APIClient{ID: "c1", OrganizationID: "o1", Environment: gateway.EnvSandbox,
		AccessType: gateway.ProviderAccess, Status: gateway.ClientActive, JWKS: jwks}}
	ring, err := OpenKeyRing(context.Background(), &memKeys{}, testKEK(), clock)
	if err != nil {
		tb.Fatal(err)
	}
	iss := NewTokenIssuer(IssuerConfig{PublicURL: "https://gw.example", Now: clock}, ring, dir)
	k := &assertionFuzzKit{
		issuer:   iss,
		verifier: &Verifier{Clients: NewClientTokenVerifier(iss.Issuer(), iss.Audience(), ring, dir, clock)},
	}
	good := jwt.Claims{Issuer: "c1", Subject: "c1", Audience: jwt.Audience{iss.TokenEndpoint()},
		Expiry: jwt.NewNumericDate(fuzzNow.Add(4 * time.Minute)), IssuedAt: jwt.NewNumericDate(fuzzNow), ID: "jti-1"}
	sign := func(key any, kid string, alg jose.SignatureAlgorithm, c jwt.Claims) string {
		opts := (&jose.SignerOptions{}).WithType("JWT")
		if kid != "" {
			opts = opts.WithHeader("kid", kid)
		}
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
		if err != nil {
			tb.Fatal(err)
		}
		raw, err := jwt.Signed(s).Claims(c).Serialize()
		if err != nil {
			tb.Fatal(err)
		}
		return raw
	}
	with := func(f func(*jwt.Claims)) jwt.Claims { c := good; f(&c); return c }
	k.good = sign(registered, "k1", jose.ES256, good)
	k.seeds = []string{
		sign(registered, "k1", jose.ES256, with(func(c *jwt.Claims) { c.Audience = jwt.Audience{"https://other.example/token"} })),
		sign(registered, "k1", jose.ES256, with(func(c *jwt.Claims) { c.Expiry = jwt.NewNumericDate(fuzzNow.Add(-time.Hour)) })),
		sign(registered, "k1", jose.ES256, with(func(c *jwt.Claims) { c.Expiry = jwt.NewNumericDate(fuzzNow.Add(time.Hour)) })),
		sign(registered, "k1", jose.ES256, with(func(c *jwt.Claims) { c.Expiry = nil })),
		sign(registered, "k1", jose.ES256, with(func(c *jwt.Claims) { c.ID = "" })),
		sign(registered, "k1", jose.ES256, with(func(c *jwt.Claims) { c.Subject = "c2" })),
		sign(registered, "k1", jose.ES256, with(func(c *jwt.Claims) { c.NotBefore = jwt.NewNumericDate(fuzzNow.Add(time.Hour)) })),
		sign(registered, "", jose.ES256, good),
		sign(registered, "k2", jose.ES256, good),
		sign(stranger, "k1", jose.ES256, good),
		sign([]byte("0123456789abcdef0123456789abcdef"), "k1", jose.HS256, good),
		"eyJhbGciOiJub25lIiwia2lkIjoiazEifQ." + base64URL(mustJSON(good)) + ".",
		"", "a.b", "a.b.c", "a..c", strings.Repeat("A", 100),
	}
	return k
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

// TestAssertionFuzzKit: the kit's client does accept a valid assertion,
// so the fuzz targets below can fail (their seeds are refused for the rule
// each breaks, not for a broken set-up).
func TestAssertionFuzzKit(t *testing.T) {
	k := newAssertionFuzzKit(t)
	if c, err := k.issuer.verifyAssertion(context.Background(), k.good, "c1"); err != nil || c.ID != "c1" {
		t.Fatalf("valid assertion refused: %v", err)
	}
	form := url.Values{"grant_type": {"client_credentials"}, "client_assertion": {k.good},
		"client_assertion_type": {ClientAssertionType}, "scope": {"system/*.read"}}
	r := httptest.NewRequest(http.MethodPost, "/oauth/token", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	k.issuer.ServeToken(w, r)
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &tok); w.Code != http.StatusOK || err != nil {
		t.Fatalf("token endpoint: %d %s", w.Code, w.Body)
	}
	if p, err := k.verifier.Verify(context.Background(), tok.AccessToken); err != nil || p.ID() != "c1" {
		t.Fatalf("issued token refused: %v", err)
	}
}

// FuzzVerifyAssertion: private_key_jwt client assertions are parsed from
// arbitrary strings without panicking, and none is ever accepted: no
// input refused other than as an authentication failure.
func FuzzVerifyAssertion(f *testing.F) {
	k := newAssertionFuzzKit(f)
	for _, s := range k.seeds {
		f.Add(s, "")
		f.Add(s, "c1")
	}
	f.Fuzz(func(t *testing.T, raw, formClientID string) {
		client, err := k.issuer.verifyAssertion(context.Background(), raw, formClientID)
		if err == nil {
			t.Fatalf("assertion accepted for client %q: %q", client.ID, raw)
		}
		var af *authFailure
		if !errors.As(err, &af) {
			t.Fatalf("assertion refused with %v (%T), not an authentication failure", err, err)
		}
	})
}

// FuzzTokenEndpointAssertion: the token endpoint, given a client_assertion
// of arbitrary text, never issues a token and never answers 5xx.
func FuzzTokenEndpointAssertion(f *testing.F) {
	k := newAssertionFuzzKit(f)
	for _, s := range k.seeds {
		f.Add(s, ClientAssertionType, "system/*.read")
	}
	f.Add("x", "urn:bogus", "")
	f.Add("", "", "system/Patient.rs")
	var n atomic.Int64
	f.Fuzz(func(t *testing.T, assertion, assertionType, scope string) {
		form := url.Values{"grant_type": {"client_credentials"}, "client_assertion": {assertion},
			"client_assertion_type": {assertionType}, "scope": {scope}}
		r := httptest.NewRequest(http.MethodPost, "/oauth/token", strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		// A new source address each time, so the failure throttle does not
		// end the search early (it is tested on its own).
		i := n.Add(1)
		r.RemoteAddr = fmt.Sprintf("10.%d.%d.%d:1234", byte(i>>16), byte(i>>8), byte(i))
		w := httptest.NewRecorder()
		k.issuer.ServeToken(w, r)
		switch {
		case w.Code == http.StatusOK || strings.Contains(w.Body.String(), "access_token"):
			t.Fatalf("token issued for assertion %q: %s", assertion, w.Body)
		case w.Code >= 500:
			t.Fatalf("status %d for assertion %q: %s", w.Code, assertion, w.Body)
		}
	})
}

// FuzzVerifyBearer: no arbitrary string is a valid bearer token, and each
// is refused as ErrInvalidToken (a 401), never as the gateway's own failure.
func FuzzVerifyBearer(f *testing.F) {
	k := newAssertionFuzzKit(f)
	for _, s := range k.seeds {
		f.Add(s)
	}
	f.Add("eyJhbGciOiJub25lIn0." + b64(`{"iss":"https://gw.example","sub":"c1","aud":"https://gw.example","exp":9999999999}`) + ".")
	f.Add("eyJhbGciOiJIUzI1NiJ9." + b64(`{"iss":"https://gw.example"}`) + ".c2ln")
	f.Add("x." + b64(`{"iss":"https://idp.example"}`) + ".y")
	f.Fuzz(func(t *testing.T, raw string) {
		p, err := k.verifier.Verify(context.Background(), raw)
		if err == nil {
			t.Fatalf("bearer %q accepted as %+v", raw, p)
		}
		if !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("bearer %q refused with %v, not ErrInvalidToken", raw, err)
		}
	})
}
