package gateway

import "time"

// ImportOutcome is the state of an import run.
type ImportOutcome string

const (
	ImportRunning   ImportOutcome = "RUNNING"
	ImportSucceeded ImportOutcome = "SUCCEEDED"
	ImportFailed    ImportOutcome = "FAILED" // an error, or more rejects than --max-rejects allowed
)

// ImportCounts are the line counts of one kind of record (a FHIR resource
// type, or "attribution" / "optout") in an import run.
type ImportCounts struct {
	Loaded    int `json:"loaded"`          // inserted, or changed
	Unchanged int `json:"unchanged"`       // already stored exactly so
	Rejected  int `json:"rejected"`        // written to the rejects file
	Ended     int `json:"ended,omitempty"` // attributions ended by --replace-scope
}

// ImportRun is one run of the `import` command: who started it, when, on
// which files, what it loaded and how it ended. Operators see the runs.
type ImportRun struct {
	ID           string                  `db:"id"`
	Kind         string                  `db:"kind"` // fhir, attribution, optout
	Files        []string                `db:"-"`
	StartedBy    string                  `db:"started_by"`
	StartedAt    time.Time               `db:"started_at"`
	FinishedAt   *time.Time              `db:"finished_at"`
	Counts       map[string]ImportCounts `db:"-"` // by resource type or kind
	Outcome      ImportOutcome           `db:"outcome"`
	ReplaceScope string                  `db:"replace_scope"` // e.g. "organization=1234567893"
	Error        string                  `db:"error"`         // why it failed; no PHI
}
