package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// AssertionAlg is the algorithm a client signs its assertion with for a
// key: RS384 for RSA, ES384 for EC P-384 (the SMART Backend Services pair),
// ES256 for EC P-256.
func AssertionAlg(priv crypto.PrivateKey) (jose.SignatureAlgorithm, error) {
	switch k := priv.(type) {
	case *rsa.PrivateKey:
		return jose.RS384, nil
	case *ecdsa.PrivateKey:
		switch k.Curve {
		case elliptic.P384():
			return jose.ES384, nil
		case elliptic.P256():
			return jose.ES256, nil
		}
	}
	return "", fmt.Errorf("unsupported private key %T: want RSA or EC P-384/P-256", priv)
}

// SignClientAssertion is the client side of private_key_jwt (SMART Backend
// Services; RFC 7523 §2.2): a JWT with iss = sub = clientID, aud = the token
// endpoint URL, a fresh jti and exp four minutes ahead (under the five
// minutes servers accept, allowing for clock skew). kid "" uses the key's
// RFC 7638 thumbprint. The `token` command and tests use it.
func SignClientAssertion(priv crypto.Signer, kid, clientID, tokenURL string) (string, error) {
	alg, err := AssertionAlg(priv)
	if err != nil {
		return "", err
	}
	if kid == "" {
		if kid, err = Thumbprint(priv.Public()); err != nil {
			return "", err
		}
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: priv, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", err
	}
	now := time.Now()
	return jwt.Signed(signer).Claims(jwt.Claims{
		Issuer:   clientID,
		Subject:  clientID,
		Audience: jwt.Audience{tokenURL},
		ID:       rand.Text(),
		IssuedAt: jwt.NewNumericDate(now),
		Expiry:   jwt.NewNumericDate(now.Add(4 * time.Minute)),
	}).Serialize()
}

// ParsePrivateKeyPEM reads an RSA or EC private key from PEM: PKCS #8
// ("PRIVATE KEY"), PKCS #1 ("RSA PRIVATE KEY") or SEC 1 ("EC PRIVATE KEY";
// a preceding "EC PARAMETERS" block is skipped).
func ParsePrivateKeyPEM(data []byte) (crypto.Signer, error) {
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil, errors.New("no private key found in the PEM file")
		}
		var key any
		var err error
		switch block.Type {
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(block.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", block.Type, err)
		}
		signer, ok := key.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("unsupported private key %T", key)
		}
		if _, err := AssertionAlg(signer); err != nil {
			return nil, err
		}
		return signer, nil
	}
}
