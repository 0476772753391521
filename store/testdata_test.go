package store_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"

	"example.com/gateway/auth"
	"example.com/gateway/gateway"
	"example.com/gateway/store"
)

// Small fixtures for the member-data reads, inserted with plain SQL.

var readsToday = time.Date(2025, 6, 15, 12, 0, 0, 0, time.UTC)

func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

type fixtures struct {
	t  testing.TB
	db *store.DB
}

func (f fixtures) exec(q string, args ...any) {
	f.t.Helper()
	if _, err := f.db.ExecContext(context.Background(), q, args...); err != nil {
		f.t.Fatalf("%v\n%s", err, q)
	}
}

func (f fixtures) org(npi string) string {
	id := newUUID()
	f.exec(`INSERT INTO organizations (id, name, type, npi, tin, in_network) VALUES ($1, 'Org', 'PROVIDER_HEALTH_SYSTEM', $2, '123456789', true)`, id, npi)
	return id
}

// member inserts a member attributed (ACTIVE) to org, or to nobody for "".
func (f fixtures) member(identifier, org string) string {
	id := newUUID()
	f.exec(`INSERT INTO members (id, member_identifier, given_name, family_name) VALUES ($1, $2, 'Given', 'Family')`, id, identifier)
	if org != "" {
		f.exec(`INSERT INTO attributions (id, member_id, organization_id, period_start, source) VALUES ($1, $2, $3, '2025-01-01', 'PAYER')`, newUUID(), id, org)
	}
	return id
}

func (f fixtures) claim(member, identifier, serviceStart string, sensitive bool) string {
	id := newUUID()
	f.exec(`INSERT INTO claims (id, member_id, identifier, type, service_start, created, sensitive, total_paid)
	        VALUES ($1, $2, $3, 'PROFESSIONAL', $4, $4, $5, 10.50)`, id, member, identifier, serviceStart, sensitive)
	f.exec(`INSERT INTO claim_lines (claim_id, sequence, product_code, product_system, paid) VALUES ($1, 1, '99213', 'cpt', 5.25)`, id)
	return id
}

func (f fixtures) priorAuth(member, identifier string, drug bool) string {
	id := newUUID()
	f.exec(`INSERT INTO prior_authorizations (id, member_id, identifier, status, drug, requested_on, last_status_change)
	        VALUES ($1, $2, $3, 'APPROVED', $4, '2025-03-01', '2025-03-02')`, id, member, identifier, drug)
	f.exec(`INSERT INTO prior_authorization_items (prior_authorization_id, sequence, product_code, product_system, submitted)
	        VALUES ($1, 1, 'J1234', 'hcpcs', 99.00)`, id)
	return id
}

func providerOf(org string) auth.Principal {
	return auth.ClientPrincipal(gateway.APIClient{ID: "client", OrganizationID: org,
		Environment: gateway.EnvProduction, AccessType: gateway.ProviderAccess}, auth.Scopes{All: true})
}

func operatorPrincipal() auth.Principal {
	return auth.PersonPrincipal(gateway.User{ID: newUUID(), Email: "op@example.test"}, true)
}
