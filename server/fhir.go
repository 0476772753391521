package server

import (
	"context"
	"net/http"

	"golang.org/x/sync/errgroup"
)

// fhirRoutes registers the FHIR endpoints under /fhir/.
func (s *Server) fhirRoutes(mux *http.ServeMux) {}

// startExportWorkers starts the bulk export workers.
func (s *Server) startExportWorkers(ctx context.Context, g *errgroup.Group) {}
