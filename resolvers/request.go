package resolvers

import (
	"context"
	"sync"

	"github.com/99designs/gqlgen/graphql"

	"example.com/gateway/auth"
	"example.com/gateway/store"
)

// request is what the resolvers of one GraphQL request share: the caller
// and its member scope, fixed when the request starts, and the sibling
// groups of the objects resolved so far (see batch.go). It is built after
// authentication and never outlives the request, because it holds what one
// principal may see.
type request struct {
	principal auth.Principal
	scope     auth.MemberScope

	mu       sync.Mutex
	siblings map[any]*siblings // parent object (a pointer) → its group
}

type requestKey struct{}

// RequestState installs the per-request state of the resolvers; the GraphQL
// handler uses it (server/graphql.go). It wraps the execution of each
// response, so it runs after parsing, validation and limits, and only for
// operations that execute.
type RequestState struct{ DB *store.DB }

var _ interface {
	graphql.HandlerExtension
	graphql.ResponseInterceptor
} = RequestState{}

func (RequestState) ExtensionName() string                          { return "ResolverRequestState" }
func (RequestState) Validate(schema graphql.ExecutableSchema) error { return nil }

func (e RequestState) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	return next(e.WithRequest(ctx))
}

// WithRequest returns ctx carrying fresh request state for the principal in
// ctx (the zero Principal, which sees nothing, when there is none).
func (e RequestState) WithRequest(ctx context.Context) context.Context {
	p, _ := auth.FromContext(ctx)
	rq := &request{principal: p, scope: e.DB.ScopeFor(p), siblings: map[any]*siblings{}}
	return context.WithValue(ctx, requestKey{}, rq)
}

// requestFrom returns the request state of ctx. Without one (a resolver
// called outside the handler) it returns state for the zero Principal,
// which sees nothing.
func requestFrom(ctx context.Context) *request {
	if rq, ok := ctx.Value(requestKey{}).(*request); ok {
		return rq
	}
	return &request{siblings: map[any]*siblings{}}
}
