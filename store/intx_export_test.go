package store

import (
	"context"

	"github.com/jmoiron/sqlx"
)

// InTx exposes inTx to the external tests (retry_test.go), which need
// storetest and so cannot be in package store.
func (db *DB) InTx(ctx context.Context, fn func(tx *sqlx.Tx) error) error { return db.inTx(ctx, fn) }
