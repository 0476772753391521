package resolvers

import (
	"context"

	"github.com/99designs/gqlgen/graphql"

	"example.com/gateway/gateway"
	"example.com/gateway/graph/model"
	"example.com/gateway/store"
)

// Translations of GraphQL arguments into the store's terms.

// selected reports whether the current field's selection includes a field
// named name (through fragments too).
func selected(ctx context.Context, name string) bool {
	for _, f := range graphql.CollectFieldsCtx(ctx, nil) {
		if f.Name == name {
			return true
		}
	}
	return false
}

func memberFilter(f *model.MemberFilter) store.MemberFilter {
	var out store.MemberFilter
	if f == nil {
		return out
	}
	if f.Name != nil {
		out.Name = *f.Name
	}
	if f.Identifier != nil {
		out.Identifier = *f.Identifier
	}
	if f.BirthDate != nil {
		out.BirthDate = *f.BirthDate
	}
	return out
}

// dateRange returns the ends of r; zero ends are open.
func dateRange(r *model.DateRange) (from, to gateway.Date) {
	if r == nil {
		return
	}
	if r.From != nil {
		from = *r.From
	}
	if r.To != nil {
		to = *r.To
	}
	return
}

func claimFilter(f *model.ClaimFilter) store.ClaimFilter {
	var out store.ClaimFilter
	if f == nil {
		return out
	}
	out.Types = f.Types
	if f.Status != nil {
		out.Status = *f.Status
	}
	out.From, out.To = dateRange(f.ServicePeriod)
	return out
}

// clinical resolves the connection of a member's clinical resources of typ.
func (r *memberResolver) clinical(ctx context.Context, obj *gateway.Member, typ gateway.ClinicalType, first *int, after *string, filter *model.ClinicalFilter) (*model.ClinicalResourceConnection, error) {
	page, err := store.NewPage(first, after)
	if err != nil {
		return nil, err
	}
	var f store.ClinicalFilter
	if filter != nil {
		f.From, f.To = dateRange(filter.DateOfService)
	}
	pages, err := batched(ctx, obj, obj.ID, func(rq *request, ids []string) (map[string]*store.Paged[*gateway.ClinicalResource], error) {
		return r.DB.ClinicalByMembers(ctx, rq.principal, ids, typ, f, page)
	})
	if err != nil {
		return nil, err
	}
	pg := pageOf(pages, obj.ID)
	return &model.ClinicalResourceConnection{
		Edges: edges(pg, func(c string, n *gateway.ClinicalResource) model.ClinicalResourceEdge {
			return model.ClinicalResourceEdge{Cursor: c, Node: n}
		}),
		PageInfo: pageInfo(pg),
	}, nil
}

// allItems returns the items of the pages of ids, in that order: the
// sibling group of the next level.
func allItems[T any](pages map[string]*store.Paged[*T], ids []string) []*T {
	var out []*T
	for _, id := range ids {
		if pg := pages[id]; pg != nil {
			out = append(out, pg.Items...)
		}
	}
	return out
}

// nonNil returns l, or an empty list for nil: the schema's lists are
// non-null.
func nonNil[T any](l []T) []T {
	if l == nil {
		return []T{}
	}
	return l
}
