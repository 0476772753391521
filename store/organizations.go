package store

import (
	"context"

	"github.com/google/uuid"

	"example.com/gateway/gateway"
)

const organizationColumns = `id, name, type, npi, tin, status, in_network, synthetic, created_at`

const insertOrganizationSQL = `
INSERT INTO organizations (id, name, type, npi, tin, status, in_network, synthetic)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
RETURNING ` + organizationColumns

// CreateOrganization inserts o with a new random id (o.ID is ignored);
// status defaults to SANDBOX. Returns CONFLICT when the NPI is registered.
func (db *DB) CreateOrganization(ctx context.Context, o gateway.Organization) (gateway.Organization, error) {
	if o.Status == "" {
		o.Status = gateway.OrgStatusSandbox
	}
	var out gateway.Organization
	err := db.GetContext(ctx, &out, insertOrganizationSQL, uuid.New(), o.Name, o.Type, o.NPI, o.TIN, o.Status, o.InNetwork, o.Synthetic)
	if isUniqueViolation(err, "organizations_npi_key") {
		return out, gateway.Errorf(gateway.CodeConflict, "an organization with NPI %s is already registered", o.NPI)
	}
	return out, err
}

const organizationByIDSQL = `SELECT ` + organizationColumns + ` FROM organizations WHERE id = $1`

// OrganizationByID returns the organization; NOT_FOUND when there is none.
func (db *DB) OrganizationByID(ctx context.Context, id string) (gateway.Organization, error) {
	if _, err := uuid.Parse(id); err != nil {
		return gateway.Organization{}, gateway.ErrNotFound
	}
	var o gateway.Organization
	err := db.GetContext(ctx, &o, organizationByIDSQL, id)
	return o, notFound(err)
}

const setOrganizationInNetworkSQL = `UPDATE organizations SET in_network = $2 WHERE id = $1`

// SetOrganizationInNetwork sets whether the organization is in the payer's
// network (Provider Access serves in-network providers only). Returns
// NOT_FOUND for an unknown organization.
func (db *DB) SetOrganizationInNetwork(ctx context.Context, id string, inNetwork bool) error {
	if _, err := uuid.Parse(id); err != nil {
		return gateway.ErrNotFound
	}
	res, err := db.ExecContext(ctx, setOrganizationInNetworkSQL, id, inNetwork)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return gateway.ErrNotFound
	}
	return nil
}
