package export

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"example.com/gateway/fhir"
	"example.com/gateway/gateway"
	"example.com/gateway/store"
)

// Runner runs export jobs: Workers goroutines claim jobs from the queue in
// PostgreSQL (FOR UPDATE SKIP LOCKED, fairly across organizations) and run
// them under a lease they renew; one more goroutine deletes expired jobs'
// files. Every instance of the gateway runs one, on the process context,
// never a request's.
type Runner struct {
	Service *Service // DB, Dir, Retention
	Logger  *slog.Logger
	Workers int // EXPORT_WORKERS [1]

	BatchSize int           // members per batch, each in its own short statements [500]
	FileLimit int           // resources per file before it is split [100,000]
	FileBytes int64         // bytes per file before it is split [256 MB]
	Lease     time.Duration // a job's lease; renewed every Lease/3 [30s]
	Poll      time.Duration // idle polling interval [1s]
	Cleanup   time.Duration // interval of the expired-files sweep [1m]
	// MaxAttempts is how many times a job is started before it fails [5].
	MaxAttempts int

	// ID names this runner as lease owner [hostname/pid/random].
	ID string

	// OnExported, when set, learns how many member resources of each type
	// every batch wrote (monitoring).
	OnExported func(resourceType string, n int)

	// Tracing gets a span per job run and per batch [otel's global provider,
	// a no-op unless tracing is on].
	Tracing trace.TracerProvider

	// afterBatch, when set (tests), runs after each checkpoint.
	afterBatch func(job gateway.ExportJob, batch int)
}

func (r *Runner) batchSize() int         { return cmp.Or(r.BatchSize, 500) }
func (r *Runner) fileLimit() int         { return cmp.Or(r.FileLimit, 100_000) }
func (r *Runner) fileBytes() int64       { return cmp.Or(r.FileBytes, 256<<20) }
func (r *Runner) lease() time.Duration   { return cmp.Or(r.Lease, 30*time.Second) }
func (r *Runner) poll() time.Duration    { return cmp.Or(r.Poll, time.Second) }
func (r *Runner) cleanup() time.Duration { return cmp.Or(r.Cleanup, time.Minute) }
func (r *Runner) maxAttempts() int       { return cmp.Or(r.MaxAttempts, 5) }

// Run runs the workers and the cleanup until ctx is cancelled. A job in
// progress at that moment is released at once, so another instance resumes
// it from its last checkpoint.
func (r *Runner) Run(ctx context.Context) error {
	if r.ID == "" {
		host, _ := os.Hostname()
		r.ID = fmt.Sprintf("%s/%d/%s", host, os.Getpid(), strings.ToLower(rand.Text()[:8]))
	}
	if err := os.MkdirAll(r.Service.Dir, 0o700); err != nil {
		return fmt.Errorf("export directory: %w", err)
	}
	var wg sync.WaitGroup
	for i := range max(r.Workers, 1) {
		wg.Go(func() { r.work(ctx, fmt.Sprintf("%s#%d", r.ID, i)) })
	}
	wg.Go(func() { r.sweep(ctx) })
	wg.Wait()
	return nil
}

// work is one worker: claim, run, repeat; wait when the queue is empty.
func (r *Runner) work(ctx context.Context, owner string) {
	for ctx.Err() == nil {
		ran, err := r.RunOne(ctx, owner)
		if err != nil && ctx.Err() == nil {
			r.Logger.ErrorContext(ctx, "export worker", "err", err)
		}
		if ran {
			continue // more work may be waiting
		}
		select {
		case <-ctx.Done():
		case <-time.After(r.poll()):
		}
	}
}

// RunOne claims one job as owner and runs it to its end (completed, failed,
// released or lost). ran is false when the queue had nothing to claim.
func (r *Runner) RunOne(ctx context.Context, owner string) (ran bool, err error) {
	job, ok, err := r.Service.DB.ClaimExportJob(ctx, owner, r.lease())
	if err != nil || !ok {
		return false, err
	}
	ctx, span := r.startJobSpan(ctx, job)
	defer span.End()
	log := r.Logger.With("job", job)
	if job.Attempts > r.maxAttempts() {
		log.WarnContext(ctx, "export job failed too often")
		span.SetAttributes(attribute.String("gateway.export.outcome", "failed"))
		return true, r.fail(ctx, job, owner, "the export could not be completed after several attempts; start a new export")
	}
	start := time.Now()
	err = r.runJob(ctx, job, owner)
	endJobSpan(ctx, span, err)
	switch {
	case err == nil:
		log.InfoContext(ctx, "export job completed", "duration", time.Since(start).String())
		return true, nil
	case errors.Is(err, store.ErrLeaseLost):
		// Cancelled by its owner, or taken over by another worker: its
		// files are not ours to touch any more.
		log.InfoContext(ctx, "export job no longer ours", "reason", "cancelled or lease lost")
		return true, nil
	case ctx.Err() != nil:
		// Shutting down: hand the job over at once.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := r.Service.DB.ReleaseExportJob(rctx, job.ID, owner); err != nil && !errors.Is(err, store.ErrLeaseLost) {
			log.WarnContext(ctx, "release export job", "err", err)
		}
		return true, nil
	}
	var gerr *gateway.Error
	if errors.As(err, &gerr) && gerr.Code != gateway.CodeInternal {
		log.InfoContext(ctx, "export job refused", "reason", gerr.Message)
		return true, r.fail(ctx, job, owner, gerr.Message)
	}
	if errors.Is(r.Service.DB.HeartbeatExportJob(ctx, job.ID, owner, r.lease()), store.ErrLeaseLost) {
		// The step failed because the job was cancelled under it.
		log.InfoContext(ctx, "export job no longer ours", "reason", "cancelled or lease lost")
		return true, nil
	}
	// Transient (database, disk): the lease expires and a later attempt
	// resumes from the checkpoint.
	log.ErrorContext(ctx, "export job interrupted", "err", err, "attempt", job.Attempts)
	return true, nil
}

func (r *Runner) fail(ctx context.Context, job gateway.ExportJob, owner, reason string) error {
	if err := r.Service.DB.FailExportJob(ctx, job.ID, owner, reason, r.Service.retention()); err != nil {
		return err
	}
	return r.Service.removeFiles(job.ID)
}

// runJob runs a claimed job from its checkpoint to completion.
func (r *Runner) runJob(ctx context.Context, job gateway.ExportJob, owner string) (err error) {
	db := r.Service.DB
	p, err := db.ExportJobPrincipal(ctx, job)
	if err != nil {
		return err
	}
	filters, err := compileFilters(job.Params.TypeFilters)
	if err != nil {
		return gateway.Errorf(gateway.CodeInvalid, "%s", err)
	}

	// The lease: renewed in the background; losing it stops the job, and
	// whatever the interrupted step returns, the job ends as lease lost.
	ctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	go r.heartbeat(ctx, stop, job.ID, owner)
	defer func() {
		if err != nil && errors.Is(context.Cause(ctx), store.ErrLeaseLost) {
			err = store.ErrLeaseLost
		}
	}()

	checkpoint, err := db.ExportFiles(ctx, job.ID)
	if err != nil {
		return err
	}
	dir := filepath.Join(r.Service.Dir, job.ID)
	files, err := openJobFiles(dir, r.fileLimit(), r.fileBytes(), checkpoint)
	if errors.Is(err, errFilesMismatch) {
		r.Logger.WarnContext(ctx, "export files do not match the checkpoint; starting the job over", "job", job)
		if err := db.RestartExportJob(ctx, job.ID, owner); err != nil {
			return err
		}
		job.CursorMemberID, job.MembersDone, job.BatchesDone = nil, 0, 0
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
		files, err = openJobFiles(dir, r.fileLimit(), r.fileBytes(), nil)
	}
	if err != nil {
		return err
	}
	defer files.close()
	if err := db.ResetExportRefs(ctx, job.ID, job.BatchesDone); err != nil {
		return err
	}

	sel := store.ExportSelection{PatientIDs: job.Params.PatientIDs, Since: job.Params.Since}
	if job.MembersTotal == nil {
		n, err := db.CountExportMembers(ctx, db.ScopeFor(p), sel)
		if err != nil {
			return err
		}
		if err := db.SetExportMembersTotal(ctx, job.ID, owner, n); err != nil {
			return err
		}
		trace.SpanFromContext(ctx).SetAttributes(attribute.Int("gateway.export.members.total", n))
	}
	w := &jobWriter{job: job, files: files, types: map[string]bool{}, filters: filters, logger: r.Logger}
	for _, t := range job.Params.Types {
		w.types[t] = true
	}
	window := store.ExportWindow{TransactionTime: *job.TransactionTime, Since: job.Params.Since, Until: job.Params.Until}
	cursor := ""
	if job.CursorMemberID != nil {
		cursor = *job.CursorMemberID
	}
	done, batch := job.MembersDone, job.BatchesDone
	var batchSpan trace.Span // the batch in progress; ended here if it fails
	defer func() {
		if batchSpan != nil {
			batchSpan.SetStatus(codes.Error, "export batch interrupted")
			batchSpan.End()
		}
	}()
	for {
		if err := ctxErr(ctx); err != nil {
			return err
		}
		// The policy as of now, for every batch (§pdex-358: consent is
		// checked when the data is read, not when the job was queued).
		scope := db.ScopeFor(p)
		members, err := db.ExportMembers(ctx, scope, sel, cursor, r.batchSize())
		if err != nil {
			return err
		}
		if len(members) == 0 {
			break
		}
		batch++
		_, batchSpan = r.tracer().Start(ctx, "export batch", trace.WithAttributes(
			attribute.Int("gateway.export.batch", batch), attribute.Int("gateway.export.batch.members", len(members))))
		b := store.ExportBatch{Scope: scope, Members: members, Window: window}
		if filters != nil {
			b.Keep = filters.keep
		}
		actx, audit := store.WithAuditLog(ctx)
		if err := w.writeBatch(actx, db, b, batch); err != nil {
			return err
		}
		state, err := files.sync()
		if err != nil {
			return err
		}
		// Audited before the checkpoint: a batch that is read is audited,
		// even if it must be read again after a crash.
		if err := db.WriteAudit(ctx, p, store.AuditContext{Operation: "fhir:" + job.Params.Operation, ExportJobID: job.ID}, audit); err != nil {
			return err
		}
		if r.OnExported != nil {
			for t, n := range audit.Totals() {
				r.OnExported(t, n)
			}
		}
		cursor = members[len(members)-1].ID
		done += len(members)
		if err := db.CheckpointExportJob(ctx, job.ID, owner, r.lease(), store.ExportCheckpoint{
			CursorMemberID: cursor, MembersDone: done, BatchesDone: batch, Files: state,
		}); err != nil {
			return err
		}
		batchSpan.SetAttributes(attribute.Int("gateway.export.batch.resources", sumCounts(audit.Totals())))
		batchSpan.End()
		batchSpan = nil
		if r.afterBatch != nil {
			r.afterBatch(job, batch)
		}
	}
	for _, n := range job.Params.Notes {
		if err := files.writeError(fhir.NewOperationOutcome("warning", "not-supported", n)); err != nil {
			return err
		}
	}
	final, err := files.finish()
	if err != nil {
		return err
	}
	setJobTotals(ctx, done, final)
	return db.CompleteExportJob(ctx, job.ID, owner, r.Service.retention(), done, final)
}

// ctxErr is ctx's cancellation cause (ErrLeaseLost when the heartbeat lost
// the lease).
func ctxErr(ctx context.Context) error {
	if ctx.Err() == nil {
		return nil
	}
	return context.Cause(ctx)
}

// heartbeat renews the job's lease until ctx ends; when the job is no
// longer ours (cancelled, or taken over) it stops the job.
func (r *Runner) heartbeat(ctx context.Context, stop context.CancelCauseFunc, id, owner string) {
	t := time.NewTicker(r.lease() / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := r.Service.DB.HeartbeatExportJob(ctx, id, owner, r.lease())
		switch {
		case errors.Is(err, store.ErrLeaseLost):
			stop(store.ErrLeaseLost)
			return
		case err != nil && ctx.Err() == nil:
			r.Logger.WarnContext(ctx, "export heartbeat", "job", id, "err", err)
		}
	}
}

// sweep removes the files of expired and deleted jobs (EXPORT_RETENTION),
// never while a download lease is active, and directories no job owns.
func (r *Runner) sweep(ctx context.Context) {
	for {
		if err := r.SweepOnce(ctx); err != nil && ctx.Err() == nil {
			r.Logger.WarnContext(ctx, "export cleanup", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(r.cleanup()):
		}
	}
}

// SweepOnce runs one pass of the cleanup.
func (r *Runner) SweepOnce(ctx context.Context) error {
	db := r.Service.DB
	for {
		ids, err := db.PurgeableExportJobs(ctx, 100)
		if err != nil {
			return err
		}
		for _, id := range ids {
			if _, err := db.PurgeExportJob(ctx, id, r.Service.removeFiles); err != nil {
				return err
			}
		}
		if len(ids) < 100 {
			break
		}
	}
	// Directories of purged or unknown jobs (a worker still writing when its
	// job was cancelled), once they are an hour old.
	entries, err := os.ReadDir(r.Service.Dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !e.IsDir() || !validJobID(e.Name()) {
			continue
		}
		if info, err := e.Info(); err != nil || time.Since(info.ModTime()) < time.Hour {
			continue
		}
		ok, err := db.ExportJobHasFiles(ctx, e.Name())
		if err != nil {
			return err
		}
		if !ok {
			os.RemoveAll(filepath.Join(r.Service.Dir, e.Name()))
		}
	}
	return nil
}

// jobWriter maps a batch's records to FHIR and writes them.
type jobWriter struct {
	job     gateway.ExportJob
	files   *jobFiles
	types   map[string]bool
	filters filters
	logger  *slog.Logger
}

// writeBatch writes one batch of members: each type in manifest order, then
// the supporting resources its rows refer to that the job has not written
// yet.
func (w *jobWriter) writeBatch(ctx context.Context, db *store.DB, b store.ExportBatch, batch int) error {
	policy := fhir.Policy{Money: b.Scope.Money} // Provider Access: false, CARIN BB Basis profiles
	jf := w.files
	if w.types["Patient"] {
		if err := db.ExportPatients(ctx, b, func(m *gateway.Member) error {
			return jf.write("Patient", fhir.FromMember(*m))
		}); err != nil {
			return err
		}
	}
	if w.types["Coverage"] {
		if err := db.ExportCoverages(ctx, b, func(c *gateway.Coverage) error {
			return jf.write("Coverage", fhir.FromCoverage(*c))
		}); err != nil {
			return err
		}
	}
	// Claims and prior authorizations, each unless _typeFilter rules it out
	// (ExplanationOfBenefit?use=…).
	if w.types["ExplanationOfBenefit"] && w.filters.mayMatchUse("claim") {
		if err := db.ExportClaims(ctx, b, func(c *store.ClaimRecord) error {
			return jf.write("ExplanationOfBenefit", fhir.FromClaim(c.Claim, c.Lines, c.Diagnoses, c.Procedures, policy))
		}); err != nil {
			return err
		}
	}
	if w.types["ExplanationOfBenefit"] && w.filters.mayMatchUse("preauthorization") {
		if err := db.ExportPriorAuthorizations(ctx, b, func(pa *store.PriorAuthorizationRecord) error {
			return jf.write("ExplanationOfBenefit", fhir.FromPriorAuthorization(pa.PriorAuthorization, pa.Items, policy))
		}); err != nil {
			return err
		}
	}
	if w.types["Encounter"] {
		if err := db.ExportEncounters(ctx, b, func(e *gateway.Encounter) error {
			return jf.write("Encounter", fhir.FromEncounter(*e))
		}); err != nil {
			return err
		}
	}
	var clinical []gateway.ClinicalType
	for _, t := range clinicalTypes {
		if w.types[string(t)] {
			clinical = append(clinical, t)
		}
	}
	if err := db.ExportClinical(ctx, b, clinical, func(c *gateway.ClinicalResource) error {
		raw, err := fhir.FromClinical(*c)
		if err != nil {
			// The payer's stored JSON is broken: report the resource in the
			// error file (no PHI: its type and id only) and go on.
			w.logger.WarnContext(ctx, "clinical resource not exported", "job", w.job.ID, "id", c.ID, "err", err)
			return jf.writeError(fhir.NewOperationOutcome("error", "processing",
				fmt.Sprintf("%s/%s could not be exported: the stored resource is not valid FHIR R4 JSON", c.ResourceType, c.ID)))
		}
		return jf.writeRaw(string(c.ResourceType), raw)
	}); err != nil {
		return err
	}

	refs := store.ExportRefTypes{
		Claims:              w.types["ExplanationOfBenefit"],
		PriorAuthorizations: w.types["ExplanationOfBenefit"],
		Encounters:          w.types["Encounter"],
		Practitioners:       w.types["Practitioner"],
	}
	if w.types["Practitioner"] {
		if err := db.ExportPractitioners(ctx, b, w.job.ID, batch, refs, func(p *gateway.Practitioner) error {
			return jf.write("Practitioner", fhir.FromPractitioner(*p))
		}); err != nil {
			return err
		}
	}
	if w.types["Organization"] {
		if batch == 1 && (w.types["ExplanationOfBenefit"] || w.types["Coverage"]) {
			// The payer: insurer and payor of every claim and coverage.
			if err := jf.write("Organization", fhir.Payer(payerSince)); err != nil {
				return err
			}
		}
		if err := db.ExportOrganizations(ctx, b, w.job.ID, batch, refs, func(o *gateway.Organization) error {
			return jf.write("Organization", fhir.FromOrganization(*o))
		}); err != nil {
			return err
		}
	}
	return nil
}

// payerSince is the payer Organization's meta.lastUpdated: it is
// configuration, not data, and does not change between exports.
var payerSince = time.Date(2016, 1, 1, 0, 0, 0, 0, time.UTC)

// Tracing: attributes are surrogate keys, types and counts only; never the
// cursor (a member id), the request URL, _typeFilter or patient ids.

func (r *Runner) tracer() trace.Tracer {
	tp := r.Tracing
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	return tp.Tracer("example.com/gateway/export")
}

// startJobSpan starts the span of one run of job: a new root trace (the job
// runs apart from the request that queued it).
func (r *Runner) startJobSpan(ctx context.Context, job gateway.ExportJob) (context.Context, trace.Span) {
	attrs := []attribute.KeyValue{
		attribute.String("gateway.export.job.id", job.ID),
		attribute.String("gateway.organization.id", job.OrganizationID),
		attribute.String("gateway.export.operation", job.Params.Operation),
		attribute.String("gateway.export.type", string(job.ExportType)),
		attribute.StringSlice("gateway.export.resource_types", job.Params.Types),
		attribute.Int("gateway.export.attempt", job.Attempts),
	}
	if job.MembersTotal != nil {
		attrs = append(attrs, attribute.Int("gateway.export.members.total", *job.MembersTotal))
	}
	return r.tracer().Start(ctx, "export job", trace.WithNewRoot(),
		trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(attrs...))
}

// endJobSpan records how a run ended (RunOne's cases); never err's text.
func endJobSpan(ctx context.Context, span trace.Span, err error) {
	outcome := "completed"
	var gerr *gateway.Error
	switch {
	case err == nil:
	case errors.Is(err, store.ErrLeaseLost):
		outcome = "lease_lost"
	case ctx.Err() != nil:
		outcome = "released"
	case errors.As(err, &gerr) && gerr.Code != gateway.CodeInternal:
		outcome = "refused"
	default:
		outcome = "interrupted"
		span.SetStatus(codes.Error, "export job interrupted")
	}
	span.SetAttributes(attribute.String("gateway.export.outcome", outcome))
}

// setJobTotals records a completed job's members and the resources of its
// files (output and error files).
func setJobTotals(ctx context.Context, members int, files []gateway.ExportFile) {
	resources, errs := 0, 0
	for _, f := range files {
		if f.Kind == kindError {
			errs += f.Count
		} else {
			resources += f.Count
		}
	}
	trace.SpanFromContext(ctx).SetAttributes(attribute.Int("gateway.export.members", members),
		attribute.Int("gateway.export.resources", resources), attribute.Int("gateway.export.errors", errs),
		attribute.Int("gateway.export.files", len(files)))
}

func sumCounts(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
