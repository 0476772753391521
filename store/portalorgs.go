package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"example.com/gateway/auth"
	"example.com/gateway/gateway"
)

// Organizations in the portal: registration, invitations, the in-network
// flag, and what people and operators read of them.

// NewOrganization is the input of RegisterOrganization.
type NewOrganization struct {
	Name string
	Type gateway.OrganizationType
	NPI  string // the organization (type 2) NPI
	TIN  string // nine digits; 12-3456789 is accepted
}

// Validate reports every problem of the input at once (BAD_USER_INPUT per
// field) and normalizes the TIN to its digits.
func (in *NewOrganization) Validate() error {
	var fe gateway.FieldErrors
	in.Name = strings.TrimSpace(in.Name)
	checkText(&fe, "input.name", in.Name, true, 200)
	if !validOrganizationType(in.Type) {
		fe.Add("input.type", "is not an organization type")
	}
	checkNPI(&fe, "input.npi", in.NPI)
	if tin, ok := gateway.NormalizeTIN(in.TIN); ok {
		in.TIN = tin
	} else {
		fe.Add("input.tin", "must be 9 digits (e.g. 123456789 or 12-3456789)")
	}
	return fe.Err()
}

const insertPortalOrganizationSQL = `
INSERT INTO organizations (id, name, type, npi, tin) VALUES ($1, $2, $3, $4, $5)
RETURNING ` + organizationColumns

const makeAdminSQL = `
UPDATE users SET organization_id = $2, role = 'ADMIN' WHERE id = $1 AND organization_id IS NULL`

// RegisterOrganization registers an organization for the signed-in person
// p, who becomes its administrator (DESIGN.md §2 step 1). It starts in
// SANDBOX, not in-network, and an organization that may have Provider
// Access clients gets its own deterministic sandbox attributions at once
// (§2 step 2). Returns BAD_USER_INPUT per invalid field, CONFLICT when the
// NPI is already registered or p already belongs to an organization,
// FORBIDDEN for operators and API clients.
func (db *DB) RegisterOrganization(ctx context.Context, p auth.Principal, in NewOrganization, m Mutation) (gateway.Organization, error) {
	if err := in.Validate(); err != nil {
		return gateway.Organization{}, err
	}
	id, _, err := mutate(ctx, db, p, m, in, func(t *portalTx) (string, error) {
		if err := t.actor.Can(auth.RightRegisterOrganization, ""); err != nil {
			return "", err
		}
		var org gateway.Organization
		err := t.GetContext(ctx, &org, insertPortalOrganizationSQL, uuid.New(), in.Name, in.Type, in.NPI, in.TIN)
		if isUniqueViolation(err, "organizations_npi_key") {
			return "", &gateway.Error{Code: gateway.CodeConflict, Path: "input.npi",
				Message: "an organization with this NPI is already registered"}
		}
		if err != nil {
			return "", fmt.Errorf("insert organization: %w", err)
		}
		res, err := t.ExecContext(ctx, makeAdminSQL, t.user.ID, org.ID)
		if err != nil {
			return "", err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return "", &gateway.Error{Code: gateway.CodeConflict, Message: "you already belong to an organization"}
		}
		// The sandbox attributions exist for the organization's Provider
		// Access clients to read (DESIGN.md §2 step 2): other types have none.
		if slices.Contains(auth.AllowedAccessTypes(org.Type, gateway.EnvSandbox), gateway.ProviderAccess) {
			if _, err := attributeSandboxMembers(ctx, t.Tx, []string{org.ID}, t.today); err != nil {
				return "", err
			}
		}
		return org.ID, nil
	})
	if err != nil {
		return gateway.Organization{}, err
	}
	return db.OrganizationByID(ctx, id)
}

// NewInvitation is the input of InviteUser.
type NewInvitation struct {
	OrganizationID string
	Email          string
	Role           gateway.UserRole // default USER
}

// Validate reports every problem of the input at once.
func (in *NewInvitation) Validate() error {
	var fe gateway.FieldErrors
	in.Email = strings.ToLower(strings.TrimSpace(in.Email))
	if !validEmail(in.Email) {
		fe.Add("input.email", "is not an email address")
	}
	if in.Role == "" {
		in.Role = gateway.RoleUser
	}
	if in.Role != gateway.RoleUser && in.Role != gateway.RoleAdmin {
		fe.Add("input.role", "must be ADMIN or USER")
	}
	return fe.Err()
}

const organizationMemberByEmailSQL = `
SELECT EXISTS (SELECT 1 FROM users WHERE organization_id = $1 AND lower(email) = $2)`

const upsertInvitationSQL = `
INSERT INTO invitations (id, organization_id, email, role, invited_by)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (organization_id, email) DO UPDATE
  SET role = EXCLUDED.role, invited_by = EXCLUDED.invited_by, created_at = now()
  WHERE invitations.accepted_at IS NULL
RETURNING id, organization_id, email, role, invited_by, created_at, accepted_at`

// InviteUser invites a person, by email, to the organization: they join it
// with the role when they sign in with that email verified (an invitation
// to an email already invited renews it with the new role). An email is
// queued to them. Administrators of the organization and operators may
// invite. Returns CONFLICT when the person already belongs to the
// organization, NOT_FOUND for an organization the caller may not see.
func (db *DB) InviteUser(ctx context.Context, p auth.Principal, in NewInvitation, m Mutation) (gateway.Invitation, error) {
	if err := in.Validate(); err != nil {
		return gateway.Invitation{}, err
	}
	id, _, err := mutate(ctx, db, p, m, in, func(t *portalTx) (string, error) {
		if err := t.actor.Can(auth.RightInviteUser, in.OrganizationID); err != nil {
			return "", err
		}
		org, err := lockOrganization(ctx, t.Tx, in.OrganizationID)
		if err != nil {
			return "", err
		}
		var member bool
		if err := t.GetContext(ctx, &member, organizationMemberByEmailSQL, org.ID, in.Email); err != nil {
			return "", err
		}
		if member {
			return "", &gateway.Error{Code: gateway.CodeConflict, Path: "input.email",
				Message: "this person already belongs to the organization"}
		}
		if t.user == nil {
			return "", &gateway.Error{Code: gateway.CodeForbidden, Message: "API clients cannot invite people"}
		}
		var inv gateway.Invitation
		err = t.GetContext(ctx, &inv, upsertInvitationSQL, uuid.New(), org.ID, in.Email, in.Role, t.user.ID)
		if errors.Is(notFound(err), gateway.ErrNotFound) {
			return "", &gateway.Error{Code: gateway.CodeConflict, Path: "input.email",
				Message: "this person already accepted an invitation to the organization"}
		}
		if err != nil {
			return "", err
		}
		body := fmt.Sprintf("%s invited you to join %s on the payer's Provider Access developer portal as %s.\n\n"+
			"Sign in to the portal with this email address (%s) to accept: you join the organization at your first sign-in.\n",
			t.user.Email, org.Name, strings.ToLower(string(in.Role)), in.Email)
		if err := queueEmail(ctx, t.Tx, []string{in.Email}, "Invitation to "+org.Name+" on the Provider Access portal", body); err != nil {
			return "", err
		}
		return inv.ID, nil
	})
	if err != nil {
		return gateway.Invitation{}, err
	}
	var inv gateway.Invitation
	err = db.GetContext(ctx, &inv, invitationByIDSQL, id)
	return inv, notFound(err)
}

const invitationByIDSQL = `
SELECT id, organization_id, email, role, invited_by, created_at, accepted_at FROM invitations WHERE id = $1`

// SetInNetwork is the input of SetOrganizationInNetworkAs.
type SetInNetwork struct {
	OrganizationID string
	InNetwork      bool
}

// SetOrganizationInNetworkAs sets, for an operator p, whether the
// organization is in the payer's network: Provider Access serves in-network
// providers only (42 CFR 422.121(a)). Returns FORBIDDEN for anyone but
// operators, NOT_FOUND for an unknown organization.
func (db *DB) SetOrganizationInNetworkAs(ctx context.Context, p auth.Principal, in SetInNetwork, m Mutation) (gateway.Organization, error) {
	id, _, err := mutate(ctx, db, p, m, in, func(t *portalTx) (string, error) {
		if err := t.actor.Can(auth.RightSetInNetwork, in.OrganizationID); err != nil {
			return "", err
		}
		org, err := lockOrganization(ctx, t.Tx, in.OrganizationID)
		if err != nil {
			return "", err
		}
		_, err = t.ExecContext(ctx, setOrganizationInNetworkSQL, org.ID, in.InNetwork)
		return org.ID, err
	})
	if err != nil {
		return gateway.Organization{}, err
	}
	return db.OrganizationByID(ctx, id)
}

// Reads.

// portalActor reads who p is in the portal now (outside a mutation).
func (db *DB) portalActor(ctx context.Context, p auth.Principal) (auth.Actor, *gateway.User, error) {
	if p.IsZero() {
		return auth.Actor{}, nil, gateway.ErrNotFound
	}
	if p.IsClient() {
		return auth.PortalActor(p, "", ""), nil, nil
	}
	var u gateway.User
	err := db.inTx(ctx, func(tx *sqlx.Tx) (err error) {
		u, err = currentUser(ctx, tx, p)
		return err
	})
	if err != nil {
		return auth.Actor{}, nil, err
	}
	org := ""
	if u.OrganizationID != nil {
		org = *u.OrganizationID
	}
	return auth.PortalActor(p, org, u.Role), &u, nil
}

// OrganizationFor returns the organization if p may see it: operators see
// every organization, people and clients their own. NOT_FOUND otherwise.
func (db *DB) OrganizationFor(ctx context.Context, p auth.Principal, id string) (gateway.Organization, error) {
	a, _, err := db.portalActor(ctx, p)
	if err != nil {
		return gateway.Organization{}, err
	}
	if err := a.Can(auth.RightReadOrganization, id); err != nil {
		return gateway.Organization{}, gateway.ErrNotFound
	}
	return db.OrganizationByID(ctx, id)
}

// OrganizationFilter narrows the operators' list of organizations.
type OrganizationFilter struct {
	Status    gateway.OrganizationStatus // "" any
	Type      gateway.OrganizationType   // "" any
	NameLike  string                     // case-insensitive substring; "" any
	InNetwork *bool
}

const organizationsPageSQL = `
SELECT ` + organizationColumns + ` FROM organizations
WHERE NOT synthetic
  AND ($1::text IS NULL OR status = $1)
  AND ($2::text IS NULL OR type = $2)
  AND ($3::text IS NULL OR name ILIKE '%' || $3 || '%')
  AND ($4::boolean IS NULL OR in_network = $4)
  AND ($5::uuid IS NULL OR id > $5)
ORDER BY id
LIMIT $6`

const organizationsCountSQL = `
SELECT count(*) FROM organizations
WHERE NOT synthetic
  AND ($1::text IS NULL OR status = $1)
  AND ($2::text IS NULL OR type = $2)
  AND ($3::text IS NULL OR name ILIKE '%' || $3 || '%')
  AND ($4::boolean IS NULL OR in_network = $4)`

// Organizations lists the registered organizations (not the sandbox's
// synthetic ones) for operators, by id. Returns FORBIDDEN for anyone else.
func (db *DB) Organizations(ctx context.Context, p auth.Principal, f OrganizationFilter, page Page) (Paged[*gateway.Organization], int, error) {
	var out Paged[*gateway.Organization]
	a, _, err := db.portalActor(ctx, p)
	if err != nil {
		return out, 0, err
	}
	if err := a.Can(auth.RightListOrganizations, ""); err != nil {
		return out, 0, err
	}
	var after any
	if page.After != "" {
		parts, err := parseCursor(page.After, "o", 1)
		if err != nil {
			return out, 0, err
		}
		if after, err = uuidCursorPart(parts[0]); err != nil {
			return out, 0, err
		}
	}
	like := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(f.NameLike)
	args := []any{argString(string(f.Status)), argString(string(f.Type)), argString(like), f.InNetwork}
	var rows []*gateway.Organization
	if err := db.SelectContext(ctx, &rows, organizationsPageSQL, append(args, after, page.First+1)...); err != nil {
		return out, 0, err
	}
	out = pageOf(rows, page, func(o *gateway.Organization) string { return pageCursor("o", o.ID) })
	var total int
	err = db.GetContext(ctx, &total, organizationsCountSQL, args...)
	return out, total, err
}

// pageOf cuts rows (fetched with one extra) to the page and gives each its
// cursor.
func pageOf[T any](rows []T, page Page, cursor func(T) string) Paged[T] {
	out := Paged[T]{HasPreviousPage: page.After != ""}
	if len(rows) > page.First {
		rows, out.HasNextPage = rows[:page.First], true
	}
	out.Items = rows
	out.Cursors = make([]string, len(rows))
	for i, r := range rows {
		out.Cursors[i] = cursor(r)
	}
	return out
}

// Viewer is what the portal shows the signed-in caller about themselves.
type Viewer struct {
	User         *gateway.User
	Organization *gateway.Organization
	Role         gateway.UserRole // "" without an organization
	NextSteps    []gateway.NextStep
}

const viewerCountsSQL = `
SELECT
  (SELECT count(*) FROM clients WHERE organization_id = $1 AND environment = 'SANDBOX' AND status = 'ACTIVE') AS sandbox_clients,
  (SELECT count(*) FROM clients WHERE organization_id = $1 AND environment = 'PRODUCTION' AND status = 'ACTIVE') AS production_clients,
  (SELECT count(*) FROM users WHERE organization_id = $1) AS users`

const pendingReviewCountSQL = `SELECT count(*) FROM access_requests WHERE status = 'PENDING_REVIEW'`

// ViewerFor returns p's portal view: the person, their organization and
// role, and what they may do next (auth.NextSteps). A person without an
// organization who has a pending invitation joins its organization here.
func (db *DB) ViewerFor(ctx context.Context, p auth.Principal) (Viewer, error) {
	a, u, err := db.portalActor(ctx, p)
	if err != nil {
		return Viewer{}, err
	}
	v := Viewer{User: u}
	var st auth.PortalState
	if a.IsOperator() {
		if err := db.GetContext(ctx, &st.PendingReviewCount, pendingReviewCountSQL); err != nil {
			return v, err
		}
	}
	if org := a.OrgID(); org != "" {
		o, err := db.OrganizationByID(ctx, org)
		if err != nil {
			return v, err
		}
		v.Organization, st.Organization = &o, &o
		if u != nil {
			v.Role = a.Role()
		}
		var counts struct {
			Sandbox    int `db:"sandbox_clients"`
			Production int `db:"production_clients"`
			Users      int `db:"users"`
		}
		if err := db.GetContext(ctx, &counts, viewerCountsSQL, org); err != nil {
			return v, err
		}
		st.SandboxClients, st.ProductionClients, st.Users = counts.Sandbox, counts.Production, counts.Users
		if r, err := latestAccessRequest(ctx, db.DB, org); err == nil {
			st.Request = &r
			st.RequestComplete = validateStages(r.Stages, o, true) == nil
		} else if gateway.ErrorCode(err) != gateway.CodeNotFound {
			return v, err
		}
	}
	v.NextSteps = auth.NextSteps(a, st)
	return v, nil
}

// organizationAddress is the address column of an organization (set from an
// approved access request).
func organizationAddress(a *gateway.Address) string {
	if a == nil {
		return "{}"
	}
	b, _ := json.Marshal(a)
	return string(b)
}

// Batch reads for nested fields. The parents were read through a checked
// method (OrganizationFor, a list, …); these check what p may see of each.

const organizationsByIDsSQL = `SELECT ` + organizationColumns + ` FROM organizations WHERE id = ANY($1::uuid[])`

// OrganizationsByIDs returns the organizations of ids, by id, in one
// statement. It is for the organization of an object p was allowed to read
// (a request, a client, a roster): whoever sees the object sees its owner.
func (db *DB) OrganizationsByIDs(ctx context.Context, ids []string) (map[string]*gateway.Organization, error) {
	var rows []*gateway.Organization
	if err := db.SelectContext(ctx, &rows, organizationsByIDsSQL, pq.Array(uuids(ids))); err != nil {
		return nil, err
	}
	out := make(map[string]*gateway.Organization, len(rows))
	for _, o := range rows {
		out[o.ID] = o
	}
	return out, nil
}

const latestAccessRequestsSQL = `
SELECT DISTINCT ON (organization_id) ` + accessRequestColumns + ` FROM access_requests
WHERE organization_id = ANY($1::uuid[])
ORDER BY organization_id, created_at DESC, id DESC`

// LatestAccessRequestsByOrganizations returns the latest access request of
// each organization of orgIDs that p may read requests of (its people,
// operators), in one statement; others are absent.
func (db *DB) LatestAccessRequestsByOrganizations(ctx context.Context, p auth.Principal, orgIDs []string) (map[string]*gateway.AccessRequest, error) {
	ids, err := db.readableOrgs(ctx, p, auth.RightReadAccessRequest, orgIDs)
	if err != nil || len(ids) == 0 {
		return map[string]*gateway.AccessRequest{}, err
	}
	var rows []*gateway.AccessRequest
	if err := db.SelectContext(ctx, &rows, latestAccessRequestsSQL, pq.Array(ids)); err != nil {
		return nil, err
	}
	out := make(map[string]*gateway.AccessRequest, len(rows))
	for _, r := range rows {
		out[r.OrganizationID] = r
	}
	return out, nil
}

const usersByOrganizationsSQL = `
SELECT ` + userColumns + ` FROM users WHERE organization_id = ANY($1::uuid[]) ORDER BY organization_id, role, email`

const invitationsByOrganizationsSQL = `
SELECT id, organization_id, email, role, invited_by, created_at, accepted_at
FROM invitations WHERE organization_id = ANY($1::uuid[]) AND accepted_at IS NULL
ORDER BY organization_id, created_at, id`

// UsersByOrganizations returns the people of each organization of orgIDs
// whose people p may see (its own people, operators), in one statement.
func (db *DB) UsersByOrganizations(ctx context.Context, p auth.Principal, orgIDs []string) (map[string][]*gateway.User, error) {
	ids, err := db.readableOrgs(ctx, p, auth.RightReadAccessRequest, orgIDs)
	if err != nil || len(ids) == 0 {
		return map[string][]*gateway.User{}, err
	}
	var rows []*gateway.User
	if err := db.SelectContext(ctx, &rows, usersByOrganizationsSQL, pq.Array(ids)); err != nil {
		return nil, err
	}
	return groupRowsBy(rows, func(u *gateway.User) string { return *u.OrganizationID }), nil
}

// InvitationsByOrganizations returns the pending invitations of each
// organization of orgIDs whose people p may see, in one statement.
func (db *DB) InvitationsByOrganizations(ctx context.Context, p auth.Principal, orgIDs []string) (map[string][]*gateway.Invitation, error) {
	ids, err := db.readableOrgs(ctx, p, auth.RightReadAccessRequest, orgIDs)
	if err != nil || len(ids) == 0 {
		return map[string][]*gateway.Invitation{}, err
	}
	var rows []*gateway.Invitation
	if err := db.SelectContext(ctx, &rows, invitationsByOrganizationsSQL, pq.Array(ids)); err != nil {
		return nil, err
	}
	return groupRowsBy(rows, func(i *gateway.Invitation) string { return i.OrganizationID }), nil
}

// readableOrgs keeps the organizations of ids on which p holds right.
func (db *DB) readableOrgs(ctx context.Context, p auth.Principal, right auth.Right, ids []string) ([]string, error) {
	a, _, err := db.portalActor(ctx, p)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, id := range uuids(ids) {
		if a.Can(right, id) == nil {
			out = append(out, id)
		}
	}
	return out, nil
}
