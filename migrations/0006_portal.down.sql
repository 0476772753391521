DELETE FROM educational_materials
WHERE id IN ('member-provider-access', 'provider-requesting-data', 'provider-attribution');
ALTER TABLE educational_materials DROP COLUMN position, DROP COLUMN citation;

DROP INDEX IF EXISTS invitations_email;

DROP INDEX IF EXISTS email_outbox_created;
DROP INDEX IF EXISTS email_outbox_unsent;
ALTER TABLE email_outbox DROP COLUMN next_attempt_at;
CREATE INDEX email_outbox_unsent ON email_outbox (created_at) WHERE sent_at IS NULL;

ALTER TABLE attributions DROP COLUMN recorded_by;

DROP INDEX IF EXISTS roster_rows_pending;
ALTER TABLE roster_rows
  DROP CONSTRAINT roster_rows_period,
  DROP COLUMN attribution_id,
  DROP COLUMN demographics_agree,
  DROP COLUMN period_end,
  DROP COLUMN period_start;
DROP INDEX IF EXISTS roster_submissions_organization;
ALTER TABLE roster_submissions DROP COLUMN environment;

ALTER TABLE access_request_transitions DROP COLUMN stages;
ALTER TABLE mutation_results DROP COLUMN input_sha256;
