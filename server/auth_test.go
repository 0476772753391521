package server_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"example.com/gateway/auth"
	"example.com/gateway/gateway"
	"example.com/gateway/server"
	"example.com/gateway/store"
	"example.com/gateway/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(storetest.Main(m)) }

// testGateway is a real gateway (server.New + NewHandler) on a real
// PostgreSQL database, served over HTTP by httptest, with PUBLIC_URL set to
// the test server's URL. It adds one route, /test/whoami, that reports the
// principal the real authentication middleware put in the context.
type testGateway struct {
	URL    string
	DB     *store.DB
	Server *server.Server
}

func newGateway(t testing.TB, env map[string]string) *testGateway {
	t.Helper()
	db := storetest.New(t)
	return newGatewayOn(t, db, env)
}

// testConfig is the configuration of a production-mode test gateway
// listening on addr: PUBLIC_URL http://addr, a fresh KEY_ENCRYPTION_KEY,
// EXPORT_DIR under t.TempDir(), debug logs; env overrides any of it. The
// database is the one handed to server.New, not DATABASE_URL.
func testConfig(t testing.TB, addr string, env map[string]string) server.Config {
	t.Helper()
	kek := make([]byte, 32)
	rand.Read(kek)
	vars := map[string]string{
		"DATABASE_URL":       "postgres://unused.invalid/db",
		"LISTEN_ADDR":        addr,
		"PUBLIC_URL":         "http://" + addr,
		"DEV_MODE":           "false",
		"KEY_ENCRYPTION_KEY": base64.StdEncoding.EncodeToString(kek),
		"EXPORT_DIR":         t.TempDir(),
		"LOG_LEVEL":          "debug",
	}
	for k, v := range env {
		vars[k] = v
	}
	cfg, err := server.LoadConfig(func(k string) string { return vars[k] })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func newGatewayOn(t testing.TB, db *store.DB, env map[string]string) *testGateway {
	t.Helper()
	ts := httptest.NewUnstartedServer(nil)
	cfg := testConfig(t, ts.Listener.Addr().String(), env)
	publicURL := cfg.PublicURL
	logs := &testLog{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("gateway log:\n%s", logs.String())
		}
	})
	s, err := server.New(t.Context(), cfg, server.NewLogger(logs, slog.LevelDebug), db)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/", s.NewHandler())
	mux.Handle("GET /test/whoami", s.Auth.Middleware(http.HandlerFunc(whoami)))
	ts.Config.Handler = mux
	ts.Start()
	t.Cleanup(ts.Close)
	return &testGateway{URL: publicURL, DB: db, Server: s}
}

// sibling starts another instance of g: the same database, PUBLIC_URL and
// KEY_ENCRYPTION_KEY, as behind one load balancer.
func (g *testGateway) sibling(t testing.TB) *testGateway {
	t.Helper()
	s := newGatewayOn(t, g.DB, map[string]string{
		"PUBLIC_URL":         g.URL,
		"KEY_ENCRYPTION_KEY": base64.StdEncoding.EncodeToString(g.Server.Config.KeyEncryptionKey),
	})
	return s
}

type testLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *testLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *testLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// identity is what /test/whoami answers.
type identity struct {
	Kind        string `json:"kind"`
	ID          string `json:"id"`
	Org         string `json:"org"`
	Env         string `json:"env"`
	AccessType  string `json:"access_type"`
	BoundMember string `json:"bound_member"`
	Email       string `json:"email"`
	Scopes      string `json:"scopes"`
	Rejected    bool   `json:"rejected"`
}

func whoami(w http.ResponseWriter, r *http.Request) {
	p, _ := auth.FromContext(r.Context())
	json.NewEncoder(w).Encode(identity{
		Kind: string(p.Kind()), ID: p.ID(), Org: p.OrgID(), Env: string(p.Environment()),
		AccessType: string(p.AccessType()), BoundMember: p.BoundMemberID(), Email: p.Email(),
		Scopes: p.Scopes().String(), Rejected: auth.CredentialsRejected(r.Context()),
	})
}

func (g *testGateway) whoami(t testing.TB, token string) identity {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, g.URL+"/test/whoami", nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var id identity
	if err := json.NewDecoder(resp.Body).Decode(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

// validNPI returns a random NPI whose check digit passes the Luhn check over
// 80840 + the first nine digits (as the database's npi_valid does).
func validNPI() string {
	var b strings.Builder
	for range 9 {
		b.WriteString(strconv.Itoa(mrand.N(10)))
	}
	for c := range 10 {
		npi := b.String() + strconv.Itoa(c)
		if luhnOK("80840" + npi) {
			return npi
		}
	}
	panic("unreachable")
}

func luhnOK(digits string) bool {
	sum := 0
	for i := range len(digits) {
		d := int(digits[len(digits)-1-i] - '0')
		if i%2 == 1 {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return sum%10 == 0
}

func (g *testGateway) org(t testing.TB) gateway.Organization {
	t.Helper()
	o, err := g.DB.CreateOrganization(t.Context(), gateway.Organization{
		Name: "Org " + rand.Text()[:6], Type: gateway.OrgProviderHealthSystem, NPI: validNPI(), TIN: "123456789",
	})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func (g *testGateway) client(t testing.TB, in store.NewClient) (gateway.APIClient, string) {
	t.Helper()
	if in.OrganizationID == "" {
		in.OrganizationID = g.org(t).ID
	}
	if in.Name == "" {
		in.Name = "client " + rand.Text()[:8]
	}
	if in.Environment == "" {
		in.Environment = gateway.EnvSandbox
	}
	if in.AccessType == "" {
		in.AccessType = gateway.ProviderAccess
	}
	c, secret, err := g.DB.CreateClient(t.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	return c, secret
}

type tokenReply struct {
	Status int
	Header http.Header
	Body   map[string]any
}

func (r tokenReply) str(k string) string { s, _ := r.Body[k].(string); return s }

func (g *testGateway) tokenURL() string { return g.URL + "/oauth/token" }

// postToken posts form to /oauth/token, with Basic credentials when user != "".
func (g *testGateway) postToken(t testing.TB, form url.Values, user, pass string) tokenReply {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, g.tokenURL(), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(url.QueryEscape(user), url.QueryEscape(pass))
	}
	return g.do(t, req)
}

func (g *testGateway) do(t testing.TB, req *http.Request) tokenReply {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	r := tokenReply{Status: resp.StatusCode, Header: resp.Header}
	if err := json.Unmarshal(body, &r.Body); err != nil {
		t.Fatalf("token endpoint answered %d with non-JSON %q", resp.StatusCode, body)
	}
	return r
}

func (g *testGateway) secretToken(t testing.TB, clientID, secret, scope string) string {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}}
	if scope != "" {
		form.Set("scope", scope)
	}
	r := g.postToken(t, form, clientID, secret)
	if r.Status != http.StatusOK {
		t.Fatalf("token: %d %v", r.Status, r.Body)
	}
	return r.str("access_token")
}

func grant(scope string) url.Values {
	return url.Values{"grant_type": {"client_credentials"}, "scope": {scope}}
}

func TestTokenEndpointErrors(t *testing.T) {
	t.Parallel()
	g := newGateway(t, nil)
	c, secret := g.client(t, store.NewClient{})
	revoked, revokedSecret := g.client(t, store.NewClient{})
	if err := g.DB.RevokeClient(t.Context(), revoked.ID); err != nil {
		t.Fatal(err)
	}

	raw := func(contentType, body string, user, pass string) func() tokenReply {
		return func() tokenReply {
			req, _ := http.NewRequest(http.MethodPost, g.tokenURL(), strings.NewReader(body))
			req.Header.Set("Content-Type", contentType)
			if user != "" {
				req.SetBasicAuth(user, pass)
			}
			return g.do(t, req)
		}
	}
	form := func(f url.Values, user, pass string) func() tokenReply {
		return func() tokenReply { return g.postToken(t, f, user, pass) }
	}
	withSecret := func(id, s string) url.Values {
		f := grant("system/*.read")
		f.Set("client_id", id)
		f.Set("client_secret", s)
		return f
	}
	tests := []struct {
		name       string
		send       func() tokenReply
		status     int
		code       string
		basicChall bool // WWW-Authenticate: Basic expected
	}{
		{"unsupported grant type", form(url.Values{"grant_type": {"password"}}, c.ID, secret), 400, "unsupported_grant_type", false},
		{"refresh_token grant", form(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}}, c.ID, secret), 400, "unsupported_grant_type", false},
		{"missing grant_type", form(url.Values{"scope": {"system/*.read"}}, c.ID, secret), 400, "invalid_request", false},
		{"JSON body", raw("application/json", `{"grant_type":"client_credentials"}`, c.ID, secret), 400, "invalid_request", false},
		{"repeated parameter", raw("application/x-www-form-urlencoded", "grant_type=client_credentials&scope=a&scope=b", c.ID, secret), 400, "invalid_request", false},
		{"assertion without its type", form(url.Values{"grant_type": {"client_credentials"}, "client_assertion": {"x.y.z"}}, "", ""), 400, "invalid_request", false},
		{"wrong assertion type", form(url.Values{"grant_type": {"client_credentials"}, "client_assertion": {"x.y.z"}, "client_assertion_type": {"urn:example"}}, "", ""), 400, "invalid_request", false},
		{"no client authentication", form(url.Values{"grant_type": {"client_credentials"}, "client_id": {c.ID}}, "", ""), 401, "invalid_client", false},
		{"two authentication methods", form(withSecret(c.ID, secret), c.ID, secret), 401, "invalid_client", true},
		{"unknown client (basic)", form(grant("system/*.read"), "no-such-client", secret), 401, "invalid_client", true},
		{"wrong secret (basic)", form(grant("system/*.read"), c.ID, secret+"x"), 401, "invalid_client", true},
		{"revoked client (basic)", form(grant("system/*.read"), revoked.ID, revokedSecret), 401, "invalid_client", true},
		{"unknown client (post)", form(withSecret("no-such-client", secret), "", ""), 401, "invalid_client", false},
		{"wrong secret (post)", form(withSecret(c.ID, "wrong"), "", ""), 401, "invalid_client", false},
		{"revoked client (post)", form(withSecret(revoked.ID, revokedSecret), "", ""), 401, "invalid_client", false},
		{"unknown scope", form(grant("system/Claim.rs"), c.ID, secret), 400, "invalid_scope", false},
		{"user scope", form(grant("user/*.read"), c.ID, secret), 400, "invalid_scope", false},
		{"write scope", form(grant("system/*.write"), c.ID, secret), 400, "invalid_scope", false},
	}
	descriptions := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.send()
			if r.Status != tt.status || r.str("error") != tt.code {
				t.Fatalf("got %d %v, want %d %s", r.Status, r.Body, tt.status, tt.code)
			}
			if r.str("error_description") == "" {
				t.Errorf("no error_description: %v", r.Body)
			}
			if got := r.Header.Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store", got)
			}
			if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type = %q", ct)
			}
			chall := r.Header.Get("WWW-Authenticate")
			if tt.basicChall != strings.HasPrefix(chall, "Basic ") {
				t.Errorf("WWW-Authenticate = %q, want Basic challenge: %v", chall, tt.basicChall)
			}
			if strings.HasPrefix(tt.name, "unknown client") || strings.HasPrefix(tt.name, "wrong secret") || strings.HasPrefix(tt.name, "revoked client") {
				descriptions[r.str("error_description")] = true
			}
		})
	}
	// Unknown client, wrong secret and revoked client must read the same.
	if len(descriptions) != 1 {
		t.Errorf("credential failures are distinguishable: %v", descriptions)
	}
}

func TestClientSecretBasicAndPost(t *testing.T) {
	t.Parallel()
	g := newGateway(t, nil)
	org := g.org(t)
	c, secret := g.client(t, store.NewClient{OrganizationID: org.ID, Environment: gateway.EnvProduction})
	if secret == "" || len(secret) < 43 {
		t.Fatalf("secret %q: want 256 bits", secret)
	}
	post := grant("system/Patient.read system/ExplanationOfBenefit.read system/Patient.read")
	post.Set("client_id", c.ID)
	post.Set("client_secret", secret)
	for name, r := range map[string]tokenReply{
		"basic": g.postToken(t, grant("system/*.rs"), c.ID, secret),
		"post":  g.postToken(t, post, "", ""),
	} {
		t.Run(name, func(t *testing.T) {
			if r.Status != http.StatusOK {
				t.Fatalf("status %d: %v", r.Status, r.Body)
			}
			if r.str("token_type") != "bearer" || r.Body["expires_in"] != float64(300) || r.str("access_token") == "" {
				t.Errorf("response %v", r.Body)
			}
			if _, ok := r.Body["refresh_token"]; ok {
				t.Error("a refresh token was issued")
			}
			if r.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("Cache-Control %q", r.Header.Get("Cache-Control"))
			}
			id := g.whoami(t, r.str("access_token"))
			if id.Kind != "CLIENT" || id.ID != c.ID || id.Org != org.ID || id.Env != "PRODUCTION" || id.AccessType != "PROVIDER_ACCESS" {
				t.Errorf("principal %+v", id)
			}
			want := map[string]string{"basic": "system/*.rs", "post": "system/Patient.read system/ExplanationOfBenefit.read"}[name]
			if r.str("scope") != want {
				t.Errorf("scope %q, want %q", r.str("scope"), want)
			}
			wantScopes := map[string]string{"basic": "system/*.rs", "post": "system/ExplanationOfBenefit.rs system/Patient.rs"}[name]
			if id.Scopes != wantScopes {
				t.Errorf("principal scopes %q, want %q", id.Scopes, wantScopes)
			}
		})
	}
	var issued int
	var lastUsed *time.Time
	g.DB.Get(&issued, `SELECT count(*) FROM token_issuances WHERE client_id = $1`, c.ID)
	g.DB.Get(&lastUsed, `SELECT last_used_at FROM clients WHERE id = $1`, c.ID)
	if issued != 2 || lastUsed == nil {
		t.Errorf("token_issuances = %d, last_used_at = %v; want 2 and set", issued, lastUsed)
	}
}

func TestSecretRotationOverlap(t *testing.T) {
	t.Parallel()
	g := newGateway(t, nil)
	c, old := g.client(t, store.NewClient{})
	fresh, err := g.DB.RotateClientSecret(t.Context(), c.ID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	g.secretToken(t, c.ID, old, "")   // inside the overlap window
	g.secretToken(t, c.ID, fresh, "") // the new one
	if _, err := g.DB.RotateClientSecret(t.Context(), c.ID, 0); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{old, fresh} {
		if r := g.postToken(t, grant(""), c.ID, s); r.Status != http.StatusUnauthorized {
			t.Errorf("expired secret: %d %v", r.Status, r.Body)
		}
	}
}

// testKey is a client's key pair with its registered kid.
type testKey struct {
	priv crypto.Signer
	alg  jose.SignatureAlgorithm
	kid  string
}

func newTestKey(t testing.TB, alg jose.SignatureAlgorithm) testKey {
	t.Helper()
	var priv crypto.Signer
	var err error
	switch alg {
	case jose.RS384, jose.RS256:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	case jose.ES384:
		priv, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case jose.ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		t.Fatal(err)
	}
	return testKey{priv: priv, alg: alg, kid: "key-" + rand.Text()[:8]}
}

func jwksOf(t testing.TB, keys ...testKey) json.RawMessage {
	t.Helper()
	var set jose.JSONWebKeySet
	for _, k := range keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.priv.Public(), KeyID: k.kid, Use: "sig", Algorithm: string(k.alg)})
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// assertionClaims are a valid client assertion's claims, for tests to spoil.
func assertionClaims(clientID, aud string) map[string]any {
	now := time.Now()
	return map[string]any{
		"iss": clientID, "sub": clientID, "aud": aud,
		"exp": now.Add(4 * time.Minute).Unix(), "iat": now.Unix(), "jti": rand.Text(),
	}
}

func sign(t testing.TB, k testKey, headers map[jose.HeaderKey]any, claims any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	for h, v := range headers {
		opts.WithHeader(h, v)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: jose.JSONWebKey{Key: k.priv, KeyID: k.kid}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func b64json(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

func assertionForm(assertion string) url.Values {
	f := grant("system/*.read")
	f.Set("client_assertion_type", auth.ClientAssertionType)
	f.Set("client_assertion", assertion)
	return f
}

func TestPrivateKeyJWT(t *testing.T) {
	t.Parallel()
	g := newGateway(t, nil)
	for _, alg := range []jose.SignatureAlgorithm{jose.RS384, jose.ES384, jose.RS256, jose.ES256} {
		t.Run(string(alg), func(t *testing.T) {
			t.Parallel()
			k := newTestKey(t, alg)
			other := newTestKey(t, jose.ES384)
			c, secret := g.client(t, store.NewClient{JWKS: jwksOf(t, other, k)})
			if secret != "" {
				t.Errorf("a client registered with a JWKS got a secret")
			}
			f := assertionForm(sign(t, k, nil, assertionClaims(c.ID, g.tokenURL())))
			f.Set("client_id", c.ID) // optional, and must then match (RFC 7521 §4.2)
			r := g.postToken(t, f, "", "")
			if r.Status != http.StatusOK {
				t.Fatalf("%d %v", r.Status, r.Body)
			}
			if id := g.whoami(t, r.str("access_token")); id.ID != c.ID || id.Kind != "CLIENT" {
				t.Errorf("principal %+v", id)
			}
		})
	}
}

func TestClientAssertionRefused(t *testing.T) {
	t.Parallel()
	g := newGateway(t, nil)
	k := newTestKey(t, jose.RS384)
	// Each case authenticates as its own client, so that the failure
	// throttle (10 per client) never answers in its place.
	newClient := func() gateway.APIClient {
		c, _ := g.client(t, store.NewClient{JWKS: jwksOf(t, k)})
		return c
	}
	claims := func(c gateway.APIClient, edit func(map[string]any)) map[string]any {
		m := assertionClaims(c.ID, g.tokenURL())
		if edit != nil {
			edit(m)
		}
		return m
	}
	signed := func(edit func(map[string]any)) func(gateway.APIClient) string {
		return func(c gateway.APIClient) string { return sign(t, k, nil, claims(c, edit)) }
	}
	withKey := func(key testKey, headers map[jose.HeaderKey]any) func(gateway.APIClient) string {
		return func(c gateway.APIClient) string { return sign(t, key, headers, claims(c, nil)) }
	}

	// HS256 keyed with the registered public key (the RS/HS confusion attack).
	der, _ := x509.MarshalPKIXPublicKey(k.priv.Public())
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	hs := func(secret []byte) func(gateway.APIClient) string {
		return func(c gateway.APIClient) string {
			in := b64json(map[string]any{"alg": "HS256", "typ": "JWT", "kid": k.kid}) + "." + b64json(claims(c, nil))
			mac := hmac.New(sha256.New, secret)
			mac.Write([]byte(in))
			return in + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
		}
	}
	// alg none: the header says none, there is no signature.
	none := func(c gateway.APIClient) string {
		return b64json(map[string]any{"alg": "none", "typ": "JWT", "kid": k.kid}) + "." + b64json(claims(c, nil)) + "."
	}
	replayed := func(c gateway.APIClient) string {
		a := sign(t, k, nil, claims(c, nil))
		if r := g.postToken(t, assertionForm(a), "", ""); r.Status != http.StatusOK {
			t.Fatalf("first use: %d %v", r.Status, r.Body)
		}
		return a
	}

	impostor := newTestKey(t, jose.RS384)
	impostor.kid = k.kid // same kid, another key
	unknownKid := k
	unknownKid.kid = "not-registered"
	noKid := k
	noKid.kid = ""
	rs512 := k
	rs512.alg = jose.RS512

	tests := []struct {
		name      string
		assertion func(gateway.APIClient) string
	}{
		{"replayed jti", replayed},
		{"exp more than 5 minutes ahead", signed(func(m map[string]any) { m["exp"] = time.Now().Add(6 * time.Minute).Unix() })},
		{"expired", signed(func(m map[string]any) { m["exp"] = time.Now().Add(-2 * time.Minute).Unix() })},
		{"no exp", signed(func(m map[string]any) { delete(m, "exp") })},
		{"no jti", signed(func(m map[string]any) { delete(m, "jti") })},
		{"aud with trailing slash", signed(func(m map[string]any) { m["aud"] = g.tokenURL() + "/" })},
		{"aud is the issuer", signed(func(m map[string]any) { m["aud"] = g.URL })},
		{"iss differs from sub", signed(func(m map[string]any) { m["iss"] = "someone-else" })},
		{"unknown client", signed(func(m map[string]any) { m["sub"], m["iss"] = "no-such-client", "no-such-client" })},
		{"unknown kid", withKey(unknownKid, nil)},
		{"no kid", withKey(noKid, nil)},
		{"signed by another key with the same kid", withKey(impostor, nil)},
		{"alg none", none},
		{"HS256 keyed with the public key PEM", hs(pubPEM)},
		{"HS256 keyed with the public key DER", hs(der)},
		{"alg not accepted (RS512)", withKey(rs512, nil)},
		{"jku not registered", withKey(k, map[jose.HeaderKey]any{"jku": "https://attacker.example/jwks.json"})},
		{"typ not JWT", withKey(k, map[jose.HeaderKey]any{"typ": "at+jwt"})},
		{"not a JWT", func(gateway.APIClient) string { return "not-a-jwt" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient()
			if r := g.postToken(t, assertionForm(sign(t, k, nil, claims(c, nil))), "", ""); r.Status != http.StatusOK {
				t.Fatalf("control: a valid assertion is refused: %d %v", r.Status, r.Body)
			}
			r := g.postToken(t, assertionForm(tt.assertion(c)), "", "")
			if r.Status != http.StatusUnauthorized || r.str("error") != "invalid_client" || r.str("error_description") != "client authentication failed" {
				t.Fatalf("got %d %v, want 401 invalid_client", r.Status, r.Body)
			}
		})
	}
}

func TestJWKSURL(t *testing.T) {
	t.Parallel()
	k := newTestKey(t, jose.ES384)
	var fetches int
	var mu sync.Mutex
	keysAt := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		fetches++
		mu.Unlock()
		w.Header().Set("Cache-Control", "max-age=300")
		w.Write(jwksOf(t, k))
	}))
	t.Cleanup(keysAt.Close)

	t.Run("DEV_MODE allows a loopback http URL, and jku equal to it", func(t *testing.T) {
		g := newGateway(t, map[string]string{"DEV_MODE": "true"})
		c, _ := g.client(t, store.NewClient{JWKSURL: keysAt.URL})
		for _, h := range []map[jose.HeaderKey]any{nil, {"jku": keysAt.URL}} {
			r := g.postToken(t, assertionForm(sign(t, k, h, assertionClaims(c.ID, g.tokenURL()))), "", "")
			if r.Status != http.StatusOK {
				t.Fatalf("%d %v", r.Status, r.Body)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		if fetches != 1 {
			t.Errorf("JWKS fetched %d times, want 1 (cached)", fetches)
		}
	})
	t.Run("http refused outside DEV_MODE", func(t *testing.T) {
		g := newGateway(t, nil)
		c, _ := g.client(t, store.NewClient{JWKSURL: keysAt.URL})
		r := g.postToken(t, assertionForm(sign(t, k, nil, assertionClaims(c.ID, g.tokenURL()))), "", "")
		if r.Status != http.StatusUnauthorized {
			t.Fatalf("%d %v", r.Status, r.Body)
		}
	})
}

func TestFailedAttemptsThrottled(t *testing.T) {
	t.Parallel()
	g := newGateway(t, nil)
	c, secret := g.client(t, store.NewClient{})
	for i := range 10 {
		if r := g.postToken(t, grant(""), c.ID, "wrong"); r.Status != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d", i, r.Status)
		}
	}
	r := g.postToken(t, grant(""), c.ID, "wrong")
	if r.Status != http.StatusTooManyRequests {
		t.Fatalf("after 10 failures: %d %v, want 429", r.Status, r.Body)
	}
	if ra, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 10 {
		t.Errorf("Retry-After %q", r.Header.Get("Retry-After"))
	}
	// Failing in a client's name does not lock the client out.
	g.secretToken(t, c.ID, secret, "")

	// A source address over its budget waits, whatever the client.
	for i := 0; i < 60; i++ {
		if r := g.postToken(t, grant(""), "client-"+strconv.Itoa(i), "wrong"); r.Status == http.StatusTooManyRequests {
			other, otherSecret := g.client(t, store.NewClient{})
			if r := g.postToken(t, grant(""), other.ID, otherSecret); r.Status != http.StatusTooManyRequests {
				t.Errorf("an address over its budget: %d, want 429", r.Status)
			}
			return
		}
	}
	t.Error("60 failures from one address: never 429")
}

func TestIssuerMetadataAndJWKS(t *testing.T) {
	t.Parallel()
	g := newGateway(t, nil)
	var meta map[string]any
	getJSON(t, g.URL+"/.well-known/openid-configuration", &meta)
	if meta["issuer"] != g.URL || meta["token_endpoint"] != g.tokenURL() || meta["jwks_uri"] != g.URL+"/.well-known/jwks.json" {
		t.Errorf("metadata %v", meta)
	}
	for _, field := range []string{"grant_types_supported", "token_endpoint_auth_methods_supported", "token_endpoint_auth_signing_alg_values_supported", "scopes_supported"} {
		if _, ok := meta[field].([]any); !ok {
			t.Errorf("%s missing", field)
		}
	}
	algs := fmt.Sprint(meta["token_endpoint_auth_signing_alg_values_supported"])
	if !strings.Contains(algs, "RS384") || !strings.Contains(algs, "ES384") || strings.Contains(algs, "HS") || strings.Contains(algs, "none") {
		t.Errorf("algs %s", algs)
	}
	var jwks struct {
		Keys []map[string]any `json:"keys"`
	}
	getJSON(t, g.URL+"/.well-known/jwks.json", &jwks)
	if len(jwks.Keys) != 1 {
		t.Fatalf("jwks %v", jwks)
	}
	for _, private := range []string{"d", "p", "q", "dp", "dq", "qi"} {
		if _, ok := jwks.Keys[0][private]; ok {
			t.Errorf("JWKS publishes private member %q", private)
		}
	}
	c, secret := g.client(t, store.NewClient{})
	tok := g.secretToken(t, c.ID, secret, "")
	parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{auth.SigningAlg})
	if err != nil {
		t.Fatal(err)
	}
	if parsed.Headers[0].KeyID != jwks.Keys[0]["kid"] {
		t.Errorf("token kid %q not in JWKS %v", parsed.Headers[0].KeyID, jwks.Keys[0]["kid"])
	}
	var claims map[string]any
	parsed.UnsafeClaimsWithoutVerification(&claims)
	for k, want := range map[string]any{"iss": g.URL, "sub": c.ID, "aud": g.URL, "client_id": c.ID, "org": c.OrganizationID,
		"access_type": "PROVIDER_ACCESS", "env": "SANDBOX", "scope": "system/*.rs"} {
		if claims[k] != want {
			t.Errorf("claim %s = %v, want %v", k, claims[k], want)
		}
	}
	if exp, iat := claims["exp"].(float64), claims["iat"].(float64); exp-iat != 300 {
		t.Errorf("lifetime %v s", exp-iat)
	}
}

func getJSON(t testing.TB, u string, v any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", u, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

func TestClientTokenVerification(t *testing.T) {
	t.Parallel()
	g := newGateway(t, nil)
	org := g.org(t)
	c, secret := g.client(t, store.NewClient{OrganizationID: org.ID, Environment: gateway.EnvSandbox})
	ctx := t.Context()
	claims := func(edit func(*auth.AccessTokenClaims)) auth.AccessTokenClaims {
		now := time.Now()
		cl := auth.AccessTokenClaims{Issuer: g.URL, Subject: c.ID, Audience: g.URL, IssuedAt: now.Unix(),
			Expiry: now.Add(5 * time.Minute).Unix(), JTI: rand.Text(), ClientID: c.ID, Org: org.ID,
			AccessType: gateway.ProviderAccess, Env: gateway.EnvSandbox, Scope: "system/*.rs"}
		if edit != nil {
			edit(&cl)
		}
		return cl
	}
	signed := func(edit func(*auth.AccessTokenClaims)) string {
		tok, err := g.Server.Auth.Keys.Sign(ctx, claims(edit))
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}

	// A token another gateway issued: its own issuer URL and its own keys.
	other := newGateway(t, nil)
	oc, osecret := other.client(t, store.NewClient{})
	foreign := other.secretToken(t, oc.ID, osecret, "")
	// The same claims as a valid token, signed by a key this gateway never had.
	forger := newTestKey(t, jose.RS256)
	forged := func(kid string) string {
		signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: forger.priv, KeyID: kid}},
			(&jose.SignerOptions{}).WithType("at+jwt"))
		s, _ := jwt.Signed(signer).Claims(claims(nil)).Serialize()
		return s
	}

	if id := g.whoami(t, signed(nil)); id.Kind != "CLIENT" || id.ID != c.ID || id.Rejected {
		t.Fatalf("control: a well-formed token is refused: %+v", id)
	}
	if id := g.whoami(t, g.secretToken(t, c.ID, secret, "")); id.Kind != "CLIENT" {
		t.Fatalf("control: an issued token is refused: %+v", id)
	}
	tests := []struct {
		name  string
		token string
	}{
		{"expired", signed(func(c *auth.AccessTokenClaims) { c.IssuedAt -= 600; c.Expiry = time.Now().Add(-time.Minute).Unix() })},
		{"another issuer's token", foreign},
		{"forged signature, our kid", forged(g.Server.Auth.Keys.CurrentKID())},
		{"forged signature, unknown kid", forged("unknown")},
		{"wrong audience", signed(func(c *auth.AccessTokenClaims) { c.Audience = "https://elsewhere.example" })},
		{"production claim for a sandbox client", signed(func(c *auth.AccessTokenClaims) { c.Env = gateway.EnvProduction })},
		{"another organization", signed(func(c *auth.AccessTokenClaims) { c.Org = g.org(t).ID })},
		{"another access type", signed(func(c *auth.AccessTokenClaims) { c.AccessType = gateway.PatientAccess })},
		{"unknown client", signed(func(c *auth.AccessTokenClaims) { c.Subject, c.ClientID = "ghost", "ghost" })},
		{"client_id differs from sub", signed(func(c *auth.AccessTokenClaims) { c.ClientID = "ghost" })},
		{"no scope", signed(func(c *auth.AccessTokenClaims) { c.Scope = "" })},
		{"garbage", "abc.def.ghi"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := g.whoami(t, tt.token)
			if id.Kind != "" || !id.Rejected {
				t.Fatalf("token accepted: %+v", id)
			}
		})
	}
	if id := g.whoami(t, ""); id.Kind != "" || id.Rejected {
		t.Errorf("no token: %+v", id)
	}
}

func TestRevokedClientStopsWithin5s(t *testing.T) {
	t.Parallel()
	g := newGateway(t, nil)
	c, secret := g.client(t, store.NewClient{})
	tok := g.secretToken(t, c.ID, secret, "")
	if id := g.whoami(t, tok); id.Kind != "CLIENT" {
		t.Fatalf("before revocation: %+v", id)
	}
	// Another instance behind the same load balancer must stop too.
	g2 := g.sibling(t)
	if id := g2.whoami(t, tok); id.Kind != "CLIENT" { // its cache now holds the ACTIVE client
		t.Fatalf("sibling before revocation: %+v", id)
	}
	if err := g.DB.RevokeClient(t.Context(), c.ID); err != nil {
		t.Fatal(err)
	}
	revokedAt := time.Now()
	for _, inst := range []*testGateway{g, g2} {
		for {
			if id := inst.whoami(t, tok); id.Kind == "" && id.Rejected {
				break
			}
			if time.Since(revokedAt) > 5*time.Second {
				t.Fatal("a revoked client's token still works after 5 s")
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	t.Logf("refused %v after revocation", time.Since(revokedAt).Round(time.Millisecond))
	if r := g.postToken(t, grant(""), c.ID, secret); r.Status != http.StatusUnauthorized {
		t.Errorf("revoked client got a token: %d", r.Status)
	}
}

func TestSigningKeyRotationAcrossInstances(t *testing.T) {
	t.Parallel()
	g := newGateway(t, nil)
	c, secret := g.client(t, store.NewClient{})
	before := g.secretToken(t, c.ID, secret, "")
	kek := g.Server.Config.KeyEncryptionKey
	kid, err := auth.RotateSigningKey(t.Context(), g.DB, kek, 0)
	if err != nil {
		t.Fatal(err)
	}
	// A freshly started instance signs with the new key...
	g2 := g.sibling(t)
	if g2.Server.Auth.Keys.CurrentKID() != kid {
		t.Fatalf("new instance signs with %s, want %s", g2.Server.Auth.Keys.CurrentKID(), kid)
	}
	tok, err := g2.Server.Auth.Keys.Sign(t.Context(), auth.AccessTokenClaims{Issuer: g.URL, Subject: c.ID, Audience: g.URL,
		IssuedAt: time.Now().Unix(), Expiry: time.Now().Add(time.Minute).Unix(), ClientID: c.ID, Org: c.OrganizationID,
		AccessType: c.AccessType, Env: c.Environment, Scope: "system/*.rs"})
	if err != nil {
		t.Fatal(err)
	}
	// ...the old instance verifies it (unknown kid → reload from the
	// database) and still verifies what the old key signed.
	if id := g.whoami(t, tok); id.ID != c.ID {
		t.Errorf("old instance refuses the new key's token: %+v", id)
	}
	if id := g.whoami(t, before); id.ID != c.ID {
		t.Errorf("the old key's token stopped working: %+v", id)
	}
	var jwks struct{ Keys []map[string]any }
	getJSON(t, g.URL+"/.well-known/jwks.json", &jwks)
	if len(jwks.Keys) != 2 {
		t.Errorf("JWKS has %d keys during the overlap, want 2", len(jwks.Keys))
	}
}

func TestWrongKeyEncryptionKey(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	newGatewayOn(t, db, nil) // creates the signing key under a random KEK
	cfg, err := server.LoadConfig(func(k string) string {
		return map[string]string{"DATABASE_URL": "postgres://x.invalid/db", "KEY_ENCRYPTION_KEY": base64.StdEncoding.EncodeToString(make([]byte, 32))}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := server.New(t.Context(), cfg, slog.New(slog.DiscardHandler), db); err == nil || !strings.Contains(err.Error(), "KEY_ENCRYPTION_KEY") {
		t.Fatalf("New with another KEK: %v, want a KEY_ENCRYPTION_KEY error", err)
	}
	var sealed []byte
	db.Get(&sealed, `SELECT private_key_sealed FROM signing_keys LIMIT 1`)
	if bytes.Contains(sealed, []byte{0x02, 0x01, 0x00, 0x30}) { // PKCS #8 version + AlgorithmIdentifier, in the clear
		t.Error("private key stored in the clear")
	}
}

func TestDevIssuerPeople(t *testing.T) {
	t.Parallel()
	g := newGateway(t, map[string]string{"DEV_MODE": "true", "DEV_OPERATORS": "op@example.test"})
	devToken := func(email string) map[string]any {
		resp, err := http.PostForm(g.URL+"/dev/token", url.Values{"email": {email}})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		json.NewDecoder(resp.Body).Decode(&body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("dev token: %s %v", resp.Status, body)
		}
		return body
	}
	var meta map[string]any
	getJSON(t, g.URL+"/dev/.well-known/openid-configuration", &meta)
	if meta["issuer"] != g.URL+"/dev" || meta["jwks_uri"] != g.URL+"/dev/jwks.json" {
		t.Errorf("dev discovery %v", meta)
	}

	body := devToken("alice@example.test")
	if body["id_token"] == "" || body["token_type"] != "Bearer" {
		t.Errorf("dev token response %v", body)
	}
	alice := g.whoami(t, body["access_token"].(string))
	if alice.Kind != "PERSON" || alice.Email != "alice@example.test" || alice.ID == "" {
		t.Fatalf("alice %+v", alice)
	}
	again := g.whoami(t, devToken("alice@example.test")["access_token"].(string))
	if again.ID != alice.ID {
		t.Errorf("same email, another user: %s vs %s", again.ID, alice.ID)
	}
	var users int
	g.DB.Get(&users, `SELECT count(*) FROM users WHERE email = 'alice@example.test'`)
	if users != 1 {
		t.Errorf("%d users rows, want 1", users)
	}
	if op := g.whoami(t, devToken("OP@example.test")["access_token"].(string)); op.Kind != "OPERATOR" {
		t.Errorf("DEV_OPERATORS email: %+v", op)
	}
	// Client tokens still work beside the dev issuer.
	c, secret := g.client(t, store.NewClient{})
	if id := g.whoami(t, g.secretToken(t, c.ID, secret, "")); id.Kind != "CLIENT" {
		t.Errorf("client token in DEV_MODE: %+v", id)
	}
}

func TestDevRoutesOnlyInDevMode(t *testing.T) {
	t.Parallel()
	g := newGateway(t, nil)
	for _, probe := range []struct{ method, path string }{
		{"GET", "/dev/.well-known/openid-configuration"}, {"GET", "/dev/jwks.json"}, {"POST", "/dev/token"},
	} {
		req, _ := http.NewRequest(probe.method, g.URL+probe.path, strings.NewReader("email=a%40b.test"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s %s without DEV_MODE: %s, want 404", probe.method, probe.path, resp.Status)
		}
	}
}

// testProvider is an in-process OpenID Connect provider: real discovery and
// a real JWKS over HTTP, RS256 tokens, and key rotation.
type testProvider struct {
	URL string
	mu  sync.Mutex
	key testKey
}

func newTestProvider(t testing.TB) *testProvider {
	t.Helper()
	p := &testProvider{key: newTestKey(t, jose.RS256)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			json.NewEncoder(w).Encode(map[string]any{
				"issuer": p.URL, "jwks_uri": p.URL + "/keys", "authorization_endpoint": p.URL + "/authorize",
				"token_endpoint": p.URL + "/token", "id_token_signing_alg_values_supported": []string{"RS256"},
			})
		case "/keys":
			p.mu.Lock()
			defer p.mu.Unlock()
			w.Write(jwksOf(t, p.key))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

func (p *testProvider) token(t testing.TB, claims map[string]any) string {
	p.mu.Lock()
	k := p.key
	p.mu.Unlock()
	return sign(t, k, nil, claims)
}

func (p *testProvider) rotate(t testing.TB) {
	k := newTestKey(t, jose.RS256)
	p.mu.Lock()
	p.key = k
	p.mu.Unlock()
}

func TestPeopleFromOIDCProvider(t *testing.T) {
	t.Parallel()
	idp := newTestProvider(t)
	g := newGateway(t, map[string]string{
		"OIDC_ISSUER_URL": idp.URL,
		"OIDC_AUDIENCE":   "gateway-api",
		"OPERATOR_CLAIM":  "groups=payer-operators",
	})
	claims := func(sub string, edit func(map[string]any)) map[string]any {
		now := time.Now()
		m := map[string]any{"iss": idp.URL, "sub": sub, "aud": "gateway-api", "iat": now.Unix(),
			"exp": now.Add(time.Hour).Unix(), "email": sub + "@example.test", "email_verified": true}
		if edit != nil {
			edit(m)
		}
		return m
	}
	person := g.whoami(t, idp.token(t, claims("pat", nil)))
	if person.Kind != "PERSON" || person.Email != "pat@example.test" {
		t.Fatalf("person %+v", person)
	}
	var u gateway.User
	if err := g.DB.Get(&u, `SELECT id, issuer, subject, email, name, organization_id, role, created_at FROM users WHERE id = $1`, person.ID); err != nil || u.Issuer != idp.URL || u.Subject != "pat" {
		t.Errorf("users row %+v, %v", u, err)
	}
	accepted := []struct {
		name string
		tok  string
		kind string
	}{
		{"operator by group array", idp.token(t, claims("op1", func(m map[string]any) { m["groups"] = []string{"staff", "payer-operators"} })), "OPERATOR"},
		{"operator by group string", idp.token(t, claims("op2", func(m map[string]any) { m["groups"] = "payer-operators" })), "OPERATOR"},
		{"other group", idp.token(t, claims("p2", func(m map[string]any) { m["groups"] = []string{"payer-operators-not"} })), "PERSON"},
		{"email_verified as string", idp.token(t, claims("p3", func(m map[string]any) { m["email_verified"] = "true" })), "PERSON"},
		{"audience among several", idp.token(t, claims("p4", func(m map[string]any) { m["aud"] = []string{"other", "gateway-api"} })), "PERSON"},
	}
	for _, tt := range accepted {
		t.Run(tt.name, func(t *testing.T) {
			if id := g.whoami(t, tt.tok); id.Kind != tt.kind {
				t.Errorf("got %+v, want %s", id, tt.kind)
			}
		})
	}
	stranger := newTestKey(t, jose.RS256)
	stranger.kid = idp.key.kid
	refused := []struct {
		name string
		tok  string
	}{
		{"email_verified false", idp.token(t, claims("r1", func(m map[string]any) { m["email_verified"] = false }))},
		{"email_verified missing", idp.token(t, claims("r2", func(m map[string]any) { delete(m, "email_verified") }))},
		{"no email", idp.token(t, claims("r3", func(m map[string]any) { delete(m, "email") }))},
		{"wrong audience", idp.token(t, claims("r4", func(m map[string]any) { m["aud"] = "someone-else" }))},
		{"expired", idp.token(t, claims("r5", func(m map[string]any) { m["exp"] = time.Now().Add(-time.Minute).Unix() }))},
		{"signed by another key", sign(t, stranger, nil, claims("r6", nil))},
		{"another issuer", idp.token(t, claims("r7", func(m map[string]any) { m["iss"] = "https://evil.example" }))},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			if id := g.whoami(t, tt.tok); id.Kind != "" || !id.Rejected {
				t.Errorf("accepted: %+v", id)
			}
		})
	}
	// The provider rotates its key: go-oidc refetches the JWKS on the new kid.
	idp.rotate(t)
	if id := g.whoami(t, idp.token(t, claims("pat", nil))); id.ID != person.ID {
		t.Errorf("after key rotation: %+v", id)
	}
}

func TestTokenCommand(t *testing.T) {
	t.Parallel()
	g := newGateway(t, nil)
	run := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := server.Main(t.Context(), append([]string{"token"}, args...), func(k string) string {
			return map[string]string{"PUBLIC_URL": g.URL}[k]
		}, &out, &errOut)
		return strings.TrimSpace(out.String()), err
	}
	c, secret := g.client(t, store.NewClient{})
	tok, err := run("--client-id", c.ID, "--client-secret", secret, "--scope", "system/Patient.rs")
	if err != nil {
		t.Fatal(err)
	}
	if id := g.whoami(t, tok); id.ID != c.ID || id.Scopes != "system/Patient.rs" {
		t.Errorf("secret token: %+v", id)
	}
	if _, err := run("--client-id", c.ID, "--client-secret", "wrong"); err == nil || !strings.Contains(err.Error(), "invalid_client") {
		t.Errorf("wrong secret: %v", err)
	}

	for _, curve := range []elliptic.Curve{elliptic.P384(), nil} {
		var priv crypto.Signer
		if curve != nil {
			priv, _ = ecdsa.GenerateKey(curve, rand.Reader)
		} else {
			priv, _ = rsa.GenerateKey(rand.Reader, 2048)
		}
		der, err := x509.MarshalPKCS8PrivateKey(priv)
		if err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(t.TempDir(), "key.pem")
		os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
		kid, _ := auth.Thumbprint(priv.Public())
		alg, _ := auth.AssertionAlg(priv)
		kc, _ := g.client(t, store.NewClient{JWKS: jwksOf(t, testKey{priv: priv, alg: alg, kid: kid})})
		tok, err := run("--client-id", kc.ID, "--private-key", file, "--url", g.URL)
		if err != nil {
			t.Fatalf("%s: %v", alg, err)
		}
		if id := g.whoami(t, tok); id.ID != kc.ID {
			t.Errorf("%s key token: %+v", alg, id)
		}
	}
	if _, err := run("--client-id", c.ID); err == nil {
		t.Error("neither secret nor key: no error")
	}
}

// BenchmarkVerifyClientToken measures a client's bearer token on the
// request path: routing by issuer, go-oidc's verification (RS256 signature,
// issuer, audience, expiry) and the client check, as it runs (the client
// read trusted for auth.ClientStatusTTL) and with a primary-key read from
// PostgreSQL on every request.
func BenchmarkVerifyClientToken(b *testing.B) {
	g := newGateway(b, nil)
	c, secret := g.client(b, store.NewClient{})
	tok := g.secretToken(b, c.ID, secret, "")
	for _, bb := range []struct {
		name string
		ttl  time.Duration
	}{{"cached", auth.ClientStatusTTL}, {"uncached", 0}} {
		b.Run(bb.name, func(b *testing.B) {
			v := *g.Server.Auth.Verifier
			v.Clients = auth.NewClientTokenVerifier(g.URL, g.URL, g.Server.Auth.Keys, g.DB, nil)
			v.Clients.SetStatusTTL(bb.ttl)
			ctx := context.Background()
			if _, err := v.Verify(ctx, tok); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(ctx, tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
