package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/mail"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// DevTokenLifetime is how long the development issuer's tokens live.
const DevTokenLifetime = time.Hour

// DevIssuer is the development OpenID Connect issuer (DEV_MODE only): it
// signs in anyone by email alone, so it must never be reachable from a
// network (the configuration refuses DEV_MODE on a non-loopback address).
// Its key lives in memory, apart from the gateway's client-token keys, and
// tokens it issued die with the process. The gateway verifies its tokens
// like any provider's: go-oidc discovery of <issuer>/.well-known/openid-configuration.
type DevIssuer struct {
	issuer   string
	audience string
	signer   jose.Signer
	public   jose.JSONWebKey
	now      func() time.Time
}

// NewDevIssuer returns the development issuer at issuerURL (PUBLIC_URL/dev)
// whose tokens carry aud = audience (OIDC_AUDIENCE).
func NewDevIssuer(issuerURL, audience string, now func() time.Time) (*DevIssuer, error) {
	if now == nil {
		now = time.Now
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	kid, err := Thumbprint(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return nil, err
	}
	return &DevIssuer{
		issuer:   strings.TrimRight(issuerURL, "/"),
		audience: audience,
		signer:   signer,
		public:   jose.JSONWebKey{Key: &key.PublicKey, KeyID: kid, Algorithm: string(jose.ES256), Use: "sig"},
		now:      now,
	}, nil
}

// Issuer is the development issuer's URL.
func (d *DevIssuer) Issuer() string { return d.issuer }

// DevSubject is the sub the development issuer gives email: derived from
// the email alone, so the same email is the same user across restarts.
func DevSubject(email string) string {
	h := sha256.Sum256([]byte(strings.ToLower(strings.TrimSpace(email))))
	return "dev-" + hex.EncodeToString(h[:16])
}

// Tokens returns an access token and an ID token for the person with this
// email (email_verified: true, aud = OIDC_AUDIENCE). extra claims (such as
// groups) are added to both.
func (d *DevIssuer) Tokens(email, name string, extra map[string]any) (accessToken, idToken string, err error) {
	addr, err := mail.ParseAddress(email)
	if err != nil || addr.Address != strings.TrimSpace(email) || len(email) > 254 {
		return "", "", errors.New("email must be a plain email address")
	}
	email = addr.Address
	now := d.now()
	claims := map[string]any{
		"iss":            d.issuer,
		"sub":            DevSubject(email),
		"aud":            d.audience,
		"iat":            now.Unix(),
		"exp":            now.Add(DevTokenLifetime).Unix(),
		"email":          email,
		"email_verified": true,
	}
	if name != "" {
		claims["name"] = name
	}
	for k, v := range extra {
		if _, taken := claims[k]; !taken {
			claims[k] = v
		}
	}
	idToken, err = jwt.Signed(d.signer).Claims(claims).Serialize()
	if err != nil {
		return "", "", err
	}
	claims["jti"] = rand.Text()
	claims["scope"] = "openid email profile"
	accessToken, err = jwt.Signed(d.signer).Claims(claims).Serialize()
	return accessToken, idToken, err
}

// ServeConfiguration is GET /dev/.well-known/openid-configuration.
func (d *DevIssuer) ServeConfiguration(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                d.issuer,
		"jwks_uri":                              d.issuer + "/jwks.json",
		"token_endpoint":                        d.issuer + "/token",
		"response_types_supported":              []string{"token"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{string(jose.ES256)},
		"claims_supported":                      []string{"sub", "email", "email_verified", "name"},
	})
}

// ServeJWKS is GET /dev/jwks.json.
func (d *DevIssuer) ServeJWKS(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{d.public}})
}

// ServeToken is POST /dev/token: form field email (and optionally name)
// → {"access_token", "id_token", "token_type", "expires_in"}.
func (d *DevIssuer) ServeToken(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": "the body must be a form with an email field"})
		return
	}
	access, id, err := d.Tokens(r.PostForm.Get("email"), r.PostForm.Get("name"), nil)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": access,
		"id_token":     id,
		"token_type":   "Bearer",
		"expires_in":   int(DevTokenLifetime / time.Second),
	})
}
