package store

import (
	"context"
	"strconv"
	"time"

	"example.com/gateway/auth"
	"example.com/gateway/gateway"
)

// Reading the audit trail (audit.go writes it). Operators read it; nothing
// in this package updates or deletes an event, and a trigger refuses both
// (migrations/0001_init.up.sql).

// AuditFilter narrows AuditEvents; zero fields match everything.
type AuditFilter struct {
	MemberID       string
	OrganizationID string
	PrincipalID    string // a client id or user id
	Operation      string // exact
	From, To       *time.Time
}

const auditEventsSQL = `
SELECT id::text AS id, at, request_id, principal_kind, principal_id, organization_id::text AS organization_id,
       environment, operation, member_id::text AS member_id, resources, outcome, export_job_id
FROM audit_events
WHERE ($1::uuid IS NULL OR member_id = $1)
  AND ($2::uuid IS NULL OR organization_id = $2)
  AND ($3::text IS NULL OR principal_id = $3)
  AND ($4::text IS NULL OR operation = $4)
  AND ($5::timestamptz IS NULL OR at >= $5)
  AND ($6::timestamptz IS NULL OR at < $6)
  AND ($7::bigint IS NULL OR id < $7)
ORDER BY id DESC
LIMIT $8`

// AuditEvents lists the audit trail newest first (by id, the order events
// were written), one page at a time (NewPage: first defaults to 20, at most
// 100). Operators only: FORBIDDEN for everyone else. BAD_USER_INPUT for a
// cursor not of this list. A member or organization id that is not a UUID
// matches nothing.
func (db *DB) AuditEvents(ctx context.Context, p auth.Principal, f AuditFilter, page Page) (Paged[*gateway.AuditEvent], error) {
	var out Paged[*gateway.AuditEvent]
	a, _, err := db.portalActor(ctx, p)
	if err != nil {
		return out, err
	}
	if err := a.Can(auth.RightReadAuditEvents, ""); err != nil {
		return out, err
	}
	var afterID any
	if page.After != "" {
		parts, err := parseCursor(page.After, "a", 1)
		if err != nil {
			return out, err
		}
		id, err := strconv.ParseInt(parts[0], 10, 64)
		if err != nil || id <= 0 {
			return out, errBadCursor
		}
		afterID = id
	}
	if (f.MemberID != "" && !isUUID(f.MemberID)) || (f.OrganizationID != "" && !isUUID(f.OrganizationID)) {
		return pageOf([]*gateway.AuditEvent{}, page, auditCursor), nil
	}
	var rows []*gateway.AuditEvent
	if err := db.SelectContext(ctx, &rows, auditEventsSQL, nullString(f.MemberID), nullString(f.OrganizationID),
		nullString(f.PrincipalID), nullString(f.Operation), f.From, f.To, afterID, page.First+1); err != nil {
		return out, err
	}
	return pageOf(rows, page, auditCursor), nil
}

func auditCursor(e *gateway.AuditEvent) string { return pageCursor("a", e.ID) }

// nullString is s as a query parameter, NULL when empty.
func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}
