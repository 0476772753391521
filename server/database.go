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

// OpenDatabase connects to DATABASE_URL or, without it, to the private
// PostgreSQL (starting it when it is not running), and applies migrations
// when migrate is true. The returned close function closes the pool; a
// private server started here stops with the process (Pdeathsig).
func OpenDatabase(ctx context.Context, cfg Config, logger *slog.Logger, migrate bool) (*store.DB, func(), error) {
	url := cfg.DatabaseURL
	if url == "" {
		var err error
		if url, err = startPrivate(ctx, logger); err != nil {
			return nil, nil, err
		}
	}
	db, err := store.Open(ctx, url, store.Options{MaxConns: cfg.DBMaxConns})
	if err != nil {
		return nil, nil, err
	}
	db.UpcomingDays = cfg.AttributionUpcomingDays
	if migrate {
		if err := store.Migrate(ctx, db, migrations.FS); err != nil {
			db.Close()
			return nil, nil, err
		}
	}
	return db, func() { db.Close() }, nil
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
