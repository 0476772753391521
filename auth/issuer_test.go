package auth

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"example.com/gateway/gateway"
)

// memKeys is an in-memory KeyStore that counts its reads.
type memKeys struct {
	mu    sync.Mutex
	keys  []SigningKeyRecord
	reads int
}

func (m *memKeys) SigningKeys(context.Context) ([]SigningKeyRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reads++
	var out []SigningKeyRecord
	for _, k := range m.keys {
		if k.RetiredAt == nil {
			out = append(out, k)
		}
	}
	return out, nil
}

func (m *memKeys) CreateSigningKey(_ context.Context, k SigningKeyRecord, onlyIfNone bool) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range m.keys {
		if onlyIfNone && e.RetiredAt == nil {
			return false, nil
		}
	}
	m.keys = append(m.keys, k)
	return true, nil
}

func (m *memKeys) RetireSigningKeys(context.Context, time.Time) (int64, error) { return 0, nil }

func (m *memKeys) readCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.reads
}

func testKEK() []byte {
	k := make([]byte, 32)
	rand.Read(k)
	return k
}

func TestSealBindsKeyAndKID(t *testing.T) {
	kek := testKEK()
	sealed, err := seal(kek, "kid-1", []byte("private key"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("private key")) {
		t.Fatal("plaintext visible in the sealed key")
	}
	if got, err := open(kek, "kid-1", sealed); err != nil || string(got) != "private key" {
		t.Fatalf("open = %q, %v", got, err)
	}
	if _, err := open(kek, "kid-2", sealed); err == nil {
		t.Error("a sealed key opened under another kid (moved to another row)")
	}
	if _, err := open(testKEK(), "kid-1", sealed); err == nil {
		t.Error("a sealed key opened with another KEK")
	}
	again, _ := seal(kek, "kid-1", []byte("private key"))
	if bytes.Equal(again, sealed) {
		t.Error("two seals are identical: nonce not random")
	}
}

func TestKeyRingSignsAndVerifies(t *testing.T) {
	ctx := t.Context()
	store := &memKeys{}
	kek := testKEK()
	ring, err := OpenKeyRing(ctx, store, kek, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(store.keys) != 1 || store.keys[0].Alg != "RS256" || store.keys[0].KID != ring.CurrentKID() {
		t.Fatalf("keys %+v", store.keys)
	}
	var jwk map[string]any
	json.Unmarshal(store.keys[0].PublicJWK, &jwk)
	if _, private := jwk["d"]; private || jwk["kid"] != ring.CurrentKID() {
		t.Errorf("public JWK %v", jwk)
	}
	tok, err := ring.Sign(ctx, map[string]any{"sub": "x", "exp": time.Now().Add(time.Minute).Unix()})
	if err != nil {
		t.Fatal(err)
	}
	payload, err := ring.VerifySignature(ctx, tok)
	if err != nil || !strings.Contains(string(payload), `"sub":"x"`) {
		t.Fatalf("verify = %s, %v", payload, err)
	}
	// Cached the second time; a tampered token is not the cached one.
	if _, err := ring.VerifySignature(ctx, tok); err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(tok, ".")
	tampered := parts[0] + "." + b64(`{"sub":"y"}`) + "." + parts[2]
	if _, err := ring.VerifySignature(ctx, tampered); err == nil {
		t.Error("tampered payload verified")
	}
	// Another instance opening the same store uses the same key.
	ring2, err := OpenKeyRing(ctx, store, kek, nil)
	if err != nil || ring2.CurrentKID() != ring.CurrentKID() || len(store.keys) != 1 {
		t.Errorf("second instance: %v, %d keys", err, len(store.keys))
	}
	if _, err := OpenKeyRing(ctx, store, testKEK(), nil); err == nil {
		t.Error("opened with the wrong KEK")
	}
}

func b64(s string) string { return base64URL([]byte(s)) }

func base64URL(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func TestKeyRingUnknownKidReloadsAtMostOncePerSecond(t *testing.T) {
	ctx := t.Context()
	store := &memKeys{}
	now := time.Now()
	clock := func() time.Time { return now }
	ring, err := OpenKeyRing(ctx, store, testKEK(), clock)
	if err != nil {
		t.Fatal(err)
	}
	other, err := OpenKeyRing(ctx, &memKeys{}, testKEK(), clock)
	if err != nil {
		t.Fatal(err)
	}
	foreign, _ := other.Sign(ctx, map[string]any{"exp": now.Add(time.Minute).Unix()})
	before := store.readCount()
	for range 100 {
		if _, err := ring.VerifySignature(ctx, foreign); err == nil {
			t.Fatal("a token of another key ring verified")
		}
	}
	if n := store.readCount() - before; n != 1 {
		t.Errorf("100 unknown kids caused %d key reloads, want 1", n)
	}
	now = now.Add(2 * time.Second)
	ring.VerifySignature(ctx, foreign)
	if n := store.readCount() - before; n != 2 {
		t.Errorf("after a second: %d reloads, want 2", n)
	}
}

func TestScopesIntersectAndGrant(t *testing.T) {
	all := Scopes{All: true}
	pt := Scopes{Types: []string{"Patient"}}
	ptEOB := Scopes{Types: []string{"ExplanationOfBenefit", "Patient"}}
	if got := all.Intersect(pt); got.String() != "system/Patient.rs" {
		t.Errorf("all ∩ Patient = %v", got)
	}
	if got := ptEOB.Intersect(pt); got.String() != "system/Patient.rs" {
		t.Errorf("{EOB,Patient} ∩ Patient = %v", got)
	}
	if got := pt.Intersect(Scopes{Types: []string{"Coverage"}}); !got.IsEmpty() {
		t.Errorf("disjoint = %v", got)
	}
	raw := "system/Patient.read system/Patient.read system/Coverage.rs"
	req, _ := ParseScopes(raw)
	if scope, granted := grantedScope(raw, req, all); scope != "system/Patient.read system/Coverage.rs" || granted.String() != "system/Coverage.rs system/Patient.rs" {
		t.Errorf("granted %q %v", scope, granted)
	}
	if scope, _ := grantedScope(raw, req, pt); scope != "system/Patient.read" {
		t.Errorf("granted under a narrower allowance %q", scope)
	}
	if scope, _ := grantedScope("", all, all); scope != "system/*.rs" {
		t.Errorf("empty request granted %q", scope)
	}
}

func TestValidateClientJWKS(t *testing.T) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	smallRSA, _ := rsa.GenerateKey(rand.Reader, 1024)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	set := func(keys ...jose.JSONWebKey) []byte {
		b, err := json.Marshal(jose.JSONWebKeySet{Keys: keys})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name string
		raw  []byte
		ok   bool
	}{
		{"RSA and EC", set(jose.JSONWebKey{Key: &rsaKey.PublicKey, KeyID: "a"}, jose.JSONWebKey{Key: &p384.PublicKey, KeyID: "b", Use: "sig", Algorithm: "ES384"}), true},
		{"no kid", set(jose.JSONWebKey{Key: &rsaKey.PublicKey}), false},
		{"duplicate kid", set(jose.JSONWebKey{Key: &rsaKey.PublicKey, KeyID: "a"}, jose.JSONWebKey{Key: &p384.PublicKey, KeyID: "a"}), false},
		{"private key", set(jose.JSONWebKey{Key: rsaKey, KeyID: "a"}), false},
		{"1024-bit RSA", set(jose.JSONWebKey{Key: &smallRSA.PublicKey, KeyID: "a"}), false},
		{"P-521", set(jose.JSONWebKey{Key: &p521.PublicKey, KeyID: "a"}), false},
		{"encryption key", set(jose.JSONWebKey{Key: &rsaKey.PublicKey, KeyID: "a", Use: "enc"}), false},
		{"symmetric key", []byte(`{"keys":[{"kty":"oct","kid":"a","k":"c2VjcmV0"}]}`), false},
		{"RSA key for ES384", set(jose.JSONWebKey{Key: &rsaKey.PublicKey, KeyID: "a", Algorithm: "ES384"}), false},
		{"empty", []byte(`{"keys":[]}`), false},
		{"not a JWKS", []byte(`[1,2]`), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := ValidateClientJWKS(tt.raw); (err == nil) != tt.ok {
				t.Errorf("ValidateClientJWKS = %v, want ok %v", err, tt.ok)
			}
		})
	}
	// The lenient parse keeps the usable keys of a mixed set.
	keys, err := ParseClientJWKS([]byte(`{"keys":[{"kty":"oct","kid":"x","k":"c2VjcmV0"},` + string(set(jose.JSONWebKey{Key: &p384.PublicKey, KeyID: "b"}))[9:]))
	if err != nil || len(keys) != 1 || keys[0].KeyID != "b" {
		t.Errorf("ParseClientJWKS = %v, %v", keys, err)
	}
}

func TestKeyFits(t *testing.T) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	r := jose.JSONWebKey{Key: &rsaKey.PublicKey}
	e := jose.JSONWebKey{Key: &p256.PublicKey}
	for _, tt := range []struct {
		k    jose.JSONWebKey
		alg  string
		want bool
	}{
		{r, "RS384", true}, {r, "RS256", true}, {r, "ES384", false}, {r, "HS256", false}, {r, "none", false},
		{e, "ES256", true}, {e, "ES384", false}, {e, "RS384", false},
		{jose.JSONWebKey{Key: &rsaKey.PublicKey, Algorithm: "RS256"}, "RS384", false},
	} {
		if got := keyFits(tt.k, tt.alg); got != tt.want {
			t.Errorf("keyFits(%T, %s) = %v", tt.k.Key, tt.alg, got)
		}
	}
}

func TestValidateJWKSURL(t *testing.T) {
	for _, tt := range []struct {
		url  string
		dev  bool
		want bool
	}{
		{"https://provider.example/jwks.json", false, true},
		{"http://provider.example/jwks.json", false, false},
		{"http://127.0.0.1:9000/jwks.json", false, false},
		{"http://127.0.0.1:9000/jwks.json", true, true},
		{"http://localhost/jwks.json", true, true},
		{"http://provider.example/jwks.json", true, false},
		{"https://user:pw@provider.example/jwks.json", false, false},
		{"https://provider.example/jwks.json#frag", false, false},
		{"/jwks.json", false, false},
		{"file:///etc/passwd", true, false},
	} {
		if err := ValidateJWKSURL(tt.url, tt.dev); (err == nil) != tt.want {
			t.Errorf("ValidateJWKSURL(%q, dev=%v) = %v", tt.url, tt.dev, err)
		}
	}
}

func TestDialControlRefusesInternalAddresses(t *testing.T) {
	prod, dev := dialControl(false), dialControl(true)
	for _, tt := range []struct {
		addr      string
		prod, dev bool // allowed
	}{
		{"93.184.216.34:443", true, true},
		{"127.0.0.1:443", false, true},
		{"[::1]:443", false, true},
		{"10.1.2.3:443", false, false},
		{"192.168.1.1:443", false, false},
		{"169.254.169.254:80", false, false}, // cloud metadata
		{"0.0.0.0:443", false, false},
		{"[fd00::1]:443", false, false},
	} {
		if got := prod("tcp", tt.addr, nil) == nil; got != tt.prod {
			t.Errorf("production dial %s allowed = %v", tt.addr, got)
		}
		if got := dev("tcp", tt.addr, nil) == nil; got != tt.dev {
			t.Errorf("DEV_MODE dial %s allowed = %v", tt.addr, got)
		}
	}
}

func TestCacheTTL(t *testing.T) {
	for cc, want := range map[string]time.Duration{
		"":                      jwksDefaultTTL,
		"max-age=60":            time.Minute,
		"public, max-age=86400": jwksMaxTTL,
		"no-store":              0,
		"max-age=600, no-cache": 0,
	} {
		if got := cacheTTL(cc); got != want {
			t.Errorf("cacheTTL(%q) = %v, want %v", cc, got, want)
		}
	}
}

func TestThrottle(t *testing.T) {
	th := newThrottle()
	now := time.Now()
	for i := range clientFailBurst {
		if _, blocked := th.blocked("c", "", now); blocked {
			t.Fatalf("blocked after %d failures", i)
		}
		th.fail("c", "", now)
	}
	wait, blocked := th.blocked("c", "", now)
	if !blocked || wait <= 0 || wait > clientFailEvery {
		t.Fatalf("after %d failures: blocked %v, wait %v", clientFailBurst, blocked, wait)
	}
	if _, blocked := th.blocked("other", "", now); blocked {
		t.Error("another client is blocked")
	}
	if _, blocked := th.blocked("c", "", now.Add(clientFailEvery)); blocked {
		t.Error("still blocked after the refill interval")
	}
	for range addrFailBurst - 1 {
		th.fail("", "192.0.2.1", now)
	}
	if _, blocked := th.blocked("fresh-client", "192.0.2.1", now); blocked {
		t.Errorf("the source address is throttled after %d failures, below its burst", addrFailBurst-1)
	}
	th.fail("", "192.0.2.1", now)
	if _, blocked := th.blocked("fresh-client", "192.0.2.1", now); !blocked {
		t.Error("the source address is not throttled")
	}
	th.fail("x", "y", now.Add(2*throttleIdle))
	if len(th.clients) != 1 || len(th.addrs) != 1 {
		t.Errorf("idle buckets not swept: %d clients, %d addresses", len(th.clients), len(th.addrs))
	}
}

func TestSecretMatches(t *testing.T) {
	s1, h1 := NewClientSecret()
	s2, h2 := NewClientSecret()
	if len(s1) != 43 || s1 == s2 {
		t.Fatalf("secrets %q %q", s1, s2)
	}
	if !SecretMatches(s1, [][]byte{h2, h1}) || SecretMatches(s1, [][]byte{h2}) || SecretMatches(s1, nil) || SecretMatches("", [][]byte{h1}) {
		t.Error("SecretMatches wrong")
	}
}

func TestOperatorClaim(t *testing.T) {
	claims := map[string]any{
		"groups":                    []any{"a", "payer-operators"},
		"role":                      "payer-operators",
		"realm_access":              map[string]any{"roles": []any{"payer-operators"}},
		"https://example.com/roles": []any{"payer-operators"},
		"nested.not":                "x",
	}
	for name, want := range map[string]bool{
		"groups": true, "role": true, "realm_access.roles": true, "https://example.com/roles": true,
		"missing": false, "realm_access": false, "nested.not": false,
	} {
		if got := claimHas(lookupClaim(claims, name), "payer-operators"); got != want {
			t.Errorf("claim %q: %v, want %v", name, got, want)
		}
	}
}

func TestDevSubjectIsStable(t *testing.T) {
	if DevSubject("Alice@Example.test") != DevSubject("alice@example.test ") || DevSubject("a@x.test") == DevSubject("b@x.test") {
		t.Error("DevSubject is not a function of the normalised email")
	}
}

func TestUnverifiedClaims(t *testing.T) {
	var c struct{ Iss string }
	good := "eyJhbGciOiJub25lIn0." + base64URL([]byte(`{"iss":"x"}`)) + ".sig"
	if err := unverifiedClaims(good, &c); err != nil || c.Iss != "x" {
		t.Errorf("unverifiedClaims = %v, %+v", err, c)
	}
	for _, bad := range []string{"", "a.b", "a.b.c.d", "a.!!!.c", strings.Repeat("a", maxTokenLength+1)} {
		if err := unverifiedClaims(bad, &c); err == nil {
			t.Errorf("unverifiedClaims(%.20q) accepted", bad)
		}
	}
}

// memClients is an in-memory ClientDirectory.
type memClients struct{ c gateway.APIClient }

func (m memClients) ClientByID(_ context.Context, id string) (gateway.APIClient, error) {
	if id != m.c.ID {
		return gateway.APIClient{}, gateway.ErrNotFound
	}
	return m.c, nil
}
func (memClients) ClientSecretHashes(context.Context, string) ([][]byte, error) { return nil, nil }
func (memClients) UseJTI(context.Context, string, string, time.Time) (bool, error) {
	return true, nil
}
func (memClients) RecordTokenIssued(context.Context, string, string, time.Time) error { return nil }

func TestClientTokenVerifierRefusesRevokedWithinTTL(t *testing.T) {
	ctx := t.Context()
	now := time.Now()
	clock := func() time.Time { return now }
	ring, err := OpenKeyRing(ctx, &memKeys{}, testKEK(), clock)
	if err != nil {
		t.Fatal(err)
	}
	dir := &memClients{c: gateway.APIClient{ID: "c1", OrganizationID: "o1", Environment: gateway.EnvSandbox,
		AccessType: gateway.ProviderAccess, Status: gateway.ClientActive}}
	iss := NewTokenIssuer(IssuerConfig{PublicURL: "https://gw.example", Now: clock}, ring, dir)
	resp, err := iss.issue(ctx, dir.c, "system/*.read", now)
	if err != nil {
		t.Fatal(err)
	}
	v := NewClientTokenVerifier(iss.Issuer(), iss.Audience(), ring, dir, clock)
	p, err := v.Verify(ctx, resp.AccessToken)
	if err != nil || p.ID() != "c1" || p.OrgID() != "o1" || !p.Scopes().All || p.Environment() != gateway.EnvSandbox {
		t.Fatalf("Verify = %+v, %v", p, err)
	}
	dir.c.Status = gateway.ClientRevoked
	now = now.Add(ClientStatusTTL)
	if _, err := v.Verify(ctx, resp.AccessToken); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("revoked client's token after the TTL: %v", err)
	}
	now = now.Add(AccessTokenLifetime)
	dir.c.Status = gateway.ClientActive
	if _, err := v.Verify(ctx, resp.AccessToken); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("expired token: %v", err)
	}
}
