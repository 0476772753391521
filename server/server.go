// Package server is the gateway's HTTP surface: configuration, wiring, the
// router with every route in one place, middleware (request ids, logs,
// limits, authentication), GraphQL over HTTP, health and metrics. It holds
// no SQL and no access rules: those are store's and auth's.
package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"golang.org/x/sync/errgroup"

	"example.com/gateway/store"
)

// Server holds the gateway's dependencies. Its handlers are methods so that
// wiring stays in one place (NewHandler).
type Server struct {
	Config  Config
	Logger  *slog.Logger
	DB      *store.DB
	Auth    *Authenticator
	Metrics *Metrics
	Tracing *sdktrace.TracerProvider // OTEL_EXPORTER_OTLP_ENDPOINT; nil: tracing off (tracing.go)

	// DB above is the request pool: HTTP requests' statements, bounded by
	// DB_STATEMENT_TIMEOUT (Pools.Requests). Background is the export
	// workers' pool, unbounded (Pools.Background); nil means DB.
	Background *store.DB
}

// New wires a Server over an open database.
func New(ctx context.Context, cfg Config, logger *slog.Logger, db *store.DB) (*Server, error) {
	s := &Server{Config: cfg, Logger: logger, DB: db}
	s.Metrics = newMetrics(s.pools)
	if err := s.checkGraphQLAllowlist(); err != nil {
		return nil, err
	}
	authn, err := newAuthenticator(ctx, s)
	if err != nil {
		return nil, err
	}
	s.Auth = authn
	if s.Tracing, err = newTracerProvider(ctx, cfg, logger); err != nil {
		return nil, err
	}
	return s, nil
}

// Serve serves on ln until ctx is cancelled, then shuts down gracefully
// within SHUTDOWN_TIMEOUT and flushes pending spans. Background workers run
// on ctx, never on a request's context.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.NewHandler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      10 * time.Minute, // export file downloads stream large files
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.Logger.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	g, ctx := errgroup.WithContext(ctx)
	s.startBackground(ctx, g)
	g.Go(func() error {
		s.Logger.Info("listening", "addr", ln.Addr().String(), "public_url", s.Config.PublicURL,
			"dev_mode", s.Config.DevMode, "playground", s.Config.Playground)
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	g.Go(func() error {
		<-ctx.Done()
		s.Logger.Info("shutting down", "timeout", s.Config.ShutdownTimeout.String())
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.Config.ShutdownTimeout)
		defer cancel()
		return srv.Shutdown(shutdownCtx)
	})
	err := g.Wait()
	s.shutdownTracing(ctx) // after the last request and export batch
	return err
}

// Run is the `serve` command: it reads the configuration, opens (and in
// DEV_MODE seeds) the database and serves until SIGINT or SIGTERM.
// Everything it needs from the OS arrives as a parameter, so end-to-end
// tests call it directly.
func Run(ctx context.Context, getenv func(string) string, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := LoadConfig(getenv)
	if err != nil {
		return err
	}
	if err := cfg.RequireServeSettings(); err != nil {
		return err
	}
	logger := NewLogger(stderr, cfg.LogLevel)
	tuneGC(getenv)
	pools, closeDB, err := OpenPools(ctx, cfg, logger, cfg.MigrateOnStart)
	if err != nil {
		return err
	}
	defer closeDB()
	if cfg.DevMode {
		if err := seedOnce(ctx, pools.Background, logger); err != nil {
			return fmt.Errorf("seed sandbox: %w", err)
		}
	}
	s, err := New(ctx, cfg, logger, pools.Requests)
	if err != nil {
		return err
	}
	s.Background = pools.Background
	s.installGlobalTracing()
	ln, err := net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		return err
	}
	return s.Serve(ctx, ln)
}

// tuneGC trades memory for throughput unless the operator chose GOGC or
// GOMEMLIMIT: GraphQL responses allocate heavily and the live heap is small,
// so collecting at 5× the live heap instead of 2× gave 40–60 % more
// requests per second here; the soft limit keeps the heap bounded.
func tuneGC(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(1 << 30)
	}
}

// NewHandler returns the gateway's entire HTTP surface. Middleware is listed
// innermost first.
func (s *Server) NewHandler() http.Handler {
	mux := http.NewServeMux()
	if s.Config.Playground {
		mux.Handle("GET /{$}", s.playgroundHandler())
	}
	gql := s.graphQLHandler()
	mux.Handle("POST /graphql", gql)
	mux.Handle("GET /graphql", gql)
	s.authRoutes(mux)
	s.fhirRoutes(mux)
	docs := s.docsHandler()
	mux.Handle("GET /docs", docs)
	mux.Handle("GET /docs/{page}", docs)
	mux.HandleFunc("GET /healthz", s.handleHealthz)
	mux.HandleFunc("GET /readyz", s.handleReadyz)
	mux.Handle("GET /metrics", s.Metrics.handler())

	var h http.Handler = mux
	h = s.nameSpans(h)          // the HTTP span's name: the route pattern the mux matched
	h = s.rateLimit(h)          // per-client token bucket on /graphql and /fhir/ (needs the principal)
	h = s.Metrics.instrument(h) // sees the route pattern the mux sets
	h = s.Auth.Middleware(h)    // bearer token → auth.Principal in the context, when valid
	h = s.recoverPanics(h)
	h = cors(s.Config.CORSAllowedOrigins, h)
	h = securityHeaders(h)
	h = s.logRequests(h)
	h = s.traceRequests(h) // the HTTP server span, when tracing is on; its ids go on the request's log lines
	h = withRequestID(h)
	return h
}

func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{"status":"ok"}`)
}

// handleReadyz answers 200 while the database answers, 503 otherwise, so a
// load balancer takes the instance out during a database outage.
func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if err := s.DB.Ping(r.Context()); err != nil {
		s.Logger.WarnContext(r.Context(), "not ready", "err", err)
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `{"status":"unavailable","database":"down"}`)
		return
	}
	io.WriteString(w, `{"status":"ready","database":"up"}`)
}

// startBackground starts the workers that run beside the HTTP server, on
// the process context.
func (s *Server) startBackground(ctx context.Context, g *errgroup.Group) {
	s.startExportWorkers(ctx, g)
	s.startOutbox(ctx, g)
}
