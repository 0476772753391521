package store

import (
	"context"

	"example.com/gateway/auth"
	"example.com/gateway/gateway"
)

var _ auth.UserDirectory = (*DB)(nil)

const userColumns = `id, issuer, subject, email, name, organization_id, role, created_at`

// userSignInSQL is the sign-in of a known user: it returns the user and
// whether its row needs writing (email or name changed, or last seen more
// than five minutes ago), so that most requests only read.
const userSignInSQL = `
SELECT ` + userColumns + `,
  (email IS DISTINCT FROM $3 OR ($4 <> '' AND name IS DISTINCT FROM $4)
   OR last_seen_at IS NULL OR last_seen_at < now() - interval '5 minutes') AS stale
FROM users WHERE issuer = $1 AND subject = $2`

const upsertUserSQL = `
INSERT INTO users (id, issuer, subject, email, name, last_seen_at)
VALUES (gen_random_uuid(), $1, $2, $3, $4, now())
ON CONFLICT (issuer, subject) DO UPDATE
  SET email = EXCLUDED.email,
      name = CASE WHEN EXCLUDED.name <> '' THEN EXCLUDED.name ELSE users.name END,
      last_seen_at = now()
RETURNING ` + userColumns

// UserFromSignIn returns the user signed in as (issuer, subject), creating
// it on first sign-in and keeping its email and name as the identity
// provider last said. A person without an organization joins the one that
// invited their (verified) email.
func (db *DB) UserFromSignIn(ctx context.Context, issuer, subject, email, name string) (gateway.User, error) {
	var row struct {
		gateway.User
		Stale bool `db:"stale"`
	}
	err := db.GetContext(ctx, &row, userSignInSQL, issuer, subject, email, name)
	if err == nil && !row.Stale {
		return db.AcceptInvitations(ctx, row.User)
	}
	if err = notFound(err); err != nil && gateway.ErrorCode(err) != gateway.CodeNotFound {
		return gateway.User{}, err
	}
	var u gateway.User
	if err = db.GetContext(ctx, &u, upsertUserSQL, issuer, subject, email, name); err != nil {
		return u, err
	}
	return db.AcceptInvitations(ctx, u)
}
