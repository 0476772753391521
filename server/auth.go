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
