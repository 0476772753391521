// Package resolvers holds the GraphQL resolvers: thin translations from
// arguments to store calls made with the request's principal, and from
// store results to the schema's shapes. Access rules are not here: the
// store applies the policy in SQL and the @money directive withholds
// amounts; nothing in this package writes SQL or decides access.
package resolvers

//go:generate go tool gqlgen generate
//go:generate go run ../internal/gqlrewrite -leaf-fields -leaf-directives money ../graph

import (
	"example.com/gateway/export"
	"example.com/gateway/store"
)

// Resolver is the root resolver. It is shared by all requests; per-request
// state lives in the context (request.go).
type Resolver struct {
	DB *store.DB
	// Exports is the bulk export service (startBulkExport, bulkExportJob,
	// bulkExportJobs, cancelBulkExport): the same jobs as the FHIR
	// endpoints.
	Exports *export.Service
	// DevMode (DEV_MODE) lets clients register http JWKS URLs on loopback
	// hosts (auth.ValidateJWKSURL).
	DevMode bool
}
