package gateway

import (
	"crypto/sha256"
	"database/sql/driver"
	"encoding/base32"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// ExportStatus is where a bulk export job stands.
type ExportStatus string

const (
	ExportQueued    ExportStatus = "QUEUED"
	ExportRunning   ExportStatus = "RUNNING"
	ExportCompleted ExportStatus = "COMPLETED"
	ExportFailed    ExportStatus = "FAILED"
	ExportCancelled ExportStatus = "CANCELLED" // deleted by its owner: answers 404 from then on
)

// InFlight reports whether a job in status s may still produce files.
func (s ExportStatus) InFlight() bool { return s == ExportQueued || s == ExportRunning }

// ExportType is the Da Vinci PDex exportType of a job (GraphQL enum
// ExportType, FHIR parameter exportType as a canonical).
type ExportType string

const (
	ProviderDownload ExportType = "PROVIDER_DOWNLOAD" // everything within the window (the default)
	ProviderDelta    ExportType = "PROVIDER_DELTA"    // what changed since _since (or the last export)
	ProviderSnapshot ExportType = "PROVIDER_SNAPSHOT" // the state as of _until (or now)
)

// The PDex exportType canonicals (§pdex-361–365).
const (
	CanonicalProviderDownload = "hl7.fhir.us.davinci-pdex#provider-download"
	CanonicalProviderDelta    = "hl7.fhir.us.davinci-pdex#provider-delta"
	CanonicalProviderSnapshot = "hl7.fhir.us.davinci-pdex#provider-snapshot"
)

// Canonical returns t's PDex canonical.
func (t ExportType) Canonical() string {
	switch t {
	case ProviderDelta:
		return CanonicalProviderDelta
	case ProviderSnapshot:
		return CanonicalProviderSnapshot
	}
	return CanonicalProviderDownload
}

// ExportTypeFromCanonical parses a PDex exportType canonical; ok is false for
// anything else.
func ExportTypeFromCanonical(s string) (t ExportType, ok bool) {
	switch s {
	case CanonicalProviderDownload:
		return ProviderDownload, true
	case CanonicalProviderDelta:
		return ProviderDelta, true
	case CanonicalProviderSnapshot:
		return ProviderSnapshot, true
	}
	return "", false
}

// Export operations: which door a job came through.
const (
	OpGroupExport       = "group-export"        // Group/{id}/$export (FHIR Bulk Data)
	OpDavinciDataExport = "davinci-data-export" // Group/{id}/$davinci-data-export (Da Vinci ATR/PDex)
	OpPatientExport     = "patient-export"      // Patient/$export: all members attributed to the organization
	OpGraphQL           = "graphql"             // startBulkExport
)

// ExportParams are the validated parameters of a job, as the worker reads
// them. Types is the effective list (never empty); Since is the effective
// lower bound (for provider-delta without _since, the previous export's
// transactionTime).
type ExportParams struct {
	Operation      string     `json:"operation"`
	Types          []string   `json:"types"`
	TypesRequested bool       `json:"typesRequested,omitempty"` // _type was given
	Since          *time.Time `json:"since,omitempty"`
	Until          *time.Time `json:"until,omitempty"`
	TypeFilters    []string   `json:"typeFilters,omitempty"` // decoded FHIR queries, e.g. "ExplanationOfBenefit?type=pharmacy"
	PatientIDs     []string   `json:"patientIds"`            // nil: the whole group; empty: nobody
	Lenient        bool       `json:"lenient,omitempty"`
	OutputFormat   string     `json:"outputFormat,omitempty"`
	// Notes become OperationOutcome lines of the job's error file: parameters
	// ignored under Prefer: handling=lenient, patient references ignored.
	// They never say anything about a member.
	Notes []string `json:"notes,omitempty"`
}

// Scan implements sql.Scanner for the jsonb column.
func (p *ExportParams) Scan(src any) error {
	switch v := src.(type) {
	case []byte:
		return json.Unmarshal(v, p)
	case string:
		return json.Unmarshal([]byte(v), p)
	case nil:
		*p = ExportParams{}
		return nil
	}
	return fmt.Errorf("gateway.ExportParams: cannot scan %T", src)
}

// Value implements driver.Valuer.
func (p ExportParams) Value() (driver.Value, error) {
	b, err := json.Marshal(p)
	return string(b), err
}

// ExportJob is a bulk export request and its progress. It belongs to an
// organization and an environment (DESIGN.md §4, "Ownership of exports").
type ExportJob struct {
	ID              string       `db:"id"` // random, unguessable; the FHIR bulk status id
	OrganizationID  string       `db:"organization_id"`
	Environment     Environment  `db:"environment"`
	ClientID        *string      `db:"client_id"` // who started it: a client…
	UserID          *string      `db:"user_id"`   // …or a person
	GroupID         *string      `db:"group_id"`  // nil: Patient/$export (all attributed members)
	RequestURL      string       `db:"request_url"`
	RequestHash     string       `db:"request_hash"`
	Params          ExportParams `db:"params"`
	ExportType      ExportType   `db:"export_type"`
	Status          ExportStatus `db:"status"`
	ReceivedAt      time.Time    `db:"received_at"`
	StartedAt       *time.Time   `db:"started_at"`
	CompletedAt     *time.Time   `db:"completed_at"`
	TransactionTime *time.Time   `db:"transaction_time"`
	CursorMemberID  *string      `db:"cursor_member_id"`
	MembersDone     int          `db:"members_done"`
	MembersTotal    *int         `db:"members_total"`
	BatchesDone     int          `db:"batches_done"`
	LeaseOwner      *string      `db:"lease_owner"`
	LeaseExpiresAt  *time.Time   `db:"lease_expires_at"`
	Attempts        int          `db:"attempts"`
	Error           string       `db:"error"` // client-safe reason of a failure
	ExpiresAt       *time.Time   `db:"expires_at"`
	LastPolledAt    *time.Time   `db:"last_polled_at"`
}

// Progress returns the share of members done, 0 to 1 (0 while unknown).
func (j ExportJob) Progress() float64 {
	switch {
	case j.Status == ExportCompleted:
		return 1
	case j.MembersTotal == nil || *j.MembersTotal <= 0:
		return 0
	}
	p := float64(j.MembersDone) / float64(*j.MembersTotal)
	return min(p, 0.99) // the last batch and the finishing step are still ahead
}

// LogValue keeps logs to surrogate keys.
func (j ExportJob) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", j.ID), slog.String("org", j.OrganizationID), slog.String("status", string(j.Status)))
}

// ExportFile is one NDJSON file of a job: output (one resource type) or
// error (OperationOutcomes).
type ExportFile struct {
	JobID        string `db:"job_id"`
	Name         string `db:"name"`
	Kind         string `db:"kind"` // output, error
	ResourceType string `db:"resource_type"`
	Seq          int    `db:"seq"`
	Count        int    `db:"count"`
	Bytes        int64  `db:"bytes"`
}

// AttributionGroupID returns the id of an organization's attribution group
// in an environment: the FHIR Group.id and the GraphQL group id. It is
// derived, so stable, and opaque; it reveals nothing without the
// organization's id, and reading a group is authorized by its owner anyway.
func AttributionGroupID(orgID string, env Environment) string {
	sum := sha256.Sum256([]byte("provider-access-group\x00" + orgID + "\x00" + string(env)))
	return "g" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(sum[:15]))
}
