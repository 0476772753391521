package store

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"example.com/gateway/auth"
	"example.com/gateway/gateway"
)

// API clients in the portal (DESIGN.md §2 step 5): creation against the
// organization-type table, secret rotation with an overlap window, keys
// for private_key_jwt, revocation, and the sandbox binding of Patient
// Access clients.

// PortalClient is the input of CreatePortalClient.
type PortalClient struct {
	OrganizationID string
	Name           string
	Description    string
	Environment    gateway.Environment
	AccessType     gateway.AccessType
	JWKS           json.RawMessage // optional inline JWKS (private_key_jwt)
	JWKSURL        string          // or its HTTPS URL
}

// Validate reports every problem of the input at once. devMode allows a
// loopback http:// JWKS URL (auth.ValidateJWKSURL).
func (in *PortalClient) Validate(devMode bool) error {
	var fe gateway.FieldErrors
	in.Name = strings.TrimSpace(in.Name)
	checkText(&fe, "input.name", in.Name, true, 100)
	checkText(&fe, "input.description", in.Description, false, 1000)
	checkKeys(&fe, in.JWKS, in.JWKSURL, devMode)
	return fe.Err()
}

func checkKeys(fe *gateway.FieldErrors, jwks json.RawMessage, url string, devMode bool) {
	if len(jwks) > 0 && string(jwks) != "null" {
		if err := auth.ValidateClientJWKS(jwks); err != nil {
			fe.Add("input.jwks", "is not a usable JWKS: %v", err)
		}
	}
	if url != "" {
		if err := auth.ValidateJWKSURL(url, devMode); err != nil {
			fe.Add("input.jwksUrl", "is not a usable JWKS URL: %v", err)
		}
	}
}

// ClientWithSecret is a client and, right after its creation or a
// rotation, its new secret in plain text: shown once, never stored (a
// retried call with the same clientMutationId gets the client without it).
type ClientWithSecret struct {
	Client gateway.Client
	Secret string
}

// clientRef is the stored result of a client mutation: never the secret.
type clientRef struct {
	ID     string `json:"id"`
	Secret string `json:"-"`
}

// CreatePortalClient creates an API client of the organization. The
// environment and access type are checked against the organization-type
// table of DESIGN.md §1 and the organization's approval (auth.CanCreateClient:
// FORBIDDEN), the caller against auth.Actor.CanManageClient. Without keys
// the client gets a secret of 256 random bits, returned once and stored as
// its SHA-256 hash. Returns CONFLICT when the organization already has a
// client of that name.
func (db *DB) CreatePortalClient(ctx context.Context, p auth.Principal, in PortalClient, devMode bool, m Mutation) (ClientWithSecret, error) {
	if err := in.Validate(devMode); err != nil {
		return ClientWithSecret{}, err
	}
	ref, _, err := mutate(ctx, db, p, m, in, func(t *portalTx) (clientRef, error) {
		if err := t.actor.CanManageClient(in.OrganizationID, in.Environment, false); err != nil {
			return clientRef{}, err
		}
		org, err := lockOrganization(ctx, t.Tx, in.OrganizationID)
		if err != nil {
			return clientRef{}, err
		}
		if err := auth.CanCreateClient(org, in.Environment, in.AccessType); err != nil {
			return clientRef{}, err
		}
		var c gateway.APIClient
		err = t.GetContext(ctx, &c, insertClientSQL, rand.Text(), org.ID, in.Name, in.Description,
			in.Environment, in.AccessType, nil, nullJSON(in.JWKS), in.JWKSURL, t.userID())
		if isUniqueViolation(err, "clients_organization_id_name_key") {
			return clientRef{}, &gateway.Error{Code: gateway.CodeConflict, Path: "input.name",
				Message: "the organization already has a client with this name"}
		}
		if err != nil {
			return clientRef{}, fmt.Errorf("insert client: %w", err)
		}
		ref := clientRef{ID: c.ID}
		if len(in.JWKS) == 0 && in.JWKSURL == "" {
			var hash []byte
			ref.Secret, hash = auth.NewClientSecret()
			if _, err := t.ExecContext(ctx, insertClientSecretSQL, uuid.New(), c.ID, hash, nil); err != nil {
				return clientRef{}, err
			}
		}
		return ref, nil
	})
	return db.clientResult(ctx, ref, err)
}

func (db *DB) clientResult(ctx context.Context, ref clientRef, err error) (ClientWithSecret, error) {
	if err != nil {
		return ClientWithSecret{}, err
	}
	c, err := db.clientUsage(ctx, ref.ID)
	return ClientWithSecret{Client: c, Secret: ref.Secret}, err
}

// MaxSecretOverlap bounds the overlap window of a rotation.
const MaxSecretOverlap = 7 * 24 * time.Hour

const lockClientSQL = clientByIDSQL + ` FOR NO KEY UPDATE`

// lockClient reads a client for update within tx; NOT_FOUND when there is none.
func lockClient(ctx context.Context, tx *sqlx.Tx, id string) (gateway.APIClient, error) {
	var c gateway.APIClient
	err := tx.GetContext(ctx, &c, lockClientSQL, id)
	return c, notFound(err)
}

// clientForManagement locks the client and checks that the actor may
// manage it (revoke: revoke it). Clients of other organizations answer
// NOT_FOUND.
func clientForManagement(ctx context.Context, t *portalTx, id string, revoke bool) (gateway.APIClient, error) {
	c, err := lockClient(ctx, t.Tx, id)
	if err != nil {
		return c, err
	}
	if err := t.actor.CanManageClient(c.OrganizationID, c.Environment, revoke); err != nil {
		return c, err
	}
	if c.Status != gateway.ClientActive && !revoke {
		return c, &gateway.Error{Code: gateway.CodeConflict, Message: "the client is revoked"}
	}
	return c, nil
}

// RotatePortalClientSecret gives the client a new secret, returned once,
// and lets its current secrets work for overlap more (0 ends them now; at
// most MaxSecretOverlap), so a deployment can switch without downtime.
// Returns CONFLICT for a revoked client.
func (db *DB) RotatePortalClientSecret(ctx context.Context, p auth.Principal, clientID string, overlap time.Duration, m Mutation) (ClientWithSecret, error) {
	if overlap < 0 || overlap > MaxSecretOverlap {
		return ClientWithSecret{}, &gateway.Error{Code: gateway.CodeInvalid, Path: "input.overlapSeconds",
			Message: fmt.Sprintf("overlapSeconds must be between 0 and %d", int(MaxSecretOverlap.Seconds()))}
	}
	in := struct {
		ClientID string
		Overlap  time.Duration
	}{clientID, overlap}
	ref, _, err := mutate(ctx, db, p, m, in, func(t *portalTx) (clientRef, error) {
		c, err := clientForManagement(ctx, t, clientID, false)
		if err != nil {
			return clientRef{}, err
		}
		if _, err := t.ExecContext(ctx, expireClientSecretsSQL, c.ID, t.now.Add(overlap)); err != nil {
			return clientRef{}, err
		}
		ref := clientRef{ID: c.ID}
		var hash []byte
		ref.Secret, hash = auth.NewClientSecret()
		_, err = t.ExecContext(ctx, insertClientSecretSQL, uuid.New(), c.ID, hash, nil)
		return ref, err
	})
	return db.clientResult(ctx, ref, err)
}

// RevokePortalClient revokes the client: no new tokens, and its live tokens
// stop working within auth.ClientStatusTTL on every instance. Operators may
// revoke any client. Revoking a revoked client changes nothing.
func (db *DB) RevokePortalClient(ctx context.Context, p auth.Principal, clientID string, m Mutation) (gateway.Client, error) {
	ref, _, err := mutate(ctx, db, p, m, clientID, func(t *portalTx) (clientRef, error) {
		c, err := clientForManagement(ctx, t, clientID, true)
		if err != nil {
			return clientRef{}, err
		}
		_, err = t.ExecContext(ctx, revokeClientSQL, c.ID)
		return clientRef{ID: c.ID}, err
	})
	r, err := db.clientResult(ctx, ref, err)
	return r.Client, err
}

// ClientKeys is the input of SetPortalClientJWKS.
type ClientKeys struct {
	ClientID string
	JWKS     json.RawMessage
	JWKSURL  string
}

// SetPortalClientJWKS registers the client's public keys for
// private_key_jwt (SMART Backend Services): an inline JWKS, an HTTPS JWKS
// URL, or both; neither clears them. Both are validated first
// (BAD_USER_INPUT).
func (db *DB) SetPortalClientJWKS(ctx context.Context, p auth.Principal, in ClientKeys, devMode bool, m Mutation) (gateway.Client, error) {
	var fe gateway.FieldErrors
	checkKeys(&fe, in.JWKS, in.JWKSURL, devMode)
	if err := fe.Err(); err != nil {
		return gateway.Client{}, err
	}
	if string(in.JWKS) == "null" {
		in.JWKS = nil
	}
	ref, _, err := mutate(ctx, db, p, m, in, func(t *portalTx) (clientRef, error) {
		c, err := clientForManagement(ctx, t, in.ClientID, false)
		if err != nil {
			return clientRef{}, err
		}
		_, err = t.ExecContext(ctx, setClientJWKSSQL, c.ID, nullJSON(in.JWKS), in.JWKSURL)
		return clientRef{ID: c.ID}, err
	})
	r, err := db.clientResult(ctx, ref, err)
	return r.Client, err
}

// Binding is the input of BindPatientAccessClient.
type Binding struct {
	ClientID string
	MemberID string
}

const sandboxMemberExistsSQL = `SELECT sandbox FROM members WHERE id = $1`

const bindClientSQL = `UPDATE clients SET bound_member_id = $2 WHERE id = $1`

// BindPatientAccessClient binds a sandbox Patient Access client to one
// sandbox member, whose data (money included) it then reads. Until member
// sign-in (SMART App Launch) exists, operators make this binding, in the
// sandbox only. Returns FORBIDDEN for anyone but operators, NOT_FOUND for
// an unknown client, BAD_USER_INPUT for a client that is not a sandbox
// Patient Access client or a member that is not a sandbox member.
func (db *DB) BindPatientAccessClient(ctx context.Context, p auth.Principal, in Binding, m Mutation) (gateway.Client, error) {
	ref, _, err := mutate(ctx, db, p, m, in, func(t *portalTx) (clientRef, error) {
		if err := t.actor.Can(auth.RightBindPatientAccessClient, ""); err != nil {
			return clientRef{}, err
		}
		c, err := lockClient(ctx, t.Tx, in.ClientID)
		if err != nil {
			return clientRef{}, err
		}
		var fe gateway.FieldErrors
		switch {
		case c.AccessType != gateway.PatientAccess:
			fe.Add("input.clientId", "is not a Patient Access client")
		case c.Environment != gateway.EnvSandbox:
			fe.Add("input.clientId", "is not a sandbox client: production Patient Access binds members through their own sign-in")
		case c.Status != gateway.ClientActive:
			fe.Add("input.clientId", "is revoked")
		}
		var sandbox bool
		err = sqlx.GetContext(ctx, t.Tx, &sandbox, sandboxMemberExistsSQL, argUUID(in.MemberID))
		if err := notFound(err); err != nil && gateway.ErrorCode(err) != gateway.CodeNotFound {
			return clientRef{}, err
		}
		if !sandbox {
			fe.Add("input.memberId", "is not a sandbox member")
		}
		if err := fe.Err(); err != nil {
			return clientRef{}, err
		}
		_, err = t.ExecContext(ctx, bindClientSQL, c.ID, in.MemberID)
		return clientRef{ID: c.ID}, err
	})
	r, err := db.clientResult(ctx, ref, err)
	return r.Client, err
}

// argUUID passes s as a uuid parameter, or NULL when it is not a UUID (so
// the lookup finds nothing instead of failing the cast).
func argUUID(s string) any {
	if !isUUID(s) {
		return nil
	}
	return s
}

// Reads.

// clientUsageColumns are a client's columns with what the portal shows of
// its use: the tokens issued to it in the last 24 hours and whether it has
// a live secret.
const clientUsageColumns = `c.id, c.organization_id, c.name, c.description, c.environment, c.access_type, c.status,
  c.bound_member_id, convert_to(coalesce(c.jwks::text, ''), 'UTF8') AS jwks, c.jwks_url, c.created_at, c.revoked_at, c.last_used_at,
  (SELECT count(*) FROM token_issuances t WHERE t.client_id = c.id AND t.issued_at > now() - interval '24 hours') AS tokens_issued_last_24h,
  EXISTS (SELECT 1 FROM client_secrets s WHERE s.client_id = c.id AND (s.expires_at IS NULL OR s.expires_at > now())) AS has_secret`

const clientUsageSQL = `SELECT ` + clientUsageColumns + ` FROM clients c WHERE c.id = $1`

func (db *DB) clientUsage(ctx context.Context, id string) (gateway.Client, error) {
	var c gateway.Client
	err := db.GetContext(ctx, &c, clientUsageSQL, id)
	return c, notFound(err)
}

// ClientFor returns the client with its use if p may see it: the people of
// its organization and operators. NOT_FOUND otherwise.
func (db *DB) ClientFor(ctx context.Context, p auth.Principal, id string) (gateway.Client, error) {
	a, _, err := db.portalActor(ctx, p)
	if err != nil {
		return gateway.Client{}, err
	}
	c, err := db.clientUsage(ctx, id)
	if err != nil {
		return c, err
	}
	if a.Can(auth.RightReadClients, c.OrganizationID) != nil {
		return gateway.Client{}, gateway.ErrNotFound
	}
	return c, nil
}

// ClientFilter narrows a list of clients.
type ClientFilter struct {
	OrganizationID string              // "" : the caller's organization (operators: every organization)
	Environment    gateway.Environment // "" any
	Status         gateway.ClientStatus
}

const clientsPageSQL = `
SELECT ` + clientUsageColumns + ` FROM clients c
WHERE ($1::uuid IS NULL OR c.organization_id = $1)
  AND ($2::text IS NULL OR c.environment = $2)
  AND ($3::text IS NULL OR c.status = $3)
  AND ($4::text IS NULL OR c.id > $4)
ORDER BY c.id
LIMIT $5`

// Clients lists API clients with their use: a person's own organization's,
// or for operators any organization's (all without a filter). Returns
// NOT_FOUND for another organization, FORBIDDEN for API clients.
func (db *DB) Clients(ctx context.Context, p auth.Principal, f ClientFilter, page Page) (Paged[*gateway.Client], error) {
	var out Paged[*gateway.Client]
	a, _, err := db.portalActor(ctx, p)
	if err != nil {
		return out, err
	}
	org := f.OrganizationID
	if org == "" && !a.IsOperator() {
		org = a.OrgID()
		if org == "" || p.IsClient() {
			return out, &gateway.Error{Code: gateway.CodeForbidden, Message: "only people of an organization and operators list clients"}
		}
	}
	if org != "" {
		if err := a.Can(auth.RightReadClients, org); err != nil {
			return out, err
		}
		if !isUUID(org) {
			return out, gateway.ErrNotFound
		}
	}
	var after any
	if page.After != "" {
		parts, err := parseCursor(page.After, "c", 1)
		if err != nil {
			return out, err
		}
		after = parts[0]
	}
	var rows []*gateway.Client
	err = db.SelectContext(ctx, &rows, clientsPageSQL, argString(org), argString(string(f.Environment)),
		argString(string(f.Status)), after, page.First+1)
	if err != nil {
		return out, err
	}
	return pageOf(rows, page, func(c *gateway.Client) string { return pageCursor("c", c.ID) }), nil
}
