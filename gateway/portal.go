package gateway

import (
	"database/sql/driver"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// The developer portal's vocabulary (DESIGN.md §2): production access
// requests and their review, invitations, rosters, opt-out history, the
// email outbox and educational material.

// AccessRequestStatus is where a production access request stands.
type AccessRequestStatus string

const (
	AccessRequestDraft            AccessRequestStatus = "DRAFT"
	AccessRequestPendingReview    AccessRequestStatus = "PENDING_REVIEW"
	AccessRequestChangesRequested AccessRequestStatus = "CHANGES_REQUESTED"
	AccessRequestApproved         AccessRequestStatus = "APPROVED"
	AccessRequestRejected         AccessRequestStatus = "REJECTED"
)

// Editable reports whether the organization may still change a request in
// status s (save stages, submit): a draft, a returned and a rejected
// request may be edited and (re)submitted.
func (s AccessRequestStatus) Editable() bool {
	return s == AccessRequestDraft || s == AccessRequestChangesRequested || s == AccessRequestRejected
}

// ReviewDecision is an operator's decision on a request under review.
type ReviewDecision string

const (
	DecisionApprove        ReviewDecision = "APPROVE"
	DecisionReject         ReviewDecision = "REJECT"
	DecisionRequestChanges ReviewDecision = "REQUEST_CHANGES"
)

// Valid reports whether d is one of the three decisions.
func (d ReviewDecision) Valid() bool {
	return d == DecisionApprove || d == DecisionReject || d == DecisionRequestChanges
}

// AccessRequestEvent is what moves a request from one status to the next.
type AccessRequestEvent string

const (
	EventSubmit         AccessRequestEvent = "SUBMIT"
	EventApprove        AccessRequestEvent = "APPROVE"
	EventReject         AccessRequestEvent = "REJECT"
	EventRequestChanges AccessRequestEvent = "REQUEST_CHANGES"
)

// Event returns the event of decision d.
func (d ReviewDecision) Event() AccessRequestEvent { return AccessRequestEvent(d) }

// Next is the request lifecycle (DESIGN.md §2 steps 3–4): a draft, a
// returned or a rejected request may be submitted; a request under review
// may be approved, rejected or returned for changes; nothing leaves
// APPROVED. ok is false for any other move (approving twice, say).
func (s AccessRequestStatus) Next(e AccessRequestEvent) (next AccessRequestStatus, ok bool) {
	switch {
	case e == EventSubmit && s.Editable():
		return AccessRequestPendingReview, true
	case s != AccessRequestPendingReview:
		return "", false
	case e == EventApprove:
		return AccessRequestApproved, true
	case e == EventReject:
		return AccessRequestRejected, true
	case e == EventRequestChanges:
		return AccessRequestChangesRequested, true
	}
	return "", false
}

// AccessRequest is an organization's request for production access: its
// stages, saved as a resumable draft and validated as a whole on
// submission, and where it stands.
type AccessRequest struct {
	ID             string              `db:"id"`
	OrganizationID string              `db:"organization_id"`
	Status         AccessRequestStatus `db:"status"`
	Stages         AccessRequestStages `db:"stages"`
	CreatedBy      *string             `db:"created_by"`
	CreatedAt      time.Time           `db:"created_at"`
	SubmittedAt    *time.Time          `db:"submitted_at"`
	DecidedAt      *time.Time          `db:"decided_at"`
	LastUpdated    time.Time           `db:"last_updated"`
}

// AccessRequestStages are the four stages of the request form. A stage
// that was never saved is nil.
type AccessRequestStages struct {
	Organization *OrganizationStage `json:"organization,omitempty"`
	Contacts     *ContactsStage     `json:"contacts,omitempty"`
	Usage        *UsageStage        `json:"usage,omitempty"`
	Attestation  *AttestationStage  `json:"attestation,omitempty"`
}

// Scan implements sql.Scanner for the jsonb column.
func (s *AccessRequestStages) Scan(src any) error {
	switch v := src.(type) {
	case []byte:
		return json.Unmarshal(v, s)
	case string:
		return json.Unmarshal([]byte(v), s)
	case nil:
		*s = AccessRequestStages{}
		return nil
	}
	return fmt.Errorf("gateway.AccessRequestStages: cannot scan %T", src)
}

// Value implements driver.Valuer (as text: lib/pq would send bytes as bytea).
func (s AccessRequestStages) Value() (driver.Value, error) {
	b, err := json.Marshal(s)
	return string(b), err
}

// OrganizationStage is the organization details stage: who is asking.
type OrganizationStage struct {
	LegalName string           `json:"legalName"`
	Type      OrganizationType `json:"type"`
	NPI       string           `json:"npi"` // the organization (type 2) NPI
	TIN       string           `json:"tin"` // nine digits
	Address   *Address         `json:"address,omitempty"`
}

// Address is a US postal address.
type Address struct {
	Line1      string `json:"line1"`
	Line2      string `json:"line2,omitempty"`
	City       string `json:"city"`
	State      string `json:"state"`      // two-letter USPS code
	PostalCode string `json:"postalCode"` // ZIP or ZIP+4
}

// ContactsStage names the people the payer deals with.
type ContactsStage struct {
	Technical *Contact `json:"technical,omitempty"`
	Security  *Contact `json:"security,omitempty"`
	Legal     *Contact `json:"legal,omitempty"`
}

// Contact is one contact person.
type Contact struct {
	Name  string `json:"name"`
	Email string `json:"email"`
	Phone string `json:"phone"`
}

// UsageStage is the intended use and data scope.
type UsageStage struct {
	IntendedUse string `json:"intendedUse"`
	// ResourceTypes are the FHIR resource types the organization will read.
	ResourceTypes   []string `json:"resourceTypes"`
	ExpectedMembers *int     `json:"expectedMembers,omitempty"`
	// TreatmentRelationship says how the organization establishes that it
	// treats the members it asks about (42 CFR 422.121(b)(1): attribution).
	TreatmentRelationship string `json:"treatmentRelationship"`
}

// AttestationStage is the organization's attestation.
type AttestationStage struct {
	HIPAACompliance bool   `json:"hipaaCompliance"` // a HIPAA covered entity or business associate
	TermsAccepted   bool   `json:"termsAccepted"`
	SignerName      string `json:"signerName"`
	SignerTitle     string `json:"signerTitle"`
}

// AccessRequestTransition is one step of a request's history: who moved it
// from which status to which, when and why. A submission keeps the stages
// as submitted, so a decision can be read against what the reviewer saw.
type AccessRequestTransition struct {
	ID              string               `db:"id"`
	AccessRequestID string               `db:"access_request_id"`
	FromStatus      *AccessRequestStatus `db:"from_status"`
	ToStatus        AccessRequestStatus  `db:"to_status"`
	ActorUserID     *string              `db:"actor_user_id"`
	ActorEmail      string               `db:"actor_email"`
	Reason          string               `db:"reason"`
	At              time.Time            `db:"at"`
}

// Invitation asks a person, by email, to join an organization. It is
// accepted when that person signs in with the email verified.
type Invitation struct {
	ID             string     `db:"id"`
	OrganizationID string     `db:"organization_id"`
	Email          string     `db:"email"`
	Role           UserRole   `db:"role"`
	InvitedBy      string     `db:"invited_by"`
	CreatedAt      time.Time  `db:"created_at"`
	AcceptedAt     *time.Time `db:"accepted_at"`
}

// NextStep is something the signed-in person may do next in the portal.
type NextStep string

const (
	StepRegisterOrganization   NextStep = "REGISTER_ORGANIZATION"
	StepCreateSandboxClient    NextStep = "CREATE_SANDBOX_CLIENT"
	StepCompleteAccessRequest  NextStep = "COMPLETE_ACCESS_REQUEST"
	StepSubmitAccessRequest    NextStep = "SUBMIT_ACCESS_REQUEST"
	StepAwaitReview            NextStep = "AWAIT_REVIEW"
	StepReviseAccessRequest    NextStep = "REVISE_ACCESS_REQUEST"
	StepCreateProductionClient NextStep = "CREATE_PRODUCTION_CLIENT"
	StepInviteUsers            NextStep = "INVITE_USERS"
	StepReviewAccessRequests   NextStep = "REVIEW_ACCESS_REQUESTS"
	StepAskAdmin               NextStep = "ASK_ADMIN" // an org user whose next step is an admin's
)

// Client is an API client as the portal shows it: with its recent use and
// whether it has a live secret (never the secret).
type Client struct {
	APIClient
	TokensIssuedLast24h int  `db:"tokens_issued_last_24h"`
	HasSecret           bool `db:"has_secret"`
}

// RosterRowStatus is where a roster row stands.
type RosterRowStatus string

const (
	RosterPending   RosterRowStatus = "PENDING"   // matched; awaiting the payer's confirmation
	RosterUnmatched RosterRowStatus = "UNMATCHED" // see Reason
	RosterConfirmed RosterRowStatus = "CONFIRMED" // the member is attributed
	RosterRejected  RosterRowStatus = "REJECTED"  // the payer declined the match
)

// RosterMatchMethod is how a roster row was matched to a member.
type RosterMatchMethod string

const (
	MatchIdentifier   RosterMatchMethod = "IDENTIFIER"   // the member identifier, exactly
	MatchDemographics RosterMatchMethod = "DEMOGRAPHICS" // name, birth date and gender
)

// Reasons a roster row is unmatched. They describe the row itself, never
// another member: "no match" also covers several members matching.
const (
	RosterReasonMissingFields = "MISSING_FIELDS" // neither an identifier nor name, birth date and gender
	RosterReasonInvalidValue  = "INVALID_VALUE"  // a value that cannot be read
	RosterReasonNoMatch       = "NO_MATCH"       // no single member matches what the row gives
	RosterReasonDuplicateRow  = "DUPLICATE_ROW"  // an earlier row of the roster names the same member
)

// Roster is a provider's list of the members it treats, submitted for the
// payer's matching and confirmation (42 CFR 422.121(b)(1): attribution).
type Roster struct {
	ID             string      `db:"id"`
	OrganizationID string      `db:"organization_id"`
	Environment    Environment `db:"environment"`
	SubmittedBy    string      `db:"submitted_by"`
	SubmittedAt    time.Time   `db:"submitted_at"`
	PeriodStart    Date        `db:"period_start"`
	PeriodEnd      Date        `db:"period_end"`
	Rows           []RosterRow `db:"-"` // in order
}

// RosterRow is one row of a roster and its match. MatchedMemberID and
// DemographicsAgree are for operators only.
type RosterRow struct {
	ID                string             `db:"id"`
	RosterID          string             `db:"roster_id"`
	RowNumber         int                `db:"row_number"`
	MemberIdentifier  string             `db:"member_identifier"`
	GivenName         string             `db:"given_name"`
	FamilyName        string             `db:"family_name"`
	BirthDate         Date               `db:"birth_date"`
	Gender            *Gender            `db:"gender"` // nil: not given
	PeriodStart       Date               `db:"period_start"`
	PeriodEnd         Date               `db:"period_end"`
	MatchedMemberID   *string            `db:"matched_member_id"`
	MatchMethod       *RosterMatchMethod `db:"match_method"` // nil: unmatched
	DemographicsAgree *bool              `db:"demographics_agree"`
	Status            RosterRowStatus    `db:"status"`
	Reason            string             `db:"reason"`
	AttributionID     *string            `db:"attribution_id"`
	DecidedBy         string             `db:"decided_by"`
	DecidedAt         *time.Time         `db:"decided_at"`
}

// ProviderAccessOptOut is a member's current opt-out state and its
// history, newest first.
type ProviderAccessOptOut struct {
	MemberID string
	OptedOut bool
	Since    *time.Time // when the current opt-out began; nil while sharing
	History  []OptOutEvent
}

// OptOutEvent is one opt-out or opt-back-in request of a member (42 CFR
// 422.121(a)(4)): the history is kept, the current state is the last event.
type OptOutEvent struct {
	ID                 string          `db:"id"`
	MemberID           string          `db:"member_id"`
	OptedOut           bool            `db:"opted_out"`
	RequestedBy        OptOutRequester `db:"requested_by"`
	RepresentativeName string          `db:"representative_name"`
	EffectiveDate      Date            `db:"effective_date"`
	RecordedBy         string          `db:"recorded_by"`
	RecordedAt         time.Time       `db:"recorded_at"`
}

// OutboxMessage is an email queued for delivery (delivered when SMTP_URL is
// set; operators read the outbox either way).
type OutboxMessage struct {
	ID        string     `db:"id"`
	To        string     `db:"to_address"`
	Subject   string     `db:"subject"`
	Body      string     `db:"body"`
	CreatedAt time.Time  `db:"created_at"`
	SentAt    *time.Time `db:"sent_at"`
	Attempts  int        `db:"attempts"`
	LastError string     `db:"last_error"`
}

// Audience is who educational material is written for.
type Audience string

const (
	AudienceMember   Audience = "MEMBER"
	AudienceProvider Audience = "PROVIDER"
)

// EducationalMaterial is plain-language material about Provider Access:
// for members, what is shared, with whom, and how to opt out and back in
// (42 CFR 422.121(a)(4)(ii)); for providers, how to request data and how
// attribution works (42 CFR 422.121(a)(5)). It is data, not code.
type EducationalMaterial struct {
	ID        string    `db:"id"`
	Audience  Audience  `db:"audience"`
	Language  string    `db:"language"` // BCP 47: en, es
	Title     string    `db:"title"`
	Body      string    `db:"body"` // Markdown
	Citation  string    `db:"citation"`
	UpdatedAt time.Time `db:"updated_at"`
}

// NormalizeTIN returns the nine digits of a TIN (an EIN is written
// 12-3456789); ok is false for anything else.
func NormalizeTIN(s string) (digits string, ok bool) {
	s = strings.TrimSpace(s)
	if len(s) == 10 && s[2] == '-' {
		s = s[:2] + s[3:]
	}
	if len(s) != 9 {
		return "", false
	}
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return "", false
		}
	}
	return s, true
}

// FieldErrors are every problem found in one input: each a BAD_USER_INPUT
// *Error with the path of its field. GraphQL answers them as one error per
// field.
type FieldErrors []*Error

func (fe FieldErrors) Error() string {
	msgs := make([]string, len(fe))
	for i, e := range fe {
		msgs[i] = e.Message
	}
	return CodeInvalid + ": " + strings.Join(msgs, "; ")
}

// Add records that the field at path is invalid; the message reads
// "path " + the formatted text ("contacts.security.email is required").
func (fe *FieldErrors) Add(path, format string, args ...any) {
	*fe = append(*fe, &Error{Code: CodeInvalid, Path: path, Message: path + " " + fmt.Sprintf(format, args...)})
}

// Unwrap lets errors.As and ErrorCode see the first *Error (BAD_USER_INPUT).
func (fe FieldErrors) Unwrap() []error {
	out := make([]error, len(fe))
	for i, e := range fe {
		out[i] = e
	}
	return out
}

// Err returns fe as an error, nil when there are none.
func (fe FieldErrors) Err() error {
	if len(fe) == 0 {
		return nil
	}
	return fe
}

// AttributionGroup is an organization's attribution group in one
// environment (Da Vinci ATR, PDex provider group): the members attributed
// to it that its Provider Access clients may read now. Opted-out members
// are not counted, and no count of them exists (DESIGN.md §1 rule 7).
type AttributionGroup struct {
	ID             string      // AttributionGroupID: the FHIR Group.id
	OrganizationID string      //
	Environment    Environment //
	MemberCount    int
	LastUpdated    time.Time // the latest change of a counted member's attribution
}
