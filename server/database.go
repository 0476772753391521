package server

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"example.com/gateway/internal/pgcluster"
	"example.com/gateway/migrations"
	"example.com/gateway/store"
)

// privateDatabase is the database the gateway creates in its private cluster.
const privateDatabase = "gateway"

// OpenDatabase connects the commands (migrate, seed, import,
// rotate-signing-key) to DATABASE_URL or, without it, to the private
// PostgreSQL (starting it when it is not running), and applies migrations
// when migrate is true. Its pool has DB_MAX_CONNS connections and no
// statement timeout: a command's statements take as long as its data
// needs. The returned close function closes the pool; a private server
// started here stops with the process (Pdeathsig).
func OpenDatabase(ctx context.Context, cfg Config, logger *slog.Logger, migrate bool) (*store.DB, func(), error) {
	url, err := databaseURL(ctx, cfg, logger)
	if err != nil {
		return nil, nil, err
	}
	db, err := openPool(ctx, cfg, url, store.Options{MaxConns: cfg.DBMaxConns}, migrate)
	if err != nil {
		return nil, nil, err
	}
	return db, func() { db.Close() }, nil
}

// Pools are serve's two connection pools on the one database, so that
// long background work neither starves requests of connections nor
// escapes, or is cut by, the requests' statement timeout.
type Pools struct {
	// Requests serves HTTP requests (GraphQL, FHIR, the token endpoint,
	// audit writes): DB_MAX_CONNS connections, every statement bounded by
	// DB_STATEMENT_TIMEOUT, a session idle in a transaction for twice as
	// long ended; application_name gateway-requests.
	Requests *store.DB
	// Background runs the export workers (and start-up work: migrations,
	// the DEV_MODE sandbox): EXPORT_WORKERS + 2 connections (one per
	// worker, one for the jobs' lease heartbeats and the files' cleanup,
	// one spare for other background work), no statement timeout;
	// application_name gateway-background.
	Background *store.DB
}

// backgroundConns is the size of the background pool for cfg.
func backgroundConns(cfg Config) int { return max(cfg.ExportWorkers, 1) + 2 }

// OpenPools connects serve's two pools, as OpenDatabase does (migrations,
// when migrate is true, run on the background pool, unbounded). The
// returned close function closes both.
func OpenPools(ctx context.Context, cfg Config, logger *slog.Logger, migrate bool) (Pools, func(), error) {
	url, err := databaseURL(ctx, cfg, logger)
	if err != nil {
		return Pools{}, nil, err
	}
	bg, err := openPool(ctx, cfg, url, store.Options{MaxConns: backgroundConns(cfg), Name: "gateway-background"}, migrate)
	if err != nil {
		return Pools{}, nil, err
	}
	req, err := openPool(ctx, cfg, url, store.Options{MaxConns: cfg.DBMaxConns, StatementTimeout: cfg.DBStatementTimeout, Name: "gateway-requests"}, false)
	if err != nil {
		bg.Close()
		return Pools{}, nil, err
	}
	return Pools{Requests: req, Background: bg}, func() { req.Close(); bg.Close() }, nil
}

// databaseURL is DATABASE_URL or, without it, the URL of the private
// PostgreSQL's gateway database (starting the server if needed).
func databaseURL(ctx context.Context, cfg Config, logger *slog.Logger) (string, error) {
	if cfg.DatabaseURL != "" {
		return cfg.DatabaseURL, nil
	}
	return startPrivate(ctx, logger)
}

// openPool opens a pool on url and, when migrate is true, applies the
// migrations through it.
func openPool(ctx context.Context, cfg Config, url string, opts store.Options, migrate bool) (*store.DB, error) {
	db, err := store.Open(ctx, url, opts)
	if err != nil {
		return nil, err
	}
	db.UpcomingDays = cfg.AttributionUpcomingDays
	if migrate {
		if err := store.Migrate(ctx, db, migrations.FS); err != nil {
			db.Close()
			return nil, err
		}
	}
	return db, nil
}

// startPrivate starts (or reuses) the private cluster in .data/postgres, or
// under the temporary directory when the postgres OS user cannot reach the
// working directory, and returns the URL of the gateway's database in it.
func startPrivate(ctx context.Context, logger *slog.Logger) (string, error) {
	dir, err := filepath.Abs(filepath.Join(".data", "postgres"))
	if err != nil {
		return "", err
	}
	socketDir := filepath.Join(dir, "run")
	if !pgcluster.Reachable(dir) || len(socketDir) > 90 {
		dir = filepath.Join(os.TempDir(), fmt.Sprintf("provider-access-gateway-%d", os.Getuid()), hashPath(dir))
		socketDir = dir + "-run"
		logger.Info("the postgres OS user cannot reach the working directory; keeping the private PostgreSQL elsewhere", "data_dir", dir)
	}
	c, err := pgcluster.Start(ctx, pgcluster.Options{
		DataDir:   filepath.Join(dir, "data"),
		SocketDir: socketDir,
		Log:       func(msg string, args ...any) { logger.Info(msg, args...) },
	})
	if err != nil {
		return "", err
	}
	admin, err := store.Open(ctx, c.URL("postgres"), store.Options{MaxConns: 1})
	if err != nil {
		return "", err
	}
	defer admin.Close()
	var exists bool
	if err := admin.GetContext(ctx, &exists, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, privateDatabase); err != nil {
		return "", err
	}
	if !exists {
		if _, err := admin.ExecContext(ctx, `CREATE DATABASE `+privateDatabase); err != nil && !isDuplicateDatabase(err) {
			return "", err
		}
	}
	return c.URL(privateDatabase), nil
}
