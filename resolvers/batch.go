package resolvers

import (
	"context"
	"sync"

	"github.com/99designs/gqlgen/graphql"
)

// Nested lists without N+1: sibling batching.
//
// A field such as Member.claims is resolved once per member, but the store
// reads the claims of many members in one statement (ClaimsByMembers). The
// members of one page (or the claims of one batch) form a sibling group:
// the first time a field is resolved for any of them, the resolver reads
// the field for the whole group and memoizes the result; the other siblings
// take their share from it. So a query costs one statement per field and
// level, whatever the page sizes.
//
// gqlgen's own batch resolvers (`batch: true`, v0.17.98) cannot do this
// here: they group the parents of one list only, recognising a parent by
// the list index directly above the field in the path. Under Relay
// connections the path is members.edges[i].node.claims, the index belongs
// to the edges, and gqlgen falls back to one call per parent. Time-window
// dataloaders are no answer either: lists are marshaled sequentially
// (internal/seqlists), which would serialize their windows (NOTES.md).
// Sibling groups need no timing: the first sibling reads for all.

// siblings is a group of parent objects of one type that came back from
// the same read, in order, with the memoized batch reads of their fields.
type siblings struct {
	ids []string

	mu    sync.Mutex
	reads map[string]*batchRead // by the field's response key
}

type batchRead struct {
	once sync.Once
	v    any
	err  error
}

// adopt makes parents (the pointers the resolvers will receive) one sibling
// group, keyed for the store by id.
func adopt[T any](rq *request, parents []*T, id func(*T) string) {
	g := &siblings{ids: make([]string, len(parents))}
	rq.mu.Lock()
	for i, p := range parents {
		g.ids[i] = id(p)
		rq.siblings[p] = g
	}
	rq.mu.Unlock()
}

// groupOf returns the sibling group of parent, or makes it a group of its
// own (a member read by member(id), say).
func (rq *request) groupOf(parent any, id string) *siblings {
	rq.mu.Lock()
	defer rq.mu.Unlock()
	g := rq.siblings[parent]
	if g == nil {
		g = &siblings{ids: []string{id}}
		rq.siblings[parent] = g
	}
	return g
}

// batched resolves the current field for parent (whose store key is id):
// read is called once per sibling group and field, with the ids of all the
// siblings, and its result shared. The field is identified by its response
// key, which GraphQL validation guarantees has the same arguments for every
// sibling (the siblings share one selection set).
func batched[R any](ctx context.Context, parent any, id string, read func(rq *request, ids []string) (R, error)) (R, error) {
	rq := requestFrom(ctx)
	g := rq.groupOf(parent, id)
	key := graphql.GetFieldContext(ctx).Field.Alias
	g.mu.Lock()
	if g.reads == nil {
		g.reads = map[string]*batchRead{}
	}
	r := g.reads[key]
	if r == nil {
		r = &batchRead{}
		g.reads[key] = r
	}
	g.mu.Unlock()
	r.once.Do(func() { r.v, r.err = read(rq, g.ids) })
	v, _ := r.v.(R)
	return v, r.err
}
