package auth

import (
	"slices"

	"example.com/gateway/gateway"
)

// The portal's policy: who may register, invite, fill in, submit and review
// production access requests, manage API clients, bind Patient Access
// clients, attribute members, confirm rosters and record opt-outs. Each
// rule is a pure function in the style of upspin's access.Can, so a table
// test covers it; the store calls them inside the transaction that then
// writes, after loading the objects they judge.
//
// Answers: nil (allowed), FORBIDDEN (the actor may see the object but not do
// this) or NOT_FOUND (the actor may not even see it: DESIGN.md §1 rule 8).
// Operator-only rights answer FORBIDDEN to everyone else before any object
// is looked up, so that answer reveals nothing either.

// Actor is a principal as the portal sees it: for a person, the organization
// and role the database holds for them now (which may be newer than their
// token's: a registration or an accepted invitation happens between
// requests); for a client, its own organization.
type Actor struct {
	p     Principal
	orgID string
	role  gateway.UserRole
}

// PortalActor returns p acting in the portal. For people, orgID and role
// are their current membership ("" when they belong to no organization);
// for clients and operators they are ignored.
func PortalActor(p Principal, orgID string, role gateway.UserRole) Actor {
	a := Actor{p: p}
	switch p.kind {
	case KindPerson:
		a.orgID, a.role = orgID, role
	case KindClient:
		a.orgID = p.orgID
	}
	return a
}

func (a Actor) Principal() Principal   { return a.p }
func (a Actor) OrgID() string          { return a.orgID }
func (a Actor) Role() gateway.UserRole { return a.role }
func (a Actor) IsOperator() bool       { return a.p.kind == KindOperator }
func (a Actor) isPerson() bool         { return a.p.kind == KindPerson }
func (a Actor) isClient() bool         { return a.p.kind == KindClient }
func (a Actor) isAdminOf(org string) bool {
	return a.isPerson() && org != "" && a.orgID == org && a.role == gateway.RoleAdmin
}
func (a Actor) isMemberOf(org string) bool { return org != "" && a.orgID == org }

// Right is something done through the portal.
type Right string

const (
	RightRegisterOrganization    Right = "registerOrganization"
	RightReadOrganization        Right = "readOrganization"
	RightListOrganizations       Right = "listOrganizations"
	RightInviteUser              Right = "inviteUser"
	RightSaveAccessRequest       Right = "saveAccessRequest"
	RightSubmitAccessRequest     Right = "submitAccessRequest"
	RightReadAccessRequest       Right = "readAccessRequest"
	RightReviewAccessRequest     Right = "reviewAccessRequest"
	RightSetInNetwork            Right = "setOrganizationInNetwork"
	RightReadClients             Right = "readClients"
	RightBindPatientAccessClient Right = "bindPatientAccessClient"
	RightManageAttribution       Right = "manageAttribution" // attributeMember, endAttribution
	RightSubmitRoster            Right = "submitRoster"
	RightReadRoster              Right = "readRoster"
	RightConfirmRoster           Right = "confirmRosterMatch"
	RightReadOutbox              Right = "readOutbox"
	RightReadAttributionGroups   Right = "readAttributionGroups"
	RightReadImportRuns          Right = "readImportRuns"
	RightReadAuditEvents         Right = "readAuditEvents"
)

// operatorOnly are the rights of payer operators alone.
var operatorOnly = []Right{
	RightListOrganizations, RightReviewAccessRequest, RightSetInNetwork,
	RightBindPatientAccessClient, RightManageAttribution, RightConfirmRoster, RightReadOutbox,
	RightReadImportRuns, RightReadAuditEvents,
}

// refuse is a FORBIDDEN answer with a client-safe reason.
func refuse(msg string) error { return &gateway.Error{Code: gateway.CodeForbidden, Message: msg} }

var (
	errOperatorsOnly = refuse("only payer operators may do this")
	errAdminsOnly    = refuse("only an administrator of the organization may do this")
	errNotForClients = refuse("API clients cannot do this; sign in to the portal")
)

// Can reports whether a may exercise right on an object of organization
// orgID ("" for rights that have no object yet). Managing API clients is
// CanManageClient's.
func (a Actor) Can(right Right, orgID string) error {
	if a.p.IsZero() {
		return gateway.ErrNotFound
	}
	if slices.Contains(operatorOnly, right) {
		if a.IsOperator() {
			return nil
		}
		return errOperatorsOnly
	}
	switch right {
	case RightRegisterOrganization:
		switch {
		case !a.isPerson():
			return refuse("only a signed-in person (not an operator or API client) may register an organization")
		case a.orgID != "":
			return &gateway.Error{Code: gateway.CodeConflict, Message: "you already belong to an organization"}
		}
		return nil
	case RightReadOrganization:
		if a.IsOperator() || a.isMemberOf(orgID) {
			return nil
		}
		return gateway.ErrNotFound
	case RightReadAccessRequest, RightReadClients:
		if a.IsOperator() || (a.isPerson() && a.isMemberOf(orgID)) {
			return nil
		}
		return gateway.ErrNotFound
	case RightReadRoster, RightReadAttributionGroups:
		if a.IsOperator() || a.isMemberOf(orgID) {
			return nil
		}
		return gateway.ErrNotFound
	case RightInviteUser:
		switch {
		case a.IsOperator(), a.isAdminOf(orgID):
			return nil
		case !a.isMemberOf(orgID):
			return gateway.ErrNotFound
		case a.isClient():
			return errNotForClients
		}
		return errAdminsOnly
	case RightSaveAccessRequest, RightSubmitAccessRequest:
		switch {
		case !a.isMemberOf(orgID):
			if a.IsOperator() {
				return refuse("operators review access requests; the organization fills them in")
			}
			return gateway.ErrNotFound
		case a.isClient():
			return errNotForClients
		case right == RightSubmitAccessRequest && a.role != gateway.RoleAdmin:
			// Submitting attests for the organization: its administrators do that.
			return errAdminsOnly
		}
		return nil
	case RightSubmitRoster:
		switch {
		case a.IsOperator():
			return refuse("providers submit rosters; operators confirm them")
		case !a.isMemberOf(orgID):
			return gateway.ErrNotFound
		case a.isClient() && a.p.accessType != gateway.ProviderAccess:
			return refuse("only Provider Access clients submit rosters")
		}
		return nil
	}
	return refuse("not allowed")
}

// CanManageClient reports whether a may create, rotate the secret of or
// set the keys of an API client of organization orgID in env, and, with
// revoke, revoke one. Administrators manage every client of their
// organization; other people of the organization only sandbox clients
// (production credentials are the administrators' to hand out). Operators
// never hold an organization's credentials, but may revoke any client (an
// incident). API clients manage no clients.
func (a Actor) CanManageClient(orgID string, env gateway.Environment, revoke bool) error {
	switch {
	case a.p.IsZero():
		return gateway.ErrNotFound
	case a.IsOperator() && revoke:
		return nil
	case a.IsOperator():
		return refuse("operators do not hold organizations' credentials; an administrator of the organization manages its clients")
	case !a.isMemberOf(orgID):
		return gateway.ErrNotFound
	case a.isClient():
		return errNotForClients
	case a.role == gateway.RoleAdmin:
		return nil
	case env == gateway.EnvSandbox:
		return nil
	}
	return errAdminsOnly
}

// CanCreateClient is the organization-type table of DESIGN.md §1 with the
// lifecycle of §2: the access type must be one the organization's type
// allows in env (AllowedAccessTypes); production clients need an approved
// (PRODUCTION) organization, and production Patient Access waits for
// member sign-in (SMART App Launch). Refusals are FORBIDDEN with the field
// at fault.
func CanCreateClient(org gateway.Organization, env gateway.Environment, at gateway.AccessType) error {
	if env != gateway.EnvSandbox && env != gateway.EnvProduction {
		return &gateway.Error{Code: gateway.CodeInvalid, Path: "input.environment", Message: "environment must be SANDBOX or PRODUCTION"}
	}
	if at != gateway.ProviderAccess && at != gateway.PatientAccess {
		return &gateway.Error{Code: gateway.CodeInvalid, Path: "input.accessType", Message: "accessType must be PROVIDER_ACCESS or PATIENT_ACCESS"}
	}
	if env == gateway.EnvProduction && at == gateway.PatientAccess {
		return &gateway.Error{Code: gateway.CodeForbidden, Path: "input.accessType",
			Message: "production Patient Access clients cannot be created until member sign-in (SMART App Launch) exists"}
	}
	if !slices.Contains(AllowedAccessTypes(org.Type, env), at) {
		return &gateway.Error{Code: gateway.CodeForbidden, Path: "input.accessType",
			Message: "an organization of type " + string(org.Type) + " may not create " + string(at) + " clients in " + string(env)}
	}
	if env == gateway.EnvProduction && org.Status != gateway.OrgStatusProduction {
		return &gateway.Error{Code: gateway.CodeForbidden, Path: "input.environment",
			Message: "production clients need an approved production access request"}
	}
	return nil
}

// CanSetOptOut reports whether a may record an opt-out (or opt-back-in) for
// member memberID (42 CFR 422.121(a)(4)): payer operators, for any member,
// and the member's own Patient Access client, which acts for the member.
// Another Patient Access client answers NOT_FOUND (it cannot see the
// member); providers and people FORBIDDEN: they never decide for a member.
func (a Actor) CanSetOptOut(memberID string) error {
	switch {
	case a.p.IsZero():
		return gateway.ErrNotFound
	case a.IsOperator():
		return nil
	case a.isClient() && a.p.accessType == gateway.PatientAccess:
		if a.p.boundMemberID != "" && a.p.boundMemberID == memberID {
			return nil
		}
		return gateway.ErrNotFound
	}
	return refuse("only the member (through their own Patient Access app) or a payer operator may change a member's opt-out")
}

// GroupScope returns the member scope of organization orgID's Provider
// Access clients in env: what its attribution group counts. ok is false
// when the organization has no Provider Access clients in env (its type
// allows none).
func GroupScope(org gateway.Organization, env gateway.Environment, today gateway.Date, upcomingDays int) (s MemberScope, ok bool) {
	if !slices.Contains(AllowedAccessTypes(org.Type, env), gateway.ProviderAccess) {
		return MemberScope{}, false
	}
	p := Principal{kind: KindClient, orgID: org.ID, accessType: gateway.ProviderAccess, env: env}
	return p.MemberScope(today, upcomingDays), true
}

// PortalState is what NextSteps needs to know of a person's organization.
type PortalState struct {
	Organization       *gateway.Organization
	Request            *gateway.AccessRequest // the latest request; nil: none yet
	RequestComplete    bool                   // every stage of Request passes validation
	SandboxClients     int
	ProductionClients  int
	Users              int // people of the organization
	PendingReviewCount int // operators: requests waiting for review
}

// NextSteps returns what a may do next in the portal, most pressing
// first, following the lifecycle of DESIGN.md §2.
func NextSteps(a Actor, st PortalState) []gateway.NextStep {
	var steps []gateway.NextStep
	switch {
	case a.IsOperator():
		if st.PendingReviewCount > 0 {
			steps = append(steps, gateway.StepReviewAccessRequests)
		}
		return steps
	case !a.isPerson():
		return steps
	case st.Organization == nil:
		return []gateway.NextStep{gateway.StepRegisterOrganization}
	}
	admin := a.role == gateway.RoleAdmin
	org := st.Organization
	// Steps toward clients the organization's type cannot have are left out
	// (DESIGN.md §1: a payer has none yet, a consumer app sandbox ones only).
	if st.SandboxClients == 0 && len(AllowedAccessTypes(org.Type, gateway.EnvSandbox)) > 0 {
		steps = append(steps, gateway.StepCreateSandboxClient)
	}
	production := len(AllowedAccessTypes(org.Type, gateway.EnvProduction)) > 0
	switch r := st.Request; {
	case !production:
	case org.Status == gateway.OrgStatusProduction:
		if st.ProductionClients == 0 {
			steps = append(steps, adminStep(admin, gateway.StepCreateProductionClient))
		}
	case r != nil && r.Status == gateway.AccessRequestPendingReview:
		steps = append(steps, gateway.StepAwaitReview)
	case r != nil && (r.Status == gateway.AccessRequestChangesRequested || r.Status == gateway.AccessRequestRejected):
		steps = append(steps, gateway.StepReviseAccessRequest)
	case st.RequestComplete:
		steps = append(steps, adminStep(admin, gateway.StepSubmitAccessRequest))
	default:
		steps = append(steps, gateway.StepCompleteAccessRequest)
	}
	if admin && st.Users <= 1 {
		steps = append(steps, gateway.StepInviteUsers)
	}
	return slices.Compact(steps)
}

func adminStep(admin bool, s gateway.NextStep) gateway.NextStep {
	if admin {
		return s
	}
	return gateway.StepAskAdmin
}
