package resolvers

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/99designs/gqlgen/graphql"

	"example.com/gateway/auth"
	"example.com/gateway/gateway"
	"example.com/gateway/graph/model"
	"example.com/gateway/store"
)

// Helpers of the portal's resolvers (portal.resolvers.go): translations of
// inputs to the store's, and of errors to GraphQL's. Permissions, validation
// and writes are the store's (which asks auth/portal.go).

// principal is the caller.
func principal(ctx context.Context) auth.Principal { return requestFrom(ctx).principal }

// mutation identifies the current mutation call for idempotency: the
// schema's field name and the caller's clientMutationId.
func mutation(ctx context.Context, clientMutationID *string) store.Mutation {
	return store.Mutation{Name: graphql.GetFieldContext(ctx).Field.Name, ClientMutationID: deref(clientMutationID)}
}

// fieldErrors reports every problem of a gateway.FieldErrors as an error
// of its own, in order, each with its path in extensions.field; the field
// is then null with no further error. Any other error is returned as is.
func fieldErrors(ctx context.Context, err error) error {
	var fe gateway.FieldErrors
	if !errors.As(err, &fe) || len(fe) == 0 {
		return err
	}
	for _, e := range fe {
		graphql.AddError(ctx, e)
	}
	return nil
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func dateOf(d *gateway.Date) gateway.Date { return deref(d) }

// stagesOf translates the stages of saveAccessRequest; a stage not given
// stays nil (kept as saved).
func stagesOf(in model.SaveAccessRequestInput) gateway.AccessRequestStages {
	var s gateway.AccessRequestStages
	if o := in.Organization; o != nil {
		s.Organization = &gateway.OrganizationStage{LegalName: deref(o.LegalName), Type: deref(o.Type), NPI: deref(o.Npi), TIN: deref(o.Tin)}
		if a := o.Address; a != nil {
			s.Organization.Address = &gateway.Address{Line1: deref(a.Line1), Line2: deref(a.Line2), City: deref(a.City),
				State: deref(a.State), PostalCode: deref(a.PostalCode)}
		}
	}
	if c := in.Contacts; c != nil {
		s.Contacts = &gateway.ContactsStage{Technical: contactOf(c.Technical), Security: contactOf(c.Security), Legal: contactOf(c.Legal)}
	}
	if u := in.Usage; u != nil {
		s.Usage = &gateway.UsageStage{IntendedUse: deref(u.IntendedUse), ResourceTypes: u.ResourceTypes,
			ExpectedMembers: u.ExpectedMembers, TreatmentRelationship: deref(u.TreatmentRelationship)}
	}
	if a := in.Attestation; a != nil {
		s.Attestation = &gateway.AttestationStage{HIPAACompliance: deref(a.HipaaCompliance), TermsAccepted: deref(a.TermsAccepted),
			SignerName: deref(a.SignerName), SignerTitle: deref(a.SignerTitle)}
	}
	return s
}

func contactOf(c *model.ContactInput) *gateway.Contact {
	if c == nil {
		return nil
	}
	return &gateway.Contact{Name: deref(c.Name), Email: deref(c.Email), Phone: deref(c.Phone)}
}

func rosterRowsOf(rows []*model.RosterRowInput) []store.NewRosterRow {
	out := make([]store.NewRosterRow, len(rows))
	for i, r := range rows {
		out[i] = store.NewRosterRow{MemberIdentifier: deref(r.MemberIdentifier), GivenName: deref(r.GivenName),
			FamilyName: deref(r.FamilyName), BirthDate: dateOf(r.BirthDate), Gender: deref(r.Gender),
			PeriodStart: dateOf(r.PeriodStart), PeriodEnd: dateOf(r.PeriodEnd)}
	}
	return out
}

// defaultOverlap is how long a rotated secret keeps working by default.
const defaultOverlap = time.Hour

// secretOf returns a one-time secret for a payload: null when none (a
// retried call, or a client with keys).
func secretOf(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// portalViewer reads the caller's portal view once per request, for all
// the Viewer fields that need it.
func (r *Resolver) portalViewer(ctx context.Context, v *model.Viewer) (store.Viewer, error) {
	return memoized(ctx, v, v.ID, "\x00portalViewer", func(rq *request) (store.Viewer, error) {
		return r.DB.ViewerFor(ctx, rq.principal)
	})
}

// memoized is batched with an explicit key, so that several fields of one
// parent share one read.
func memoized[R any](ctx context.Context, parent any, id, key string, read func(rq *request) (R, error)) (R, error) {
	rq := requestFrom(ctx)
	g := rq.groupOf(parent, id)
	g.mu.Lock()
	if g.reads == nil {
		g.reads = map[string]*batchRead{}
	}
	br := g.reads[key]
	if br == nil {
		br = &batchRead{}
		g.reads[key] = br
	}
	g.mu.Unlock()
	br.once.Do(func() { br.v, br.err = read(rq) })
	v, _ := br.v.(R)
	return v, br.err
}

// Sibling keys of objects that batch reads by two ids: their own and their
// organization's ("id|organizationId").
func siblingKey(id, orgID string) string { return id + "|" + orgID }

func siblingIDs(keys []string) (ids, orgIDs []string) {
	for _, k := range keys {
		id, org, _ := strings.Cut(k, "|")
		ids, orgIDs = append(ids, id), append(orgIDs, org)
	}
	return ids, orgIDs
}

// organizationOf returns the organization orgID of parent (adopted with a
// siblingKey), reading those of all its siblings in one statement.
func (r *Resolver) organizationOf(ctx context.Context, parent any, id, orgID string) (*gateway.Organization, error) {
	orgs, err := batched(ctx, parent, siblingKey(id, orgID), func(rq *request, keys []string) (map[string]*gateway.Organization, error) {
		_, orgIDs := siblingIDs(keys)
		return r.DB.OrganizationsByIDs(ctx, orgIDs)
	})
	if err != nil {
		return nil, err
	}
	if o := orgs[orgID]; o != nil {
		return o, nil
	}
	return nil, gateway.ErrNotFound
}
