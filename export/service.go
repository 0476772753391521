// Package export runs FHIR bulk exports (FHIR Bulk Data Access 2.0, Da Vinci
// PDex Provider Access): it records requests as jobs in PostgreSQL (Enqueue,
// shared by the FHIR kick-off endpoints and GraphQL's startBulkExport), runs
// them in workers outside any HTTP request (Runner), writes NDJSON files
// under EXPORT_DIR, and serves the FHIR REST surface: kick-off, status,
// cancel, files, attribution groups, the CapabilityStatement and SMART
// discovery (Handler).
//
// It holds no SQL and decides no access rule: jobs, files and member reads
// are store's, scoped by the policy of auth; the FHIR shapes are fhir's.
// What it owns is the protocol and the streaming: rows → fhir mapping →
// encoding/json → bufio → file, a batch of members at a time, so memory does
// not grow with the group and a job survives the death of its worker.
package export

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"example.com/gateway/auth"
	"example.com/gateway/gateway"
	"example.com/gateway/store"
)

// ResourceTypes are the resource types an export can contain, in the order
// the manifest lists them. Practitioner and Organization are the supporting
// resources the others refer to.
var ResourceTypes = []string{
	"Patient", "Coverage", "ExplanationOfBenefit", "Encounter",
	"Condition", "Observation", "MedicationRequest", "Immunization", "AllergyIntolerance", "Procedure",
	"Practitioner", "Organization",
}

// clinicalTypes are the types kept as stored FHIR JSON.
var clinicalTypes = []gateway.ClinicalType{
	gateway.ClinicalCondition, gateway.ClinicalObservation, gateway.ClinicalMedication,
	gateway.ClinicalImmunization, gateway.ClinicalAllergy, gateway.ClinicalProcedure,
}

// Request is a bulk export request as both doors make it: the FHIR kick-off
// (ParseKickoff) and GraphQL's startBulkExport (built from its input).
type Request struct {
	// Operation is gateway.OpGroupExport, OpDavinciDataExport, OpPatientExport
	// or OpGraphQL.
	Operation string
	// GroupID is the attribution group (FHIR Group.id); "" means all members
	// attributed to the caller's organization (Patient/$export, or GraphQL
	// without groupId).
	GroupID string
	// Types are FHIR resource type names (_type); nil means every type the
	// caller's token allows.
	Types []string
	// Since and Until bound resources by meta.lastUpdated (_since, _until).
	Since, Until *time.Time
	// TypeFilters are decoded FHIR queries (_typeFilter), e.g.
	// "ExplanationOfBenefit?type=pharmacy".
	TypeFilters []string
	// ExportType is the PDex exportType; "" is PROVIDER_DOWNLOAD.
	ExportType gateway.ExportType
	// PatientIDs restrict the export to these members (Patient.id); nil means
	// the whole group. PatientRefs are the references as the client wrote
	// them, for messages (same order), when they differ.
	PatientIDs  []string
	PatientRefs []string
	// Lenient is Prefer: handling=lenient: unsupported parameters were (and
	// unsupported values are) ignored and listed in the error file.
	Lenient bool
	// OutputFormat is _outputFormat ("" is application/fhir+ndjson).
	OutputFormat string
	// RequestURL is the manifest's request (the kick-off URL); "" makes one up.
	RequestURL string
	// Notes are what was ignored under lenient handling, for the error file.
	Notes []string
}

// Service is the export API both doors and the workers share. It keeps no
// state of its own: everything lives in PostgreSQL and under Dir, so any
// number of Services (and instances) may run side by side.
type Service struct {
	DB        *store.DB
	PublicURL string        // PUBLIC_URL: every URL the API returns is built from it, never from a request
	Dir       string        // EXPORT_DIR
	Retention time.Duration // EXPORT_RETENTION: how long files live after completion [24h]

	// MaxInFlight is how many jobs one organization may have queued or
	// running per environment [4]; more answer 429.
	MaxInFlight int
	// MinPoll is the shortest accepted interval between two status requests
	// of a job in flight [1s]; faster polls answer 429 (FHIR Bulk Data
	// "Bulk Data Status Request").
	MinPoll time.Duration
	// DownloadLease is how long a download keeps a job's files from being
	// deleted; it must outlast the longest download (the HTTP server's write
	// timeout) [15m].
	DownloadLease time.Duration
}

func (s *Service) retention() time.Duration { return cmp.Or(s.Retention, 24*time.Hour) }
func (s *Service) maxInFlight() int         { return cmp.Or(s.MaxInFlight, 4) }
func (s *Service) minPoll() time.Duration   { return cmp.Or(s.MinPoll, time.Second) }
func (s *Service) downloadLease() time.Duration {
	return cmp.Or(s.DownloadLease, 15*time.Minute)
}

// invalid is a BAD_USER_INPUT error naming the parameter.
func invalid(param, format string, args ...any) error {
	return &gateway.Error{Code: gateway.CodeInvalid, Message: fmt.Sprintf(format, args...), Path: param}
}

// Enqueue validates req for principal p and queues a job; it returns at
// once. The job belongs to p's organization and environment. Errors:
//
//   - FORBIDDEN: p may not export (not a Provider Access client), its
//     organization is not in-network (42 CFR 422.121(a)(2); sandbox data
//     counts as in-network), or a requested type is outside its token's
//     scopes;
//   - NOT_FOUND: GroupID is not p's group (someone else's group answers
//     exactly like one that does not exist);
//   - BAD_USER_INPUT: a malformed or unsupported parameter, named in Path;
//     for $export (not $davinci-data-export) a patient who is not a member
//     of the group, unless lenient;
//   - RATE_LIMITED: an identical request of p is still in flight, or the
//     organization has too many jobs in flight.
func (s *Service) Enqueue(ctx context.Context, p auth.Principal, req Request) (gateway.ExportJob, error) {
	org, env, ok := p.ExportOwner()
	if !ok {
		return gateway.ExportJob{}, gateway.Errorf(gateway.CodeForbidden, "only Provider Access API clients may export")
	}
	if err := s.checkInNetwork(ctx, org, env); err != nil {
		return gateway.ExportJob{}, err
	}
	var groupID *string
	if req.GroupID != "" {
		if req.GroupID != gateway.AttributionGroupID(org, env) {
			return gateway.ExportJob{}, gateway.ErrNotFound
		}
		groupID = &req.GroupID
	}
	params, err := s.validate(ctx, p, req)
	if err != nil {
		return gateway.ExportJob{}, err
	}
	exportType := cmp.Or(req.ExportType, gateway.ProviderDownload)
	if exportType == gateway.ProviderDelta && params.Since == nil {
		// PDex provider-delta without _since: what changed since the
		// organization's last completed export of this group; a full download
		// when there is none (documented).
		last, err := s.DB.LastCompletedExport(ctx, org, env, groupID)
		if err != nil {
			return gateway.ExportJob{}, err
		}
		params.Since = last
	}
	if params.Since != nil && params.Until != nil && !params.Since.Before(*params.Until) {
		return gateway.ExportJob{}, invalid("_until", "_until must be later than _since")
	}

	clientID := p.ID()
	job := gateway.ExportJob{
		ID:             newJobID(),
		OrganizationID: org,
		Environment:    env,
		ClientID:       &clientID,
		GroupID:        groupID,
		RequestURL:     req.RequestURL,
		Params:         params,
		ExportType:     exportType,
	}
	if job.RequestURL == "" {
		job.RequestURL = s.defaultRequestURL(req.GroupID)
	}
	job.RequestHash = requestHash(job)
	if err := s.DB.InsertExportJob(ctx, &job, s.maxInFlight()); err != nil {
		return gateway.ExportJob{}, err
	}
	return job, nil
}

func (s *Service) checkInNetwork(ctx context.Context, org string, env gateway.Environment) error {
	if env == gateway.EnvSandbox {
		return nil // sandbox data: every organization counts as in-network (DESIGN.md §2)
	}
	o, err := s.DB.OrganizationByID(ctx, org)
	if err != nil {
		return err
	}
	if !o.InNetwork {
		return gateway.Errorf(gateway.CodeForbidden, "Provider Access is open to in-network providers only; this organization is not marked in-network")
	}
	return nil
}

// validate checks req's parameters against what the gateway supports and
// what p's token grants, and returns the job's parameters.
func (s *Service) validate(ctx context.Context, p auth.Principal, req Request) (gateway.ExportParams, error) {
	params := gateway.ExportParams{
		Operation:    cmp.Or(req.Operation, gateway.OpGraphQL),
		Since:        utc(req.Since),
		Until:        utc(req.Until),
		Lenient:      req.Lenient,
		OutputFormat: cmp.Or(req.OutputFormat, "application/fhir+ndjson"),
		Notes:        slices.Clone(req.Notes),
	}
	note := func(param, format string, args ...any) error {
		if req.Lenient {
			params.Notes = append(params.Notes, fmt.Sprintf(format, args...)+" (ignored: Prefer: handling=lenient)")
			return nil
		}
		return invalid(param, format, args...)
	}

	// _type: supported types only; within the token's scopes (SMART Backend
	// Services: a request outside the granted scopes fails at kick-off).
	if req.Types != nil {
		params.TypesRequested = true
		for _, t := range req.Types {
			t = strings.TrimSpace(t)
			switch {
			case t == "":
				continue
			case !slices.Contains(ResourceTypes, t):
				if err := note("_type", "resource type %q is not supported by this export (supported: %s)", t, strings.Join(ResourceTypes, ", ")); err != nil {
					return params, err
				}
				continue
			case !p.CanReadType(t):
				return params, &gateway.Error{Code: gateway.CodeForbidden, Path: "_type",
					Message: fmt.Sprintf("the access token does not grant reading %s (scope system/%s.rs)", t, t)}
			}
			if !slices.Contains(params.Types, t) {
				params.Types = append(params.Types, t)
			}
		}
		if len(params.Types) == 0 {
			return params, invalid("_type", "_type names no supported resource type")
		}
		slices.SortFunc(params.Types, func(a, b string) int { return slices.Index(ResourceTypes, a) - slices.Index(ResourceTypes, b) })
	} else {
		for _, t := range ResourceTypes {
			if p.CanReadType(t) {
				params.Types = append(params.Types, t)
			}
		}
		if len(params.Types) == 0 {
			return params, gateway.Errorf(gateway.CodeForbidden, "the access token grants no resource type this export can contain")
		}
	}

	// _typeFilter: the supported subset, on exported types only.
	for _, f := range req.TypeFilters {
		tf, err := parseTypeFilter(f)
		if err != nil {
			if err := note("_typeFilter", "%s", err.Error()); err != nil {
				return params, err
			}
			continue
		}
		if !slices.Contains(params.Types, tf.resourceType) {
			if err := note("_typeFilter", "_typeFilter %q applies to %s, which this export does not contain", f, tf.resourceType); err != nil {
				return params, err
			}
			continue
		}
		params.TypeFilters = append(params.TypeFilters, f)
	}

	// patient: a subset of the group. Members are those the caller may
	// read now; anything else (unknown, not attributed, opted out) is the
	// same "not a member", so nothing is revealed about anyone.
	if req.PatientIDs != nil {
		members, err := s.members(ctx, p, req.PatientIDs)
		if err != nil {
			return params, err
		}
		params.PatientIDs = []string{}
		for i, id := range req.PatientIDs {
			ref := "Patient/" + id
			if i < len(req.PatientRefs) && req.PatientRefs[i] != "" {
				ref = req.PatientRefs[i]
			}
			switch {
			case members[id]:
				if !slices.Contains(params.PatientIDs, id) {
					params.PatientIDs = append(params.PatientIDs, id)
				}
			case params.Operation == gateway.OpDavinciDataExport:
				// Da Vinci PDex: references that are not members are ignored
				// (§pdex-360); ATR lists them in the error file.
				params.Notes = append(params.Notes, fmt.Sprintf("patient %s is not a member of this group and was ignored", clip(ref)))
			default:
				if err := note("patient", "patient %s is not a member of this group", clip(ref)); err != nil {
					return params, err
				}
			}
		}
		slices.Sort(params.PatientIDs)
	}
	return params, nil
}

// members returns which of ids are members p may read now.
func (s *Service) members(ctx context.Context, p auth.Principal, ids []string) (map[string]bool, error) {
	valid := make([]string, 0, len(ids))
	for _, id := range ids {
		if store.ValidUUID(id) {
			valid = append(valid, strings.ToLower(id))
		}
	}
	out := make(map[string]bool, len(valid))
	if len(valid) == 0 {
		return out, nil
	}
	found, err := s.DB.ExportMembers(ctx, s.DB.ScopeFor(p), store.ExportSelection{PatientIDs: valid}, "", len(valid))
	if err != nil {
		return nil, err
	}
	for _, m := range found {
		out[m.ID] = true
	}
	for _, id := range ids {
		if out[strings.ToLower(id)] {
			out[id] = true
		}
	}
	return out, nil
}

func clip(s string) string {
	if len(s) > 120 {
		return fmt.Sprintf("%q…", s[:120])
	}
	return fmt.Sprintf("%q", s)
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// newJobID returns a random, unguessable job id (130 bits, base32).
func newJobID() string { return strings.ToLower(rand.Text()) }

// requestHash identifies a request for the duplicate check: the same client
// repeating the same export while it is in flight gets 429 (FHIR Bulk Data;
// a job is never shared across clients).
func requestHash(j gateway.ExportJob) string {
	b, _ := json.Marshal(struct {
		Group      *string
		ExportType gateway.ExportType
		Params     gateway.ExportParams
	}{j.GroupID, j.ExportType, j.Params})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

func (s *Service) defaultRequestURL(groupID string) string {
	if groupID == "" {
		return s.PublicURL + "/fhir/Patient/$export"
	}
	return s.PublicURL + "/fhir/Group/" + groupID + "/$davinci-data-export"
}

// StatusURL is the absolute status URL of a job (Content-Location).
func (s *Service) StatusURL(jobID string) string { return s.PublicURL + "/fhir/bulkstatus/" + jobID }

// FileURL is the absolute URL of a job's file.
func (s *Service) FileURL(jobID, name string) string {
	return s.PublicURL + "/fhir/bulkfiles/" + jobID + "/" + name
}

// Job returns p's organization's job id in any status, cancelled and
// expired ones included (GraphQL bulkExportJob). NOT_FOUND for anyone else.
func (s *Service) Job(ctx context.Context, p auth.Principal, id string) (gateway.ExportJob, error) {
	org, env, ok := p.ExportOwner()
	if !ok || !validJobID(id) {
		return gateway.ExportJob{}, gateway.ErrNotFound
	}
	return s.DB.ExportJob(ctx, id, org, env)
}

// Jobs lists p's organization's jobs in p's environment, newest first:
// limit jobs after the job afterID ("" for the first page).
func (s *Service) Jobs(ctx context.Context, p auth.Principal, afterID string, limit int) ([]gateway.ExportJob, error) {
	org, env, ok := p.ExportOwner()
	if !ok {
		return nil, nil
	}
	var after *gateway.ExportJob
	if afterID != "" {
		j, err := s.Job(ctx, p, afterID)
		if err != nil {
			return nil, err
		}
		after = &j
	}
	return s.DB.ExportJobs(ctx, org, env, after, limit)
}

// Cancel cancels a job in flight, or deletes a completed one, of p's
// organization: it answers NOT_FOUND from then on, and its files are removed
// (at once, or by the cleanup once a download in progress ends). NOT_FOUND
// for anyone else's job and for a job already cancelled or expired.
func (s *Service) Cancel(ctx context.Context, p auth.Principal, id string) error {
	org, env, ok := p.ExportOwner()
	if !ok || !validJobID(id) {
		return gateway.ErrNotFound
	}
	removable, err := s.DB.CancelExportJob(ctx, id, org, env)
	if err != nil {
		return err
	}
	if removable {
		// Best effort: the cleanup retries whatever is left.
		_, _ = s.DB.PurgeExportJob(context.WithoutCancel(ctx), id, s.removeFiles)
	}
	return nil
}

// Manifest is the FHIR Bulk Data completion manifest.
type Manifest struct {
	TransactionTime     string          `json:"transactionTime"`
	Request             string          `json:"request"`
	RequiresAccessToken bool            `json:"requiresAccessToken"`
	Output              []ManifestEntry `json:"output"`
	Error               []ManifestEntry `json:"error"`
}

// ManifestEntry is one file of a manifest.
type ManifestEntry struct {
	Type  string `json:"type"`
	URL   string `json:"url"`
	Count int    `json:"count"`
}

// Manifest returns the manifest of a completed job (output and error are
// always arrays, empty when there is nothing; FHIR Bulk Data "Bulk Data
// Status Request"). Files need the bearer token of a principal of the
// owning organization and environment: requiresAccessToken is true.
func (s *Service) Manifest(ctx context.Context, job gateway.ExportJob) (Manifest, error) {
	m := Manifest{Request: job.RequestURL, RequiresAccessToken: true, Output: []ManifestEntry{}, Error: []ManifestEntry{}}
	if job.TransactionTime != nil {
		m.TransactionTime = job.TransactionTime.UTC().Format(time.RFC3339Nano)
	}
	files, err := s.DB.ExportFiles(ctx, job.ID)
	if err != nil {
		return m, err
	}
	slices.SortStableFunc(files, func(a, b gateway.ExportFile) int {
		if c := slices.Index(ResourceTypes, a.ResourceType) - slices.Index(ResourceTypes, b.ResourceType); c != 0 {
			return c
		}
		return a.Seq - b.Seq
	})
	for _, f := range files {
		e := ManifestEntry{Type: f.ResourceType, URL: s.FileURL(job.ID, f.Name), Count: f.Count}
		if f.Kind == kindError {
			m.Error = append(m.Error, e)
		} else {
			m.Output = append(m.Output, e)
		}
	}
	return m, nil
}

// validJobID reports whether id has the shape of a job id, so that
// malformed ids never reach the database or the file system.
func validJobID(id string) bool {
	if len(id) != 26 {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return false
		}
	}
	return true
}
