package server

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"example.com/gateway/auth"
)

// Authenticator is the gateway's authentication: its own token issuer for
// API clients (keys in the database), the verifier of bearer tokens (its
// own, and people's from the OpenID Connect provider) and, in DEV_MODE, the
// development OpenID Connect issuer.
type Authenticator struct {
	Keys     *auth.KeyRing
	Issuer   *auth.TokenIssuer
	Verifier *auth.Verifier
	Dev      *auth.DevIssuer // nil unless DEV_MODE
	logger   *slog.Logger
}

// newAuthenticator loads the signing keys, creating the first one when
// there is none. Nothing here talks to the people's identity provider:
// discovery happens on the first person's token, after the server listens
// (in DEV_MODE the provider is this very server).
func newAuthenticator(ctx context.Context, s *Server) (*Authenticator, error) {
	cfg := s.Config
	keys, err := auth.OpenKeyRing(ctx, s.DB, cfg.KeyEncryptionKey, nil)
	if err != nil {
		return nil, fmt.Errorf("signing keys: %w", err)
	}
	issuer := auth.NewTokenIssuer(auth.IssuerConfig{PublicURL: cfg.PublicURL, DevMode: cfg.DevMode, Logger: s.Logger}, keys, s.DB)
	a := &Authenticator{
		Keys:   keys,
		Issuer: issuer,
		Verifier: &auth.Verifier{
			Clients: auth.NewClientTokenVerifier(issuer.Issuer(), issuer.Audience(), keys, s.DB, nil),
		},
		logger: s.Logger,
	}
	if cfg.OIDCIssuerURL != "" {
		pc := auth.PeopleConfig{
			IssuerURL:     cfg.OIDCIssuerURL,
			Audience:      cfg.OIDCAudience,
			OperatorClaim: cfg.OperatorClaim,
			OperatorValue: cfg.OperatorValue,
		}
		if cfg.DevMode {
			pc.DevOperators = cfg.DevOperators
		}
		a.Verifier.People = auth.NewPeople(pc, s.DB)
	}
	if cfg.DevMode {
		if a.Dev, err = auth.NewDevIssuer(cfg.PublicURL+"/dev", cfg.OIDCAudience, nil); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// authRoutes registers the token endpoint, the gateway's issuer metadata and,
// in DEV_MODE, the development OpenID Connect issuer. Without DEV_MODE
// nothing exists under /dev/.
func (s *Server) authRoutes(mux *http.ServeMux) {
	a := s.Auth
	mux.Handle("POST /oauth/token", s.Metrics.countTokens(http.HandlerFunc(a.Issuer.ServeToken)))
	mux.HandleFunc("GET /.well-known/openid-configuration", a.Issuer.ServeConfiguration)
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", a.Issuer.ServeConfiguration) // RFC 8414
	mux.HandleFunc("GET /.well-known/jwks.json", a.Issuer.ServeJWKS)
	if a.Dev != nil {
		mux.HandleFunc("GET /dev/.well-known/openid-configuration", a.Dev.ServeConfiguration)
		mux.HandleFunc("GET /dev/jwks.json", a.Dev.ServeJWKS)
		mux.HandleFunc("POST /dev/token", a.Dev.ServeToken)
	}
}

// Middleware attaches the principal of a valid bearer token to the request's
// context. It does not refuse requests itself: GraphQL validates before it
// reports UNAUTHENTICATED, and /fhir/ answers 401 with an OperationOutcome.
// A request whose credentials do not verify carries no principal and
// auth.CredentialsRejected; why goes to the debug log, never the token.
// The one answer it gives is 503 when a token could not be checked at all
// (writeUnavailable).
func (a *Authenticator) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		header := r.Header.Get("Authorization")
		if header == "" {
			next.ServeHTTP(w, r)
			return
		}
		ctx := r.Context()
		scheme, token, _ := strings.Cut(header, " ")
		token = strings.TrimSpace(token)
		switch {
		case strings.EqualFold(scheme, "Basic") && r.URL.Path == "/oauth/token":
			// client_secret_basic: the token endpoint authenticates the client.
		case !strings.EqualFold(scheme, "Bearer") || token == "":
			a.logger.DebugContext(ctx, "credentials refused", "reason", "not a bearer token")
			ctx = auth.WithCredentialsRejected(ctx)
		default:
			p, err := a.Verifier.Verify(ctx, token)
			switch {
			case err == nil:
				ctx = auth.WithPrincipal(ctx, p)
			case errors.Is(err, auth.ErrInvalidToken):
				a.logger.DebugContext(ctx, "bearer token refused", "reason", err.Error())
				ctx = auth.WithCredentialsRejected(ctx)
			default:
				// Not a verdict on the token: the database (client status)
				// or the identity provider could not be asked. Refusing the
				// credentials would make clients discard a good token.
				a.logger.ErrorContext(ctx, "bearer token verification", "err", err)
				writeUnavailable(w, r)
				return
			}
		}
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// runRotateSigningKey is the `rotate-signing-key [--publish-ahead D]`
// command: it adds a new token-signing key, published at once and signing
// from D on (default 0), and retires keys superseded more than 10 minutes
// ago. Every instance signs with the new key within a minute; the old key
// stays published until its last token has expired. Run it again 10
// minutes later to retire the old key (or let the next start do it).
func runRotateSigningKey(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	ctx, cancel := commandContext(ctx)
	defer cancel()
	fs := flag.NewFlagSet("rotate-signing-key", flag.ContinueOnError)
	fs.SetOutput(stderr)
	ahead := fs.Duration("publish-ahead", 0, "publish the new key this long before it signs")
	if err := fs.Parse(args); err != nil {
		return &exitError{code: 2, err: err}
	}
	cfg, err := LoadConfig(getenv)
	if err != nil {
		return err
	}
	if err := cfg.RequireServeSettings(); err != nil {
		return err
	}
	logger := NewLogger(stderr, cfg.LogLevel)
	db, closeDB, err := OpenDatabase(ctx, cfg, logger, cfg.MigrateOnStart)
	if err != nil {
		return err
	}
	defer closeDB()
	kid, err := auth.RotateSigningKey(ctx, db, cfg.KeyEncryptionKey, *ahead)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, kid)
	return nil
}
