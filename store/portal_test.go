package store_test

import (
	"context"
	"encoding/json"
	"errors"
	mrand "math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"example.com/gateway/auth"
	"example.com/gateway/gateway"
	"example.com/gateway/sandbox"
	"example.com/gateway/store"
	"example.com/gateway/store/storetest"
)

// portal is a test database with the portal's actors.
type portal struct {
	t  *testing.T
	db *store.DB
}

func newPortal(t *testing.T) *portal {
	t.Helper()
	return &portal{t: t, db: storetest.New(t)}
}

// seedSandbox loads n synthetic members as of today.
func (p *portal) seedSandbox(n int) {
	p.t.Helper()
	g, err := sandbox.New(sandbox.Options{Members: n, Seed: 7, Today: gateway.DateOf(time.Now())})
	if err != nil {
		p.t.Fatal(err)
	}
	if _, err := p.db.ReplaceSandbox(context.Background(), g); err != nil {
		p.t.Fatal(err)
	}
}

// person signs a person in (creating their user row) and returns their
// principal; operators are operators.
func (p *portal) person(email string, operator bool) auth.Principal {
	p.t.Helper()
	u, err := p.db.UserFromSignIn(context.Background(), "https://idp.example.test", "sub-"+email, email, "")
	if err != nil {
		p.t.Fatal(err)
	}
	return auth.PersonPrincipal(u, operator)
}

// portalNPI returns a random NPI with a valid check digit.
func portalNPI() string {
	var b strings.Builder
	for range 9 {
		b.WriteString(strconv.Itoa(mrand.N(10)))
	}
	for c := range 10 {
		if npi := b.String() + strconv.Itoa(c); gateway.ValidNPI(npi) {
			return npi
		}
	}
	panic("unreachable")
}

// register registers an organization of type typ for a new admin.
func (p *portal) register(email string, typ gateway.OrganizationType) (auth.Principal, gateway.Organization) {
	p.t.Helper()
	admin := p.person(email, false)
	org, err := p.db.RegisterOrganization(context.Background(), admin, store.NewOrganization{
		Name: "Org of " + email, Type: typ, NPI: portalNPI(), TIN: "12-3456789"}, store.Mutation{Name: "registerOrganization"})
	if err != nil {
		p.t.Fatal(err)
	}
	return admin, org
}

func (p *portal) count(query string, args ...any) int {
	p.t.Helper()
	var n int
	if err := p.db.GetContext(context.Background(), &n, query, args...); err != nil {
		p.t.Fatal(err)
	}
	return n
}

func code(err error) string { return gateway.ErrorCode(err) }

// fieldPaths returns the paths of a FieldErrors, sorted.
func fieldPaths(t *testing.T, err error) []string {
	t.Helper()
	var fe gateway.FieldErrors
	if !errors.As(err, &fe) {
		t.Fatalf("error %v is not a list of field errors", err)
	}
	var paths []string
	for _, e := range fe {
		if e.Code != gateway.CodeInvalid {
			t.Errorf("%s: code %s", e.Path, e.Code)
		}
		paths = append(paths, e.Path)
	}
	slices.Sort(paths)
	return paths
}

func TestRegisterOrganizationValidation(t *testing.T) {
	t.Parallel()
	p := newPortal(t)
	tests := []struct {
		name, npi, tin string
		bad            []string // invalid fields
		storedTIN      string
	}{
		{"valid", "1234567893", "123456789", nil, "123456789"},
		{"EIN with a dash", "1234567893", "12-3456789", nil, "123456789"},
		{"bad check digit", "1234567890", "123456789", []string{"input.npi"}, ""},
		{"NPI too short", "123456789", "123456789", []string{"input.npi"}, ""},
		{"NPI too long", "12345678931", "123456789", []string{"input.npi"}, ""},
		{"NPI with letters", "12345A7893", "123456789", []string{"input.npi"}, ""},
		{"NPI empty", "", "123456789", []string{"input.npi"}, ""},
		{"TIN too short", "1234567893", "12345678", []string{"input.tin"}, ""},
		{"TIN too long", "1234567893", "1234567890", []string{"input.tin"}, ""},
		{"TIN with letters", "1234567893", "12-34567AB", []string{"input.tin"}, ""},
		{"TIN dash misplaced", "1234567893", "123-456789", []string{"input.tin"}, ""},
		{"SSN layout", "1234567893", "123-45-6789", []string{"input.tin"}, ""},
		{"both bad", "1234567894", "1", []string{"input.npi", "input.tin"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := store.NewOrganization{Name: "Clinic", Type: gateway.OrgProviderHealthSystem, NPI: tt.npi, TIN: tt.tin}
			err := in.Validate()
			if tt.bad == nil {
				if err != nil || in.TIN != tt.storedTIN {
					t.Fatalf("Validate() = %v, TIN %q; want nil, %q", err, in.TIN, tt.storedTIN)
				}
				return
			}
			if got := fieldPaths(t, err); !slices.Equal(got, tt.bad) {
				t.Errorf("invalid fields %v, want %v", got, tt.bad)
			}
		})
	}
	// Every problem at once, and nothing written.
	admin := p.person("all-bad@example.test", false)
	_, err := p.db.RegisterOrganization(t.Context(), admin, store.NewOrganization{Name: " ", Type: "HOSPITAL", NPI: "1", TIN: "x"},
		store.Mutation{Name: "registerOrganization"})
	if got := fieldPaths(t, err); !slices.Equal(got, []string{"input.name", "input.npi", "input.tin", "input.type"}) {
		t.Errorf("invalid fields %v", got)
	}
	if n := p.count(`SELECT count(*) FROM organizations`); n != 0 {
		t.Errorf("%d organizations written", n)
	}
}

func TestRegisterOrganization(t *testing.T) {
	t.Parallel()
	p := newPortal(t)
	p.seedSandbox(60)
	ctx := t.Context()
	admin := p.person("admin@clinic.test", false)
	npi := portalNPI()
	in := store.NewOrganization{Name: "Clinic", Type: gateway.OrgProviderHealthSystem, NPI: npi, TIN: "12-3456789"}
	m := store.Mutation{Name: "registerOrganization", ClientMutationID: "reg-1"}
	org, err := p.db.RegisterOrganization(ctx, admin, in, m)
	if err != nil {
		t.Fatal(err)
	}
	if org.Status != gateway.OrgStatusSandbox || org.InNetwork || org.TIN != "123456789" || org.NPI != npi {
		t.Errorf("organization %+v", org)
	}
	v, err := p.db.ViewerFor(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	if v.Organization == nil || v.Organization.ID != org.ID || v.Role != gateway.RoleAdmin {
		t.Errorf("viewer %+v", v)
	}
	if !slices.Contains(v.NextSteps, gateway.StepCreateSandboxClient) {
		t.Errorf("next steps %v", v.NextSteps)
	}
	// The organization's own sandbox attributions (DESIGN.md §2).
	if n := p.count(`SELECT count(*) FROM attributions WHERE organization_id = $1 AND sandbox AND source = 'SANDBOX'`, org.ID); n == 0 {
		t.Error("no sandbox attributions")
	}

	// A retry with the same clientMutationId: the same organization, no second write.
	again, err := p.db.RegisterOrganization(ctx, admin, in, m)
	if err != nil || again.ID != org.ID {
		t.Errorf("retry: %v, %s vs %s", err, again.ID, org.ID)
	}
	if n := p.count(`SELECT count(*) FROM organizations`); n != 1+len(mustGenerator(t).Organizations()) {
		t.Errorf("%d organizations", n)
	}
	other := in
	other.Name = "Other"
	if _, err := p.db.RegisterOrganization(ctx, admin, other, m); code(err) != gateway.CodeConflict {
		t.Errorf("same key, other input: %v", err)
	}
	// A second organization for the same person, the same NPI for another.
	if _, err := p.db.RegisterOrganization(ctx, admin, store.NewOrganization{Name: "Second", Type: gateway.OrgPayer,
		NPI: portalNPI(), TIN: "123456789"}, store.Mutation{Name: "registerOrganization"}); code(err) != gateway.CodeConflict {
		t.Errorf("second organization: %v", err)
	}
	bob := p.person("bob@else.test", false)
	_, err = p.db.RegisterOrganization(ctx, bob, in, store.Mutation{Name: "registerOrganization"})
	var ge *gateway.Error
	if code(err) != gateway.CodeConflict || !errors.As(err, &ge) || ge.Path != "input.npi" {
		t.Errorf("duplicate NPI: %v", err)
	}
	if _, err := p.db.RegisterOrganization(ctx, p.person("op@payer.test", true), store.NewOrganization{Name: "X",
		Type: gateway.OrgPayer, NPI: portalNPI(), TIN: "123456789"}, store.Mutation{Name: "registerOrganization"}); code(err) != gateway.CodeForbidden {
		t.Errorf("operator registers: %v", err)
	}
}

func mustGenerator(t *testing.T) *sandbox.Generator {
	g, err := sandbox.New(sandbox.Options{Members: 1, Seed: 7, Today: gateway.DateOf(time.Now())})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestInviteUser(t *testing.T) {
	t.Parallel()
	p := newPortal(t)
	ctx := t.Context()
	admin, org := p.register("admin@a.test", gateway.OrgProviderHealthSystem)
	_, orgB := p.register("admin@b.test", gateway.OrgAccountableCareOrganization)
	inv, err := p.db.InviteUser(ctx, admin, store.NewInvitation{OrganizationID: org.ID, Email: " Carol@A.test "},
		store.Mutation{Name: "inviteUser"})
	if err != nil || inv.Email != "carol@a.test" || inv.Role != gateway.RoleUser {
		t.Fatalf("invite: %+v %v", inv, err)
	}
	if n := p.count(`SELECT count(*) FROM email_outbox WHERE to_address = 'carol@a.test'`); n != 1 {
		t.Errorf("%d invitation emails", n)
	}
	// Carol signs in with that email verified: she joins at her first request.
	carol := p.person("carol@a.test", false)
	v, err := p.db.ViewerFor(ctx, carol)
	if err != nil || v.Organization == nil || v.Organization.ID != org.ID || v.Role != gateway.RoleUser {
		t.Fatalf("carol's viewer %+v %v", v, err)
	}
	tests := []struct {
		name string
		as   auth.Principal
		org  string
		want string
	}{
		{"an org user may not invite", carol, org.ID, gateway.CodeForbidden},
		{"another org's admin", admin, orgB.ID, gateway.CodeNotFound},
		{"an unknown organization", admin, "not-an-id", gateway.CodeNotFound},
		{"a member already", admin, org.ID, gateway.CodeConflict},
		{"an operator may", p.person("op@payer.test", true), org.ID, ""},
	}
	for _, tt := range tests {
		email := "dave@a.test"
		if tt.want == gateway.CodeConflict {
			email = "carol@a.test"
		}
		_, err := p.db.InviteUser(ctx, tt.as, store.NewInvitation{OrganizationID: tt.org, Email: email}, store.Mutation{Name: "inviteUser"})
		if code(err) != tt.want {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}
	if _, err := p.db.InviteUser(ctx, admin, store.NewInvitation{OrganizationID: org.ID, Email: "not an email"}, store.Mutation{}); code(err) != gateway.CodeInvalid {
		t.Errorf("bad email: %v", err)
	}
	// AcceptInvitations is also callable at sign-in.
	dave := p.person("dave@a.test", false)
	u, err := p.db.UserFromSignIn(ctx, "https://idp.example.test", "sub-dave@a.test", "dave@a.test", "")
	if err != nil {
		t.Fatal(err)
	}
	u, err = p.db.AcceptInvitations(ctx, u)
	if err != nil || u.OrganizationID == nil || *u.OrganizationID != org.ID {
		t.Errorf("AcceptInvitations: %+v %v (%v)", u, err, dave.ID())
	}
}

// completeStages are stages that pass submission for org.
func completeStages(org gateway.Organization) gateway.AccessRequestStages {
	contact := func(role string) *gateway.Contact {
		return &gateway.Contact{Name: role + " Contact", Email: role + "@clinic.test", Phone: "+1 555 010 0100"}
	}
	members := 1200
	return gateway.AccessRequestStages{
		Organization: &gateway.OrganizationStage{LegalName: "Clinic LLC", Type: org.Type, NPI: org.NPI, TIN: "98-7654321",
			Address: &gateway.Address{Line1: "1 Main St", City: "Springfield", State: "IL", PostalCode: "62701"}},
		Contacts: &gateway.ContactsStage{Technical: contact("tech"), Security: contact("security"), Legal: contact("legal")},
		Usage: &gateway.UsageStage{IntendedUse: "Care coordination", ResourceTypes: []string{"Patient", "ExplanationOfBenefit"},
			ExpectedMembers: &members, TreatmentRelationship: "Payer attribution of assigned PCP panels"},
		Attestation: &gateway.AttestationStage{HIPAACompliance: true, TermsAccepted: true, SignerName: "Ann Admin", SignerTitle: "CIO"},
	}
}

func TestAccessRequestDraftAndSubmission(t *testing.T) {
	t.Parallel()
	p := newPortal(t)
	ctx := t.Context()
	admin, org := p.register("admin@clinic.test", gateway.OrgProviderHealthSystem)
	save := func(as auth.Principal, s gateway.AccessRequestStages) (gateway.AccessRequest, error) {
		return p.db.SaveAccessRequest(ctx, as, store.SaveAccessRequestInput{OrganizationID: org.ID, Stages: s}, store.Mutation{Name: "saveAccessRequest"})
	}
	full := completeStages(org)

	// The first save creates the draft, its organization stage from the registration.
	r, err := save(admin, gateway.AccessRequestStages{Usage: full.Usage})
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != gateway.AccessRequestDraft || r.Stages.Organization == nil || r.Stages.Organization.NPI != org.NPI || r.Stages.Usage == nil {
		t.Fatalf("draft %+v", r)
	}
	// A failing stage saves nothing of the call: the valid usage change is not kept either.
	badContacts := *full.Contacts
	badContacts.Security = &gateway.Contact{Name: "Sec", Email: "not-an-email", Phone: "12"}
	changedUsage := *full.Usage
	changedUsage.IntendedUse = "changed"
	_, err = save(admin, gateway.AccessRequestStages{Contacts: &badContacts, Usage: &changedUsage})
	if got := fieldPaths(t, err); !slices.Equal(got, []string{"contacts.security.email", "contacts.security.phone"}) {
		t.Errorf("invalid fields %v", got)
	}
	after, err := p.db.AccessRequestFor(ctx, admin, r.ID)
	if err != nil || after.Stages.Contacts != nil || after.Stages.Usage.IntendedUse != full.Usage.IntendedUse {
		t.Errorf("draft changed by a failing save: %+v %v", after.Stages, err)
	}

	// Submission lists every missing or invalid field at once.
	_, err = p.db.SubmitAccessRequest(ctx, admin, r.ID, store.Mutation{Name: "submitAccessRequest"})
	want := []string{"attestation", "contacts", "organization.address"}
	if got := fieldPaths(t, err); !slices.Equal(got, want) {
		t.Errorf("submission errors %v, want %v", got, want)
	}
	partial := completeStages(org)
	partial.Contacts.Legal = nil
	partial.Contacts.Technical.Email = ""
	partial.Attestation.TermsAccepted = false
	partial.Organization.Address.State = "Illinois"
	if _, err := save(admin, gateway.AccessRequestStages{Contacts: partial.Contacts, Attestation: partial.Attestation}); err != nil {
		t.Fatal(err)
	}
	_, err = p.db.SubmitAccessRequest(ctx, admin, r.ID, store.Mutation{Name: "submitAccessRequest"})
	want = []string{"attestation.termsAccepted", "contacts.legal", "contacts.technical.email", "organization.address"}
	if got := fieldPaths(t, err); !slices.Equal(got, want) {
		t.Errorf("submission errors %v, want %v", got, want)
	}
	if _, err := save(admin, gateway.AccessRequestStages{Organization: partial.Organization}); !slices.Equal(fieldPaths(t, err), []string{"organization.address.state"}) {
		t.Errorf("bad state: %v", err)
	}
	wrongNPI := *full.Organization
	wrongNPI.NPI = portalNPI()
	if _, err := save(admin, gateway.AccessRequestStages{Organization: &wrongNPI}); !slices.Equal(fieldPaths(t, err), []string{"organization.npi"}) {
		t.Errorf("another NPI: %v", err)
	}

	// An org user saves but may not submit (it attests for the organization).
	if _, err := p.db.InviteUser(ctx, admin, store.NewInvitation{OrganizationID: org.ID, Email: "user@clinic.test"}, store.Mutation{}); err != nil {
		t.Fatal(err)
	}
	user := p.person("user@clinic.test", false)
	if _, err := save(user, full); err != nil {
		t.Fatal(err)
	}
	if _, err := p.db.SubmitAccessRequest(ctx, user, r.ID, store.Mutation{}); code(err) != gateway.CodeForbidden {
		t.Errorf("org user submits: %v", err)
	}
	r, err = p.db.SubmitAccessRequest(ctx, admin, r.ID, store.Mutation{Name: "submitAccessRequest", ClientMutationID: "s1"})
	if err != nil || r.Status != gateway.AccessRequestPendingReview || r.SubmittedAt == nil {
		t.Fatalf("submit: %+v %v", r, err)
	}
	if o, _ := p.db.OrganizationByID(ctx, org.ID); o.Status != gateway.OrgStatusPendingReview {
		t.Errorf("organization status %s", o.Status)
	}
	// The same clientMutationId again: the stored result, no second transition.
	if r2, err := p.db.SubmitAccessRequest(ctx, admin, r.ID, store.Mutation{Name: "submitAccessRequest", ClientMutationID: "s1"}); err != nil || r2.ID != r.ID {
		t.Errorf("retried submit: %v", err)
	}
	if n := p.count(`SELECT count(*) FROM access_request_transitions WHERE access_request_id = $1 AND to_status = 'PENDING_REVIEW'`, r.ID); n != 1 {
		t.Errorf("%d submissions recorded", n)
	}
	if n := p.count(`SELECT count(*) FROM access_request_transitions WHERE access_request_id = $1 AND stages IS NOT NULL`, r.ID); n != 1 {
		t.Errorf("submitted stages kept %d times", n)
	}
	if _, err := save(admin, full); code(err) != gateway.CodeConflict {
		t.Errorf("saving under review: %v", err)
	}
	if n := p.count(`SELECT count(*) FROM email_outbox WHERE subject LIKE 'Production access request submitted%'`); n != 1 {
		t.Errorf("%d submission emails, want 1 (the admin is the submitter; the invited user is no admin)", n)
	}
}

// reviewWorld is two organizations with submitted requests, an operator
// and the people of both.
type reviewWorld struct {
	p                  *portal
	adminA, userA, adB auth.Principal
	op                 auth.Principal
	orgA, orgB         gateway.Organization
	reqA, reqB         string
}

func newReviewWorld(t *testing.T) *reviewWorld {
	t.Helper()
	p := newPortal(t)
	w := &reviewWorld{p: p, op: p.person("op@payer.test", true)}
	w.adminA, w.orgA = p.register("admin@a.test", gateway.OrgProviderHealthSystem)
	w.adB, w.orgB = p.register("admin@b.test", gateway.OrgAccountableCareOrganization)
	if _, err := p.db.InviteUser(t.Context(), w.adminA, store.NewInvitation{OrganizationID: w.orgA.ID, Email: "user@a.test"}, store.Mutation{}); err != nil {
		t.Fatal(err)
	}
	w.userA = p.person("user@a.test", false)
	w.reqA = w.submit(w.adminA, w.orgA)
	w.reqB = w.submit(w.adB, w.orgB)
	return w
}

func (w *reviewWorld) submit(admin auth.Principal, org gateway.Organization) string {
	w.p.t.Helper()
	ctx := context.Background()
	r, err := w.p.db.SaveAccessRequest(ctx, admin, store.SaveAccessRequestInput{OrganizationID: org.ID, Stages: completeStages(org)}, store.Mutation{})
	if err != nil {
		w.p.t.Fatal(err)
	}
	if _, err := w.p.db.SubmitAccessRequest(ctx, admin, r.ID, store.Mutation{}); err != nil {
		w.p.t.Fatal(err)
	}
	return r.ID
}

func TestReviewTransitions(t *testing.T) {
	t.Parallel()
	w := newReviewWorld(t)
	ctx := t.Context()
	review := func(as auth.Principal, req string, d gateway.ReviewDecision, reason string) (gateway.AccessRequest, error) {
		return w.p.db.ReviewAccessRequest(ctx, as, store.Review{AccessRequestID: req, Decision: d, Reason: reason}, store.Mutation{Name: "reviewAccessRequest"})
	}
	steps := []struct {
		name      string
		as        auth.Principal
		req       string
		decision  gateway.ReviewDecision
		reason    string
		want      string                      // error code
		status    gateway.AccessRequestStatus // after
		orgStatus gateway.OrganizationStatus
	}{
		{"an org admin approves their own organization's request", w.adminA, w.reqA, gateway.DecisionApprove, "", gateway.CodeForbidden, gateway.AccessRequestPendingReview, gateway.OrgStatusPendingReview},
		{"an org user approves their own organization's request", w.userA, w.reqA, gateway.DecisionApprove, "", gateway.CodeForbidden, gateway.AccessRequestPendingReview, gateway.OrgStatusPendingReview},
		{"an org user acts on another organization's request", w.userA, w.reqB, gateway.DecisionReject, "no", gateway.CodeForbidden, gateway.AccessRequestPendingReview, gateway.OrgStatusPendingReview},
		{"rejecting needs a reason", w.op, w.reqA, gateway.DecisionReject, " ", gateway.CodeInvalid, gateway.AccessRequestPendingReview, gateway.OrgStatusPendingReview},
		{"an unknown decision", w.op, w.reqA, "MAYBE", "", gateway.CodeInvalid, gateway.AccessRequestPendingReview, gateway.OrgStatusPendingReview},
		{"an unknown request", w.op, "8f1d3f8e-0000-4000-8000-000000000000", gateway.DecisionApprove, "", gateway.CodeNotFound, gateway.AccessRequestPendingReview, gateway.OrgStatusPendingReview},
		{"the operator asks for changes", w.op, w.reqA, gateway.DecisionRequestChanges, "add the security contact's direct line", "", gateway.AccessRequestChangesRequested, gateway.OrgStatusSandbox},
		{"a returned request cannot be approved", w.op, w.reqA, gateway.DecisionApprove, "", gateway.CodeConflict, gateway.AccessRequestChangesRequested, gateway.OrgStatusSandbox},
		{"resubmitted", w.adminA, w.reqA, "SUBMIT", "", "", gateway.AccessRequestPendingReview, gateway.OrgStatusPendingReview},
		{"the operator rejects", w.op, w.reqA, gateway.DecisionReject, "wrong NPI owner", "", gateway.AccessRequestRejected, gateway.OrgStatusSandbox},
		{"a rejected request cannot be rejected again", w.op, w.reqA, gateway.DecisionReject, "again", gateway.CodeConflict, gateway.AccessRequestRejected, gateway.OrgStatusSandbox},
		{"resubmitted after rejection", w.adminA, w.reqA, "SUBMIT", "", "", gateway.AccessRequestPendingReview, gateway.OrgStatusPendingReview},
		{"the operator approves", w.op, w.reqA, gateway.DecisionApprove, "ok", "", gateway.AccessRequestApproved, gateway.OrgStatusProduction},
		{"approving twice", w.op, w.reqA, gateway.DecisionApprove, "", gateway.CodeConflict, gateway.AccessRequestApproved, gateway.OrgStatusProduction},
		{"rejecting after approval", w.op, w.reqA, gateway.DecisionReject, "late", gateway.CodeConflict, gateway.AccessRequestApproved, gateway.OrgStatusProduction},
		{"an approved request cannot be resubmitted", w.adminA, w.reqA, "SUBMIT", "", gateway.CodeConflict, gateway.AccessRequestApproved, gateway.OrgStatusProduction},
		{"another org's admin submits this one", w.adB, w.reqA, "SUBMIT", "", gateway.CodeNotFound, gateway.AccessRequestApproved, gateway.OrgStatusProduction},
	}
	for _, s := range steps {
		var err error
		if s.decision == "SUBMIT" {
			_, err = w.p.db.SubmitAccessRequest(ctx, s.as, s.req, store.Mutation{})
		} else {
			_, err = review(s.as, s.req, s.decision, s.reason)
		}
		if code(err) != s.want {
			t.Errorf("%s: %v, want %q", s.name, err, s.want)
		}
		r, _ := w.p.db.AccessRequestFor(ctx, w.op, w.reqA)
		o, _ := w.p.db.OrganizationByID(ctx, w.orgA.ID)
		if r.Status != s.status || o.Status != s.orgStatus {
			t.Errorf("%s: request %s, organization %s; want %s, %s", s.name, r.Status, o.Status, s.status, s.orgStatus)
		}
	}
	// Every transition kept with who, when and why.
	tr, err := w.p.db.TransitionsByRequests(ctx, []string{w.reqA})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, x := range tr[w.reqA] {
		got = append(got, string(x.ToStatus)+" by "+x.ActorEmail+": "+x.Reason)
	}
	want := []string{
		"DRAFT by admin@a.test: ", "PENDING_REVIEW by admin@a.test: ",
		"CHANGES_REQUESTED by op@payer.test: add the security contact's direct line", "PENDING_REVIEW by admin@a.test: ",
		"REJECTED by op@payer.test: wrong NPI owner", "PENDING_REVIEW by admin@a.test: ", "APPROVED by op@payer.test: ok",
	}
	if !slices.Equal(got, want) {
		t.Errorf("transitions:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// The organization's details are those of the approved request; each decision was emailed.
	if o, _ := w.p.db.OrganizationByID(ctx, w.orgA.ID); o.Name != "Clinic LLC" || o.TIN != "987654321" {
		t.Errorf("approved organization %+v", o)
	}
	if n := w.p.count(`SELECT count(*) FROM email_outbox WHERE to_address = 'admin@a.test' AND subject LIKE '%' || $1 || '%'`, "Org of admin@a.test"); n != 6 {
		t.Errorf("%d emails to the admin about the request, want 6 (3 submissions, 3 decisions)", n)
	}
	// People see their own organization's request only.
	if _, err := w.p.db.AccessRequestFor(ctx, w.adB, w.reqA); code(err) != gateway.CodeNotFound {
		t.Errorf("another org's request: %v", err)
	}
	if _, err := w.p.db.AccessRequestFor(ctx, w.userA, w.reqA); err != nil {
		t.Errorf("own org's request: %v", err)
	}
	queue, err := w.p.db.AccessRequests(ctx, w.op, gateway.AccessRequestPendingReview, store.Page{First: 10})
	if err != nil || len(queue.Items) != 1 || queue.Items[0].ID != w.reqB {
		t.Errorf("review queue %+v %v", queue.Items, err)
	}
	if _, err := w.p.db.AccessRequests(ctx, w.adminA, "", store.Page{First: 10}); code(err) != gateway.CodeForbidden {
		t.Errorf("queue for an org admin: %v", err)
	}
}

func TestPortalClients(t *testing.T) {
	t.Parallel()
	w := newReviewWorld(t)
	p, ctx := w.p, t.Context()
	p.seedSandbox(20)
	create := func(as auth.Principal, org string, env gateway.Environment, at gateway.AccessType, name string) (store.ClientWithSecret, error) {
		return p.db.CreatePortalClient(ctx, as, store.PortalClient{OrganizationID: org, Name: name, Environment: env, AccessType: at},
			false, store.Mutation{Name: "createClient", ClientMutationID: name + string(env)})
	}
	sb, err := create(w.adminA, w.orgA.ID, gateway.EnvSandbox, gateway.ProviderAccess, "dashboard")
	if err != nil || sb.Secret == "" || !sb.Client.HasSecret {
		t.Fatalf("sandbox client: %+v %v", sb, err)
	}
	// The retry returns the client, never the secret again (it is not stored).
	again, err := create(w.adminA, w.orgA.ID, gateway.EnvSandbox, gateway.ProviderAccess, "dashboard")
	if err != nil || again.Client.ID != sb.Client.ID || again.Secret != "" {
		t.Errorf("retried create: %+v %v", again, err)
	}
	if n := p.count(`SELECT count(*) FROM mutation_results WHERE result::text LIKE '%' || $1 || '%'`, sb.Secret); n != 0 {
		t.Error("the secret was stored")
	}
	tests := []struct {
		name string
		as   auth.Principal
		org  string
		env  gateway.Environment
		at   gateway.AccessType
		want string
	}{
		{"production while pending", w.adminA, w.orgA.ID, gateway.EnvProduction, gateway.ProviderAccess, gateway.CodeForbidden},
		{"patient access for a provider", w.adminA, w.orgA.ID, gateway.EnvSandbox, gateway.PatientAccess, gateway.CodeForbidden},
		{"the same name", w.adminA, w.orgA.ID, gateway.EnvSandbox, gateway.ProviderAccess, gateway.CodeConflict},
		{"an org user, sandbox", w.userA, w.orgA.ID, gateway.EnvSandbox, gateway.ProviderAccess, ""},
		{"another org", w.adB, w.orgA.ID, gateway.EnvSandbox, gateway.ProviderAccess, gateway.CodeNotFound},
		{"an operator", w.op, w.orgA.ID, gateway.EnvSandbox, gateway.ProviderAccess, gateway.CodeForbidden},
	}
	for i, tt := range tests {
		name := "c" + strconv.Itoa(i)
		if tt.want == gateway.CodeConflict {
			name = "dashboard"
		}
		_, err := p.db.CreatePortalClient(ctx, tt.as, store.PortalClient{OrganizationID: tt.org, Name: name, Environment: tt.env,
			AccessType: tt.at}, false, store.Mutation{Name: "createClient", ClientMutationID: "table-" + strconv.Itoa(i)})
		if code(err) != tt.want {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}
	if _, err := p.db.ReviewAccessRequest(ctx, w.op, store.Review{AccessRequestID: w.reqA, Decision: gateway.DecisionApprove}, store.Mutation{}); err != nil {
		t.Fatal(err)
	}
	if _, err := create(w.userA, w.orgA.ID, gateway.EnvProduction, gateway.ProviderAccess, "prod-by-user"); code(err) != gateway.CodeForbidden {
		t.Errorf("org user creates a production client: %v", err)
	}
	prod, err := create(w.adminA, w.orgA.ID, gateway.EnvProduction, gateway.ProviderAccess, "prod")
	if err != nil || prod.Client.Environment != gateway.EnvProduction {
		t.Fatalf("production client: %v", err)
	}
	// Rotation: both secrets work during the overlap.
	rot, err := p.db.RotatePortalClientSecret(ctx, w.adminA, prod.Client.ID, time.Hour, store.Mutation{Name: "rotateClientSecret"})
	if err != nil || rot.Secret == "" || rot.Secret == prod.Secret {
		t.Fatalf("rotate: %v", err)
	}
	hashes, _ := p.db.ClientSecretHashes(ctx, prod.Client.ID)
	if !auth.SecretMatches(prod.Secret, hashes) || !auth.SecretMatches(rot.Secret, hashes) {
		t.Error("both secrets should work during the overlap")
	}
	if _, err := p.db.RotatePortalClientSecret(ctx, w.adminA, prod.Client.ID, 8*24*time.Hour, store.Mutation{}); code(err) != gateway.CodeInvalid {
		t.Errorf("overlap too long: %v", err)
	}
	// Keys.
	if _, err := p.db.SetPortalClientJWKS(ctx, w.adminA, store.ClientKeys{ClientID: prod.Client.ID, JWKSURL: "http://keys.example.test/jwks"}, false, store.Mutation{}); code(err) != gateway.CodeInvalid {
		t.Errorf("http JWKS URL: %v", err)
	}
	if _, err := p.db.SetPortalClientJWKS(ctx, w.adminA, store.ClientKeys{ClientID: prod.Client.ID, JWKS: json.RawMessage(`{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`)}, false, store.Mutation{}); code(err) != gateway.CodeInvalid {
		t.Errorf("symmetric JWKS: %v", err)
	}
	c, err := p.db.SetPortalClientJWKS(ctx, w.adminA, store.ClientKeys{ClientID: prod.Client.ID, JWKSURL: "https://keys.example.test/jwks"}, false, store.Mutation{})
	if err != nil || c.JWKSURL != "https://keys.example.test/jwks" {
		t.Errorf("JWKS URL: %+v %v", c, err)
	}
	// Usage: tokens issued in the last 24 hours.
	now := time.Now()
	for i, at := range []time.Time{now.Add(-time.Hour), now.Add(-2 * time.Hour), now.Add(-30 * time.Hour)} {
		if err := p.db.RecordTokenIssued(ctx, prod.Client.ID, "jti-"+strconv.Itoa(i), at); err != nil {
			t.Fatal(err)
		}
	}
	got, err := p.db.ClientFor(ctx, w.userA, prod.Client.ID)
	if err != nil || got.TokensIssuedLast24h != 2 || got.LastUsedAt == nil {
		t.Errorf("client usage %+v %v", got, err)
	}
	if _, err := p.db.ClientFor(ctx, w.adB, prod.Client.ID); code(err) != gateway.CodeNotFound {
		t.Errorf("another org's client: %v", err)
	}
	list, err := p.db.Clients(ctx, w.userA, store.ClientFilter{Environment: gateway.EnvProduction}, store.Page{First: 10})
	if err != nil || len(list.Items) != 1 || list.Items[0].ID != prod.Client.ID {
		t.Errorf("clients %+v %v", list.Items, err)
	}
	if _, err := p.db.Clients(ctx, w.adB, store.ClientFilter{OrganizationID: w.orgA.ID}, store.Page{First: 10}); code(err) != gateway.CodeNotFound {
		t.Errorf("another org's clients: %v", err)
	}
	// Revocation: operators may; revoking twice changes nothing; a revoked client is not rotated.
	if _, err := p.db.RevokePortalClient(ctx, w.adB, prod.Client.ID, store.Mutation{}); code(err) != gateway.CodeNotFound {
		t.Errorf("another org revokes: %v", err)
	}
	for range 2 {
		r, err := p.db.RevokePortalClient(ctx, w.op, prod.Client.ID, store.Mutation{})
		if err != nil || r.Status != gateway.ClientRevoked {
			t.Errorf("operator revokes: %+v %v", r, err)
		}
	}
	if _, err := p.db.RotatePortalClientSecret(ctx, w.adminA, prod.Client.ID, 0, store.Mutation{}); code(err) != gateway.CodeConflict {
		t.Errorf("rotate revoked: %v", err)
	}

	// Patient Access: a consumer app's sandbox client, bound by an operator to a sandbox member.
	appAdmin, app := p.register("admin@app.test", gateway.OrgConsumerApplication)
	pa, err := create(appAdmin, app.ID, gateway.EnvSandbox, gateway.PatientAccess, "app")
	if err != nil {
		t.Fatal(err)
	}
	var sandboxMember, productionMember string
	p.db.GetContext(ctx, &sandboxMember, `SELECT id FROM members WHERE sandbox ORDER BY id LIMIT 1`)
	productionMember = newUUID()
	if _, err := p.db.ExecContext(ctx, `INSERT INTO members (id, member_identifier) VALUES ($1, 'P-1')`, productionMember); err != nil {
		t.Fatal(err)
	}
	bind := func(as auth.Principal, client, member string) (gateway.Client, error) {
		return p.db.BindPatientAccessClient(ctx, as, store.Binding{ClientID: client, MemberID: member}, store.Mutation{})
	}
	if _, err := bind(appAdmin, pa.Client.ID, sandboxMember); code(err) != gateway.CodeForbidden {
		t.Errorf("org admin binds: %v", err)
	}
	if _, err := bind(w.op, pa.Client.ID, productionMember); code(err) != gateway.CodeInvalid {
		t.Errorf("production member: %v", err)
	}
	if _, err := bind(w.op, sb.Client.ID, sandboxMember); code(err) != gateway.CodeInvalid {
		t.Errorf("provider client: %v", err)
	}
	if _, err := bind(w.op, "nope", sandboxMember); code(err) != gateway.CodeNotFound {
		t.Errorf("unknown client: %v", err)
	}
	b, err := bind(w.op, pa.Client.ID, sandboxMember)
	if err != nil || b.BoundMemberID == nil || *b.BoundMemberID != sandboxMember {
		t.Errorf("bind: %+v %v", b, err)
	}
	if _, err := create(appAdmin, app.ID, gateway.EnvProduction, gateway.PatientAccess, "app-prod"); code(err) != gateway.CodeForbidden {
		t.Errorf("production Patient Access: %v", err)
	}
}

// TestCreateClientTable runs DESIGN.md §1's table through the store for an
// approved organization of each type (the policy's own table test covers
// every status too).
func TestCreateClientTable(t *testing.T) {
	t.Parallel()
	p := newPortal(t)
	ctx := t.Context()
	for _, typ := range []gateway.OrganizationType{gateway.OrgProviderHealthSystem, gateway.OrgAccountableCareOrganization,
		gateway.OrgConsumerApplication, gateway.OrgPayer, gateway.OrgServiceProviderOther, gateway.OrgEHRSoftware} {
		admin, org := p.register("admin-"+strings.ToLower(string(typ))+"@x.test", typ)
		if _, err := p.db.ExecContext(ctx, `UPDATE organizations SET status = 'PRODUCTION' WHERE id = $1`, org.ID); err != nil {
			t.Fatal(err)
		}
		for _, env := range []gateway.Environment{gateway.EnvSandbox, gateway.EnvProduction} {
			for _, at := range []gateway.AccessType{gateway.ProviderAccess, gateway.PatientAccess} {
				want := ""
				if !slices.Contains(auth.AllowedAccessTypes(typ, env), at) {
					want = gateway.CodeForbidden
				}
				_, err := p.db.CreatePortalClient(ctx, admin, store.PortalClient{OrganizationID: org.ID, Name: string(env) + string(at),
					Environment: env, AccessType: at}, false, store.Mutation{})
				if code(err) != want {
					t.Errorf("%s %s %s: %v, want %q", typ, env, at, err, want)
				}
			}
		}
	}
}

func TestAttributionAndGroups(t *testing.T) {
	t.Parallel()
	p := newPortal(t)
	ctx := t.Context()
	p.seedSandbox(60)
	op := p.person("op@payer.test", true)
	admin, org := p.register("admin@clinic.test", gateway.OrgProviderHealthSystem)
	members := make([]string, 3)
	for i := range members {
		members[i] = newUUID()
		if _, err := p.db.ExecContext(ctx, `INSERT INTO members (id, member_identifier) VALUES ($1, $2)`, members[i], "PM-"+strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	today := gateway.DateOf(time.Now())
	attribute := func(as auth.Principal, in store.NewAttribution) (gateway.Attribution, error) {
		return p.db.AttributeMember(ctx, as, in, store.Mutation{Name: "attributeMember"})
	}
	if _, err := attribute(admin, store.NewAttribution{MemberID: members[0], OrganizationID: org.ID, PeriodStart: today}); code(err) != gateway.CodeForbidden {
		t.Errorf("org admin attributes: %v", err)
	}
	_, err := attribute(op, store.NewAttribution{MemberID: "x", OrganizationID: newUUID(), PractitionerNPI: "1234567890", PeriodStart: today, PeriodEnd: today.AddDays(-1)})
	if got := fieldPaths(t, err); !slices.Equal(got, []string{"input.periodEnd", "input.practitionerNpi"}) {
		t.Errorf("invalid input: %v", got)
	}
	_, err = attribute(op, store.NewAttribution{MemberID: "x", OrganizationID: newUUID(), PeriodStart: today})
	if got := fieldPaths(t, err); !slices.Equal(got, []string{"input.memberId", "input.organizationId"}) {
		t.Errorf("unknown member and organization: %v", got)
	}
	var attributions []gateway.Attribution
	for i, m := range members {
		a, err := attribute(op, store.NewAttribution{MemberID: m, OrganizationID: org.ID, PeriodStart: today.AddDays(-10 * i)})
		if err != nil || a.Source != gateway.SourceOperator || a.Sandbox {
			t.Fatalf("attribute: %+v %v", a, err)
		}
		attributions = append(attributions, a)
	}
	groups := func(as auth.Principal, org string) map[gateway.Environment]int {
		t.Helper()
		gs, err := p.db.AttributionGroups(ctx, as, org)
		if err != nil {
			t.Fatal(err)
		}
		out := map[gateway.Environment]int{}
		for _, g := range gs {
			out[g.Environment] = g.MemberCount
		}
		return out
	}
	// Production counts only once the organization is in-network.
	if g := groups(admin, ""); g[gateway.EnvProduction] != 0 || g[gateway.EnvSandbox] == 0 {
		t.Errorf("groups before in-network: %v", g)
	}
	if _, err := p.db.SetOrganizationInNetworkAs(ctx, admin, store.SetInNetwork{OrganizationID: org.ID, InNetwork: true}, store.Mutation{}); code(err) != gateway.CodeForbidden {
		t.Errorf("org admin sets in-network: %v", err)
	}
	if _, err := p.db.SetOrganizationInNetworkAs(ctx, op, store.SetInNetwork{OrganizationID: org.ID, InNetwork: true}, store.Mutation{}); err != nil {
		t.Fatal(err)
	}
	g := groups(admin, "")
	if g[gateway.EnvProduction] != 3 {
		t.Errorf("production group %v, want 3", g)
	}
	sandboxCount := g[gateway.EnvSandbox]
	// An opted-out member is not counted, and no count of them exists.
	if _, err := p.db.ExecContext(ctx, `INSERT INTO provider_access_opt_outs (member_id) VALUES ($1)`, members[1]); err != nil {
		t.Fatal(err)
	}
	if g := groups(op, org.ID); g[gateway.EnvProduction] != 2 || g[gateway.EnvSandbox] != sandboxCount {
		t.Errorf("after an opt-out: %v", g)
	}
	// Ending an attribution ends its count.
	ended, err := p.db.EndAttribution(ctx, op, store.EndAttributionInput{AttributionID: attributions[0].ID}, store.Mutation{})
	if err != nil || ended.EndedAt == nil {
		t.Fatalf("end: %+v %v", ended, err)
	}
	if _, err := p.db.EndAttribution(ctx, op, store.EndAttributionInput{AttributionID: attributions[2].ID, PeriodEnd: today.AddDays(-30)}, store.Mutation{}); code(err) != gateway.CodeInvalid {
		t.Errorf("end before start: %v", err)
	}
	if g := groups(admin, ""); g[gateway.EnvProduction] != 1 {
		t.Errorf("after ending one: %v", g)
	}
	// A Provider Access client sees only its own environment's group; other organizations none.
	prov := auth.ClientPrincipal(gateway.APIClient{ID: "c1", OrganizationID: org.ID, Environment: gateway.EnvSandbox, AccessType: gateway.ProviderAccess}, auth.Scopes{All: true})
	if g := groups(prov, ""); len(g) != 1 || g[gateway.EnvSandbox] != sandboxCount {
		t.Errorf("client's groups %v", g)
	}
	otherAdmin, _ := p.register("admin@other.test", gateway.OrgProviderHealthSystem)
	if _, err := p.db.AttributionGroups(ctx, otherAdmin, org.ID); code(err) != gateway.CodeNotFound {
		t.Errorf("another org's groups: %v", err)
	}
}

func TestRosterMatching(t *testing.T) {
	t.Parallel()
	p := newPortal(t)
	ctx := t.Context()
	op := p.person("op@payer.test", true)
	admin, org := p.register("admin@clinic.test", gateway.OrgProviderHealthSystem)
	ins := func(ident, given, family, birth, gender string) string {
		id := newUUID()
		if _, err := p.db.ExecContext(ctx, `INSERT INTO members (id, member_identifier, given_name, family_name, birth_date, gender)
			VALUES ($1, $2, $3, $4, $5, $6)`, id, ident, given, family, birth, gender); err != nil {
			t.Fatal(err)
		}
		return id
	}
	alice := ins("M-ALICE", "Alice", "Able", "1980-01-02", "FEMALE")
	bruno := ins("M-BRUNO", "Bruno", "Baker", "1975-05-06", "MALE")
	ins("M-TWIN1", "Chris", "Twin", "1990-03-04", "OTHER")
	ins("M-TWIN2", "Chris", "Twin", "1990-03-04", "OTHER")
	date := func(s string) gateway.Date { d, _ := gateway.ParseDate(s); return d }
	today := gateway.DateOf(time.Now())
	rows := []store.NewRosterRow{
		{MemberIdentifier: "M-ALICE"},
		{GivenName: "bruno", FamilyName: "BAKER", BirthDate: date("1975-05-06"), Gender: gateway.GenderMale},
		{GivenName: "Chris", FamilyName: "Twin", BirthDate: date("1990-03-04"), Gender: gateway.GenderOther},
		{GivenName: "Dana"},
		{MemberIdentifier: "M-NOBODY"},
		{MemberIdentifier: "M-ALICE", GivenName: "Alice"},
		{GivenName: "Eve", FamilyName: "Future", BirthDate: today.AddDays(3), Gender: gateway.GenderFemale},
		{MemberIdentifier: "M-BRUNO", GivenName: "Wrong", FamilyName: "Name", BirthDate: date("2000-01-01"), Gender: gateway.GenderFemale},
	}
	in := store.NewRoster{OrganizationID: org.ID, PeriodStart: today, Rows: rows}
	r, err := p.db.SubmitRoster(ctx, admin, in, store.Mutation{Name: "submitRoster"})
	if err != nil {
		t.Fatal(err)
	}
	type outcome struct {
		status gateway.RosterRowStatus
		reason string
	}
	want := []outcome{
		{gateway.RosterPending, ""},
		{gateway.RosterPending, ""},
		{gateway.RosterUnmatched, gateway.RosterReasonNoMatch}, // two members match: no match, and not said why
		{gateway.RosterUnmatched, gateway.RosterReasonMissingFields},
		{gateway.RosterUnmatched, gateway.RosterReasonNoMatch},
		{gateway.RosterUnmatched, gateway.RosterReasonDuplicateRow},
		{gateway.RosterUnmatched, gateway.RosterReasonInvalidValue},
		{gateway.RosterUnmatched, gateway.RosterReasonDuplicateRow}, // the identifier wins over demographics: Bruno again
	}
	if len(r.Rows) != len(want) || r.Environment != gateway.EnvProduction {
		t.Fatalf("roster %+v", r)
	}
	for i, row := range r.Rows {
		if got := (outcome{row.Status, row.Reason}); got != want[i] {
			t.Errorf("row %d: %v, want %v", i+1, got, want[i])
		}
		if row.MatchedMemberID != nil || row.DemographicsAgree != nil || row.MatchMethod != nil {
			t.Errorf("row %d shows the provider match details", i+1)
		}
	}
	// The operator sees the matches and decides.
	full, err := p.db.RosterFor(ctx, op, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if m := full.Rows[0]; m.MatchedMemberID == nil || *m.MatchedMemberID != alice || m.MatchMethod == nil || *m.MatchMethod != gateway.MatchIdentifier {
		t.Errorf("row 1 for operators %+v", m)
	}
	if m := full.Rows[1]; m.MatchedMemberID == nil || *m.MatchedMemberID != bruno || m.MatchMethod == nil || *m.MatchMethod != gateway.MatchDemographics {
		t.Errorf("row 2 for operators %+v", m)
	}
	if own, err := p.db.RosterFor(ctx, admin, r.ID); err != nil || own.Rows[0].MatchedMemberID != nil {
		t.Errorf("provider's read %v", err)
	}
	otherAdmin, _ := p.register("admin@other.test", gateway.OrgProviderHealthSystem)
	if _, err := p.db.RosterFor(ctx, otherAdmin, r.ID); code(err) != gateway.CodeNotFound {
		t.Errorf("another org's roster: %v", err)
	}
	decide := func(as auth.Principal, row string, confirm bool, reason string) (gateway.RosterRow, error) {
		return p.db.ConfirmRosterMatch(ctx, as, store.RosterDecision{RosterRowID: row, Confirm: confirm, Reason: reason}, store.Mutation{})
	}
	if _, err := decide(admin, full.Rows[0].ID, true, ""); code(err) != gateway.CodeForbidden {
		t.Errorf("provider confirms: %v", err)
	}
	row, err := decide(op, full.Rows[0].ID, true, "")
	if err != nil || row.Status != gateway.RosterConfirmed || row.AttributionID == nil {
		t.Fatalf("confirm: %+v %v", row, err)
	}
	if n := p.count(`SELECT count(*) FROM attributions WHERE member_id = $1 AND organization_id = $2 AND source = 'ROSTER' AND NOT sandbox`, alice, org.ID); n != 1 {
		t.Errorf("%d roster attributions", n)
	}
	if _, err := decide(op, full.Rows[0].ID, true, ""); code(err) != gateway.CodeConflict {
		t.Errorf("confirm twice: %v", err)
	}
	if _, err := decide(op, full.Rows[1].ID, false, ""); code(err) != gateway.CodeInvalid {
		t.Errorf("reject without reason: %v", err)
	}
	if row, err := decide(op, full.Rows[1].ID, false, "not our patient"); err != nil || row.Status != gateway.RosterRejected {
		t.Errorf("reject: %+v %v", row, err)
	}
	if _, err := decide(op, full.Rows[2].ID, true, ""); code(err) != gateway.CodeConflict {
		t.Errorf("confirm an unmatched row: %v", err)
	}
	if _, err := p.db.SubmitRoster(ctx, admin, store.NewRoster{OrganizationID: org.ID, Rows: rows}, store.Mutation{}); code(err) != gateway.CodeInvalid {
		t.Errorf("no period: %v", err)
	}
	appAdmin, app := p.register("admin@app.test", gateway.OrgConsumerApplication)
	if _, err := p.db.SubmitRoster(ctx, appAdmin, store.NewRoster{OrganizationID: app.ID, PeriodStart: today, Rows: rows}, store.Mutation{}); code(err) != gateway.CodeForbidden {
		t.Errorf("a consumer app's roster: %v", err)
	}
}

func TestProviderAccessOptOut(t *testing.T) {
	t.Parallel()
	p := newPortal(t)
	ctx := t.Context()
	op := p.person("op@payer.test", true)
	_, org := p.register("admin@clinic.test", gateway.OrgProviderHealthSystem)
	member, other := newUUID(), newUUID()
	for i, id := range []string{member, other} {
		if _, err := p.db.ExecContext(ctx, `INSERT INTO members (id, member_identifier, sandbox) VALUES ($1, $2, true)`, id, "S-"+strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
		if _, err := p.db.ExecContext(ctx, `INSERT INTO attributions (id, member_id, organization_id, period_start, source, sandbox)
			VALUES ($1, $2, $3, '2020-01-01', 'SANDBOX', true)`, newUUID(), id, org.ID); err != nil {
			t.Fatal(err)
		}
	}
	provider := auth.ClientPrincipal(gateway.APIClient{ID: "prov", OrganizationID: org.ID, Environment: gateway.EnvSandbox,
		AccessType: gateway.ProviderAccess}, auth.Scopes{All: true})
	app := auth.ClientPrincipal(gateway.APIClient{ID: "app", OrganizationID: newUUID(), Environment: gateway.EnvSandbox,
		AccessType: gateway.PatientAccess, BoundMemberID: &member}, auth.Scopes{All: true})
	set := func(as auth.Principal, in store.OptOutRequest) (gateway.ProviderAccessOptOut, error) {
		return p.db.SetProviderAccessOptOut(ctx, as, in, store.Mutation{Name: "setProviderAccessOptOut"})
	}
	visible := func(as auth.Principal, id string) bool {
		_, err := p.db.MemberByID(ctx, as, id)
		return err == nil
	}
	if !visible(provider, member) {
		t.Fatal("attributed member not visible")
	}
	tests := []struct {
		name string
		as   auth.Principal
		in   store.OptOutRequest
		want string
	}{
		{"a provider may not", provider, store.OptOutRequest{MemberID: member, OptedOut: true, RequestedBy: gateway.RequestedByMember}, gateway.CodeForbidden},
		{"another member's app", app, store.OptOutRequest{MemberID: other, OptedOut: true, RequestedBy: gateway.RequestedByMember}, gateway.CodeNotFound},
		{"a representative needs a name", op, store.OptOutRequest{MemberID: member, OptedOut: true, RequestedBy: gateway.RequestedByPersonalRepresentative}, gateway.CodeInvalid},
		{"an unknown requester", op, store.OptOutRequest{MemberID: member, OptedOut: true, RequestedBy: "NEIGHBOR"}, gateway.CodeInvalid},
		{"an unknown member", op, store.OptOutRequest{MemberID: newUUID(), OptedOut: true, RequestedBy: gateway.RequestedByMember}, gateway.CodeNotFound},
	}
	for _, tt := range tests {
		if _, err := set(tt.as, tt.in); code(err) != tt.want {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}
	// The member opts out through their own app: gone for the provider at once, still theirs.
	st, err := set(app, store.OptOutRequest{MemberID: member, OptedOut: true, RequestedBy: gateway.RequestedByMember})
	if err != nil || !st.OptedOut || len(st.History) != 1 || st.History[0].RecordedBy != "client:app" {
		t.Fatalf("opt out: %+v %v", st, err)
	}
	if visible(provider, member) || !visible(app, member) || !visible(provider, other) {
		t.Error("after the opt-out the provider must not see the member; the app must")
	}
	// A representative opts them back in; the history is kept, newest first.
	st, err = set(op, store.OptOutRequest{MemberID: member, OptedOut: false, RequestedBy: gateway.RequestedByPersonalRepresentative, RepresentativeName: "Pat Parent"})
	if err != nil || st.OptedOut || len(st.History) != 2 || st.History[0].RepresentativeName != "Pat Parent" || st.History[0].RecordedBy != "op@payer.test" {
		t.Fatalf("opt back in: %+v %v", st, err)
	}
	if !visible(provider, member) {
		t.Error("opted back in, still invisible")
	}
	if _, err := p.db.OptOutFor(ctx, provider, member); code(err) != gateway.CodeNotFound {
		t.Errorf("provider reads the history: %v", err)
	}
	if h, err := p.db.OptOutFor(ctx, app, member); err != nil || len(h.History) != 2 {
		t.Errorf("member's app reads the history: %v", err)
	}
}

func TestOutboxDelivery(t *testing.T) {
	t.Parallel()
	p := newPortal(t)
	ctx := t.Context()
	op := p.person("op@payer.test", true)
	admin, org := p.register("admin@clinic.test", gateway.OrgProviderHealthSystem)
	for _, email := range []string{"a@clinic.test", "b@clinic.test"} {
		if _, err := p.db.InviteUser(ctx, admin, store.NewInvitation{OrganizationID: org.ID, Email: email}, store.Mutation{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := p.db.Outbox(ctx, admin, nil, store.Page{First: 10}); code(err) != gateway.CodeForbidden {
		t.Errorf("org admin reads the outbox: %v", err)
	}
	unsent := true
	q, err := p.db.Outbox(ctx, op, &unsent, store.Page{First: 1})
	if err != nil || len(q.Items) != 1 || !q.HasNextPage {
		t.Fatalf("outbox page %+v %v", q, err)
	}
	next, err := p.db.Outbox(ctx, op, &unsent, store.Page{First: 10, After: q.Cursors[0]})
	if err != nil || len(next.Items) != 1 || next.Items[0].ID == q.Items[0].ID {
		t.Errorf("second page %+v %v", next, err)
	}
	var tried []string
	sent, err := p.db.DeliverOutbox(ctx, 10, func(m gateway.OutboxMessage) error {
		tried = append(tried, m.To)
		if m.To == "a@clinic.test" {
			return errors.New("550 mailbox unavailable")
		}
		return nil
	})
	if err != nil || sent != 1 || len(tried) != 2 {
		t.Fatalf("deliver: %d %v %v", sent, tried, err)
	}
	// The failed one waits for its backoff; nothing is due now.
	if sent, err := p.db.DeliverOutbox(ctx, 10, func(gateway.OutboxMessage) error { t.Error("not due"); return nil }); err != nil || sent != 0 {
		t.Errorf("redeliver: %d %v", sent, err)
	}
	q, _ = p.db.Outbox(ctx, op, &unsent, store.Page{First: 10})
	if len(q.Items) != 1 || q.Items[0].Attempts != 1 || q.Items[0].LastError != "550 mailbox unavailable" {
		t.Errorf("unsent after delivery %+v", q.Items)
	}
}

func TestEducationalMaterials(t *testing.T) {
	t.Parallel()
	p := newPortal(t)
	ctx := t.Context()
	for _, lang := range []string{"en", "es"} {
		ms, err := p.db.EducationalMaterials(ctx, gateway.AudienceMember, lang)
		if err != nil || len(ms) != 1 {
			t.Fatalf("member material in %s: %v %v", lang, ms, err)
		}
		// 42 CFR 422.121(a)(4)(ii): benefits, opt-out and opting back in, in plain language.
		body := strings.ToLower(ms[0].Body)
		words := map[string][]string{"en": {"opt out", "opt back in", "share", "personal representative"},
			"es": {"dejar de compartir", "volver a compartir", "compartimos", "representante personal"}}[lang]
		for _, w := range words {
			if !strings.Contains(body, w) {
				t.Errorf("%s member material lacks %q", lang, w)
			}
		}
		if ms[0].Citation != "42 CFR 422.121(a)(4)(ii)" {
			t.Errorf("citation %q", ms[0].Citation)
		}
	}
	ms, err := p.db.EducationalMaterials(ctx, gateway.AudienceProvider, "")
	if err != nil || len(ms) != 2 || ms[0].ID != "provider-requesting-data" || ms[1].ID != "provider-attribution" {
		t.Errorf("provider material %v %v", ms, err)
	}
	all, _ := p.db.EducationalMaterials(ctx, "", "")
	if len(all) != 4 {
		t.Errorf("%d materials", len(all))
	}
}

// TestMutationIdempotentUnderConcurrentRetry sends one call eight times at
// once with the same clientMutationId: one write, one answer.
func TestMutationIdempotentUnderConcurrentRetry(t *testing.T) {
	t.Parallel()
	p := newPortal(t)
	admin := p.person("admin@clinic.test", false)
	in := store.NewOrganization{Name: "Clinic", Type: gateway.OrgProviderHealthSystem, NPI: portalNPI(), TIN: "123456789"}
	m := store.Mutation{Name: "registerOrganization", ClientMutationID: "once"}
	ids := make(chan string, 8)
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			org, err := p.db.RegisterOrganization(context.Background(), admin, in, m)
			ids <- org.ID
			errs <- err
		}()
	}
	var first string
	for range 8 {
		id, err := <-ids, <-errs
		if err != nil {
			t.Fatal(err)
		}
		if first == "" {
			first = id
		}
		if id != first {
			t.Errorf("answers differ: %s vs %s", id, first)
		}
	}
	if n := p.count(`SELECT count(*) FROM organizations WHERE NOT synthetic`); n != 1 {
		t.Errorf("%d organizations written", n)
	}
	// Another principal's identical key is its own.
	other := p.person("other@clinic.test", false)
	in.NPI = portalNPI()
	if org, err := p.db.RegisterOrganization(context.Background(), other, in, m); err != nil || org.ID == first {
		t.Errorf("another principal's call: %v", err)
	}
}
