-- Bulk export queue and files (FHIR Bulk Data 2.0, Da Vinci PDex).

-- request_hash: the normalized request, so that a duplicate of a job still
-- in flight from the same client is refused (429) without a race.
-- batches_done: the checkpoint number; export_refs rows of later batches are
-- discarded when a job resumes.
-- last_polled_at: polling faster than allowed answers 429 (Bulk Data "Bulk
-- Data Status Request").
-- downloading_until: a download lease; the cleanup never deletes a job's
-- files before it passes, so no file disappears mid-download.
-- purged_at: when the cleanup removed the files of an expired or deleted
-- job. The row stays (history, and provider-delta's previous
-- transactionTime); it answers 404 like a job that never existed.
ALTER TABLE export_jobs
  ADD COLUMN request_hash      text NOT NULL DEFAULT '',
  ADD COLUMN batches_done      int NOT NULL DEFAULT 0,
  ADD COLUMN last_polled_at    timestamptz,
  ADD COLUMN downloading_until timestamptz,
  ADD COLUMN purged_at         timestamptz;

CREATE UNIQUE INDEX export_jobs_in_flight_request
  ON export_jobs ((coalesce(client_id, user_id::text)), request_hash)
  WHERE status IN ('QUEUED','RUNNING');
CREATE INDEX export_jobs_purgeable ON export_jobs (expires_at) WHERE purged_at IS NULL AND expires_at IS NOT NULL;

-- seq orders a type's files; the highest one of a running job is the file
-- still being written, recorded at the last checkpoint with its byte size.
ALTER TABLE export_files ADD COLUMN seq int NOT NULL DEFAULT 1;

-- Supporting resources (Practitioner, Organization) already written by a
-- job, so each is exported once however many members refer to it.
CREATE TABLE export_refs (
  job_id        text NOT NULL REFERENCES export_jobs(id) ON DELETE CASCADE,
  resource_type text NOT NULL,
  resource_id   uuid NOT NULL,
  batch         int NOT NULL,
  PRIMARY KEY (job_id, resource_type, resource_id)
);
