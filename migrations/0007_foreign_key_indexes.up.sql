-- Indexes on foreign keys that deletes and replacements follow: without
-- them, deleting a coverage, organization or practitioner scans the whole
-- referencing table (a sandbox reseed of 100,000 members took hours).
CREATE INDEX claims_coverage ON claims (coverage_id);
CREATE INDEX claims_billing_organization ON claims (billing_organization_id);
CREATE INDEX claims_rendering_practitioner ON claims (rendering_practitioner_id);
CREATE INDEX encounters_practitioner ON encounters (practitioner_id);
CREATE INDEX encounters_organization ON encounters (organization_id);
CREATE INDEX prior_authorizations_practitioner ON prior_authorizations (requesting_practitioner_id);
CREATE INDEX prior_authorizations_organization ON prior_authorizations (organization_id);
CREATE INDEX attributions_practitioner ON attributions (practitioner_id);
