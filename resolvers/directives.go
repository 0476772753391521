package resolvers

import (
	"context"

	"github.com/99designs/gqlgen/graphql"

	"example.com/gateway/gateway"
)

// errNoMoney is the answer at the path of every @money field for a caller
// whose scope excludes amounts.
var errNoMoney = &gateway.Error{Code: gateway.CodeForbidden,
	Message: "monetary amounts are not available to this client"}

// Money implements @money: the field resolves only when the caller's member
// scope includes money (auth.MemberScope.Money); otherwise it is null with
// FORBIDDEN at its path. Provider Access never reads amounts (42 CFR
// 422.121(a)(2) excludes provider remittances and enrollee cost-sharing);
// the store does not even select them for such callers. The scope was fixed
// when the request started, so this check costs one context lookup. It must
// not read graphql.GetFieldContext: the generated code runs it without the
// field's own context (internal/gqlrewrite -leaf-directives money), which
// is made only for the error.
func Money(ctx context.Context, _ any, next graphql.Resolver) (any, error) {
	if requestFrom(ctx).scope.Money {
		return next(ctx)
	}
	return nil, errNoMoney
}
