package gateway

import (
	"encoding/json"
	"log/slog"
	"time"
)

// AuditOutcome is how a request that read member data ended.
type AuditOutcome string

const (
	AuditSuccess AuditOutcome = "SUCCESS"
	AuditPartial AuditOutcome = "PARTIAL" // data and errors
	AuditFailure AuditOutcome = "FAILURE"
)

// AuditEvent is one principal's read of one member's data in one request
// or export job: the audit trail operators read. Events are append-only
// (a trigger refuses UPDATE and DELETE).
type AuditEvent struct {
	ID             string          `db:"id"` // a sequence number, as a string
	At             time.Time       `db:"at"`
	RequestID      string          `db:"request_id"`
	PrincipalKind  string          `db:"principal_kind"` // auth.Kind
	PrincipalID    string          `db:"principal_id"`
	OrganizationID *string         `db:"organization_id"`
	Environment    *Environment    `db:"environment"`
	Operation      string          `db:"operation"`
	MemberID       *string         `db:"member_id"`
	Resources      json.RawMessage `db:"resources"` // resource type → count
	Outcome        AuditOutcome    `db:"outcome"`
	ExportJobID    *string         `db:"export_job_id"`
}

// LogValue keeps logs to surrogate keys.
func (e AuditEvent) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", e.ID), slog.String("operation", e.Operation))
}
