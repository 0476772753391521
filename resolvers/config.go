package resolvers

import (
	"example.com/gateway/graph"
	"example.com/gateway/graph/model"
	"example.com/gateway/store"
)

// NewConfig returns the executable schema's configuration: the resolvers
// r, the @money directive and the field costs of the complexity limit.
func NewConfig(r *Resolver) graph.Config {
	cfg := graph.Config{Resolvers: r}
	cfg.Directives.Money = Money
	setComplexity(&cfg.Complexity)
	return cfg
}

// Field costs for the complexity limit. A field costs 1 plus what it
// selects; a connection multiplies what it selects by the page size asked
// for (first, default 20), and a bounded child list (claim lines, …) by
// boundedListSize, a typical length. Without these costs gqlgen counts a
// list like a single object.
const boundedListSize = 5

func connectionCost(child int, first *int) int {
	n := store.DefaultPageSize
	if first != nil {
		n = min(max(*first, 1), store.MaxPageSize) // out-of-range values are refused before any read
	}
	return 1 + n*child
}

func listCost(child int) int { return 1 + boundedListSize*child }

func setComplexity(c *graph.ComplexityRoot) {
	c.Query.Members = func(child int, first *int, _ *string, _ *model.MemberFilter) int { return connectionCost(child, first) }
	c.Member.Claims = func(child int, first *int, _ *string, _ *model.ClaimFilter) int { return connectionCost(child, first) }
	c.Member.Encounters = func(child int, first *int, _ *string, _ *model.EncounterFilter) int {
		return connectionCost(child, first)
	}
	c.Member.PriorAuthorizations = func(child int, first *int, _ *string, _ *model.PriorAuthorizationFilter) int {
		return connectionCost(child, first)
	}
	clinical := func(child int, first *int, _ *string, _ *model.ClinicalFilter) int {
		return connectionCost(child, first)
	}
	c.Member.Conditions = clinical
	c.Member.Observations = clinical
	c.Member.Medications = clinical
	c.Member.Immunizations = clinical
	c.Member.Allergies = clinical
	c.Member.Procedures = clinical
	c.Member.Coverage = listCost
	c.Member.Attributions = listCost
	c.Claim.Lines = listCost
	c.Claim.Diagnoses = listCost
	c.Claim.Procedures = listCost
	c.PriorAuthorization.Items = listCost
	c.Query.BulkExportJobs = func(child int, first *int, _ *string) int { return connectionCost(child, first) }
	c.Query.ImportRuns = func(child int, first *int, _ *string) int { return connectionCost(child, first) }
	c.Query.AuditEvents = func(child int, first *int, _ *string, _ *model.AuditEventFilter) int {
		return connectionCost(child, first)
	}
	c.BulkExportJob.Output = listCost
	c.BulkExportJob.Errors = listCost
	c.ImportRun.Counts = listCost
}
