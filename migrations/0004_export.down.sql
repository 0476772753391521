DROP TABLE IF EXISTS export_refs;
ALTER TABLE export_files DROP COLUMN IF EXISTS seq;
DROP INDEX IF EXISTS export_jobs_purgeable;
DROP INDEX IF EXISTS export_jobs_in_flight_request;
ALTER TABLE export_jobs
  DROP COLUMN IF EXISTS purged_at,
  DROP COLUMN IF EXISTS downloading_until,
  DROP COLUMN IF EXISTS last_polled_at,
  DROP COLUMN IF EXISTS batches_done,
  DROP COLUMN IF EXISTS request_hash;
