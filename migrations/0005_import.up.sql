-- Import of the payer's files (the `import` command, DESIGN.md §4 "Import
-- formats").

-- The source system's resource ids of the rows that imports created or
-- matched ("Patient/123" in the payer's files → members.id), so that a
-- reference by such an id resolves in a later line, a later file or a later
-- import. target_id is a row of members, practitioners, organizations or
-- coverages according to resource_type; there is no foreign key, and a
-- target that no longer exists simply does not resolve (the resolution
-- joins the target table).
CREATE TABLE import_source_ids (
  resource_type text NOT NULL CHECK (resource_type IN ('Patient','Practitioner','Organization','Coverage')),
  source_id     text NOT NULL,
  target_id     uuid NOT NULL,
  PRIMARY KEY (resource_type, source_id)
);

-- An imported attribution is identified by member, organization,
-- practitioner (none: organization-level) and period start, so that loading
-- the same list twice changes nothing. Only the payer's rows (source PAYER)
-- are keyed: operators and rosters may record what they like.
CREATE UNIQUE INDEX attributions_payer_key ON attributions
  (member_id, organization_id, (coalesce(practitioner_id, '00000000-0000-0000-0000-000000000000'::uuid)), period_start)
  WHERE source = 'PAYER';

-- What a run was asked to do and why it failed; newest first for operators.
ALTER TABLE import_runs
  ADD COLUMN replace_scope text NOT NULL DEFAULT '',
  ADD COLUMN error         text NOT NULL DEFAULT '';
CREATE INDEX import_runs_started ON import_runs (started_at DESC, id DESC);

-- import_rewrite_refs replaces, in a clinical resource kept as JSON, each
-- reference string olds[i] by news[i] (the source system's
-- "Practitioner/123" by the gateway's "Practitioner/<id>"). References are
-- whole JSON strings of FHIR ids (letters, digits, '-', '.'), so a textual
-- replace of the quoted string is exact.
CREATE FUNCTION import_rewrite_refs(doc jsonb, olds text[], news text[]) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
  t text := doc::text;
BEGIN
  FOR i IN 1 .. coalesce(array_length(olds, 1), 0) LOOP
    t := replace(t, to_jsonb(olds[i])::text, to_jsonb(news[i])::text);
  END LOOP;
  RETURN t::jsonb;
END $$;
