package gateway

import "time"

// ClaimType follows the CARIN BB EOB profiles.
type ClaimType string

const (
	ClaimInpatient    ClaimType = "INSTITUTIONAL_INPATIENT"
	ClaimOutpatient   ClaimType = "INSTITUTIONAL_OUTPATIENT"
	ClaimProfessional ClaimType = "PROFESSIONAL"
	ClaimOral         ClaimType = "ORAL"
	ClaimPharmacy     ClaimType = "PHARMACY"
)

// ClaimStatus is the FHIR ExplanationOfBenefit.status of a claim.
type ClaimStatus string

const (
	ClaimActive         ClaimStatus = "ACTIVE"
	ClaimCancelled      ClaimStatus = "CANCELLED"
	ClaimEnteredInError ClaimStatus = "ENTERED_IN_ERROR"
)

// Claim is an adjudicated claim. Its monetary fields are withheld from
// Provider Access by the policy (auth.MoneyFields), never fetched for display.
type Claim struct {
	ID                      string      `db:"id"`
	MemberID                string      `db:"member_id"`
	Identifier              string      `db:"identifier"`
	Type                    ClaimType   `db:"type"`
	Status                  ClaimStatus `db:"status"`
	Outcome                 string      `db:"outcome"` // FHIR: complete, partial, queued, error
	ServiceStart            Date        `db:"service_start"`
	ServiceEnd              Date        `db:"service_end"`
	Created                 Date        `db:"created"`
	Processed               Date        `db:"processed"`
	CoverageID              *string     `db:"coverage_id"`
	BillingOrganizationID   *string     `db:"billing_organization_id"`
	RenderingPractitionerID *string     `db:"rendering_practitioner_id"`
	FacilityName            string      `db:"facility_name"`
	PlaceOfService          string      `db:"place_of_service"`
	TypeOfBill              string      `db:"type_of_bill"`
	DRG                     string      `db:"drg"`
	InNetwork               bool        `db:"in_network"`
	Sensitive               bool        `db:"sensitive"`
	LastUpdated             time.Time   `db:"last_updated"`

	// Money (DESIGN.md §1 rule 2): never for Provider Access.
	TotalSubmitted  *Money `db:"total_submitted"`
	TotalAllowed    *Money `db:"total_allowed"`
	TotalPaid       *Money `db:"total_paid"`
	PaymentAmount   *Money `db:"payment_amount"`
	PaymentDate     Date   `db:"payment_date"`
	PaymentAdjust   *Money `db:"payment_adjustment"`
	Copay           *Money `db:"copay"`
	Coinsurance     *Money `db:"coinsurance"`
	Deductible      *Money `db:"deductible"`
	NonCovered      *Money `db:"noncovered"`
	MemberLiability *Money `db:"member_liability"`
}

// ClaimLine is one service line of a claim.
type ClaimLine struct {
	ClaimID        string   `db:"claim_id"`
	Sequence       int      `db:"sequence"`
	ServiceDate    Date     `db:"service_date"`
	ProductCode    string   `db:"product_code"`
	ProductSystem  string   `db:"product_system"`
	ProductDisplay string   `db:"product_display"`
	Modifiers      []string `db:"-"`
	Quantity       float64  `db:"quantity"`
	RevenueCode    string   `db:"revenue_code"`
	PlaceOfService string   `db:"place_of_service"`
	DenialReason   string   `db:"denial_reason"`

	Submitted       *Money `db:"submitted"`
	Allowed         *Money `db:"allowed"`
	Paid            *Money `db:"paid"`
	Copay           *Money `db:"copay"`
	Coinsurance     *Money `db:"coinsurance"`
	Deductible      *Money `db:"deductible"`
	MemberLiability *Money `db:"member_liability"`
}

// ClaimDiagnosis is a diagnosis on a claim (ICD-10-CM).
type ClaimDiagnosis struct {
	ClaimID            string `db:"claim_id"`
	Sequence           int    `db:"sequence"`
	Code               string `db:"code"`
	System             string `db:"system"`
	Display            string `db:"display"`
	Type               string `db:"type"` // principal, secondary, admitting, …
	PresentOnAdmission string `db:"present_on_admission"`
}

// ClaimProcedure is a procedure on a claim (ICD-10-PCS or CPT).
type ClaimProcedure struct {
	ClaimID  string `db:"claim_id"`
	Sequence int    `db:"sequence"`
	Code     string `db:"code"`
	System   string `db:"system"`
	Display  string `db:"display"`
	Date     Date   `db:"performed_on"`
}

// Encounter is a US Core encounter.
type Encounter struct {
	ID             string     `db:"id"`
	MemberID       string     `db:"member_id"`
	Identifier     string     `db:"identifier"`
	Status         string     `db:"status"` // FHIR: planned, in-progress, finished, cancelled, …
	Class          string     `db:"class"`  // v3 ActCode: AMB, IMP, EMER, VR, HH
	TypeCode       string     `db:"type_code"`
	TypeDisplay    string     `db:"type_display"`
	PeriodStart    time.Time  `db:"period_start"`
	PeriodEnd      *time.Time `db:"period_end"`
	PractitionerID *string    `db:"practitioner_id"`
	OrganizationID *string    `db:"organization_id"`
	ReasonCode     string     `db:"reason_code"`
	ReasonDisplay  string     `db:"reason_display"`
	Sensitive      bool       `db:"sensitive"`
	LastUpdated    time.Time  `db:"last_updated"`
}

// PriorAuthorizationStatus is the decision state of a prior authorization.
type PriorAuthorizationStatus string

const (
	PAPending           PriorAuthorizationStatus = "PENDING"
	PAApproved          PriorAuthorizationStatus = "APPROVED"
	PAPartiallyApproved PriorAuthorizationStatus = "PARTIALLY_APPROVED"
	PADenied            PriorAuthorizationStatus = "DENIED"
	PACancelled         PriorAuthorizationStatus = "CANCELLED"
)

// PriorAuthorization is a prior authorization request and its decision
// (PDex Prior Authorization, §pdex-395).
type PriorAuthorization struct {
	ID                       string                   `db:"id"`
	MemberID                 string                   `db:"member_id"`
	Identifier               string                   `db:"identifier"`
	Status                   PriorAuthorizationStatus `db:"status"`
	Drug                     bool                     `db:"drug"`
	ServiceCategory          string                   `db:"service_category"`
	RequestedOn              Date                     `db:"requested_on"`
	DecidedOn                Date                     `db:"decided_on"`
	AuthorizedStart          Date                     `db:"authorized_start"`
	AuthorizedEnd            Date                     `db:"authorized_end"`
	LastStatusChange         time.Time                `db:"last_status_change"`
	RequestingPractitionerID *string                  `db:"requesting_practitioner_id"`
	OrganizationID           *string                  `db:"organization_id"`
	DenialReasonCode         string                   `db:"denial_reason_code"`
	DenialReason             string                   `db:"denial_reason"`
	Sensitive                bool                     `db:"sensitive"`
	LastUpdated              time.Time                `db:"last_updated"`
}

// PriorAuthorizationItem is one requested item or service.
type PriorAuthorizationItem struct {
	PriorAuthorizationID string  `db:"prior_authorization_id"`
	Sequence             int     `db:"sequence"`
	ProductCode          string  `db:"product_code"`
	ProductSystem        string  `db:"product_system"`
	ProductDisplay       string  `db:"product_display"`
	QuantityRequested    float64 `db:"quantity_requested"`
	QuantityApproved     float64 `db:"quantity_approved"` // allowedunits
	QuantityUsed         float64 `db:"quantity_used"`     // consumedunits
	Status               string  `db:"status"`
	DenialReason         string  `db:"denial_reason"`
	Submitted            *Money  `db:"submitted"`
}
