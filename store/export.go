package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"example.com/gateway/auth"
	"example.com/gateway/gateway"
)

// The bulk export queue. Jobs are rows of export_jobs; workers in every
// instance claim them with FOR UPDATE SKIP LOCKED under a lease they renew
// (heartbeat), and persist a member cursor and the state of the job's files
// after each batch, so a job whose worker died resumes where its last
// checkpoint left it. Reads of a job for its owner always filter on the
// organization and environment in SQL (DESIGN.md §4, "Ownership of
// exports"): for anyone else a job does not exist.

// ErrLeaseLost is returned by the worker-side methods when the job is no
// longer this worker's: its lease expired and another worker took it, or its
// owner cancelled it. The worker must stop without touching the job's files.
var ErrLeaseLost = errors.New("export job lease lost")

const exportJobColumns = `id, organization_id, environment, client_id, user_id, group_id, request_url, ` +
	`request_hash, params, export_type, status, received_at, started_at, completed_at, transaction_time, ` +
	`cursor_member_id, members_done, members_total, batches_done, lease_owner, lease_expires_at, attempts, ` +
	`error, expires_at, last_polled_at`

// exportJobCols is exportJobColumns qualified with alias j.
const exportJobCols = `j.id, j.organization_id, j.environment, j.client_id, j.user_id, j.group_id, ` +
	`j.request_url, j.request_hash, j.params, j.export_type, j.status, j.received_at, j.started_at, ` +
	`j.completed_at, j.transaction_time, j.cursor_member_id, j.members_done, j.members_total, ` +
	`j.batches_done, j.lease_owner, j.lease_expires_at, j.attempts, j.error, j.expires_at, j.last_polled_at`

const lockOrgExportsSQL = `SELECT pg_advisory_xact_lock(hashtextextended('export_jobs:' || $1 || ':' || $2, 0))`

const countInFlightSQL = `
SELECT count(*) FROM export_jobs
WHERE organization_id = $1 AND environment = $2 AND status IN ('QUEUED','RUNNING')`

const insertExportJobSQL = `
INSERT INTO export_jobs (id, organization_id, environment, client_id, user_id, group_id, request_url,
                         request_hash, params, export_type)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
RETURNING ` + exportJobColumns

// InsertExportJob queues job (its ID, owner, request and params set by the
// caller) and fills in the rest from the inserted row. It returns
// RATE_LIMITED when the same client already has an identical job in flight
// (FHIR Bulk Data: 429 for a duplicate request; jobs are never shared or
// reused across clients) or when the organization already has maxInFlight
// jobs queued or running in that environment, and FORBIDDEN when the
// job's client does not exist.
func (db *DB) InsertExportJob(ctx context.Context, job *gateway.ExportJob, maxInFlight int) error {
	err := db.inTx(ctx, func(tx *sqlx.Tx) error {
		// Serialize kick-offs of one organization so the in-flight count holds.
		if _, err := tx.ExecContext(ctx, lockOrgExportsSQL, job.OrganizationID, string(job.Environment)); err != nil {
			return err
		}
		var n int
		if err := tx.GetContext(ctx, &n, countInFlightSQL, job.OrganizationID, string(job.Environment)); err != nil {
			return err
		}
		if maxInFlight > 0 && n >= maxInFlight {
			return gateway.Errorf(gateway.CodeRateLimited, "this organization already has %d exports queued or running; retry when one completes", n)
		}
		return tx.GetContext(ctx, job, insertExportJobSQL, job.ID, job.OrganizationID, string(job.Environment),
			job.ClientID, job.UserID, job.GroupID, job.RequestURL, job.RequestHash, job.Params, string(job.ExportType))
	})
	switch {
	case isUniqueViolation(err, "export_jobs_in_flight_request"):
		return gateway.Errorf(gateway.CodeRateLimited, "an identical export from this client is already in progress")
	case isForeignKeyViolation(err, "export_jobs_client_id_fkey"):
		// A principal whose client row is gone: a job never outlives its
		// client's rights (auth.PrincipalForJob), nor starts without them.
		return gateway.Errorf(gateway.CodeForbidden, "this API client no longer exists")
	}
	return err
}

const exportJobSQL = `
SELECT ` + exportJobColumns + ` FROM export_jobs
WHERE id = $1 AND organization_id = $2::uuid AND environment = $3`

// ExportJob returns the job id if it belongs to the organization and
// environment, in any status (GraphQL shows cancelled and expired jobs to
// their owner). Otherwise NOT_FOUND.
func (db *DB) ExportJob(ctx context.Context, id, orgID string, env gateway.Environment) (gateway.ExportJob, error) {
	var j gateway.ExportJob
	if !validUUID(orgID) {
		return j, gateway.ErrNotFound
	}
	err := db.GetContext(ctx, &j, exportJobSQL, id, orgID, string(env))
	return j, notFound(err)
}

// liveJob: not cancelled and not expired. Only such jobs exist for the FHIR
// endpoints (FHIR Bulk Data: after DELETE, every poll answers 404).
const (
	liveJob  = `status <> 'CANCELLED' AND (expires_at IS NULL OR expires_at > now())`
	liveJobJ = `j.status <> 'CANCELLED' AND (j.expires_at IS NULL OR j.expires_at > now())`
)

const pollExportJobSQL = `
UPDATE export_jobs j
SET last_polled_at = CASE WHEN j.status IN ('QUEUED','RUNNING')
                           AND j.last_polled_at > now() - $4 * interval '1 millisecond'
                          THEN j.last_polled_at ELSE now() END
FROM (SELECT id, last_polled_at AS prev FROM export_jobs WHERE id = $1 FOR UPDATE) o
WHERE j.id = o.id AND j.organization_id = $2::uuid AND j.environment = $3 AND ` + liveJobJ + `
RETURNING ` + exportJobCols + `,
  coalesce(j.status IN ('QUEUED','RUNNING') AND o.prev > now() - $4 * interval '1 millisecond', false) AS too_soon`

// PollExportJob returns a live job of the owner for a status request and
// records the poll. tooSoon reports a poll of a job still in flight less
// than minInterval after the previous accepted one (FHIR Bulk Data "Bulk
// Data Status Request": the server may answer 429); such a poll does not
// count as a poll, so a client that waits as told is never refused.
// NOT_FOUND for anything else, cancelled and expired jobs included.
func (db *DB) PollExportJob(ctx context.Context, id, orgID string, env gateway.Environment, minInterval time.Duration) (job gateway.ExportJob, tooSoon bool, err error) {
	if !validUUID(orgID) {
		return job, false, gateway.ErrNotFound
	}
	var row struct {
		gateway.ExportJob
		TooSoon bool `db:"too_soon"`
	}
	err = db.GetContext(ctx, &row, pollExportJobSQL, id, orgID, string(env), minInterval.Milliseconds())
	return row.ExportJob, row.TooSoon, notFound(err)
}

const cancelExportJobSQL = `
UPDATE export_jobs
SET status = 'CANCELLED', lease_owner = NULL, lease_expires_at = NULL,
    completed_at = coalesce(completed_at, now()), expires_at = now()
WHERE id = $1 AND organization_id = $2::uuid AND environment = $3 AND ` + liveJob + `
RETURNING coalesce(downloading_until < now(), true)`

// CancelExportJob cancels (or, when complete, deletes) a live job of the
// owner: from now on it answers NOT_FOUND and its files are removed. The
// worker running it notices at its next heartbeat or checkpoint and stops.
// removable reports that no download lease is active, so the caller may
// remove the files at once; otherwise the cleanup removes them when the
// lease ends. NOT_FOUND when there is no such live job.
func (db *DB) CancelExportJob(ctx context.Context, id, orgID string, env gateway.Environment) (removable bool, err error) {
	if !validUUID(orgID) {
		return false, gateway.ErrNotFound
	}
	err = db.GetContext(ctx, &removable, cancelExportJobSQL, id, orgID, string(env))
	return removable, notFound(err)
}

const exportJobsSQL = `
SELECT ` + exportJobColumns + ` FROM export_jobs
WHERE organization_id = $1::uuid AND environment = $2
  AND ($3::timestamptz IS NULL OR (received_at, id) < ($3::timestamptz, $4::text))
ORDER BY received_at DESC, id DESC
LIMIT $5`

// ExportJobs lists the owner's jobs, newest first, in pages: after is the
// last job of the previous page (nil for the first page).
func (db *DB) ExportJobs(ctx context.Context, orgID string, env gateway.Environment, after *gateway.ExportJob, limit int) ([]gateway.ExportJob, error) {
	if !validUUID(orgID) {
		return nil, nil
	}
	var at any
	var afterID string
	if after != nil {
		at, afterID = after.ReceivedAt, after.ID
	}
	var jobs []gateway.ExportJob
	err := db.SelectContext(ctx, &jobs, exportJobsSQL, orgID, string(env), at, afterID, limit)
	return jobs, err
}

const lastCompletedExportSQL = `
SELECT max(transaction_time) FROM export_jobs
WHERE organization_id = $1::uuid AND environment = $2 AND group_id IS NOT DISTINCT FROM $3
  AND status = 'COMPLETED'`

// LastCompletedExport returns the transactionTime of the owner's latest
// completed export of the group (nil group: Patient/$export), nil when there
// is none. Job rows outlive their files, so the answer survives retention.
func (db *DB) LastCompletedExport(ctx context.Context, orgID string, env gateway.Environment, groupID *string) (*time.Time, error) {
	var t sql.NullTime
	if err := db.GetContext(ctx, &t, lastCompletedExportSQL, orgID, string(env), groupID); err != nil {
		return nil, err
	}
	if !t.Valid {
		return nil, nil
	}
	return &t.Time, nil
}

// ExportJobPrincipal returns the Principal a job's worker reads under (see
// auth.PrincipalForJob): FORBIDDEN when the client that started it may no
// longer export.
func (db *DB) ExportJobPrincipal(ctx context.Context, job gateway.ExportJob) (auth.Principal, error) {
	if job.ClientID == nil {
		return auth.Principal{}, gateway.Errorf(gateway.CodeForbidden, "only API clients run exports")
	}
	c, err := db.ClientByID(ctx, *job.ClientID)
	if errors.Is(err, gateway.ErrNotFound) {
		return auth.Principal{}, gateway.Errorf(gateway.CodeForbidden, "the client that started this export no longer exists")
	} else if err != nil {
		return auth.Principal{}, err
	}
	return auth.PrincipalForJob(job, c)
}

// The worker side.

// transactionTimeSQL is the export's transactionTime, fixed when a job
// first starts: now, or just before the start of the oldest write
// transaction still open in this database, so every row with last_updated
// at or before it is already committed (FHIR Bulk Data: the manifest holds
// everything modified up to transactionTime; a client chaining _since =
// transactionTime misses nothing, because rows a later commit stamps
// earlier cannot exist). A write transaction open for more than ten
// minutes (a stuck session) does not hold it back further.
const transactionTimeSQL = `greatest(now() - interval '10 minutes', least(now(),
  (SELECT min(a.xact_start) - interval '1 microsecond'
   FROM pg_stat_activity a
   WHERE a.datname = current_database() AND a.backend_xid IS NOT NULL AND a.pid <> pg_backend_pid())))`

const claimExportJobSQL = `
WITH candidate AS (
  SELECT j.id
  FROM export_jobs j
  WHERE j.status = 'QUEUED' OR (j.status = 'RUNNING' AND j.lease_expires_at < now())
  -- fair across organizations: the one with the fewest running jobs first,
  -- then the oldest request
  ORDER BY (SELECT count(*) FROM export_jobs r
            WHERE r.organization_id = j.organization_id AND r.status = 'RUNNING'
              AND r.lease_expires_at >= now()),
           j.received_at
  LIMIT 1
  FOR UPDATE SKIP LOCKED
)
UPDATE export_jobs j
SET status = 'RUNNING', lease_owner = $1, lease_expires_at = now() + $2 * interval '1 millisecond',
    attempts = j.attempts + 1, started_at = coalesce(j.started_at, now()),
    transaction_time = coalesce(j.transaction_time, ` + transactionTimeSQL + `)
FROM candidate
WHERE j.id = candidate.id
RETURNING ` + exportJobCols

// ClaimExportJob claims the next job for worker owner under a lease of
// lease: a queued job, or a running one whose lease expired (its worker
// died), fairly across organizations. ok is false when there is none.
func (db *DB) ClaimExportJob(ctx context.Context, owner string, lease time.Duration) (job gateway.ExportJob, ok bool, err error) {
	err = db.GetContext(ctx, &job, claimExportJobSQL, owner, lease.Milliseconds())
	if errors.Is(err, sql.ErrNoRows) {
		return job, false, nil
	}
	return job, err == nil, err
}

const heartbeatExportJobSQL = `
UPDATE export_jobs SET lease_expires_at = now() + $3 * interval '1 millisecond'
WHERE id = $1 AND lease_owner = $2 AND status = 'RUNNING'`

// HeartbeatExportJob renews owner's lease on a job. ErrLeaseLost when the
// job is no longer owner's (cancelled, or taken over after the lease
// expired).
func (db *DB) HeartbeatExportJob(ctx context.Context, id, owner string, lease time.Duration) error {
	res, err := db.ExecContext(ctx, heartbeatExportJobSQL, id, owner, lease.Milliseconds())
	return leaseResult(res, err)
}

func leaseResult(res sql.Result, err error) error {
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return ErrLeaseLost
	}
	return nil
}

const setMembersTotalSQL = `
UPDATE export_jobs SET members_total = $3 WHERE id = $1 AND lease_owner = $2 AND status = 'RUNNING'`

// SetExportMembersTotal records how many members a job will read (for
// progress). It is an estimate: opt-outs and attribution may change while
// the job runs.
func (db *DB) SetExportMembersTotal(ctx context.Context, id, owner string, total int) error {
	res, err := db.ExecContext(ctx, setMembersTotalSQL, id, owner, total)
	return leaseResult(res, err)
}

const exportFilesSQL = `
SELECT job_id, name, kind, resource_type, seq, count, bytes FROM export_files
WHERE job_id = $1 ORDER BY kind DESC, resource_type, seq`

// ExportFiles returns a job's files as of its last checkpoint (outputs
// first, then errors; by type and sequence).
func (db *DB) ExportFiles(ctx context.Context, jobID string) ([]gateway.ExportFile, error) {
	var files []gateway.ExportFile
	err := db.SelectContext(ctx, &files, exportFilesSQL, jobID)
	return files, err
}

// ExportCheckpoint is the progress a worker persists after each batch.
type ExportCheckpoint struct {
	CursorMemberID string // the last member of the batch
	MembersDone    int
	BatchesDone    int
	Files          []gateway.ExportFile // every file of the job, with its size at this point
}

const checkpointExportJobSQL = `
UPDATE export_jobs
SET cursor_member_id = $3::uuid, members_done = $4, batches_done = $5,
    lease_expires_at = now() + $6 * interval '1 millisecond'
WHERE id = $1 AND lease_owner = $2 AND status = 'RUNNING'`

const upsertExportFilesSQL = `
INSERT INTO export_files (job_id, name, kind, resource_type, seq, count, bytes)
SELECT $1, f.name, f.kind, f.resource_type, f.seq, f.count, f.bytes
FROM unnest($2::text[], $3::text[], $4::text[], $5::int[], $6::int[], $7::bigint[])
     AS f(name, kind, resource_type, seq, count, bytes)
ON CONFLICT (job_id, name) DO UPDATE SET count = EXCLUDED.count, bytes = EXCLUDED.bytes`

// CheckpointExportJob persists a batch's progress and renews the lease, in
// one transaction. ErrLeaseLost when the job is no longer owner's.
func (db *DB) CheckpointExportJob(ctx context.Context, id, owner string, lease time.Duration, cp ExportCheckpoint) error {
	return db.inTx(ctx, func(tx *sqlx.Tx) error {
		var cursor any
		if cp.CursorMemberID != "" {
			cursor = cp.CursorMemberID
		}
		res, err := tx.ExecContext(ctx, checkpointExportJobSQL, id, owner, cursor, cp.MembersDone, cp.BatchesDone, lease.Milliseconds())
		if err := leaseResult(res, err); err != nil {
			return err
		}
		return upsertFiles(ctx, tx, id, cp.Files)
	})
}

func upsertFiles(ctx context.Context, tx *sqlx.Tx, jobID string, files []gateway.ExportFile) error {
	if len(files) == 0 {
		return nil
	}
	names := make([]string, len(files))
	kinds := make([]string, len(files))
	types := make([]string, len(files))
	seqs := make([]int64, len(files))
	counts := make([]int64, len(files))
	sizes := make([]int64, len(files))
	for i, f := range files {
		names[i], kinds[i], types[i] = f.Name, f.Kind, f.ResourceType
		seqs[i], counts[i], sizes[i] = int64(f.Seq), int64(f.Count), f.Bytes
	}
	_, err := tx.ExecContext(ctx, upsertExportFilesSQL, jobID, pq.Array(names), pq.Array(kinds), pq.Array(types),
		pq.Array(seqs), pq.Array(counts), pq.Array(sizes))
	return err
}

const resetExportRefsSQL = `DELETE FROM export_refs WHERE job_id = $1 AND batch > $2`

// ResetExportRefs forgets the supporting resources recorded by batches after
// the last checkpoint (batchesDone): a resumed job rewrites those batches,
// so it must write those resources again.
func (db *DB) ResetExportRefs(ctx context.Context, jobID string, batchesDone int) error {
	_, err := db.ExecContext(ctx, resetExportRefsSQL, jobID, batchesDone)
	return err
}

const restartExportJobSQL = `
UPDATE export_jobs SET cursor_member_id = NULL, members_done = 0, batches_done = 0
WHERE id = $1 AND lease_owner = $2 AND status = 'RUNNING'`

// RestartExportJob discards a job's progress (its files did not match its
// checkpoint): it runs again from the first member, with the same
// transactionTime.
func (db *DB) RestartExportJob(ctx context.Context, id, owner string) error {
	return db.inTx(ctx, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, restartExportJobSQL, id, owner)
		if err := leaseResult(res, err); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM export_files WHERE job_id = $1`, id); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM export_refs WHERE job_id = $1`, id)
		return err
	})
}

const completeExportJobSQL = `
UPDATE export_jobs
SET status = 'COMPLETED', completed_at = now(), expires_at = now() + $3 * interval '1 millisecond',
    lease_owner = NULL, lease_expires_at = NULL, members_done = $4, members_total = $4
WHERE id = $1 AND lease_owner = $2 AND status = 'RUNNING'`

// CompleteExportJob records a job's final files and marks it complete; its
// files expire after retention. ErrLeaseLost when the job is no longer
// owner's.
func (db *DB) CompleteExportJob(ctx context.Context, id, owner string, retention time.Duration, membersDone int, files []gateway.ExportFile) error {
	return db.inTx(ctx, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, completeExportJobSQL, id, owner, retention.Milliseconds(), membersDone)
		if err := leaseResult(res, err); err != nil {
			return err
		}
		if err := upsertFiles(ctx, tx, id, files); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM export_refs WHERE job_id = $1`, id)
		return err
	})
}

const failExportJobSQL = `
UPDATE export_jobs
SET status = 'FAILED', error = $3, completed_at = now(), expires_at = now() + $4 * interval '1 millisecond',
    lease_owner = NULL, lease_expires_at = NULL
WHERE id = $1 AND lease_owner = $2 AND status = 'RUNNING'`

// FailExportJob marks a job failed with a client-safe reason. ErrLeaseLost
// when the job is no longer owner's.
func (db *DB) FailExportJob(ctx context.Context, id, owner, reason string, retention time.Duration) error {
	res, err := db.ExecContext(ctx, failExportJobSQL, id, owner, reason, retention.Milliseconds())
	if err := leaseResult(res, err); err != nil {
		return err
	}
	_, err = db.ExecContext(ctx, `DELETE FROM export_refs WHERE job_id = $1`, id)
	return err
}

const releaseExportJobSQL = `
UPDATE export_jobs SET lease_expires_at = now() - interval '1 millisecond', attempts = greatest(attempts - 1, 0)
WHERE id = $1 AND lease_owner = $2 AND status = 'RUNNING'`

// ReleaseExportJob gives a running job up at once (graceful shutdown): any
// worker may resume it from its last checkpoint. A release does not count
// as a failed attempt, so rolling restarts never fail a long job.
func (db *DB) ReleaseExportJob(ctx context.Context, id, owner string) error {
	res, err := db.ExecContext(ctx, releaseExportJobSQL, id, owner)
	return leaseResult(res, err)
}

// Files.

const exportFileForDownloadSQL = `
UPDATE export_jobs j
SET downloading_until = greatest(coalesce(j.downloading_until, now()), now() + $5 * interval '1 millisecond')
FROM export_files f
WHERE j.id = $1 AND j.organization_id = $2::uuid AND j.environment = $3 AND j.status = 'COMPLETED'
  AND ` + liveJobJ + ` AND f.job_id = j.id AND f.name = $4
RETURNING f.job_id, f.name, f.kind, f.resource_type, f.seq, f.count, f.bytes`

// ExportFileForDownload returns a file of a completed, live job of the
// owner and takes a download lease on the job for lease: until it passes,
// the cleanup does not delete the job's files, even once the job expires or
// is deleted (FHIR Bulk Data: files are never removed mid-download). lease
// must outlast the longest possible download (the server's write timeout).
// NOT_FOUND for anything else.
func (db *DB) ExportFileForDownload(ctx context.Context, jobID, name, orgID string, env gateway.Environment, lease time.Duration) (gateway.ExportFile, error) {
	var f gateway.ExportFile
	if !validUUID(orgID) {
		return f, gateway.ErrNotFound
	}
	err := db.GetContext(ctx, &f, exportFileForDownloadSQL, jobID, orgID, string(env), name, lease.Milliseconds())
	return f, notFound(err)
}

const purgeableExportJobsSQL = `
SELECT id FROM export_jobs
WHERE expires_at < now() AND purged_at IS NULL
  AND (downloading_until IS NULL OR downloading_until < now())
ORDER BY expires_at
LIMIT $1`

// PurgeableExportJobs returns up to limit expired or deleted jobs whose
// files may be removed now (no download lease).
func (db *DB) PurgeableExportJobs(ctx context.Context, limit int) ([]string, error) {
	var ids []string
	err := db.SelectContext(ctx, &ids, purgeableExportJobsSQL, limit)
	return ids, err
}

const beginPurgeExportJobSQL = `
UPDATE export_jobs SET status = CASE WHEN status IN ('QUEUED','RUNNING') THEN 'CANCELLED' ELSE status END
WHERE id = $1 AND expires_at < now() AND purged_at IS NULL
  AND (downloading_until IS NULL OR downloading_until < now())`

const finishPurgeExportJobSQL = `UPDATE export_jobs SET purged_at = now() WHERE id = $1`

// PurgeExportJob removes an expired job's files with remove (called with the
// job id once the job is confirmed purgeable) and then its file records.
// The job row stays as history, so the job still answers NOT_FOUND and
// provider-delta still finds its transactionTime. removed is false when the
// job was not purgeable (any more).
func (db *DB) PurgeExportJob(ctx context.Context, id string, remove func(id string) error) (removed bool, err error) {
	err = db.inTx(ctx, func(tx *sqlx.Tx) error {
		// The row lock taken here makes a concurrent download request wait
		// and then find the job expired.
		res, err := tx.ExecContext(ctx, beginPurgeExportJobSQL, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		if err := remove(id); err != nil {
			return err
		}
		for _, q := range []string{
			finishPurgeExportJobSQL,
			`DELETE FROM export_files WHERE job_id = $1`,
			`DELETE FROM export_refs WHERE job_id = $1`,
		} {
			if _, err := tx.ExecContext(ctx, q, id); err != nil {
				return err
			}
		}
		removed = true
		return nil
	})
	return removed, err
}

const exportJobExistsSQL = `SELECT EXISTS (SELECT 1 FROM export_jobs WHERE id = $1 AND purged_at IS NULL)`

// ExportJobHasFiles reports whether a job may still have files on disk (it
// exists and was not purged). The cleanup removes directories of jobs that
// do not.
func (db *DB) ExportJobHasFiles(ctx context.Context, id string) (bool, error) {
	var ok bool
	err := db.GetContext(ctx, &ok, exportJobExistsSQL, id)
	return ok, err
}

// validUUID reports whether s looks like a UUID, so ids from URLs never
// reach a uuid cast (which would fail the query instead of finding nothing).
func validUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range s {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
				return false
			}
		}
	}
	return true
}

// ValidUUID reports whether s is a UUID in its text form (8-4-4-4-12 hex
// digits), as every member, organization and resource id of the gateway is.
func ValidUUID(s string) bool { return validUUID(s) }
