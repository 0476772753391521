package auth

import (
	"context"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// SigningAlg is the algorithm of the gateway's own access tokens: RS256 over
// 2048-bit RSA keys. Verification runs on every API request and signing once
// per token, and RSA verification is the faster of the two here (measured on
// the 2-core build machine: RS256 verify 31 µs, ES256 verify 71 µs; RS256 sign
// 1 ms, paid once per 5-minute token). RS256 is also the one algorithm every
// OpenID Connect verifier must support (OpenID Connect Core §15.1), so a
// resource server in front of the gateway can verify its tokens unchanged.
const SigningAlg = jose.RS256

const (
	signingKeyBits = 2048

	// keyReloadInterval is how often an instance re-reads signing_keys: a key
	// rotated on another instance is used for signing here within it.
	keyReloadInterval = time.Minute
	// keyForcedReloadEvery bounds the reloads a token with an unknown kid can
	// cause (a forged kid must not turn into a database query per request).
	keyForcedReloadEvery = time.Second
	// keyRetireAfter is how long a superseded key stays published: longer
	// than an access token lives (5 min) plus keyReloadInterval, during which
	// an instance that has not reloaded yet may still sign with it.
	keyRetireAfter = 10 * time.Minute
)

// SigningKeyRecord is one row of signing_keys: a token-signing key whose
// private half is sealed with KEY_ENCRYPTION_KEY.
type SigningKeyRecord struct {
	KID              string          `db:"kid"`
	Alg              string          `db:"alg"`
	PrivateKeySealed []byte          `db:"private_key_sealed"`
	PublicJWK        json.RawMessage `db:"public_jwk"`
	CreatedAt        time.Time       `db:"created_at"`
	ActiveFrom       time.Time       `db:"active_from"`
	RetiredAt        *time.Time      `db:"retired_at"`
}

// KeyStore is what the key ring needs from the database (store.DB).
type KeyStore interface {
	// SigningKeys returns the keys that are not retired, oldest active_from first.
	SigningKeys(ctx context.Context) ([]SigningKeyRecord, error)
	// CreateSigningKey inserts k. With onlyIfNone it inserts only when no
	// unretired key exists, serialized across instances, and reports whether
	// it did.
	CreateSigningKey(ctx context.Context, k SigningKeyRecord, onlyIfNone bool) (bool, error)
	// RetireSigningKeys retires every key superseded by a newer key that
	// became active before supersededBefore.
	RetireSigningKeys(ctx context.Context, supersededBefore time.Time) (int64, error)
}

// GenerateSigningKey makes a new signing key, active from activeFrom, with
// its private half sealed under kek (AES-256-GCM, a random nonce, the kid
// as additional data so a sealed key cannot be moved to another row).
func GenerateSigningKey(kek []byte, activeFrom time.Time) (SigningKeyRecord, error) {
	priv, err := rsa.GenerateKey(rand.Reader, signingKeyBits)
	if err != nil {
		return SigningKeyRecord{}, err
	}
	kid, err := Thumbprint(&priv.PublicKey)
	if err != nil {
		return SigningKeyRecord{}, err
	}
	pub, err := json.Marshal(jose.JSONWebKey{Key: &priv.PublicKey, KeyID: kid, Algorithm: string(SigningAlg), Use: "sig"})
	if err != nil {
		return SigningKeyRecord{}, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return SigningKeyRecord{}, err
	}
	sealed, err := seal(kek, kid, der)
	if err != nil {
		return SigningKeyRecord{}, err
	}
	return SigningKeyRecord{KID: kid, Alg: string(SigningAlg), PrivateKeySealed: sealed, PublicJWK: pub, ActiveFrom: activeFrom}, nil
}

// Thumbprint returns the RFC 7638 JWK thumbprint (SHA-256, base64url) of a
// public key: the gateway's key ids, and the `token` command's default kid.
func Thumbprint(pub crypto.PublicKey) (string, error) {
	jwk := jose.JSONWebKey{Key: pub}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

func seal(kek []byte, kid string, plain []byte) ([]byte, error) {
	aead, err := newAEAD(kek)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize())
	rand.Read(nonce)
	return aead.Seal(nonce, nonce, plain, []byte(kid)), nil
}

func open(kek []byte, kid string, sealed []byte) ([]byte, error) {
	aead, err := newAEAD(kek)
	if err != nil {
		return nil, err
	}
	if len(sealed) < aead.NonceSize() {
		return nil, errors.New("sealed key too short")
	}
	plain, err := aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], []byte(kid))
	if err != nil {
		return nil, fmt.Errorf("signing key %s cannot be decrypted with KEY_ENCRYPTION_KEY", kid)
	}
	return plain, nil
}

func newAEAD(kek []byte) (cipher.AEAD, error) {
	if len(kek) != 32 {
		return nil, errors.New("KEY_ENCRYPTION_KEY must be 32 bytes")
	}
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// KeyRing holds the gateway's signing keys as read from the database: it
// signs access tokens with the current key and verifies them against every
// published key. It is an oidc.KeySet, so go-oidc's verifier checks the
// gateway's tokens against the database keys without any discovery.
type KeyRing struct {
	store KeyStore
	kek   []byte
	now   func() time.Time

	reload sync.Mutex // one reload at a time

	mu         sync.RWMutex
	records    []SigningKeyRecord
	public     map[string]*rsa.PublicKey
	signers    map[string]jose.Signer // decrypted lazily, by kid
	current    string                 // kid that signs now
	loadedAt   time.Time
	lastForced time.Time

	verified verifiedCache
}

// OpenKeyRing loads the signing keys, creating the first one when there is
// none (safe when several instances start at once), and retires keys that
// were superseded long enough ago. It fails when the current key cannot be
// decrypted with kek.
func OpenKeyRing(ctx context.Context, store KeyStore, kek []byte, now func() time.Time) (*KeyRing, error) {
	if now == nil {
		now = time.Now
	}
	if _, err := newAEAD(kek); err != nil {
		return nil, err
	}
	k := &KeyRing{store: store, kek: kek, now: now}
	if _, err := store.RetireSigningKeys(ctx, now().Add(-keyRetireAfter)); err != nil {
		return nil, fmt.Errorf("retire signing keys: %w", err)
	}
	if err := k.load(ctx); err != nil {
		return nil, err
	}
	if k.current == "" {
		rec, err := GenerateSigningKey(kek, now())
		if err != nil {
			return nil, err
		}
		if _, err := store.CreateSigningKey(ctx, rec, true); err != nil {
			return nil, fmt.Errorf("create signing key: %w", err)
		}
		if err := k.load(ctx); err != nil {
			return nil, err
		}
		if k.current == "" {
			return nil, errors.New("no signing key after creating one")
		}
	}
	if _, err := k.signer(k.current); err != nil {
		return nil, err
	}
	return k, nil
}

// RotateSigningKey adds a new signing key, published at once and used for
// signing from publishAhead on (give relying parties that cache the JWKS
// time to see it), and retires keys superseded more than 10 minutes ago.
// Superseded keys stay published until then, so every token they signed
// (5 minutes) verifies until it expires. Every instance picks the new key up
// within a minute; run it again after 10 minutes to retire the old key.
func RotateSigningKey(ctx context.Context, store KeyStore, kek []byte, publishAhead time.Duration) (kid string, err error) {
	now := time.Now()
	rec, err := GenerateSigningKey(kek, now.Add(publishAhead))
	if err != nil {
		return "", err
	}
	if _, err := store.CreateSigningKey(ctx, rec, false); err != nil {
		return "", fmt.Errorf("create signing key: %w", err)
	}
	if _, err := store.RetireSigningKeys(ctx, now.Add(-keyRetireAfter)); err != nil {
		return "", fmt.Errorf("retire signing keys: %w", err)
	}
	return rec.KID, nil
}

// load re-reads the keys; the caller holds k.reload or is the constructor.
func (k *KeyRing) load(ctx context.Context) error {
	recs, err := k.store.SigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("load signing keys: %w", err)
	}
	public := make(map[string]*rsa.PublicKey, len(recs))
	now := k.now()
	current := ""
	for _, r := range recs {
		if r.Alg != string(SigningAlg) {
			continue // a key of another algorithm (a future change) is not ours to use
		}
		var jwk jose.JSONWebKey
		if err := jwk.UnmarshalJSON(r.PublicJWK); err != nil {
			return fmt.Errorf("signing key %s: %w", r.KID, err)
		}
		pub, ok := jwk.Key.(*rsa.PublicKey)
		if !ok {
			return fmt.Errorf("signing key %s: not an RSA public key", r.KID)
		}
		public[r.KID] = pub
		// The newest key already active signs; before any is active, the oldest.
		if !r.ActiveFrom.After(now) || current == "" {
			current = r.KID
		}
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.records, k.public, k.current, k.loadedAt = recs, public, current, now
	if k.signers == nil {
		k.signers = map[string]jose.Signer{}
	}
	return nil
}

// refresh reloads the keys when they are older than keyReloadInterval, or,
// with force (an unknown kid), at most once per keyForcedReloadEvery. An
// unforced refresh never waits for another one in progress.
func (k *KeyRing) refresh(ctx context.Context, force bool) error {
	k.mu.RLock()
	loadedAt, lastForced := k.loadedAt, k.lastForced
	k.mu.RUnlock()
	now := k.now()
	if !force {
		if now.Sub(loadedAt) < keyReloadInterval || !k.reload.TryLock() {
			return nil
		}
	} else {
		if now.Sub(lastForced) < keyForcedReloadEvery {
			return nil
		}
		k.reload.Lock()
		k.mu.RLock()
		reloaded := k.loadedAt.After(loadedAt)
		k.mu.RUnlock()
		if reloaded { // someone reloaded while we waited
			k.reload.Unlock()
			return nil
		}
		k.mu.Lock()
		k.lastForced = now
		k.mu.Unlock()
	}
	defer k.reload.Unlock()
	return k.load(ctx)
}

func (k *KeyRing) publicKey(ctx context.Context, kid string) (*rsa.PublicKey, error) {
	if err := k.refresh(ctx, false); err != nil {
		return nil, err
	}
	k.mu.RLock()
	pub := k.public[kid]
	k.mu.RUnlock()
	if pub != nil {
		return pub, nil
	}
	if err := k.refresh(ctx, true); err != nil {
		return nil, err
	}
	k.mu.RLock()
	pub = k.public[kid]
	k.mu.RUnlock()
	if pub == nil {
		return nil, errors.New("unknown signing key")
	}
	return pub, nil
}

// VerifySignature implements oidc.KeySet: it checks the JWS signature of
// jwt against the published key its kid names and returns the payload.
// go-oidc's verifier checks the algorithm, issuer, audience and expiry.
//
// A client reuses its token for up to five minutes, so verified signatures
// are remembered (by the token's SHA-256, until its exp, while its key is
// still published): a repeated token skips the RSA verification and the
// second parse, which are most of the cost (see BenchmarkVerifyClientToken).
// go-oidc still checks every claim on every request.
func (k *KeyRing) VerifySignature(ctx context.Context, raw string) ([]byte, error) {
	sum := sha256.Sum256([]byte(raw))
	if payload, ok := k.verified.get(sum, k.now(), k.hasKey); ok {
		return payload, nil
	}
	payload, kid, err := k.verifySignature(ctx, raw)
	if err != nil {
		return nil, err
	}
	var exp struct {
		Exp int64 `json:"exp"`
	}
	if json.Unmarshal(payload, &exp) == nil && exp.Exp > 0 {
		k.verified.put(sum, verifiedToken{payload: payload, kid: kid, until: time.Unix(exp.Exp, 0)}, k.now())
	}
	return payload, nil
}

func (k *KeyRing) hasKey(kid string) bool {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.public[kid] != nil
}

func (k *KeyRing) verifySignature(ctx context.Context, raw string) (payload []byte, kid string, err error) {
	jws, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{SigningAlg})
	if err != nil {
		return nil, "", err
	}
	if len(jws.Signatures) != 1 {
		return nil, "", errors.New("want exactly one signature")
	}
	h := jws.Signatures[0].Header
	// Only access tokens are signed with these keys; the type says so
	// (RFC 9068 §4), so nothing else they might one day sign passes as one.
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); !strings.EqualFold(typ, "at+jwt") {
		return nil, "", errors.New("not an access token (typ)")
	}
	pub, err := k.publicKey(ctx, h.KeyID)
	if err != nil {
		return nil, "", err
	}
	payload, err = jws.Verify(pub)
	return payload, h.KeyID, err
}

// verifiedCache remembers verified token signatures.
type verifiedCache struct {
	mu sync.Mutex
	m  map[[32]byte]verifiedToken
}

type verifiedToken struct {
	payload []byte
	kid     string
	until   time.Time
}

const verifiedCacheMax = 20000

func (c *verifiedCache) get(sum [32]byte, now time.Time, published func(kid string) bool) ([]byte, bool) {
	c.mu.Lock()
	v, ok := c.m[sum]
	c.mu.Unlock()
	if !ok || !now.Before(v.until) || !published(v.kid) {
		return nil, false
	}
	return v.payload, true
}

func (c *verifiedCache) put(sum [32]byte, v verifiedToken, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[[32]byte]verifiedToken{}
	}
	if len(c.m) >= verifiedCacheMax {
		for s, e := range c.m {
			if !now.Before(e.until) {
				delete(c.m, s)
			}
		}
		if len(c.m) >= verifiedCacheMax {
			clear(c.m)
		}
	}
	c.m[sum] = v
}

// Sign signs claims (a struct or map, marshaled as JSON) with the current
// key, as a JWT of type at+jwt (RFC 9068 §2.1).
func (k *KeyRing) Sign(ctx context.Context, claims any) (string, error) {
	if err := k.refresh(ctx, false); err != nil {
		return "", err
	}
	k.mu.RLock()
	kid := k.current
	k.mu.RUnlock()
	s, err := k.signer(kid)
	if err != nil {
		return "", err
	}
	return jwt.Signed(s).Claims(claims).Serialize()
}

func (k *KeyRing) signer(kid string) (jose.Signer, error) {
	k.mu.RLock()
	s := k.signers[kid]
	var rec *SigningKeyRecord
	for i := range k.records {
		if k.records[i].KID == kid {
			rec = &k.records[i]
		}
	}
	k.mu.RUnlock()
	if s != nil {
		return s, nil
	}
	if rec == nil {
		return nil, fmt.Errorf("signing key %s not loaded", kid)
	}
	der, err := open(k.kek, kid, rec.PrivateKeySealed)
	if err != nil {
		return nil, err
	}
	priv, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", kid, err)
	}
	s, err = jose.NewSigner(jose.SigningKey{Algorithm: SigningAlg, Key: jose.JSONWebKey{Key: priv, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("at+jwt"))
	if err != nil {
		return nil, err
	}
	k.mu.Lock()
	k.signers[kid] = s
	k.mu.Unlock()
	return s, nil
}

// JWKS returns the public halves of every unretired key, for
// /.well-known/jwks.json.
func (k *KeyRing) JWKS(ctx context.Context) (jose.JSONWebKeySet, error) {
	if err := k.refresh(ctx, false); err != nil {
		return jose.JSONWebKeySet{}, err
	}
	k.mu.RLock()
	defer k.mu.RUnlock()
	set := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, 0, len(k.records))}
	for _, r := range k.records {
		if pub := k.public[r.KID]; pub != nil {
			set.Keys = append(set.Keys, jose.JSONWebKey{Key: pub, KeyID: r.KID, Algorithm: r.Alg, Use: "sig"})
		}
	}
	return set, nil
}

// CurrentKID returns the kid of the key that signs now.
func (k *KeyRing) CurrentKID() string {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.current
}
