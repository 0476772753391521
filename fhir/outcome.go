package fhir

// OperationOutcome is FHIR R4 OperationOutcome, the body of FHIR errors and
// the lines of bulk export error files. It is not stored data, so it has no
// id, meta.lastUpdated or profile.
type OperationOutcome struct {
	ResourceType string  `json:"resourceType"`
	Issue        []Issue `json:"issue"`
}

// Issue is OperationOutcome.issue.
type Issue struct {
	Severity    string `json:"severity"`
	Code        string `json:"code"`
	Diagnostics string `json:"diagnostics,omitempty"`
}

// NewOperationOutcome returns an OperationOutcome of one issue. severity is
// fatal, error, warning or information; code an IssueType (e.g. "invalid",
// "not-found", "login", "forbidden", "processing", "exception"). diagnostics
// is shown to the client: it must hold no PHI and no internal error text.
func NewOperationOutcome(severity, code, diagnostics string) *OperationOutcome {
	return &OperationOutcome{
		ResourceType: "OperationOutcome",
		Issue:        []Issue{{Severity: severity, Code: code, Diagnostics: diagnostics}},
	}
}
