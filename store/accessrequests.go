package store

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"example.com/gateway/auth"
	"example.com/gateway/gateway"
)

// Production access requests (DESIGN.md §2 steps 3–4): a staged form saved
// as a resumable draft, submitted when every stage is complete, reviewed by
// an operator. Every transition is kept with who and when, and reported by
// email.

const accessRequestColumns = `id, organization_id, status, stages, created_by, created_at, submitted_at, decided_at, last_updated`

// Field limits of the stages.
const (
	maxShortText = 200
	maxLongText  = 4000
)

var (
	statePattern  = regexp.MustCompile(`^[A-Z]{2}$`)
	zipPattern    = regexp.MustCompile(`^[0-9]{5}(-[0-9]{4})?$`)
	phonePattern  = regexp.MustCompile(`^\+?[0-9 ().-]{7,25}$`)
	contactFields = []string{"technical", "security", "legal"}
)

// validateStages checks the stages of a request of org. With complete
// false (a draft being saved) only the values given are checked; with
// complete true (a submission) every required field must be there too.
// Every problem is reported, each at its path ("contacts.security.email").
func validateStages(s gateway.AccessRequestStages, org gateway.Organization, complete bool) error {
	var fe gateway.FieldErrors
	required := func(path, v string) bool {
		if strings.TrimSpace(v) != "" {
			return true
		}
		if complete {
			fe.Add(path, "is required")
		}
		return false
	}
	stage := func(path string, present bool) bool {
		if !present && complete {
			fe.Add(path, "is required")
		}
		return present
	}

	if o := s.Organization; stage("organization", o != nil) {
		if required("organization.legalName", o.LegalName) {
			checkText(&fe, "organization.legalName", o.LegalName, false, maxShortText)
		}
		switch {
		case o.Type == "":
			required("organization.type", "")
		case o.Type != org.Type:
			// The type decides the client access types (DESIGN.md §1): it is
			// the registered one, never changed by a request.
			fe.Add("organization.type", "must be the organization's registered type, %s", org.Type)
		}
		if required("organization.npi", o.NPI) {
			n := len(fe)
			checkNPI(&fe, "organization.npi", o.NPI)
			if len(fe) == n && o.NPI != org.NPI {
				// The request is for the registered organization NPI, which its
				// attribution lists are keyed on.
				fe.Add("organization.npi", "must be the organization's registered NPI")
			}
		}
		if required("organization.tin", o.TIN) {
			if _, ok := gateway.NormalizeTIN(o.TIN); !ok {
				fe.Add("organization.tin", "must be 9 digits (e.g. 123456789 or 12-3456789)")
			}
		}
		if a := o.Address; stage("organization.address", a != nil) {
			if required("organization.address.line1", a.Line1) {
				checkText(&fe, "organization.address.line1", a.Line1, false, maxShortText)
			}
			checkText(&fe, "organization.address.line2", a.Line2, false, maxShortText)
			if required("organization.address.city", a.City) {
				checkText(&fe, "organization.address.city", a.City, false, maxShortText)
			}
			if required("organization.address.state", a.State) && !statePattern.MatchString(a.State) {
				fe.Add("organization.address.state", "must be a two-letter state code")
			}
			if required("organization.address.postalCode", a.PostalCode) && !zipPattern.MatchString(a.PostalCode) {
				fe.Add("organization.address.postalCode", "must be a ZIP code (12345 or 12345-6789)")
			}
		}
	}

	if c := s.Contacts; stage("contacts", c != nil) {
		for i, ct := range []*gateway.Contact{c.Technical, c.Security, c.Legal} {
			path := "contacts." + contactFields[i]
			if !stage(path, ct != nil) {
				continue
			}
			if required(path+".name", ct.Name) {
				checkText(&fe, path+".name", ct.Name, false, maxShortText)
			}
			if required(path+".email", ct.Email) && !validEmail(ct.Email) {
				fe.Add(path+".email", "is not an email address")
			}
			if required(path+".phone", ct.Phone) && !phonePattern.MatchString(ct.Phone) {
				fe.Add(path+".phone", "is not a phone number")
			}
		}
	}

	if u := s.Usage; stage("usage", u != nil) {
		if required("usage.intendedUse", u.IntendedUse) {
			checkText(&fe, "usage.intendedUse", u.IntendedUse, false, maxLongText)
		}
		if len(u.ResourceTypes) == 0 && complete {
			fe.Add("usage.resourceTypes", "must name at least one resource type")
		}
		for i, t := range u.ResourceTypes {
			if !slices.Contains(auth.ResourceTypes, t) {
				fe.Add(fmt.Sprintf("usage.resourceTypes.%d", i), "is not a resource type of the Provider Access API (%s)",
					strings.Join(auth.ResourceTypes, ", "))
			}
		}
		switch {
		case u.ExpectedMembers == nil:
			if complete {
				fe.Add("usage.expectedMembers", "is required")
			}
		case *u.ExpectedMembers < 1:
			fe.Add("usage.expectedMembers", "must be at least 1")
		}
		if required("usage.treatmentRelationship", u.TreatmentRelationship) {
			checkText(&fe, "usage.treatmentRelationship", u.TreatmentRelationship, false, maxLongText)
		}
	}

	if a := s.Attestation; stage("attestation", a != nil) {
		if !a.HIPAACompliance && complete {
			fe.Add("attestation.hipaaCompliance", "must be attested")
		}
		if !a.TermsAccepted && complete {
			fe.Add("attestation.termsAccepted", "must be accepted")
		}
		if required("attestation.signerName", a.SignerName) {
			checkText(&fe, "attestation.signerName", a.SignerName, false, maxShortText)
		}
		if required("attestation.signerTitle", a.SignerTitle) {
			checkText(&fe, "attestation.signerTitle", a.SignerTitle, false, maxShortText)
		}
	}
	return fe.Err()
}

// SaveAccessRequestInput is the input of SaveAccessRequest: each stage
// given replaces that stage of the draft; stages not given are kept.
type SaveAccessRequestInput struct {
	OrganizationID string
	Stages         gateway.AccessRequestStages
}

const latestAccessRequestSQL = `
SELECT ` + accessRequestColumns + ` FROM access_requests
WHERE organization_id = $1 ORDER BY created_at DESC, id DESC LIMIT 1`

// latestAccessRequest returns the organization's latest request; NOT_FOUND
// when it has none.
func latestAccessRequest(ctx context.Context, q sqlx.QueryerContext, orgID string) (gateway.AccessRequest, error) {
	var r gateway.AccessRequest
	err := sqlx.GetContext(ctx, q, &r, latestAccessRequestSQL, orgID)
	return r, notFound(err)
}

const insertAccessRequestSQL = `
INSERT INTO access_requests (id, organization_id, stages, created_by) VALUES ($1, $2, $3::jsonb, $4)`

const updateAccessRequestStagesSQL = `UPDATE access_requests SET stages = $2::jsonb WHERE id = $1`

const insertTransitionSQL = `
INSERT INTO access_request_transitions (id, access_request_id, from_status, to_status, actor_user_id, reason, stages)
VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)`

// SaveAccessRequest saves stages of the organization's production access
// request as a resumable draft: the first save creates the request (its
// organization stage filled in from the registration), later saves replace
// the stages they give. A request that was returned for changes or rejected
// may be edited the same way and submitted again. The values given are
// checked; a stage with an invalid value is not saved, and neither is any
// other stage of the same call (BAD_USER_INPUT per field). Returns CONFLICT
// while the request is under review or once it is approved.
func (db *DB) SaveAccessRequest(ctx context.Context, p auth.Principal, in SaveAccessRequestInput, m Mutation) (gateway.AccessRequest, error) {
	id, _, err := mutate(ctx, db, p, m, in, func(t *portalTx) (string, error) {
		if err := t.actor.Can(auth.RightSaveAccessRequest, in.OrganizationID); err != nil {
			return "", err
		}
		org, err := lockOrganization(ctx, t.Tx, in.OrganizationID)
		if err != nil {
			return "", err
		}
		if s := in.Stages.Organization; s != nil && s.Type == "" {
			s.Type = org.Type // the registered type: a request never changes it
		}
		if err := validateStages(in.Stages, org, false); err != nil {
			return "", err
		}
		r, err := latestAccessRequest(ctx, t.Tx, org.ID)
		switch code := gateway.ErrorCode(err); {
		case code == gateway.CodeNotFound:
			r = gateway.AccessRequest{ID: uuid.NewString(), Status: gateway.AccessRequestDraft, Stages: gateway.AccessRequestStages{
				Organization: &gateway.OrganizationStage{LegalName: org.Name, Type: org.Type, NPI: org.NPI, TIN: org.TIN},
			}}
			if _, err := t.ExecContext(ctx, insertAccessRequestSQL, r.ID, org.ID, r.Stages, t.userID()); err != nil {
				return "", fmt.Errorf("insert access request: %w", err)
			}
			if _, err := t.ExecContext(ctx, insertTransitionSQL, uuid.New(), r.ID, nil, r.Status, t.userID(), "", nil); err != nil {
				return "", err
			}
		case err != nil:
			return "", err
		case !r.Status.Editable():
			return "", accessRequestConflict(r.Status)
		}
		merge(&r.Stages, in.Stages)
		if _, err := t.ExecContext(ctx, updateAccessRequestStagesSQL, r.ID, r.Stages); err != nil {
			return "", fmt.Errorf("save access request: %w", err)
		}
		return r.ID, nil
	})
	if err != nil {
		return gateway.AccessRequest{}, err
	}
	return db.accessRequestByID(ctx, id)
}

// merge replaces the stages of dst that src gives.
func merge(dst *gateway.AccessRequestStages, src gateway.AccessRequestStages) {
	if src.Organization != nil {
		dst.Organization = src.Organization
	}
	if src.Contacts != nil {
		dst.Contacts = src.Contacts
	}
	if src.Usage != nil {
		dst.Usage = src.Usage
	}
	if src.Attestation != nil {
		dst.Attestation = src.Attestation
	}
}

func accessRequestConflict(s gateway.AccessRequestStatus) error {
	switch s {
	case gateway.AccessRequestPendingReview:
		return &gateway.Error{Code: gateway.CodeConflict, Message: "the access request is under review and cannot be changed"}
	case gateway.AccessRequestApproved:
		return &gateway.Error{Code: gateway.CodeConflict, Message: "the access request is already approved"}
	}
	return &gateway.Error{Code: gateway.CodeConflict, Message: "the access request is " + string(s)}
}

const accessRequestOrganizationSQL = `SELECT organization_id FROM access_requests WHERE id = $1`

const lockAccessRequestSQL = `SELECT ` + accessRequestColumns + ` FROM access_requests WHERE id = $1 FOR UPDATE`

// lockAccessRequest locks a request and its organization within tx, the
// organization first, as every writer of an organization's requests does
// (so that a save and a submission cannot deadlock). NOT_FOUND when there
// is no such request.
func lockAccessRequest(ctx context.Context, tx *sqlx.Tx, id string) (gateway.AccessRequest, gateway.Organization, error) {
	var r gateway.AccessRequest
	var orgID string
	if !isUUID(id) {
		return r, gateway.Organization{}, gateway.ErrNotFound
	}
	if err := tx.GetContext(ctx, &orgID, accessRequestOrganizationSQL, id); err != nil {
		return r, gateway.Organization{}, notFound(err)
	}
	org, err := lockOrganization(ctx, tx, orgID)
	if err != nil {
		return r, org, err
	}
	err = tx.GetContext(ctx, &r, lockAccessRequestSQL, id)
	return r, org, notFound(err)
}

const submitAccessRequestSQL = `
UPDATE access_requests SET status = 'PENDING_REVIEW', submitted_at = now(), decided_at = NULL WHERE id = $1`

const organizationPendingSQL = `
UPDATE organizations SET status = 'PENDING_REVIEW' WHERE id = $1 AND status = 'SANDBOX'`

// SubmitAccessRequest submits the request for review. Every stage is
// validated and every missing or invalid field reported at once
// (BAD_USER_INPUT, one per field with its path); nothing changes then.
// Submitting attests for the organization, so only its administrators may.
// The organization is PENDING_REVIEW until the decision; its sandbox
// clients keep working. Returns CONFLICT for a request under review or
// approved.
func (db *DB) SubmitAccessRequest(ctx context.Context, p auth.Principal, requestID string, m Mutation) (gateway.AccessRequest, error) {
	id, _, err := mutate(ctx, db, p, m, requestID, func(t *portalTx) (string, error) {
		r, org, err := lockAccessRequest(ctx, t.Tx, requestID)
		if err != nil {
			return "", err
		}
		if err := t.actor.Can(auth.RightSubmitAccessRequest, r.OrganizationID); err != nil {
			return "", err
		}
		next, ok := r.Status.Next(gateway.EventSubmit)
		if !ok {
			return "", accessRequestConflict(r.Status)
		}
		if err := validateStages(r.Stages, org, true); err != nil {
			return "", err
		}
		if _, err := t.ExecContext(ctx, submitAccessRequestSQL, r.ID); err != nil {
			return "", err
		}
		if _, err := t.ExecContext(ctx, organizationPendingSQL, org.ID); err != nil {
			return "", err
		}
		if _, err := t.ExecContext(ctx, insertTransitionSQL, uuid.New(), r.ID, r.Status, next, t.userID(), "", r.Stages); err != nil {
			return "", err
		}
		err = notifyOrganization(ctx, t, org, "Production access request submitted: "+org.Name,
			fmt.Sprintf("%s submitted the production access request of %s (NPI %s) for review.\n\n"+
				"The payer reviews it and tells you the decision by email. Your sandbox clients keep working meanwhile.\n",
				t.recordedBy(), org.Name, org.NPI))
		return r.ID, err
	})
	if err != nil {
		return gateway.AccessRequest{}, err
	}
	return db.accessRequestByID(ctx, id)
}

// Review is the input of ReviewAccessRequest.
type Review struct {
	AccessRequestID string
	Decision        gateway.ReviewDecision
	Reason          string
}

// Validate reports every problem of the input at once: a reason is
// required to reject or return a request.
func (in *Review) Validate() error {
	var fe gateway.FieldErrors
	in.Reason = strings.TrimSpace(in.Reason)
	if !in.Decision.Valid() {
		fe.Add("input.decision", "must be APPROVE, REJECT or REQUEST_CHANGES")
	}
	if in.Decision != gateway.DecisionApprove && in.Reason == "" {
		fe.Add("input.reason", "is required to reject a request or ask for changes")
	}
	checkText(&fe, "input.reason", in.Reason, false, maxLongText)
	return fe.Err()
}

const decideAccessRequestSQL = `UPDATE access_requests SET status = $2, decided_at = now() WHERE id = $1`

const approveOrganizationSQL = `
UPDATE organizations SET status = 'PRODUCTION', name = $2, tin = $3, address = $4::jsonb WHERE id = $1`

const returnOrganizationSQL = `UPDATE organizations SET status = 'SANDBOX' WHERE id = $1 AND status = 'PENDING_REVIEW'`

// ReviewAccessRequest records an operator's decision on a request under
// review: APPROVE makes the organization PRODUCTION (its name, TIN and
// address become those of the approved request), REJECT and
// REQUEST_CHANGES return it to SANDBOX and let it edit and resubmit the
// request. The transition is kept with the operator, the time and the
// reason, and the organization's administrators and the submitter are told
// by email. Returns FORBIDDEN for anyone but operators, CONFLICT when the
// request is not under review (approving twice, say).
func (db *DB) ReviewAccessRequest(ctx context.Context, p auth.Principal, in Review, m Mutation) (gateway.AccessRequest, error) {
	if err := in.Validate(); err != nil {
		return gateway.AccessRequest{}, err
	}
	id, _, err := mutate(ctx, db, p, m, in, func(t *portalTx) (string, error) {
		if err := t.actor.Can(auth.RightReviewAccessRequest, ""); err != nil {
			return "", err
		}
		r, org, err := lockAccessRequest(ctx, t.Tx, in.AccessRequestID)
		if err != nil {
			return "", err
		}
		next, ok := r.Status.Next(in.Decision.Event())
		if !ok {
			if r.Status == gateway.AccessRequestApproved {
				return "", accessRequestConflict(r.Status)
			}
			return "", &gateway.Error{Code: gateway.CodeConflict, Message: "only a request under review can be decided; this one is " + string(r.Status)}
		}
		if _, err := t.ExecContext(ctx, decideAccessRequestSQL, r.ID, next); err != nil {
			return "", err
		}
		if next == gateway.AccessRequestApproved {
			name, tin, addr := org.Name, org.TIN, organizationAddress(nil)
			if s := r.Stages.Organization; s != nil {
				name, addr = s.LegalName, organizationAddress(s.Address)
				if d, ok := gateway.NormalizeTIN(s.TIN); ok {
					tin = d
				}
			}
			_, err = t.ExecContext(ctx, approveOrganizationSQL, org.ID, name, tin, addr)
		} else {
			_, err = t.ExecContext(ctx, returnOrganizationSQL, org.ID)
		}
		if err != nil {
			return "", fmt.Errorf("update organization: %w", err)
		}
		if _, err := t.ExecContext(ctx, insertTransitionSQL, uuid.New(), r.ID, r.Status, next, t.userID(), in.Reason, nil); err != nil {
			return "", err
		}
		subject, body := reviewEmail(org, next, in.Reason)
		to, err := adminEmails(ctx, t.Tx, org.ID)
		if err != nil {
			return "", err
		}
		if submitter, err := submitterEmail(ctx, t.Tx, r.ID); err == nil && submitter != "" {
			to = append(to, submitter)
		}
		return r.ID, queueEmail(ctx, t.Tx, to, subject, body)
	})
	if err != nil {
		return gateway.AccessRequest{}, err
	}
	return db.accessRequestByID(ctx, id)
}

func reviewEmail(org gateway.Organization, to gateway.AccessRequestStatus, reason string) (subject, body string) {
	why := ""
	if reason != "" {
		why = "\nReason given by the reviewer:\n\n" + reason + "\n"
	}
	switch to {
	case gateway.AccessRequestApproved:
		return "Production access approved: " + org.Name,
			"The production access request of " + org.Name + " is approved. Administrators of the organization can now create production API clients in the portal.\n" + why
	case gateway.AccessRequestRejected:
		return "Production access request rejected: " + org.Name,
			"The production access request of " + org.Name + " was rejected. You may correct it and submit it again.\n" + why
	}
	return "Changes requested to the production access request of " + org.Name,
		"The reviewer asks for changes to the production access request of " + org.Name + ". Edit the request in the portal and submit it again.\n" + why
}

const submitterEmailSQL = `
SELECT coalesce(u.email, '') FROM access_request_transitions t LEFT JOIN users u ON u.id = t.actor_user_id
WHERE t.access_request_id = $1 AND t.to_status = 'PENDING_REVIEW'
ORDER BY t.at DESC, t.id DESC LIMIT 1`

func submitterEmail(ctx context.Context, tx *sqlx.Tx, requestID string) (string, error) {
	var e string
	err := tx.GetContext(ctx, &e, submitterEmailSQL, requestID)
	return e, err
}

// notifyOrganization queues an email to the organization's administrators
// and to the person acting.
func notifyOrganization(ctx context.Context, t *portalTx, org gateway.Organization, subject, body string) error {
	to, err := adminEmails(ctx, t.Tx, org.ID)
	if err != nil {
		return err
	}
	if t.user != nil {
		to = append(to, t.user.Email)
	}
	return queueEmail(ctx, t.Tx, to, subject, body)
}

// Reads.

const accessRequestByIDSQL = `SELECT ` + accessRequestColumns + ` FROM access_requests WHERE id = $1`

func (db *DB) accessRequestByID(ctx context.Context, id string) (gateway.AccessRequest, error) {
	var r gateway.AccessRequest
	if !isUUID(id) {
		return r, gateway.ErrNotFound
	}
	err := db.GetContext(ctx, &r, accessRequestByIDSQL, id)
	return r, notFound(err)
}

// AccessRequestFor returns the request if p may see it: the people of its
// organization and operators. NOT_FOUND otherwise.
func (db *DB) AccessRequestFor(ctx context.Context, p auth.Principal, id string) (gateway.AccessRequest, error) {
	a, _, err := db.portalActor(ctx, p)
	if err != nil {
		return gateway.AccessRequest{}, err
	}
	r, err := db.accessRequestByID(ctx, id)
	if err != nil {
		return r, err
	}
	if a.Can(auth.RightReadAccessRequest, r.OrganizationID) != nil {
		return gateway.AccessRequest{}, gateway.ErrNotFound
	}
	return r, nil
}

const accessRequestsPendingSQL = `
SELECT ` + accessRequestColumns + ` FROM access_requests
WHERE ($1::text IS NULL OR status = $1)
  AND ($2::timestamptz IS NULL OR (last_updated, id) < ($2, $3::uuid))
ORDER BY last_updated DESC, id DESC
LIMIT $4`

// AccessRequests lists requests for operators, most recently changed
// first, optionally of one status (PENDING_REVIEW: the review queue).
// Returns FORBIDDEN for anyone else.
func (db *DB) AccessRequests(ctx context.Context, p auth.Principal, status gateway.AccessRequestStatus, page Page) (Paged[*gateway.AccessRequest], error) {
	var out Paged[*gateway.AccessRequest]
	a, _, err := db.portalActor(ctx, p)
	if err != nil {
		return out, err
	}
	if err := a.Can(auth.RightReviewAccessRequest, ""); err != nil {
		return out, err
	}
	var afterTime, afterID any
	if page.After != "" {
		parts, err := parseCursor(page.After, "r", 2)
		if err != nil {
			return out, err
		}
		if afterID, err = uuidCursorPart(parts[1]); err != nil {
			return out, err
		}
		afterTime = parts[0]
	}
	var rows []*gateway.AccessRequest
	if err := db.SelectContext(ctx, &rows, accessRequestsPendingSQL, argString(string(status)), afterTime, afterID, page.First+1); err != nil {
		return out, err
	}
	return pageOf(rows, page, func(r *gateway.AccessRequest) string {
		return pageCursor("r", r.LastUpdated.UTC().Format("2006-01-02T15:04:05.999999Z07:00"), r.ID)
	}), nil
}

const transitionsByRequestsSQL = `
SELECT t.id, t.access_request_id, t.from_status, t.to_status, t.actor_user_id,
  coalesce(u.email, '') AS actor_email, t.reason, t.at
FROM access_request_transitions t LEFT JOIN users u ON u.id = t.actor_user_id
WHERE t.access_request_id = ANY($1::uuid[])
ORDER BY t.access_request_id, t.at, t.id`

// TransitionsByRequests returns the history of each request, oldest
// first, in one statement. The caller has read the requests through
// AccessRequestFor (or a list), which checked that p may see them.
func (db *DB) TransitionsByRequests(ctx context.Context, requestIDs []string) (map[string][]*gateway.AccessRequestTransition, error) {
	var rows []*gateway.AccessRequestTransition
	if err := db.SelectContext(ctx, &rows, transitionsByRequestsSQL, pq.Array(uuids(requestIDs))); err != nil {
		return nil, err
	}
	return groupRowsBy(rows, func(t *gateway.AccessRequestTransition) string { return t.AccessRequestID }), nil
}

// AccessRequestProblems returns what a submission of r, a request of org,
// would report now (nil when every stage is complete), for the portal to
// show while the draft is filled in.
func AccessRequestProblems(r gateway.AccessRequest, org gateway.Organization) gateway.FieldErrors {
	fe, _ := validateStages(r.Stages, org, true).(gateway.FieldErrors)
	return fe
}
