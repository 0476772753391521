package auth

import (
	"example.com/gateway/gateway"
)

// ExportOwner returns the owner an export started or read by p belongs to:
// p's organization and environment (DESIGN.md §4, "Ownership of exports").
// ok is false when p has no export rights: only Provider Access clients
// export (42 CFR 422.121(a)(2)); people read no member data through sign-in
// alone, and Patient Access has no bulk export.
func (p Principal) ExportOwner() (orgID string, env gateway.Environment, ok bool) {
	if p.kind != KindClient || p.accessType != gateway.ProviderAccess || p.orgID == "" || p.env == "" {
		return "", "", false
	}
	return p.orgID, p.env, true
}

// PrincipalForJob returns the Principal an export job's worker reads under:
// the client that started the job, with the token scopes narrowed to the
// job's resource types (which were checked against its token at kick-off).
// The policy is then evaluated again when each batch is read (§pdex-358),
// so attribution, opt-out and in-network state are those of the moment of
// reading, not of the kick-off.
//
// It returns FORBIDDEN when the client no longer matches the job (revoked,
// another organization or environment, not Provider Access): a job never
// outlives its client's rights.
func PrincipalForJob(job gateway.ExportJob, client gateway.APIClient) (Principal, error) {
	switch {
	case job.ClientID == nil || *job.ClientID != client.ID,
		client.OrganizationID != job.OrganizationID,
		client.Environment != job.Environment,
		client.AccessType != gateway.ProviderAccess,
		client.Status != gateway.ClientActive:
		return Principal{}, gateway.Errorf(gateway.CodeForbidden, "the client that started this export may no longer export")
	}
	return ClientPrincipal(client, Scopes{Types: job.Params.Types}), nil
}
