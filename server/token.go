package server

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"example.com/gateway/auth"
)

// runToken is the `token` command: it asks the running gateway's
// /oauth/token (at PUBLIC_URL) for an access token and prints it. The
// client authenticates with client_secret_basic (--client-secret) or
// private_key_jwt (--private-key), signing a fresh assertion with the PEM
// key: RSA → RS384, EC P-384 → ES384, EC P-256 → ES256.
func runToken(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	ctx, cancel := commandContext(ctx)
	defer cancel()
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	clientID := fs.String("client-id", "", "the client's client_id (required)")
	secret := fs.String("client-secret", "", "the client secret (client_secret_basic)")
	keyFile := fs.String("private-key", "", "PEM file of the client's private key (private_key_jwt)")
	kid := fs.String("kid", "", "kid of the private key in the registered JWKS [the key's RFC 7638 thumbprint]")
	scope := fs.String("scope", "system/*.read", "space-separated SMART system scopes")
	base := fs.String("url", "", "the gateway's base URL [PUBLIC_URL]")
	if err := fs.Parse(args); err != nil {
		return &exitError{code: 2, err: err}
	}
	switch {
	case fs.NArg() > 0:
		return usage(stderr, "token takes no arguments besides its flags")
	case *clientID == "":
		return usage(stderr, "token: --client-id is required")
	case (*secret == "") == (*keyFile == ""):
		return usage(stderr, "token: give exactly one of --client-secret and --private-key")
	}

	publicURL := *base
	if publicURL == "" {
		publicURL = strings.TrimSpace(getenv("PUBLIC_URL"))
	}
	if publicURL == "" {
		addr := strings.TrimSpace(getenv("LISTEN_ADDR"))
		if addr == "" {
			addr = "127.0.0.1:8080"
		}
		publicURL = "http://" + addr
	}
	tokenURL := strings.TrimRight(publicURL, "/") + "/oauth/token"

	form := url.Values{"grant_type": {"client_credentials"}}
	if *scope != "" {
		form.Set("scope", *scope)
	}
	if *keyFile != "" {
		pemData, err := os.ReadFile(*keyFile)
		if err != nil {
			return fmt.Errorf("token: %w", err)
		}
		key, err := auth.ParsePrivateKeyPEM(pemData)
		if err != nil {
			return fmt.Errorf("token: %s: %w", *keyFile, err)
		}
		assertion, err := auth.SignClientAssertion(key, *kid, *clientID, tokenURL)
		if err != nil {
			return fmt.Errorf("token: %w", err)
		}
		form.Set("client_assertion_type", auth.ClientAssertionType)
		form.Set("client_assertion", assertion)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if *secret != "" {
		// RFC 6749 §2.3.1: form-urlencode both halves before Basic encoding.
		req.SetBasicAuth(url.QueryEscape(*clientID), url.QueryEscape(*secret))
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken      string `json:"access_token"`
		Error            string `json:"error"`
		ErrorDescription string `json:"error_description"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("token: %s answered %s, not JSON", tokenURL, resp.Status)
	}
	switch {
	case resp.StatusCode == http.StatusOK && body.AccessToken != "":
		fmt.Fprintln(stdout, body.AccessToken)
		return nil
	case body.Error != "":
		return fmt.Errorf("token: %s: %s (HTTP %d)", body.Error, body.ErrorDescription, resp.StatusCode)
	}
	return fmt.Errorf("token: %s answered %s", tokenURL, resp.Status)
}
