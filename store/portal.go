package store

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"example.com/gateway/auth"
	"example.com/gateway/gateway"
)

// The developer portal's writes (DESIGN.md §2). Every portal mutation
// follows the same steps, so that none can skip one:
//
//  1. its input is validated, all problems reported at once, before the
//     database is touched;
//  2. one transaction: the stored result of an earlier call with the same
//     clientMutationId is returned if there is one (idempotency), else the
//     caller's current membership is read (auth.Actor), the policy in
//     auth/portal.go is asked, the objects are locked and checked, the rows
//     written, the emails queued and the result stored for a retry;
//  3. the changed objects are read back for the payload.

// Mutation identifies one call of a portal mutation for idempotency: the
// same principal calling the same mutation with the same ClientMutationID
// gets the first call's result, and nothing is written a second time.
type Mutation struct {
	Name             string // the GraphQL mutation, e.g. "registerOrganization"
	ClientMutationID string // "" : the call is not tracked
}

// maxClientMutationID bounds the length of a clientMutationId.
const maxClientMutationID = 200

// portalTx is the transaction of one portal mutation and who runs it.
type portalTx struct {
	*sqlx.Tx
	actor auth.Actor
	user  *gateway.User // the person's (or operator's) row; nil for clients
	now   time.Time
	today gateway.Date
}

// userID returns the acting person's user id for created_by columns, nil
// for clients.
func (t *portalTx) userID() *string {
	if t.user == nil {
		return nil
	}
	return &t.user.ID
}

// recordedBy names the actor in history columns: the person's email, else
// "client:<id>".
func (t *portalTx) recordedBy() string {
	if t.user != nil {
		return t.user.Email
	}
	return "client:" + t.actor.Principal().ID()
}

const claimMutationSQL = `
INSERT INTO mutation_results (principal_id, mutation, client_mutation_id, result, input_sha256)
VALUES ($1, $2, $3, 'null', $4)
ON CONFLICT DO NOTHING`

const storedMutationSQL = `
SELECT result, input_sha256 FROM mutation_results
WHERE principal_id = $1 AND mutation = $2 AND client_mutation_id = $3`

const saveMutationSQL = `
UPDATE mutation_results SET result = $4::jsonb
WHERE principal_id = $1 AND mutation = $2 AND client_mutation_id = $3`

// mutate runs do as p in one transaction, with idempotency under retry:
// the first call with a clientMutationId stores do's result (JSON) in
// mutation_results; a later call with the same key and the same input gets
// that result without do running again (replayed is true), and with
// another input CONFLICT. A concurrent duplicate waits on the key's row
// until the first call commits or rolls back. Nothing is stored when do
// fails, so a failed call may be retried. R must survive a JSON round trip:
// results are references (ids) that the caller reads back.
func mutate[R any](ctx context.Context, db *DB, p auth.Principal, m Mutation, input any, do func(t *portalTx) (R, error)) (result R, replayed bool, err error) {
	if p.IsZero() {
		return result, false, &gateway.Error{Code: gateway.CodeUnauthenticated, Message: "authentication required"}
	}
	if len(m.ClientMutationID) > maxClientMutationID {
		return result, false, &gateway.Error{Code: gateway.CodeInvalid, Path: "input.clientMutationId",
			Message: fmt.Sprintf("clientMutationId is longer than %d characters", maxClientMutationID)}
	}
	var inputHash []byte
	if m.ClientMutationID != "" {
		b, err := json.Marshal(input)
		if err != nil {
			return result, false, fmt.Errorf("hash %s input: %w", m.Name, err)
		}
		sum := sha256.Sum256(b)
		inputHash = sum[:]
	}
	err = db.inTx(ctx, func(tx *sqlx.Tx) error {
		replayed = false // inTx may run this again
		if m.ClientMutationID != "" {
			res, err := tx.ExecContext(ctx, claimMutationSQL, p.ID(), m.Name, m.ClientMutationID, inputHash)
			if err != nil {
				return fmt.Errorf("claim clientMutationId: %w", err)
			}
			if n, _ := res.RowsAffected(); n == 0 {
				var stored struct {
					Result []byte `db:"result"`
					Hash   []byte `db:"input_sha256"`
				}
				if err := tx.GetContext(ctx, &stored, storedMutationSQL, p.ID(), m.Name, m.ClientMutationID); err != nil {
					return fmt.Errorf("read stored mutation result: %w", err)
				}
				if string(stored.Hash) != string(inputHash) {
					return &gateway.Error{Code: gateway.CodeConflict, Path: "input.clientMutationId",
						Message: "this clientMutationId was already used with another input"}
				}
				replayed = true
				return json.Unmarshal(stored.Result, &result)
			}
		}
		t, err := beginPortal(ctx, db, tx, p)
		if err != nil {
			return err
		}
		if result, err = do(t); err != nil {
			return err
		}
		if m.ClientMutationID == "" {
			return nil
		}
		b, err := json.Marshal(result)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, saveMutationSQL, p.ID(), m.Name, m.ClientMutationID, string(b))
		return err
	})
	if err != nil {
		var zero R
		return zero, false, err
	}
	return result, replayed, nil
}

// beginPortal reads who p is in the portal now, within tx.
func beginPortal(ctx context.Context, db *DB, tx *sqlx.Tx, p auth.Principal) (*portalTx, error) {
	now := db.Now()
	t := &portalTx{Tx: tx, now: now, today: gateway.DateOf(now)}
	if p.IsClient() {
		t.actor = auth.PortalActor(p, "", "")
		return t, nil
	}
	u, err := currentUser(ctx, tx, p)
	if err != nil {
		return nil, err
	}
	t.user = &u
	org := ""
	if u.OrganizationID != nil {
		org = *u.OrganizationID
	}
	t.actor = auth.PortalActor(p, org, u.Role)
	return t, nil
}

const userByIDSQL = `SELECT ` + userColumns + ` FROM users WHERE id = $1`

// currentUser returns the row of the signed-in person p, having joined
// them to the organization of a pending invitation to their (verified)
// email if they belong to none yet.
func currentUser(ctx context.Context, q sqlx.ExtContext, p auth.Principal) (gateway.User, error) {
	var u gateway.User
	if !isUUID(p.ID()) {
		return u, &gateway.Error{Code: gateway.CodeUnauthenticated, Message: "authentication required"}
	}
	if err := sqlx.GetContext(ctx, q, &u, userByIDSQL, p.ID()); err != nil {
		if errors.Is(notFound(err), gateway.ErrNotFound) {
			return u, &gateway.Error{Code: gateway.CodeUnauthenticated, Message: "sign in again"}
		}
		return u, err
	}
	if u.OrganizationID != nil || p.IsOperator() {
		return u, nil
	}
	return acceptInvitation(ctx, q, u)
}

const pendingInvitationSQL = `
SELECT id, organization_id, role FROM invitations
WHERE lower(email) = lower($1) AND accepted_at IS NULL
ORDER BY created_at, id
LIMIT 1
FOR UPDATE SKIP LOCKED`

const acceptInvitationSQL = `
WITH accepted AS (
  UPDATE invitations SET accepted_at = now(), accepted_by = $2 WHERE id = $1
)
UPDATE users SET organization_id = $3, role = $4
WHERE id = $2 AND organization_id IS NULL
RETURNING ` + userColumns

// AcceptInvitations joins user, who signed in with a verified email, to
// the organization of the oldest pending invitation to that email, with
// the invited role, and returns the user as now stored. A user who already
// belongs to an organization, or has no invitation, is returned unchanged.
// The portal calls it on every request of a person without an
// organization; sign-in (store.UserFromSignIn) may call it too.
func (db *DB) AcceptInvitations(ctx context.Context, user gateway.User) (gateway.User, error) {
	if user.OrganizationID != nil {
		return user, nil
	}
	var out gateway.User
	err := db.inTx(ctx, func(tx *sqlx.Tx) (err error) {
		out, err = acceptInvitation(ctx, tx, user)
		return err
	})
	return out, err
}

func acceptInvitation(ctx context.Context, q sqlx.ExtContext, u gateway.User) (gateway.User, error) {
	var inv struct {
		ID    string           `db:"id"`
		OrgID string           `db:"organization_id"`
		Role  gateway.UserRole `db:"role"`
	}
	err := sqlx.GetContext(ctx, q, &inv, pendingInvitationSQL, u.Email)
	if errors.Is(notFound(err), gateway.ErrNotFound) {
		return u, nil
	}
	if err != nil {
		return u, fmt.Errorf("find invitation: %w", err)
	}
	var joined gateway.User
	err = sqlx.GetContext(ctx, q, &joined, acceptInvitationSQL, inv.ID, u.ID, inv.OrgID, inv.Role)
	if errors.Is(notFound(err), gateway.ErrNotFound) {
		return u, nil // joined an organization meanwhile
	}
	if err != nil {
		return u, fmt.Errorf("accept invitation: %w", err)
	}
	return joined, nil
}

const insertEmailSQL = `
INSERT INTO email_outbox (id, to_address, subject, body) VALUES ($1, $2, $3, $4)`

// queueEmail queues one email per distinct address of to, in tx: it is
// sent if and only if the change it reports commits.
func queueEmail(ctx context.Context, tx *sqlx.Tx, to []string, subject, body string) error {
	seen := map[string]bool{}
	for _, addr := range to {
		addr = strings.ToLower(strings.TrimSpace(addr))
		if addr == "" || seen[addr] {
			continue
		}
		seen[addr] = true
		if _, err := tx.ExecContext(ctx, insertEmailSQL, uuid.New(), addr, subject, body); err != nil {
			return fmt.Errorf("queue email: %w", err)
		}
	}
	return nil
}

const organizationAdminEmailsSQL = `
SELECT email FROM users WHERE organization_id = $1 AND role = 'ADMIN' ORDER BY email`

// adminEmails returns the emails of the organization's administrators.
func adminEmails(ctx context.Context, tx *sqlx.Tx, orgID string) ([]string, error) {
	var out []string
	err := tx.SelectContext(ctx, &out, organizationAdminEmailsSQL, orgID)
	return out, err
}

// Input checks shared by the portal's mutations.

// validEmail reports whether s is a plain address (no display name).
func validEmail(s string) bool {
	a, err := mail.ParseAddress(s)
	return err == nil && a.Address == s && strings.Contains(s[strings.LastIndexByte(s, '@'):], ".")
}

// checkNPI adds the problem with an organization NPI at path, if any.
func checkNPI(fe *gateway.FieldErrors, path, npi string) {
	switch {
	case len(npi) != 10 || strings.Trim(npi, "0123456789") != "":
		fe.Add(path, "must be 10 digits")
	case !gateway.ValidNPI(npi):
		// 45 CFR 162.406: Luhn check digit over 80840 + the first nine digits.
		fe.Add(path, "is not a valid NPI: its check digit is wrong")
	}
}

// checkText adds a problem when s is longer than max characters, or empty
// while required.
func checkText(fe *gateway.FieldErrors, path, s string, required bool, max int) {
	switch {
	case required && strings.TrimSpace(s) == "":
		fe.Add(path, "is required")
	case len([]rune(s)) > max:
		fe.Add(path, "is longer than %d characters", max)
	}
}

// validOrganizationType reports whether t is one of the organization types.
func validOrganizationType(t gateway.OrganizationType) bool {
	switch t {
	case gateway.OrgProviderHealthSystem, gateway.OrgAccountableCareOrganization, gateway.OrgConsumerApplication,
		gateway.OrgPayer, gateway.OrgServiceProviderOther, gateway.OrgEHRSoftware:
		return true
	}
	return false
}

const lockOrganizationSQL = organizationByIDSQL + ` FOR NO KEY UPDATE`

// lockOrganization reads an organization for update within tx; NOT_FOUND
// when there is none.
func lockOrganization(ctx context.Context, tx *sqlx.Tx, id string) (gateway.Organization, error) {
	var o gateway.Organization
	if !isUUID(id) {
		return o, gateway.ErrNotFound
	}
	err := tx.GetContext(ctx, &o, lockOrganizationSQL, id)
	return o, notFound(err)
}
