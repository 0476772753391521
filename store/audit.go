package store

import (
	"context"
	"encoding/json"
	"sort"
	"sync"

	"github.com/lib/pq"

	"example.com/gateway/auth"
)

// AuditLog collects the member data one request reads: for each member, the
// resource types and how many of each. Member reads in this package record
// into the AuditLog of their context themselves, so no caller can forget;
// the request's handler writes it (WriteAudit) before the response is sent.
type AuditLog struct {
	mu    sync.Mutex
	reads map[string]map[string]int // member id → resource type → count
}

type auditKey struct{}

// WithAuditLog returns ctx carrying a fresh AuditLog, and the log.
func WithAuditLog(ctx context.Context) (context.Context, *AuditLog) {
	l := &AuditLog{reads: map[string]map[string]int{}}
	return context.WithValue(ctx, auditKey{}, l), l
}

// recordRead notes that n resources of resourceType of member were read.
// It records n = 0 too: reading that a member has no claims is a read.
func recordRead(ctx context.Context, memberID, resourceType string, n int) {
	l, _ := ctx.Value(auditKey{}).(*AuditLog)
	if l == nil || memberID == "" {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	m := l.reads[memberID]
	if m == nil {
		m = map[string]int{}
		l.reads[memberID] = m
	}
	m[resourceType] += n
}

// Len returns the number of members read.
func (l *AuditLog) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.reads)
}

// Totals returns how many resources of each type were read, over all members.
func (l *AuditLog) Totals() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]int{}
	for _, types := range l.reads {
		for t, n := range types {
			out[t] += n
		}
	}
	return out
}

// AuditContext describes the request an AuditLog belongs to.
type AuditContext struct {
	RequestID   string
	Operation   string // e.g. "graphql:query MemberClaims", "fhir:Group/$export"
	Outcome     string // SUCCESS, PARTIAL, FAILURE
	ExportJobID string
}

const insertAuditSQL = `
INSERT INTO audit_events (request_id, principal_kind, principal_id, organization_id, environment,
                          operation, member_id, resources, outcome, export_job_id)
SELECT $1, $2, $3, $4::uuid, $5, $6, r.member_id::uuid, r.resources::jsonb, $9, $10
FROM unnest($7::text[], $8::text[]) AS r(member_id, resources)`

// WriteAudit writes one audit row per member in l (append-only), in one
// statement. Nothing is written for an empty log.
func (db *DB) WriteAudit(ctx context.Context, p auth.Principal, ac AuditContext, l *AuditLog) error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	members := make([]string, 0, len(l.reads))
	for id := range l.reads {
		members = append(members, id)
	}
	sort.Strings(members)
	resources := make([]string, len(members))
	for i, id := range members {
		b, err := json.Marshal(l.reads[id])
		if err != nil {
			l.mu.Unlock()
			return err
		}
		resources[i] = string(b)
	}
	l.mu.Unlock()
	if len(members) == 0 {
		return nil
	}
	var org, env any
	if p.OrgID() != "" {
		org = p.OrgID()
	}
	if p.Environment() != "" {
		env = string(p.Environment())
	}
	outcome := ac.Outcome
	if outcome == "" {
		outcome = "SUCCESS"
	}
	var job any
	if ac.ExportJobID != "" {
		job = ac.ExportJobID
	}
	_, err := db.ExecContext(context.WithoutCancel(ctx), insertAuditSQL,
		ac.RequestID, string(p.Kind()), p.ID(), org, env, ac.Operation,
		pq.Array(members), pq.Array(resources), outcome, job)
	return err
}
