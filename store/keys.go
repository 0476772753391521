package store

import (
	"context"
	"time"

	"github.com/jmoiron/sqlx"

	"example.com/gateway/auth"
)

var _ auth.KeyStore = (*DB)(nil)

const signingKeysSQL = `
SELECT kid, alg, private_key_sealed, public_jwk, created_at, active_from, retired_at
FROM signing_keys
WHERE retired_at IS NULL
ORDER BY active_from, created_at`

// SigningKeys returns the gateway's unretired token-signing keys, oldest
// active_from first.
func (db *DB) SigningKeys(ctx context.Context) ([]auth.SigningKeyRecord, error) {
	var keys []auth.SigningKeyRecord
	err := db.SelectContext(ctx, &keys, signingKeysSQL)
	return keys, err
}

// signingKeysLock serializes the creation of the first key across
// instances (a transaction-scoped advisory lock).
const signingKeysLockSQL = `SELECT pg_advisory_xact_lock(hashtext('signing_keys'))`

const anySigningKeySQL = `SELECT EXISTS (SELECT 1 FROM signing_keys WHERE retired_at IS NULL)`

const insertSigningKeySQL = `
INSERT INTO signing_keys (kid, alg, private_key_sealed, public_jwk, active_from)
VALUES ($1, $2, $3, $4, $5)`

// CreateSigningKey inserts k. With onlyIfNone it inserts only when there is
// no unretired key, under an advisory lock so that instances starting
// together create one key, not one each; it reports whether it inserted.
func (db *DB) CreateSigningKey(ctx context.Context, k auth.SigningKeyRecord, onlyIfNone bool) (created bool, err error) {
	err = db.inTx(ctx, func(tx *sqlx.Tx) error {
		created = false // inTx may run this again
		if onlyIfNone {
			if _, err := tx.ExecContext(ctx, signingKeysLockSQL); err != nil {
				return err
			}
			var exists bool
			if err := tx.GetContext(ctx, &exists, anySigningKeySQL); err != nil {
				return err
			}
			if exists {
				return nil
			}
		}
		if _, err := tx.ExecContext(ctx, insertSigningKeySQL, k.KID, k.Alg, k.PrivateKeySealed, []byte(k.PublicJWK), k.ActiveFrom); err != nil {
			return err
		}
		created = true
		return nil
	})
	return created, err
}

const retireSigningKeysSQL = `
UPDATE signing_keys k SET retired_at = now()
WHERE k.retired_at IS NULL
  AND EXISTS (SELECT 1 FROM signing_keys n
              WHERE n.retired_at IS NULL AND n.active_from > k.active_from AND n.active_from <= $1)`

// RetireSigningKeys retires every key superseded by a newer key that became
// active before supersededBefore: the tokens it signed have all expired, so
// it is no longer published.
func (db *DB) RetireSigningKeys(ctx context.Context, supersededBefore time.Time) (int64, error) {
	res, err := db.ExecContext(ctx, retireSigningKeysSQL, supersededBefore)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}
