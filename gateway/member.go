package gateway

import (
	"encoding/json"
	"log/slog"
	"time"
)

// Gender is the administrative gender of a member (FHIR AdministrativeGender).
type Gender string

const (
	GenderMale    Gender = "MALE"
	GenderFemale  Gender = "FEMALE"
	GenderOther   Gender = "OTHER"
	GenderUnknown Gender = "UNKNOWN"
)

// Member is an enrollee of the health plan.
type Member struct {
	ID          string    `db:"id"`
	Identifier  string    `db:"member_identifier"` // the payer's member id (v2-0203 MB)
	GivenName   string    `db:"given_name"`
	FamilyName  string    `db:"family_name"`
	BirthDate   Date      `db:"birth_date"`
	Gender      Gender    `db:"gender"`
	AddressLine string    `db:"address_line"`
	City        string    `db:"city"`
	State       string    `db:"state"`
	PostalCode  string    `db:"postal_code"`
	Phone       string    `db:"phone"`
	Sandbox     bool      `db:"sandbox"`
	LastUpdated time.Time `db:"last_updated"`
}

// LogValue keeps PHI out of logs: a member logs as its surrogate key only.
func (m Member) LogValue() slog.Value { return slog.StringValue(m.ID) }

// Coverage is a member's enrollment in a plan.
type Coverage struct {
	ID           string    `db:"id"`
	MemberID     string    `db:"member_id"`
	Identifier   string    `db:"identifier"`
	Status       string    `db:"status"` // FHIR Coverage.status: active, cancelled, draft, entered-in-error
	TypeCode     string    `db:"type_code"`
	TypeDisplay  string    `db:"type_display"`
	PlanName     string    `db:"plan_name"`
	GroupNumber  string    `db:"group_number"`
	Relationship string    `db:"relationship"`
	PayerName    string    `db:"payer_name"`
	PeriodStart  Date      `db:"period_start"`
	PeriodEnd    Date      `db:"period_end"`
	LastUpdated  time.Time `db:"last_updated"`
}

// AttributionStatus is an attribution's state relative to today (DESIGN.md §1
// rule 3). Only ACTIVE and UPCOMING grant access.
type AttributionStatus string

const (
	AttributionActive   AttributionStatus = "ACTIVE"
	AttributionUpcoming AttributionStatus = "UPCOMING"
	AttributionEnded    AttributionStatus = "ENDED"
	AttributionFuture   AttributionStatus = "FUTURE" // starts after the upcoming window
)

// AttributionSource says where an attribution came from.
type AttributionSource string

const (
	SourcePayer    AttributionSource = "PAYER"
	SourceOperator AttributionSource = "OPERATOR"
	SourceRoster   AttributionSource = "ROSTER"
	SourceSandbox  AttributionSource = "SANDBOX"
)

// Attribution links a member to a provider organization (and optionally one
// of its practitioners) for a period.
type Attribution struct {
	ID             string            `db:"id"`
	MemberID       string            `db:"member_id"`
	OrganizationID string            `db:"organization_id"`
	PractitionerID *string           `db:"practitioner_id"`
	PeriodStart    Date              `db:"period_start"`
	PeriodEnd      Date              `db:"period_end"` // zero: open-ended
	Source         AttributionSource `db:"source"`
	EndedAt        *time.Time        `db:"ended_at"`
	Sandbox        bool              `db:"sandbox"`
	CreatedAt      time.Time         `db:"created_at"`
	LastUpdated    time.Time         `db:"last_updated"`
}

// OptOutRequester is who asked for an opt-out or opt-in (42 CFR 422.121(a)(4)).
type OptOutRequester string

const (
	RequestedByMember                 OptOutRequester = "MEMBER"
	RequestedByPersonalRepresentative OptOutRequester = "PERSONAL_REPRESENTATIVE"
)

// ClinicalType is the FHIR resource type of a stored clinical resource.
type ClinicalType string

const (
	ClinicalCondition    ClinicalType = "Condition"
	ClinicalObservation  ClinicalType = "Observation"
	ClinicalMedication   ClinicalType = "MedicationRequest"
	ClinicalImmunization ClinicalType = "Immunization"
	ClinicalAllergy      ClinicalType = "AllergyIntolerance"
	ClinicalProcedure    ClinicalType = "Procedure"
)

// ClinicalResource is a US Core clinical resource kept as FHIR R4 JSON, with
// the columns the policy and the API filter on.
type ClinicalResource struct {
	ID            string          `db:"id"`
	MemberID      string          `db:"member_id"`
	ResourceType  ClinicalType    `db:"resource_type"`
	SourceID      string          `db:"source_id"`
	Code          string          `db:"code"`
	CodeSystem    string          `db:"code_system"`
	Display       string          `db:"display"`
	Status        string          `db:"status"`
	DateOfService Date            `db:"date_of_service"`
	Resource      json.RawMessage `db:"resource"`
	Sensitive     bool            `db:"sensitive"`
	LastUpdated   time.Time       `db:"last_updated"`
}
