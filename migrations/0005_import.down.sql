DROP INDEX IF EXISTS import_runs_started;
ALTER TABLE import_runs DROP COLUMN IF EXISTS error, DROP COLUMN IF EXISTS replace_scope;
DROP INDEX IF EXISTS attributions_payer_key;
DROP TABLE IF EXISTS import_source_ids;
DROP FUNCTION IF EXISTS import_rewrite_refs(jsonb, text[], text[]);
