package store

import (
	"context"
	"math/rand/v2"
	"time"
)

// useJTISQL inserts the jti, or takes over a row whose expiry has passed
// (not yet purged); a row still live means a replay and returns nothing.
const useJTISQL = `
INSERT INTO used_jtis (client_id, jti, expires_at) VALUES ($1, $2, $3)
ON CONFLICT (client_id, jti) DO UPDATE SET expires_at = EXCLUDED.expires_at
  WHERE used_jtis.expires_at < now()
RETURNING true`

// UseJTI remembers a client assertion's jti until expires, in PostgreSQL so
// that a replay is refused on every instance (SMART Backend Services: the
// server "SHALL" reject a jti already seen within the assertion's lifetime).
// fresh is false when the jti is already in use. Expired rows are purged
// opportunistically, on about one call in 64.
func (db *DB) UseJTI(ctx context.Context, clientID, jti string, expires time.Time) (fresh bool, err error) {
	rows, err := db.QueryContext(ctx, useJTISQL, clientID, jti, expires)
	if err != nil {
		return false, err
	}
	fresh = rows.Next()
	rows.Close()
	if err := rows.Err(); err != nil {
		return false, err
	}
	db.maybePurgeJTIs(ctx)
	return fresh, nil
}

const purgeJTIsSQL = `DELETE FROM used_jtis WHERE expires_at < now()`

func (db *DB) maybePurgeJTIs(ctx context.Context) {
	if rand.N(64) == 0 {
		db.PurgeExpiredJTIs(ctx) // best effort: the next purge catches up
	}
}

// PurgeExpiredJTIs deletes remembered jtis whose assertions have expired.
func (db *DB) PurgeExpiredJTIs(ctx context.Context) (int64, error) {
	res, err := db.ExecContext(ctx, purgeJTIsSQL)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}
