package server

import (
	"context"
	"net/http"

	"golang.org/x/sync/errgroup"

	"example.com/gateway/export"
	"example.com/gateway/store"
)

// exportService is the bulk export API over this server's configuration
// and request pool. It holds no state of its own (jobs and files live in
// PostgreSQL and EXPORT_DIR), so every caller may build one: the FHIR
// routes and GraphQL's startBulkExport / bulkExportJob(s) /
// cancelBulkExport resolvers; the workers use backgroundExportService.
func (s *Server) exportService() *export.Service {
	return &export.Service{
		DB:        s.DB,
		PublicURL: s.Config.PublicURL,
		Dir:       s.Config.ExportDir,
		Retention: s.Config.ExportRetention,
	}
}

// fhirRoutes registers the FHIR endpoints under /fhir/: discovery, the
// attribution groups and FHIR Bulk Data (kick-off, status, cancel, files).
func (s *Server) fhirRoutes(mux *http.ServeMux) {
	h := &export.Handler{Service: s.exportService(), Logger: s.Logger, RequestID: RequestID}
	if s.Auth != nil && s.Auth.Issuer != nil {
		h.SMARTConfiguration = s.Auth.Issuer.SMARTConfiguration
	}
	h.Register(mux)
}

// backgroundDB is the pool of long-running background work (Pools): its
// statements take as long as they need, never cut by the requests'
// statement timeout, and it never holds the connections requests need.
func (s *Server) backgroundDB() *store.DB {
	if s.Background != nil {
		return s.Background
	}
	return s.DB
}

// backgroundExportService is exportService on the background pool, for
// the workers.
func (s *Server) backgroundExportService() *export.Service {
	svc := s.exportService()
	svc.DB = s.backgroundDB()
	return svc
}

// startExportWorkers starts EXPORT_WORKERS bulk export workers and the
// cleanup of expired export files, on the process context and the
// background pool.
func (s *Server) startExportWorkers(ctx context.Context, g *errgroup.Group) {
	r := &export.Runner{Service: s.backgroundExportService(), Logger: s.Logger, Workers: s.Config.ExportWorkers}
	if m := s.Metrics; m != nil {
		r.OnExported = func(resourceType string, n int) {
			m.ResourcesExported.WithLabelValues(resourceType).Add(float64(n))
		}
	}
	g.Go(func() error { return r.Run(ctx) })
}
