package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
)

// NewClientSecret returns a fresh client secret, 256 random bits as
// unpadded base64url (43 characters), and its SHA-256 hash: the only form in
// which the secret is stored. The secret is shown once, to its creator.
func NewClientSecret() (secret string, hash []byte) {
	b := make([]byte, 32)
	rand.Read(b)
	secret = base64.RawURLEncoding.EncodeToString(b)
	return secret, HashClientSecret(secret)
}

// HashClientSecret returns the SHA-256 hash under which a secret is stored.
// A plain hash suffices: the secret has 256 bits of entropy, so there is
// nothing to guess that a slow hash would protect.
func HashClientSecret(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// SecretMatches reports whether secret hashes to one of hashes. Every
// candidate is compared, each in constant time (crypto/subtle), so the time
// taken says nothing about which or how much of a hash matched.
func SecretMatches(secret string, hashes [][]byte) bool {
	h := HashClientSecret(secret)
	match := 0
	for _, c := range hashes {
		match |= subtle.ConstantTimeCompare(h, c)
	}
	return match == 1
}
