package auth

import (
	"slices"

	"example.com/gateway/gateway"
)

// ScopeMode is how a principal's member reads are scoped.
type ScopeMode string

const (
	ScopeNone     ScopeMode = "NONE"     // sees no member
	ScopeProvider ScopeMode = "PROVIDER" // attributed, not opted out, in-network
	ScopePatient  ScopeMode = "PATIENT"  // the one bound member
	ScopeAll      ScopeMode = "ALL"      // payer operators (audited)
)

// ServiceDateFloor is the earliest date of service Provider Access shares
// (42 CFR 422.121(a)(2): data with a date of service on or after 2016-01-01).
var ServiceDateFloor = gateway.NewDate(2016, 1, 1)

// MemberScope is the policy's answer to "which member data may this principal
// read", in the terms the store turns into SQL. It is computed by
// Principal.MemberScope and never built by hand outside this package.
type MemberScope struct {
	Mode         ScopeMode
	OrgID        string // ScopeProvider: the principal's organization
	Sandbox      bool   // which data set: the synthetic sandbox or production
	MemberID     string // ScopePatient: the bound member
	Today        gateway.Date
	UpcomingDays int // attribution starting within this many days counts (DESIGN.md §1 rule 3)

	// Row rules for member data.
	ExcludeSensitive bool         // 42 CFR Part 2 and state-protected rows (42 CFR 422.121(a)(2)(iii))
	ExcludeDrugPA    bool         // drug prior authorizations are not Provider Access data
	MinServiceDate   gateway.Date // zero: no floor
	Money            bool         // monetary amounts may be read
}

// MemberScope returns the scope of p's member reads as of today.
//
//   - Provider Access clients: members attributed to their organization
//     (ACTIVE or UPCOMING) who have not opted out, only while the
//     organization is in-network (sandbox organizations count as in-network
//     for sandbox data); no sensitive rows, no drug prior authorizations, no
//     dates of service before 2016, no money (42 CFR 422.121(a)(2)).
//   - Patient Access clients: the one member bound to them, money included.
//   - Operators: everything.
//   - People of an organization and everyone else: no member at all.
func (p Principal) MemberScope(today gateway.Date, upcomingDays int) MemberScope {
	s := MemberScope{Mode: ScopeNone, Today: today, UpcomingDays: upcomingDays, Sandbox: p.env == gateway.EnvSandbox}
	switch {
	case p.kind == KindOperator:
		s.Mode, s.Money = ScopeAll, true
	case p.kind == KindClient && p.accessType == gateway.ProviderAccess && p.orgID != "":
		s.Mode, s.OrgID = ScopeProvider, p.orgID
		s.ExcludeSensitive, s.ExcludeDrugPA, s.MinServiceDate = true, true, ServiceDateFloor
	case p.kind == KindClient && p.accessType == gateway.PatientAccess && p.boundMemberID != "":
		s.Mode, s.MemberID, s.Money = ScopePatient, p.boundMemberID, true
	}
	return s
}

// CanReadType reports whether p's token grants reading FHIR resourceType.
// People and operators are not limited by scopes.
func (p Principal) CanReadType(resourceType string) bool {
	if p.kind != KindClient {
		return p.kind != ""
	}
	return p.scopes.Allows(resourceType)
}

// MoneyFields lists every monetary field of the API, as Type.field of the
// GraphQL schema (whose @money directive must mark exactly these, a test
// checks) and as the store columns they come from. Provider Access sees none
// of them (DESIGN.md §1 rule 2); the FHIR mapping omits the elements they
// feed (CARIN BB Basis profiles) under the same MemberScope.Money.
var MoneyFields = []string{
	"Claim.totalSubmitted", "Claim.totalAllowed", "Claim.totalPaid",
	"Claim.paymentAmount", "Claim.paymentDate", "Claim.paymentAdjustment",
	"Claim.copay", "Claim.coinsurance", "Claim.deductible", "Claim.nonCovered", "Claim.memberLiability",
	"ClaimLine.submitted", "ClaimLine.allowed", "ClaimLine.paid",
	"ClaimLine.copay", "ClaimLine.coinsurance", "ClaimLine.deductible", "ClaimLine.memberLiability",
	"PriorAuthorizationItem.submitted",
}

// CanReadMoney reports whether p may read the monetary field typeField
// (one of MoneyFields).
func (p Principal) CanReadMoney(typeField string, today gateway.Date) bool {
	return slices.Contains(MoneyFields, typeField) && p.MemberScope(today, 0).Money
}

// AttributionStatusOf returns an attribution's state on today (DESIGN.md §1
// rule 3): ACTIVE when its period contains today, UPCOMING when it starts
// within upcomingDays after today, FUTURE when later, ENDED when its period
// ended before today or it was withdrawn.
func AttributionStatusOf(a gateway.Attribution, today gateway.Date, upcomingDays int) gateway.AttributionStatus {
	switch {
	case a.EndedAt != nil, !a.PeriodEnd.IsZero() && a.PeriodEnd.Before(today):
		return gateway.AttributionEnded
	case !a.PeriodStart.After(today):
		return gateway.AttributionActive
	case !a.PeriodStart.After(today.AddDays(upcomingDays)):
		return gateway.AttributionUpcoming
	}
	return gateway.AttributionFuture
}

// AllowedAccessTypes is the table of DESIGN.md §1: the client access types an
// organization of type t may create in env.
func AllowedAccessTypes(t gateway.OrganizationType, env gateway.Environment) []gateway.AccessType {
	switch t {
	case gateway.OrgProviderHealthSystem, gateway.OrgAccountableCareOrganization:
		return []gateway.AccessType{gateway.ProviderAccess}
	case gateway.OrgConsumerApplication:
		if env == gateway.EnvSandbox { // production Patient Access needs member sign-in (later)
			return []gateway.AccessType{gateway.PatientAccess}
		}
	}
	return nil
}
