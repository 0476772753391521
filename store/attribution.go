package store

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"example.com/gateway/auth"
	"example.com/gateway/gateway"
)

// Attribution set by operators, and the attribution groups organizations
// see (42 CFR 422.121(b)(1): the payer attributes members to providers;
// Da Vinci ATR groups).

// NewAttribution is the input of AttributeMember.
type NewAttribution struct {
	MemberID        string
	OrganizationID  string
	PractitionerNPI string // "" : organization-level
	PeriodStart     gateway.Date
	PeriodEnd       gateway.Date // zero: open-ended
}

// Validate reports every problem of the input at once.
func (in *NewAttribution) Validate() error {
	var fe gateway.FieldErrors
	if in.PractitionerNPI != "" {
		checkNPI(&fe, "input.practitionerNpi", in.PractitionerNPI)
	}
	if in.PeriodStart.IsZero() {
		fe.Add("input.periodStart", "is required")
	}
	if !in.PeriodEnd.IsZero() && in.PeriodEnd.Before(in.PeriodStart) {
		fe.Add("input.periodEnd", "is before periodStart")
	}
	return fe.Err()
}

const attributionColumns = `id, member_id, organization_id, practitioner_id, period_start, period_end,
  source, ended_at, sandbox, created_at, last_updated`

const memberSandboxSQL = `SELECT sandbox FROM members WHERE id = $1 FOR SHARE`

const practitionerByNPISQL = `SELECT id, organization_id FROM practitioners WHERE npi = $1`

const insertAttributionSQL = `
INSERT INTO attributions (id, member_id, organization_id, practitioner_id, period_start, period_end, source, sandbox, recorded_by)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
RETURNING ` + attributionColumns

// AttributeMember attributes a member to a provider organization (and
// optionally one of its practitioners, by NPI) for a period, as an operator
// (source OPERATOR). The attribution belongs to the member's data set
// (sandbox or production). Returns FORBIDDEN for anyone but operators,
// BAD_USER_INPUT for an unknown member, organization or practitioner, an
// organization that cannot have Provider Access clients, or a practitioner
// of another organization.
func (db *DB) AttributeMember(ctx context.Context, p auth.Principal, in NewAttribution, m Mutation) (gateway.Attribution, error) {
	if err := in.Validate(); err != nil {
		return gateway.Attribution{}, err
	}
	id, _, err := mutate(ctx, db, p, m, in, func(t *portalTx) (string, error) {
		if err := t.actor.Can(auth.RightManageAttribution, in.OrganizationID); err != nil {
			return "", err
		}
		var fe gateway.FieldErrors
		var sandbox bool
		err := t.GetContext(ctx, &sandbox, memberSandboxSQL, argUUID(in.MemberID))
		if err := notFound(err); errors.Is(err, gateway.ErrNotFound) {
			fe.Add("input.memberId", "is not a member")
		} else if err != nil {
			return "", err
		}
		org, err := lockOrganization(ctx, t.Tx, in.OrganizationID)
		switch {
		case errors.Is(err, gateway.ErrNotFound):
			fe.Add("input.organizationId", "is not an organization")
		case err != nil:
			return "", err
		case !providerOrganization(org):
			fe.Add("input.organizationId", "is an organization of type %s, which has no Provider Access", org.Type)
		}
		practitioner, err := practitionerOf(ctx, t.Tx, &fe, in.PractitionerNPI, org.ID)
		if err != nil {
			return "", err
		}
		if err := fe.Err(); err != nil {
			return "", err
		}
		var a gateway.Attribution
		err = t.GetContext(ctx, &a, insertAttributionSQL, uuid.New(), in.MemberID, org.ID, practitioner,
			in.PeriodStart, argDate(in.PeriodEnd), gateway.SourceOperator, sandbox, t.recordedBy())
		if err != nil {
			return "", fmt.Errorf("insert attribution: %w", err)
		}
		return a.ID, nil
	})
	if err != nil {
		return gateway.Attribution{}, err
	}
	return db.attributionByID(ctx, db.DB, id, false)
}

// providerOrganization reports whether org may have Provider Access
// clients (DESIGN.md §1), so that attributing members to it means something.
func providerOrganization(org gateway.Organization) bool {
	for _, env := range []gateway.Environment{gateway.EnvSandbox, gateway.EnvProduction} {
		if slices.Contains(auth.AllowedAccessTypes(org.Type, env), gateway.ProviderAccess) {
			return true
		}
	}
	return false
}

// practitionerOf resolves a practitioner NPI ("" : none) to the id of a
// practitioner of the organization (or of none): the organization's NPI
// covers the practitioner lists under it (Da Vinci ATR).
func practitionerOf(ctx context.Context, tx *sqlx.Tx, fe *gateway.FieldErrors, npi, orgID string) (*string, error) {
	if npi == "" {
		return nil, nil
	}
	var pr struct {
		ID    string  `db:"id"`
		OrgID *string `db:"organization_id"`
	}
	err := tx.GetContext(ctx, &pr, practitionerByNPISQL, npi)
	switch err := notFound(err); {
	case errors.Is(err, gateway.ErrNotFound):
		fe.Add("input.practitionerNpi", "is not a known practitioner")
		return nil, nil
	case err != nil:
		return nil, err
	case pr.OrgID != nil && *pr.OrgID != orgID:
		fe.Add("input.practitionerNpi", "is a practitioner of another organization")
		return nil, nil
	}
	return &pr.ID, nil
}

// EndAttributionInput is the input of EndAttribution.
type EndAttributionInput struct {
	AttributionID string
	PeriodEnd     gateway.Date // zero: withdraw it now
}

const lockAttributionSQL = `SELECT ` + attributionColumns + ` FROM attributions WHERE id = $1 FOR UPDATE`

const withdrawAttributionSQL = `UPDATE attributions SET ended_at = now() WHERE id = $1 AND ended_at IS NULL`

const endAttributionPeriodSQL = `UPDATE attributions SET period_end = $2 WHERE id = $1`

// EndAttribution ends an attribution, as an operator: on periodEnd (which
// must not be before its start; an earlier end than the current one only)
// or, without one, withdrawn at once. Access ends with it (DESIGN.md §1
// rule 3). Returns FORBIDDEN for anyone but operators, NOT_FOUND for an
// unknown attribution.
func (db *DB) EndAttribution(ctx context.Context, p auth.Principal, in EndAttributionInput, m Mutation) (gateway.Attribution, error) {
	id, _, err := mutate(ctx, db, p, m, in, func(t *portalTx) (string, error) {
		if err := t.actor.Can(auth.RightManageAttribution, ""); err != nil {
			return "", err
		}
		a, err := db.attributionByID(ctx, t.Tx, in.AttributionID, true)
		if err != nil {
			return "", err
		}
		if in.PeriodEnd.IsZero() {
			_, err = t.ExecContext(ctx, withdrawAttributionSQL, a.ID)
			return a.ID, err
		}
		switch {
		case in.PeriodEnd.Before(a.PeriodStart):
			return "", &gateway.Error{Code: gateway.CodeInvalid, Path: "input.periodEnd", Message: "input.periodEnd is before the attribution's start"}
		case !a.PeriodEnd.IsZero() && a.PeriodEnd.Before(in.PeriodEnd):
			return "", &gateway.Error{Code: gateway.CodeInvalid, Path: "input.periodEnd", Message: "input.periodEnd is after the attribution's end"}
		}
		_, err = t.ExecContext(ctx, endAttributionPeriodSQL, a.ID, in.PeriodEnd)
		return a.ID, err
	})
	if err != nil {
		return gateway.Attribution{}, err
	}
	return db.attributionByID(ctx, db.DB, id, false)
}

const attributionByIDSQL = `SELECT ` + attributionColumns + ` FROM attributions WHERE id = $1`

func (db *DB) attributionByID(ctx context.Context, q sqlx.QueryerContext, id string, lock bool) (gateway.Attribution, error) {
	var a gateway.Attribution
	if !isUUID(id) {
		return a, gateway.ErrNotFound
	}
	query := attributionByIDSQL
	if lock {
		query = lockAttributionSQL
	}
	err := sqlx.GetContext(ctx, q, &a, query, id)
	return a, notFound(err)
}

// AttributionGroups returns the attribution groups p may see, one per
// organization and environment, each with the count of members that the
// organization's Provider Access clients may read now (attributed ACTIVE or
// UPCOMING, not opted out, in-network for production): a Provider Access
// client its own group; a person their organization's groups; an operator
// those of orgID. Opted-out members are counted nowhere (DESIGN.md §1
// rule 7). Returns NOT_FOUND for another organization.
func (db *DB) AttributionGroups(ctx context.Context, p auth.Principal, orgID string) ([]gateway.AttributionGroup, error) {
	a, _, err := db.portalActor(ctx, p)
	if err != nil {
		return nil, err
	}
	envs := []gateway.Environment{gateway.EnvSandbox, gateway.EnvProduction}
	switch {
	case p.IsClient():
		if p.AccessType() != gateway.ProviderAccess {
			return []gateway.AttributionGroup{}, nil
		}
		if orgID != "" && orgID != p.OrgID() {
			return nil, gateway.ErrNotFound
		}
		orgID, envs = p.OrgID(), []gateway.Environment{p.Environment()}
	case orgID == "" && !a.IsOperator():
		orgID = a.OrgID()
	case orgID == "":
		return nil, &gateway.Error{Code: gateway.CodeInvalid, Path: "organizationId", Message: "organizationId is required for operators"}
	}
	if err := a.Can(auth.RightReadAttributionGroups, orgID); err != nil {
		return nil, err
	}
	org, err := db.OrganizationByID(ctx, orgID)
	if err != nil {
		return nil, err
	}
	out := []gateway.AttributionGroup{}
	for _, env := range envs {
		scope, ok := auth.GroupScope(org, env, db.today(), db.UpcomingDays)
		if !ok {
			continue
		}
		g := gateway.AttributionGroup{ID: gateway.AttributionGroupID(org.ID, env), OrganizationID: org.ID, Environment: env}
		err := db.AttributionGroup(ctx, scope, false, 0, func(s GroupSummary) error {
			g.MemberCount, g.LastUpdated = s.Members, s.LastUpdated
			return nil
		}, nil)
		if err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	return out, nil
}
