package auth

import (
	"fmt"
	"slices"
	"testing"

	"example.com/gateway/gateway"
)

// Actors of the table tests: org A's admin and user, org B's admin, a
// person without an organization, an operator, and clients.
const (
	orgA = "aaaaaaaa-0000-0000-0000-000000000001"
	orgB = "bbbbbbbb-0000-0000-0000-000000000002"
)

func person(org string, role gateway.UserRole) Actor {
	u := gateway.User{ID: "u-" + org + string(role), Email: "p@example.test"}
	return PortalActor(PersonPrincipal(u, false), org, role)
}

func operator() Actor {
	return PortalActor(PersonPrincipal(gateway.User{ID: "op", Email: "op@example.test"}, true), "", "")
}

func client(org string, env gateway.Environment, at gateway.AccessType, bound string) Actor {
	c := gateway.APIClient{ID: "c-" + org, OrganizationID: org, Environment: env, AccessType: at}
	if bound != "" {
		c.BoundMemberID = &bound
	}
	return PortalActor(ClientPrincipal(c, Scopes{All: true}), "", "")
}

var (
	adminA    = person(orgA, gateway.RoleAdmin)
	userA     = person(orgA, gateway.RoleUser)
	adminB    = person(orgB, gateway.RoleAdmin)
	newcomer  = person("", "")
	op        = operator()
	providerA = client(orgA, gateway.EnvSandbox, gateway.ProviderAccess, "")
	patientA  = client(orgA, gateway.EnvSandbox, gateway.PatientAccess, "m1")
	nobody    = PortalActor(Principal{}, "", "")
)

const (
	ok        = ""
	forbidden = gateway.CodeForbidden
	notFound  = gateway.CodeNotFound
	conflict  = gateway.CodeConflict
)

func TestCan(t *testing.T) {
	t.Parallel()
	type row struct {
		actor string
		a     Actor
		org   string
		want  string
	}
	// The columns every right is judged for.
	cases := func(want ...string) []row {
		actors := []struct {
			name string
			a    Actor
			org  string
		}{
			{"admin of the org", adminA, orgA}, {"user of the org", userA, orgA},
			{"admin of another org", adminB, orgA}, {"person without org", newcomer, orgA},
			{"operator", op, orgA}, {"provider client of the org", providerA, orgA},
			{"patient client of the org", patientA, orgA}, {"nobody", nobody, orgA},
		}
		rows := make([]row, len(actors))
		for i, ac := range actors {
			rows[i] = row{ac.name, ac.a, ac.org, want[i]}
		}
		return rows
	}
	//                                                        admin      user       otherAdmin newcomer  operator   provider   patient    nobody
	tests := map[Right][]row{
		RightRegisterOrganization:    cases(conflict, conflict, conflict, ok, forbidden, forbidden, forbidden, notFound),
		RightReadOrganization:        cases(ok, ok, notFound, notFound, ok, ok, ok, notFound),
		RightListOrganizations:       cases(forbidden, forbidden, forbidden, forbidden, ok, forbidden, forbidden, notFound),
		RightInviteUser:              cases(ok, forbidden, notFound, notFound, ok, forbidden, forbidden, notFound),
		RightSaveAccessRequest:       cases(ok, ok, notFound, notFound, forbidden, forbidden, forbidden, notFound),
		RightSubmitAccessRequest:     cases(ok, forbidden, notFound, notFound, forbidden, forbidden, forbidden, notFound),
		RightReadAccessRequest:       cases(ok, ok, notFound, notFound, ok, notFound, notFound, notFound),
		RightReviewAccessRequest:     cases(forbidden, forbidden, forbidden, forbidden, ok, forbidden, forbidden, notFound),
		RightSetInNetwork:            cases(forbidden, forbidden, forbidden, forbidden, ok, forbidden, forbidden, notFound),
		RightReadClients:             cases(ok, ok, notFound, notFound, ok, notFound, notFound, notFound),
		RightBindPatientAccessClient: cases(forbidden, forbidden, forbidden, forbidden, ok, forbidden, forbidden, notFound),
		RightManageAttribution:       cases(forbidden, forbidden, forbidden, forbidden, ok, forbidden, forbidden, notFound),
		RightSubmitRoster:            cases(ok, ok, notFound, notFound, forbidden, ok, forbidden, notFound),
		RightReadRoster:              cases(ok, ok, notFound, notFound, ok, ok, ok, notFound),
		RightConfirmRoster:           cases(forbidden, forbidden, forbidden, forbidden, ok, forbidden, forbidden, notFound),
		RightReadOutbox:              cases(forbidden, forbidden, forbidden, forbidden, ok, forbidden, forbidden, notFound),
		RightReadAttributionGroups:   cases(ok, ok, notFound, notFound, ok, ok, ok, notFound),
		RightReadImportRuns:          cases(forbidden, forbidden, forbidden, forbidden, ok, forbidden, forbidden, notFound),
		RightReadAuditEvents:         cases(forbidden, forbidden, forbidden, forbidden, ok, forbidden, forbidden, notFound),
	}
	for right, rows := range tests {
		for _, r := range rows {
			t.Run(fmt.Sprintf("%s/%s", right, r.actor), func(t *testing.T) {
				if got := gateway.ErrorCode(r.a.Can(right, r.org)); got != r.want {
					t.Errorf("Can(%s) = %q, want %q", right, got, r.want)
				}
			})
		}
	}
}

func TestCanManageClient(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		a      Actor
		env    gateway.Environment
		revoke bool
		want   string
	}{
		{"admin, sandbox", adminA, gateway.EnvSandbox, false, ok},
		{"admin, production", adminA, gateway.EnvProduction, false, ok},
		{"admin revokes production", adminA, gateway.EnvProduction, true, ok},
		{"user, sandbox", userA, gateway.EnvSandbox, false, ok},
		{"user, production", userA, gateway.EnvProduction, false, forbidden},
		{"user revokes production", userA, gateway.EnvProduction, true, forbidden},
		{"another org's admin", adminB, gateway.EnvSandbox, false, notFound},
		{"another org's admin revokes", adminB, gateway.EnvSandbox, true, notFound},
		{"person without org", newcomer, gateway.EnvSandbox, false, notFound},
		{"operator creates", op, gateway.EnvProduction, false, forbidden},
		{"operator revokes", op, gateway.EnvProduction, true, ok},
		{"a client of the org", providerA, gateway.EnvSandbox, false, forbidden},
		{"nobody", nobody, gateway.EnvSandbox, true, notFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := gateway.ErrorCode(tt.a.CanManageClient(orgA, tt.env, tt.revoke)); got != tt.want {
				t.Errorf("CanManageClient = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestCanCreateClient covers every cell of DESIGN.md §1's table:
// organization type × access type × environment, for an organization in
// SANDBOX and in PRODUCTION.
func TestCanCreateClient(t *testing.T) {
	t.Parallel()
	types := []gateway.OrganizationType{
		gateway.OrgProviderHealthSystem, gateway.OrgAccountableCareOrganization, gateway.OrgConsumerApplication,
		gateway.OrgPayer, gateway.OrgServiceProviderOther, gateway.OrgEHRSoftware,
	}
	// allowed[type][env] is the table; production needs an approved organization.
	allowed := map[gateway.OrganizationType]map[gateway.Environment][]gateway.AccessType{
		gateway.OrgProviderHealthSystem: {
			gateway.EnvSandbox: {gateway.ProviderAccess}, gateway.EnvProduction: {gateway.ProviderAccess}},
		gateway.OrgAccountableCareOrganization: {
			gateway.EnvSandbox: {gateway.ProviderAccess}, gateway.EnvProduction: {gateway.ProviderAccess}},
		gateway.OrgConsumerApplication: {gateway.EnvSandbox: {gateway.PatientAccess}},
	}
	for _, typ := range types {
		for _, status := range []gateway.OrganizationStatus{gateway.OrgStatusSandbox, gateway.OrgStatusPendingReview, gateway.OrgStatusProduction} {
			for _, env := range []gateway.Environment{gateway.EnvSandbox, gateway.EnvProduction} {
				for _, at := range []gateway.AccessType{gateway.ProviderAccess, gateway.PatientAccess} {
					want := forbidden
					if slices.Contains(allowed[typ][env], at) && (env == gateway.EnvSandbox || status == gateway.OrgStatusProduction) {
						want = ok
					}
					name := fmt.Sprintf("%s/%s/%s/%s", typ, status, env, at)
					t.Run(name, func(t *testing.T) {
						org := gateway.Organization{ID: orgA, Type: typ, Status: status}
						err := CanCreateClient(org, env, at)
						if got := gateway.ErrorCode(err); got != want {
							t.Fatalf("CanCreateClient = %v, want %q", err, want)
						}
						if got, wantTable := slices.Contains(AllowedAccessTypes(typ, env), at), slices.Contains(allowed[typ][env], at); got != wantTable {
							t.Errorf("AllowedAccessTypes(%s, %s) contains %s = %v, want %v", typ, env, at, got, wantTable)
						}
					})
				}
			}
		}
	}
	if err := CanCreateClient(gateway.Organization{Type: gateway.OrgProviderHealthSystem}, "STAGING", gateway.ProviderAccess); gateway.ErrorCode(err) != gateway.CodeInvalid {
		t.Errorf("unknown environment: %v", err)
	}
}

func TestCanSetOptOut(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		a    Actor
		want string
	}{
		{"operator", op, ok},
		{"the member's own Patient Access client", patientA, ok},
		{"another member's Patient Access client", client(orgA, gateway.EnvSandbox, gateway.PatientAccess, "m2"), notFound},
		{"an unbound Patient Access client", client(orgA, gateway.EnvSandbox, gateway.PatientAccess, ""), notFound},
		{"a provider client", providerA, forbidden},
		{"an org admin", adminA, forbidden},
		{"nobody", nobody, notFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := gateway.ErrorCode(tt.a.CanSetOptOut("m1")); got != tt.want {
				t.Errorf("CanSetOptOut = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestAccessRequestLifecycle(t *testing.T) {
	t.Parallel()
	statuses := []gateway.AccessRequestStatus{
		gateway.AccessRequestDraft, gateway.AccessRequestPendingReview, gateway.AccessRequestChangesRequested,
		gateway.AccessRequestApproved, gateway.AccessRequestRejected,
	}
	events := []gateway.AccessRequestEvent{gateway.EventSubmit, gateway.EventApprove, gateway.EventReject, gateway.EventRequestChanges}
	want := map[gateway.AccessRequestStatus]map[gateway.AccessRequestEvent]gateway.AccessRequestStatus{
		gateway.AccessRequestDraft:            {gateway.EventSubmit: gateway.AccessRequestPendingReview},
		gateway.AccessRequestChangesRequested: {gateway.EventSubmit: gateway.AccessRequestPendingReview},
		gateway.AccessRequestRejected:         {gateway.EventSubmit: gateway.AccessRequestPendingReview},
		gateway.AccessRequestPendingReview: {
			gateway.EventApprove:        gateway.AccessRequestApproved,
			gateway.EventReject:         gateway.AccessRequestRejected,
			gateway.EventRequestChanges: gateway.AccessRequestChangesRequested,
		},
	}
	for _, from := range statuses {
		for _, e := range events {
			next, ok := from.Next(e)
			w, wok := want[from][e]
			if ok != wok || next != w {
				t.Errorf("%s --%s--> %q, %v; want %q, %v", from, e, next, ok, w, wok)
			}
		}
	}
}

func TestNextSteps(t *testing.T) {
	t.Parallel()
	org := func(s gateway.OrganizationStatus) *gateway.Organization {
		return &gateway.Organization{ID: orgA, Type: gateway.OrgProviderHealthSystem, Status: s}
	}
	req := func(s gateway.AccessRequestStatus) *gateway.AccessRequest { return &gateway.AccessRequest{Status: s} }
	tests := []struct {
		name string
		a    Actor
		st   PortalState
		want []gateway.NextStep
	}{
		{"newcomer registers", newcomer, PortalState{}, []gateway.NextStep{gateway.StepRegisterOrganization}},
		{"fresh admin", adminA, PortalState{Organization: org(gateway.OrgStatusSandbox), Users: 1},
			[]gateway.NextStep{gateway.StepCreateSandboxClient, gateway.StepCompleteAccessRequest, gateway.StepInviteUsers}},
		{"complete draft", adminA, PortalState{Organization: org(gateway.OrgStatusSandbox), Request: req(gateway.AccessRequestDraft),
			RequestComplete: true, SandboxClients: 1, Users: 2}, []gateway.NextStep{gateway.StepSubmitAccessRequest}},
		{"complete draft, org user", userA, PortalState{Organization: org(gateway.OrgStatusSandbox), Request: req(gateway.AccessRequestDraft),
			RequestComplete: true, SandboxClients: 1, Users: 2}, []gateway.NextStep{gateway.StepAskAdmin}},
		{"under review", adminA, PortalState{Organization: org(gateway.OrgStatusPendingReview), Request: req(gateway.AccessRequestPendingReview),
			SandboxClients: 1, Users: 2}, []gateway.NextStep{gateway.StepAwaitReview}},
		{"returned", adminA, PortalState{Organization: org(gateway.OrgStatusSandbox), Request: req(gateway.AccessRequestChangesRequested),
			SandboxClients: 1, Users: 2}, []gateway.NextStep{gateway.StepReviseAccessRequest}},
		{"approved", adminA, PortalState{Organization: org(gateway.OrgStatusProduction), Request: req(gateway.AccessRequestApproved),
			SandboxClients: 1, Users: 2}, []gateway.NextStep{gateway.StepCreateProductionClient}},
		{"consumer app", adminA, PortalState{Organization: &gateway.Organization{Type: gateway.OrgConsumerApplication, Status: gateway.OrgStatusSandbox},
			Users: 2}, []gateway.NextStep{gateway.StepCreateSandboxClient}},
		{"payer", adminA, PortalState{Organization: &gateway.Organization{Type: gateway.OrgPayer, Status: gateway.OrgStatusSandbox},
			Users: 1}, []gateway.NextStep{gateway.StepInviteUsers}},
		{"operator with a queue", op, PortalState{PendingReviewCount: 2}, []gateway.NextStep{gateway.StepReviewAccessRequests}},
		{"client", providerA, PortalState{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := NextSteps(tt.a, tt.st); !slices.Equal(got, tt.want) {
				t.Errorf("NextSteps = %v, want %v", got, tt.want)
			}
		})
	}
}
