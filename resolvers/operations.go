package resolvers

import (
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"maps"
	"slices"
	"strings"
	"time"

	"example.com/gateway/auth"
	"example.com/gateway/export"
	"example.com/gateway/gateway"
	"example.com/gateway/graph/model"
	"example.com/gateway/store"
)

// Helpers of operations.resolvers.go: bulk export through export.Service
// (which validates, authorizes by job ownership and queues), import runs
// and the audit trail. Access is the service's, the store's and the
// policy's (auth/portal.go); nothing here decides it.

// exportRequest translates startBulkExport's input into the request both
// export doors make.
func exportRequest(in model.StartBulkExportInput) export.Request {
	return export.Request{
		Operation:   gateway.OpGraphQL,
		GroupID:     deref(in.GroupID),
		Types:       in.Types,
		Since:       in.Since,
		Until:       in.Until,
		TypeFilters: in.TypeFilters,
		ExportType:  deref(in.ExportType),
		PatientIDs:  in.PatientIds,
	}
}

// exportInputFields maps the FHIR parameter names the export service
// reports in gateway.Error.Path to startBulkExport's input fields.
var exportInputFields = map[string]string{
	"_type":       "input.types",
	"_since":      "input.since",
	"_until":      "input.until",
	"_typeFilter": "input.typeFilters",
	"patient":     "input.patientIds",
}

// exportError returns err with the field of a *gateway.Error renamed from
// the FHIR parameter to the GraphQL input field (extensions.field); codes
// and messages pass through unchanged.
func exportError(err error) error {
	var e *gateway.Error
	if !errors.As(err, &e) || e.Path == "" {
		return err
	}
	field, ok := exportInputFields[e.Path]
	if !ok {
		return err
	}
	out := *e // never modify a shared error value
	out.Path = field
	return &out
}

// Cursors of bulkExportJobs: the job id, opaque like every cursor.
const jobCursorPrefix = "j|"

func jobCursor(id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(jobCursorPrefix + id))
}

var errBadJobCursor = &gateway.Error{Code: gateway.CodeInvalid, Path: "after", Message: "after is not a cursor of this list"}

func parseJobCursor(s string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	id, ok := strings.CutPrefix(string(b), jobCursorPrefix)
	if err != nil || !ok || id == "" {
		return "", errBadJobCursor
	}
	return id, nil
}

// exportJobs reads one page of the caller's export jobs.
func (r *Resolver) exportJobs(ctx context.Context, p auth.Principal, page store.Page) (*store.Paged[*gateway.ExportJob], error) {
	var afterID string
	if page.After != "" {
		id, err := parseJobCursor(page.After)
		if err != nil {
			return nil, err
		}
		afterID = id
	}
	jobs, err := r.Exports.Jobs(ctx, p, afterID, page.First+1)
	if gateway.ErrorCode(err) == gateway.CodeNotFound {
		return nil, errBadJobCursor // a job the caller does not own is no cursor of its list
	}
	if err != nil {
		return nil, err
	}
	pg := &store.Paged[*gateway.ExportJob]{HasPreviousPage: page.After != ""}
	if len(jobs) > page.First {
		jobs, pg.HasNextPage = jobs[:page.First], true
	}
	for i := range jobs {
		pg.Items = append(pg.Items, &jobs[i])
		pg.Cursors = append(pg.Cursors, jobCursor(jobs[i].ID))
	}
	return pg, nil
}

// manifest returns the files of job for output and errors, read once per
// job and request: the manifest of a completed job whose files have not
// expired, nothing otherwise.
func (r *Resolver) manifest(ctx context.Context, job *gateway.ExportJob) (export.Manifest, error) {
	if job.Status != gateway.ExportCompleted || (job.ExpiresAt != nil && !job.ExpiresAt.After(time.Now())) {
		return export.Manifest{}, nil
	}
	return memoized(ctx, job, job.ID, "\x00manifest", func(*request) (export.Manifest, error) {
		return r.Exports.Manifest(ctx, *job)
	})
}

func exportFiles(entries []export.ManifestEntry) []*model.BulkExportFile {
	out := make([]*model.BulkExportFile, len(entries))
	for i, e := range entries {
		out[i] = &model.BulkExportFile{Type: e.Type, URL: e.URL, Count: e.Count}
	}
	return out
}

// importRunCounts lists a run's counts by type, in name order.
func importRunCounts(counts map[string]gateway.ImportCounts) []*model.ImportRunCount {
	out := make([]*model.ImportRunCount, 0, len(counts))
	for _, typ := range slices.Sorted(maps.Keys(counts)) {
		c := counts[typ]
		out = append(out, &model.ImportRunCount{Type: typ, Loaded: c.Loaded, Unchanged: c.Unchanged,
			Rejected: c.Rejected, Ended: c.Ended})
	}
	return out
}

// importRuns reads one page of import runs for an operator. The store's
// ImportRuns leaves the check to its caller; the policy decides it.
func (r *Resolver) importRuns(ctx context.Context, p auth.Principal, page store.Page) (*store.ImportRunPage, error) {
	if err := auth.PortalActor(p, "", "").Can(auth.RightReadImportRuns, ""); err != nil {
		return nil, err
	}
	// ImportRuns reads 0 as its default page size: ask for one run to
	// answer hasNextPage, and return none.
	pg, err := r.DB.ImportRuns(ctx, cmp.Or(page.First, 1), page.After)
	if err != nil {
		return nil, err
	}
	if page.First == 0 {
		pg.HasNextPage, pg.Edges = pg.HasNextPage || len(pg.Edges) > 0, nil
	}
	return pg, nil
}

func importRunPageInfo(pg *store.ImportRunPage, after string) *model.PageInfo {
	info := &model.PageInfo{HasNextPage: pg.HasNextPage, HasPreviousPage: after != ""}
	if len(pg.Edges) > 0 {
		start, end := pg.Edges[0].Cursor, pg.EndCursor()
		info.StartCursor, info.EndCursor = &start, &end
	}
	return info
}

func auditFilter(f *model.AuditEventFilter) store.AuditFilter {
	if f == nil {
		return store.AuditFilter{}
	}
	return store.AuditFilter{MemberID: deref(f.MemberID), OrganizationID: deref(f.OrganizationID),
		PrincipalID: deref(f.PrincipalID), Operation: deref(f.Operation), From: f.From, To: f.To}
}
