package gateway

import (
	"encoding/json"
	"time"
)

// OrganizationType is what kind of organization registered; it decides which
// client access types the organization may create (DESIGN.md §1).
type OrganizationType string

const (
	OrgProviderHealthSystem        OrganizationType = "PROVIDER_HEALTH_SYSTEM"
	OrgAccountableCareOrganization OrganizationType = "ACCOUNTABLE_CARE_ORGANIZATION"
	OrgConsumerApplication         OrganizationType = "CONSUMER_APPLICATION"
	OrgPayer                       OrganizationType = "PAYER"
	OrgServiceProviderOther        OrganizationType = "SERVICE_PROVIDER_OTHER"
	OrgEHRSoftware                 OrganizationType = "EHR_SOFTWARE"
)

// OrganizationStatus is where an organization stands in onboarding.
type OrganizationStatus string

const (
	OrgStatusSandbox       OrganizationStatus = "SANDBOX"
	OrgStatusPendingReview OrganizationStatus = "PENDING_REVIEW"
	OrgStatusProduction    OrganizationStatus = "PRODUCTION"
)

// Organization is a provider organization, application vendor or other
// party known to the payer. Synthetic organizations exist only in the
// sandbox data set.
type Organization struct {
	ID        string             `db:"id"`
	Name      string             `db:"name"`
	Type      OrganizationType   `db:"type"`
	NPI       string             `db:"npi"`
	TIN       string             `db:"tin"`
	Status    OrganizationStatus `db:"status"`
	InNetwork bool               `db:"in_network"`
	Synthetic bool               `db:"synthetic"`
	CreatedAt time.Time          `db:"created_at"`
	// LastUpdated moves when the organization's content changes.
	LastUpdated time.Time `db:"last_updated"`
}

// Environment separates the synthetic sandbox from production data.
type Environment string

const (
	EnvSandbox    Environment = "SANDBOX"
	EnvProduction Environment = "PRODUCTION"
)

// AccessType is fixed when a client is created and decides its data policy.
type AccessType string

const (
	ProviderAccess AccessType = "PROVIDER_ACCESS"
	PatientAccess  AccessType = "PATIENT_ACCESS"
)

// ClientStatus is ACTIVE until the client is revoked.
type ClientStatus string

const (
	ClientActive  ClientStatus = "ACTIVE"
	ClientRevoked ClientStatus = "REVOKED"
)

// APIClient is an OAuth2 confidential client of one organization.
type APIClient struct {
	ID             string          `db:"id"`
	OrganizationID string          `db:"organization_id"`
	Name           string          `db:"name"`
	Description    string          `db:"description"`
	Environment    Environment     `db:"environment"`
	AccessType     AccessType      `db:"access_type"`
	Status         ClientStatus    `db:"status"`
	BoundMemberID  *string         `db:"bound_member_id"`
	JWKS           json.RawMessage `db:"jwks"`
	JWKSURL        string          `db:"jwks_url"`
	CreatedAt      time.Time       `db:"created_at"`
	RevokedAt      *time.Time      `db:"revoked_at"`
	LastUsedAt     *time.Time      `db:"last_used_at"`
}

// UserRole is a person's role in their organization.
type UserRole string

const (
	RoleAdmin UserRole = "ADMIN"
	RoleUser  UserRole = "USER"
)

// User is a person who signed in through OpenID Connect.
type User struct {
	ID             string    `db:"id"`
	Issuer         string    `db:"issuer"`
	Subject        string    `db:"subject"`
	Email          string    `db:"email"`
	Name           string    `db:"name"`
	OrganizationID *string   `db:"organization_id"`
	Role           UserRole  `db:"role"`
	CreatedAt      time.Time `db:"created_at"`
}

// Practitioner is an individual provider (type-1 NPI).
type Practitioner struct {
	ID             string    `db:"id"`
	NPI            string    `db:"npi"`
	GivenName      string    `db:"given_name"`
	FamilyName     string    `db:"family_name"`
	SpecialtyCode  string    `db:"specialty_code"`
	SpecialtyName  string    `db:"specialty_display"`
	OrganizationID *string   `db:"organization_id"`
	Sandbox        bool      `db:"sandbox"`
	LastUpdated    time.Time `db:"last_updated"`
}
