package resolvers

import (
	"example.com/gateway/graph/model"
	"example.com/gateway/store"
)

// pageInfo is the Relay page info of pg.
func pageInfo[T any](pg *store.Paged[T]) *model.PageInfo {
	info := &model.PageInfo{HasNextPage: pg.HasNextPage, HasPreviousPage: pg.HasPreviousPage}
	if n := len(pg.Cursors); n > 0 {
		info.StartCursor, info.EndCursor = &pg.Cursors[0], &pg.Cursors[n-1]
	}
	return info
}

// edges builds the edges of a page in one allocation; edge makes one edge
// from a cursor and a node.
func edges[T, E any](pg *store.Paged[T], edge func(cursor string, node T) E) []*E {
	if pg == nil {
		return []*E{}
	}
	all := make([]E, len(pg.Items))
	out := make([]*E, len(pg.Items))
	for i, node := range pg.Items {
		all[i] = edge(pg.Cursors[i], node)
		out[i] = &all[i]
	}
	return out
}

// pageOf returns the page of parent id in pages, or an empty page (a parent
// the batch returned nothing for).
func pageOf[T any](pages map[string]*store.Paged[T], id string) *store.Paged[T] {
	if pg := pages[id]; pg != nil {
		return pg
	}
	return &store.Paged[T]{}
}
