package store

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"example.com/gateway/auth"
	"example.com/gateway/gateway"
)

var _ auth.ClientDirectory = (*DB)(nil)

// NewClient is what creating an API client takes. The caller (the portal's
// createClient) has checked the access type against the organization's type.
type NewClient struct {
	OrganizationID string
	Name           string
	Description    string
	Environment    gateway.Environment
	AccessType     gateway.AccessType
	BoundMemberID  *string
	JWKS           json.RawMessage // inline JWKS (private_key_jwt); validated by auth.ValidateClientJWKS
	JWKSURL        string          // or its URL; validated by auth.ValidateJWKSURL
	CreatedBy      *string         // user id
}

// clientColumns reads a gateway.APIClient. jwks comes as bytes, empty when
// NULL: json.RawMessage can scan neither NULL nor lib/pq's strings.
const clientColumns = `id, organization_id, name, description, environment, access_type, status,
  bound_member_id, convert_to(coalesce(jwks::text, ''), 'UTF8') AS jwks, jwks_url, created_at, revoked_at, last_used_at`

const insertClientSQL = `
INSERT INTO clients (id, organization_id, name, description, environment, access_type,
  bound_member_id, jwks, jwks_url, created_by)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10)
RETURNING ` + clientColumns

const insertClientSecretSQL = `
INSERT INTO client_secrets (id, client_id, sha256, expires_at) VALUES ($1, $2, $3, $4)`

// CreateClient creates an API client with a random, opaque client_id. A
// client that registers no JWKS gets a client secret, returned here in
// plain text once and stored only as its SHA-256 hash; with a JWKS, secret
// is "". Returns CONFLICT when the organization already has a client of
// that name.
func (db *DB) CreateClient(ctx context.Context, in NewClient) (c gateway.APIClient, secret string, err error) {
	err = db.inTx(ctx, func(tx *sqlx.Tx) error {
		err := tx.GetContext(ctx, &c, insertClientSQL, rand.Text(), in.OrganizationID, in.Name, in.Description,
			in.Environment, in.AccessType, in.BoundMemberID, nullJSON(in.JWKS), in.JWKSURL, in.CreatedBy)
		if isUniqueViolation(err, "clients_organization_id_name_key") {
			return gateway.Errorf(gateway.CodeConflict, "the organization already has a client named %q", in.Name)
		}
		if err != nil {
			return err
		}
		if len(in.JWKS) > 0 || in.JWKSURL != "" {
			return nil
		}
		var hash []byte
		secret, hash = auth.NewClientSecret()
		_, err = tx.ExecContext(ctx, insertClientSecretSQL, uuid.New(), c.ID, hash, nil)
		return err
	})
	if err != nil {
		return gateway.APIClient{}, "", err
	}
	return c, secret, nil
}

const clientByIDSQL = `SELECT ` + clientColumns + ` FROM clients WHERE id = $1`

// ClientByID returns the client; NOT_FOUND when there is none.
func (db *DB) ClientByID(ctx context.Context, id string) (gateway.APIClient, error) {
	var c gateway.APIClient
	err := db.GetContext(ctx, &c, clientByIDSQL, id)
	return c, notFound(err)
}

const clientSecretHashesSQL = `
SELECT sha256 FROM client_secrets
WHERE client_id = $1 AND (expires_at IS NULL OR expires_at > now())`

// ClientSecretHashes returns the SHA-256 hashes of the client's secrets
// that have not expired (a rotated secret works until its expires_at).
func (db *DB) ClientSecretHashes(ctx context.Context, clientID string) ([][]byte, error) {
	var hashes [][]byte
	err := db.SelectContext(ctx, &hashes, clientSecretHashesSQL, clientID)
	return hashes, err
}

const activeClientForUpdateSQL = `SELECT status FROM clients WHERE id = $1 FOR UPDATE`

const expireClientSecretsSQL = `
UPDATE client_secrets SET expires_at = $2
WHERE client_id = $1 AND (expires_at IS NULL OR expires_at > $2)`

// RotateClientSecret gives the client a new secret, returned in plain text
// once, and lets its current secrets work for overlap more (the rotation
// window; 0 ends them now). Returns NOT_FOUND for an unknown or revoked
// client.
func (db *DB) RotateClientSecret(ctx context.Context, clientID string, overlap time.Duration) (secret string, err error) {
	err = db.inTx(ctx, func(tx *sqlx.Tx) error {
		var status gateway.ClientStatus
		if err := tx.GetContext(ctx, &status, activeClientForUpdateSQL, clientID); err != nil {
			return notFound(err)
		}
		if status != gateway.ClientActive {
			return gateway.ErrNotFound
		}
		if _, err := tx.ExecContext(ctx, expireClientSecretsSQL, clientID, db.Now().Add(overlap)); err != nil {
			return err
		}
		var hash []byte
		secret, hash = auth.NewClientSecret()
		_, err := tx.ExecContext(ctx, insertClientSecretSQL, uuid.New(), clientID, hash, nil)
		return err
	})
	return secret, err
}

const revokeClientSQL = `
UPDATE clients SET status = 'REVOKED', revoked_at = now()
WHERE id = $1 AND status = 'ACTIVE'`

// RevokeClient revokes the client: it gets no new tokens, and its live
// tokens stop working within auth.ClientStatusTTL on every instance.
// Revoking a revoked client changes nothing. Returns NOT_FOUND for an
// unknown client.
func (db *DB) RevokeClient(ctx context.Context, id string) error {
	res, err := db.ExecContext(ctx, revokeClientSQL, id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		_, err := db.ClientByID(ctx, id)
		return err
	}
	return nil
}

const setClientJWKSSQL = `UPDATE clients SET jwks = $2::jsonb, jwks_url = $3 WHERE id = $1`

// SetClientJWKS registers the client's public keys for private_key_jwt:
// an inline JWKS, a JWKS URL, or both (nil and "" clear them). The caller
// validates them (auth.ValidateClientJWKS, auth.ValidateJWKSURL). Returns
// NOT_FOUND for an unknown client.
func (db *DB) SetClientJWKS(ctx context.Context, id string, jwks json.RawMessage, jwksURL string) error {
	res, err := db.ExecContext(ctx, setClientJWKSSQL, id, nullJSON(jwks), jwksURL)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return gateway.ErrNotFound
	}
	return nil
}

const recordTokenIssuedSQL = `
WITH issued AS (INSERT INTO token_issuances (client_id, issued_at, jti) VALUES ($1, $2, $3))
UPDATE clients SET last_used_at = $2 WHERE id = $1`

// RecordTokenIssued records an access token issued to the client (its jti,
// never its text) and the client's last use.
func (db *DB) RecordTokenIssued(ctx context.Context, clientID, jti string, at time.Time) error {
	_, err := db.ExecContext(ctx, recordTokenIssuedSQL, clientID, at, jti)
	return err
}

// nullJSON passes a JSON document as text (lib/pq would send []byte as
// bytea), and an empty one as NULL.
func nullJSON(raw json.RawMessage) any {
	if len(raw) == 0 {
		return nil
	}
	return string(raw)
}
