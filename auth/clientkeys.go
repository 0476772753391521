package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Limits of a client's registered JWKS and of fetching it from its URL
// (SMART App Launch, client-confidential-asymmetric: "the authorization
// server SHALL NOT cache a JWKS for longer than the client's cache-control
// header indicates").
const (
	jwksMaxBytes      = 64 << 10
	jwksMaxKeys       = 100
	jwksFetchTimeout  = 5 * time.Second
	jwksDefaultTTL    = 5 * time.Minute // when the response has no max-age
	jwksMaxTTL        = time.Hour
	jwksRefetchEvery  = 10 * time.Second // at most this often per URL on an unknown kid
	jwksCacheMaxURLs  = 1000
	minClientRSABits  = 2048
	maxClientRSABits  = 8192
	clientJWKSURLHTTP = "http"
)

// ParseClientJWKS parses a client's JWK Set leniently: keys of kinds the
// gateway cannot use (other key types or curves, encryption keys, private
// keys, keys without kid) are skipped, so one exotic key does not disable
// the others. ValidateClientJWKS is the strict check for registration.
func ParseClientJWKS(raw []byte) ([]jose.JSONWebKey, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(raw, &set); err != nil {
		return nil, fmt.Errorf("JWKS is not a JSON object with \"keys\": %w", err)
	}
	if len(set.Keys) > jwksMaxKeys {
		return nil, fmt.Errorf("JWKS has more than %d keys", jwksMaxKeys)
	}
	var keys []jose.JSONWebKey
	for _, r := range set.Keys {
		if k, err := parseClientJWK(r); err == nil {
			keys = append(keys, k)
		}
	}
	return keys, nil
}

// ValidateClientJWKS checks a JWK Set a client registers (inline): every key
// has a kid, unique within the set, is public, meant for signatures, and is
// an RSA key of at least 2048 bits (RS384, RS256) or an EC key on P-384 or
// P-256 (ES384, ES256) (SMART App Launch, client-confidential-asymmetric).
// Its errors are client-safe.
func ValidateClientJWKS(raw []byte) error {
	if len(raw) > jwksMaxBytes {
		return fmt.Errorf("JWKS is larger than %d bytes", jwksMaxBytes)
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(raw, &set); err != nil || set.Keys == nil {
		return errors.New(`JWKS must be a JSON object with a "keys" array`)
	}
	if len(set.Keys) == 0 || len(set.Keys) > jwksMaxKeys {
		return fmt.Errorf("JWKS must have between 1 and %d keys", jwksMaxKeys)
	}
	seen := map[string]bool{}
	for i, r := range set.Keys {
		k, err := parseClientJWK(r)
		if err != nil {
			return fmt.Errorf("key %d: %v", i, err)
		}
		if seen[k.KeyID] {
			return fmt.Errorf("key %d: kid %q appears twice", i, k.KeyID)
		}
		seen[k.KeyID] = true
	}
	return nil
}

func parseClientJWK(raw json.RawMessage) (jose.JSONWebKey, error) {
	var k jose.JSONWebKey
	if err := k.UnmarshalJSON(raw); err != nil {
		return k, errors.New("not a valid JWK (RSA: kty, n, e; EC: kty, crv, x, y)")
	}
	switch {
	case k.KeyID == "":
		return k, errors.New("kid is required")
	case !k.IsPublic():
		return k, errors.New("private key material must never be registered")
	case k.Use != "" && k.Use != "sig":
		return k, errors.New(`use must be "sig"`)
	}
	switch pub := k.Key.(type) {
	case *rsa.PublicKey:
		if n := pub.N.BitLen(); n < minClientRSABits || n > maxClientRSABits {
			return k, fmt.Errorf("RSA keys must have %d to %d bits", minClientRSABits, maxClientRSABits)
		}
		if k.Algorithm != "" && k.Algorithm != string(jose.RS384) && k.Algorithm != string(jose.RS256) {
			return k, fmt.Errorf("alg %q is not accepted for an RSA key (RS384, RS256)", k.Algorithm)
		}
	case *ecdsa.PublicKey:
		if pub.Curve != elliptic.P384() && pub.Curve != elliptic.P256() {
			return k, errors.New("EC keys must be on P-384 or P-256")
		}
		if k.Algorithm != "" && k.Algorithm != string(jose.ES384) && k.Algorithm != string(jose.ES256) {
			return k, fmt.Errorf("alg %q is not accepted for an EC key (ES384, ES256)", k.Algorithm)
		}
	default:
		return k, errors.New("only RSA and EC keys are accepted")
	}
	return k, nil
}

// keyFits reports whether k may verify a signature of algorithm alg: the key
// type matches the algorithm (and the curve its hash size), and a key that
// names its algorithm names this one.
func keyFits(k jose.JSONWebKey, alg string) bool {
	if k.Algorithm != "" && k.Algorithm != alg {
		return false
	}
	switch pub := k.Key.(type) {
	case *rsa.PublicKey:
		return alg == string(jose.RS384) || alg == string(jose.RS256)
	case *ecdsa.PublicKey:
		return alg == string(jose.ES384) && pub.Curve == elliptic.P384() ||
			alg == string(jose.ES256) && pub.Curve == elliptic.P256()
	}
	return false
}

// ValidateJWKSURL checks a JWKS URL a client registers: absolute https (in
// DEV_MODE, http is allowed on a loopback host), no credentials, no fragment.
// Its errors are client-safe.
func ValidateJWKSURL(raw string, devMode bool) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || !u.IsAbs() {
		return errors.New("JWKS URL must be an absolute https URL")
	}
	switch {
	case u.User != nil:
		return errors.New("JWKS URL must not carry credentials")
	case u.Fragment != "":
		return errors.New("JWKS URL must not have a fragment")
	case u.Scheme == "https":
		return nil
	case u.Scheme == clientJWKSURLHTTP && devMode && isLoopbackHost(u.Hostname()):
		return nil
	}
	return errors.New("JWKS URL must use https")
}

func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// jwksFetcher fetches clients' JWKS URLs with a bounded cache.
type jwksFetcher struct {
	client  *http.Client
	devMode bool
	now     func() time.Time

	mu      sync.Mutex
	entries map[string]*jwksEntry
}

type jwksEntry struct {
	mu        sync.Mutex // one fetch per URL at a time
	keys      []jose.JSONWebKey
	expires   time.Time // keys are fresh until then
	fetchedAt time.Time // last attempt, successful or not
	used      time.Time
}

func newJWKSFetcher(devMode bool, now func() time.Time) *jwksFetcher {
	dialer := &net.Dialer{Timeout: jwksFetchTimeout, Control: dialControl(devMode)}
	transport := &http.Transport{
		Proxy:                 nil, // connect directly: the address check below must see the real peer
		DialContext:           dialer.DialContext,
		TLSHandshakeTimeout:   jwksFetchTimeout,
		ResponseHeaderTimeout: jwksFetchTimeout,
		MaxIdleConnsPerHost:   2,
		IdleConnTimeout:       time.Minute,
		ForceAttemptHTTP2:     true,
	}
	return &jwksFetcher{
		client: &http.Client{
			Transport: transport,
			Timeout:   jwksFetchTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return errors.New("JWKS URL redirects are not followed")
			},
		},
		devMode: devMode,
		now:     now,
		entries: map[string]*jwksEntry{},
	}
}

// dialControl refuses connections to addresses inside the gateway's own
// network (loopback, private, link-local, unspecified, multicast), so a
// registered JWKS URL cannot be used to probe it; DEV_MODE allows loopback.
func dialControl(devMode bool) func(network, address string, _ syscall.RawConn) error {
	return func(network, address string, _ syscall.RawConn) error {
		host, _, err := net.SplitHostPort(address)
		if err != nil {
			return err
		}
		ip := net.ParseIP(host)
		if ip == nil {
			return fmt.Errorf("JWKS fetch: unexpected address %q", address)
		}
		if devMode && ip.IsLoopback() {
			return nil
		}
		if ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
			ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || ip.IsUnspecified() {
			return fmt.Errorf("JWKS fetch: address %s is not allowed", ip)
		}
		return nil
	}
}

// keys returns the keys at rawURL. Cached keys are used while fresh and when
// they hold kid; otherwise the URL is fetched again, at most once per
// jwksRefetchEvery, so unknown kids cannot make the gateway hammer a URL.
func (f *jwksFetcher) keys(ctx context.Context, rawURL, kid string) ([]jose.JSONWebKey, error) {
	if err := ValidateJWKSURL(rawURL, f.devMode); err != nil {
		return nil, err
	}
	now := f.now()
	f.mu.Lock()
	e := f.entries[rawURL]
	if e == nil {
		if len(f.entries) >= jwksCacheMaxURLs {
			f.evictLocked()
		}
		e = &jwksEntry{}
		f.entries[rawURL] = e
	}
	e.used = now
	f.mu.Unlock()

	e.mu.Lock()
	defer e.mu.Unlock()
	// Keys fetched moments ago count as fresh even under no-store: at most
	// one fetch per URL per jwksRefetchEvery.
	recent := !e.fetchedAt.IsZero() && now.Sub(e.fetchedAt) < jwksRefetchEvery
	if (recent || now.Before(e.expires)) && hasKID(e.keys, kid) {
		return e.keys, nil
	}
	if recent {
		return e.keys, nil // an unknown kid does not cause another fetch yet
	}
	e.fetchedAt = now
	keys, ttl, err := f.fetch(ctx, rawURL)
	if err != nil {
		return nil, err
	}
	e.keys, e.expires = keys, now.Add(ttl)
	return keys, nil
}

func (f *jwksFetcher) evictLocked() {
	var oldest string
	var at time.Time
	for u, e := range f.entries {
		if oldest == "" || e.used.Before(at) {
			oldest, at = u, e.used
		}
	}
	delete(f.entries, oldest)
}

func (f *jwksFetcher) fetch(ctx context.Context, rawURL string) ([]jose.JSONWebKey, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, jwksFetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Accept", "application/json, application/jwk-set+json")
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("fetch JWKS: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, 0, fmt.Errorf("fetch JWKS: status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, jwksMaxBytes+1))
	if err != nil {
		return nil, 0, fmt.Errorf("fetch JWKS: %w", err)
	}
	if len(body) > jwksMaxBytes {
		return nil, 0, fmt.Errorf("fetch JWKS: larger than %d bytes", jwksMaxBytes)
	}
	keys, err := ParseClientJWKS(body)
	if err != nil {
		return nil, 0, fmt.Errorf("fetch JWKS: %w", err)
	}
	return keys, cacheTTL(resp.Header.Get("Cache-Control")), nil
}

// cacheTTL reads how long a JWKS response may be cached: no-store and
// no-cache mean not at all, max-age is honoured up to jwksMaxTTL.
func cacheTTL(cc string) time.Duration {
	ttl := jwksDefaultTTL
	for _, d := range strings.Split(cc, ",") {
		d = strings.ToLower(strings.TrimSpace(d))
		switch {
		case d == "no-store" || d == "no-cache":
			return 0
		case strings.HasPrefix(d, "max-age="):
			if n, err := strconv.Atoi(strings.TrimPrefix(d, "max-age=")); err == nil && n >= 0 {
				ttl = time.Duration(n) * time.Second
			}
		}
	}
	return min(ttl, jwksMaxTTL)
}

func hasKID(keys []jose.JSONWebKey, kid string) bool {
	for _, k := range keys {
		if k.KeyID == kid {
			return true
		}
	}
	return false
}
