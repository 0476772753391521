-- The whole domain of the Provider Access Gateway.
-- IDs are random UUIDs (deterministic v5 UUIDs for sandbox rows).
-- Every member-data table has last_updated, maintained by touch_last_updated().

CREATE FUNCTION touch_last_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    NEW.last_updated := coalesce(NEW.last_updated, now());
  ELSIF NEW IS DISTINCT FROM OLD THEN
    -- only a change of content moves last_updated (so _since exports stay exact)
    NEW.last_updated := OLD.last_updated;
    IF NEW IS DISTINCT FROM OLD THEN
      NEW.last_updated := now();
    END IF;
  END IF;
  RETURN NEW;
END $$;

-- Luhn check of an NPI: the check digit is computed over "80840" + the first
-- nine digits (CMS NPI standard, 45 CFR 162.406).
CREATE FUNCTION npi_valid(npi text) RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT npi ~ '^[0-9]{10}$' AND (
    SELECT sum(CASE WHEN i % 2 = 0 THEN (d * 2) / 10 + (d * 2) % 10 ELSE d END) % 10 = 0
    FROM (SELECT i, substr(reverse('80840' || npi), i::int, 1)::int AS d
          FROM generate_series(1, 15) AS i) digits
  )
$$;

CREATE TABLE organizations (
  id          uuid PRIMARY KEY,
  name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  type        text NOT NULL CHECK (type IN ('PROVIDER_HEALTH_SYSTEM','ACCOUNTABLE_CARE_ORGANIZATION',
                'CONSUMER_APPLICATION','PAYER','SERVICE_PROVIDER_OTHER','EHR_SOFTWARE')),
  npi         text NOT NULL UNIQUE CHECK (npi_valid(npi)),
  tin         text NOT NULL CHECK (tin ~ '^[0-9]{9}$'),
  status      text NOT NULL DEFAULT 'SANDBOX' CHECK (status IN ('SANDBOX','PENDING_REVIEW','PRODUCTION')),
  in_network  boolean NOT NULL DEFAULT false,
  synthetic   boolean NOT NULL DEFAULT false,   -- part of the sandbox data set
  address     jsonb NOT NULL DEFAULT '{}',
  created_at  timestamptz NOT NULL DEFAULT now(),
  last_updated timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
  id              uuid PRIMARY KEY,
  issuer          text NOT NULL,
  subject         text NOT NULL,
  email           text NOT NULL,
  name            text NOT NULL DEFAULT '',
  organization_id uuid REFERENCES organizations(id),
  role            text NOT NULL DEFAULT 'USER' CHECK (role IN ('ADMIN','USER')),
  created_at      timestamptz NOT NULL DEFAULT now(),
  last_seen_at    timestamptz,
  UNIQUE (issuer, subject)
);
CREATE INDEX users_organization ON users (organization_id);

CREATE TABLE invitations (
  id              uuid PRIMARY KEY,
  organization_id uuid NOT NULL REFERENCES organizations(id),
  email           text NOT NULL,
  role            text NOT NULL DEFAULT 'USER' CHECK (role IN ('ADMIN','USER')),
  invited_by      uuid NOT NULL REFERENCES users(id),
  created_at      timestamptz NOT NULL DEFAULT now(),
  accepted_at     timestamptz,
  accepted_by     uuid REFERENCES users(id),
  UNIQUE (organization_id, email)
);

-- Production access requests: stages are data (jsonb per stage), every
-- transition is kept with who and when.
CREATE TABLE access_requests (
  id              uuid PRIMARY KEY,
  organization_id uuid NOT NULL REFERENCES organizations(id),
  status          text NOT NULL DEFAULT 'DRAFT'
                  CHECK (status IN ('DRAFT','PENDING_REVIEW','CHANGES_REQUESTED','APPROVED','REJECTED')),
  stages          jsonb NOT NULL DEFAULT '{}',
  created_by      uuid REFERENCES users(id),
  created_at      timestamptz NOT NULL DEFAULT now(),
  submitted_at    timestamptz,
  decided_at      timestamptz,
  last_updated    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX access_requests_organization ON access_requests (organization_id);
CREATE UNIQUE INDEX access_requests_one_open ON access_requests (organization_id)
  WHERE status IN ('DRAFT','PENDING_REVIEW','CHANGES_REQUESTED');

CREATE TABLE access_request_transitions (
  id                uuid PRIMARY KEY,
  access_request_id uuid NOT NULL REFERENCES access_requests(id),
  from_status       text,
  to_status         text NOT NULL,
  actor_user_id     uuid REFERENCES users(id),
  reason            text NOT NULL DEFAULT '',
  at                timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX access_request_transitions_request ON access_request_transitions (access_request_id, at);

-- Members and their data. sandbox = synthetic data set.
CREATE TABLE members (
  id                uuid PRIMARY KEY,
  member_identifier text NOT NULL UNIQUE,
  given_name        text NOT NULL DEFAULT '',
  family_name       text NOT NULL DEFAULT '',
  birth_date        date,
  gender            text NOT NULL DEFAULT 'UNKNOWN' CHECK (gender IN ('MALE','FEMALE','OTHER','UNKNOWN')),
  address_line      text NOT NULL DEFAULT '',
  city              text NOT NULL DEFAULT '',
  state             text NOT NULL DEFAULT '',
  postal_code       text NOT NULL DEFAULT '',
  phone             text NOT NULL DEFAULT '',
  sandbox           boolean NOT NULL DEFAULT false,
  last_updated      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX members_name ON members (lower(family_name), lower(given_name));
CREATE INDEX members_birth_date ON members (birth_date);
CREATE INDEX members_last_updated ON members (last_updated);

CREATE TABLE practitioners (
  id                uuid PRIMARY KEY,
  npi               text NOT NULL UNIQUE CHECK (npi_valid(npi)),
  given_name        text NOT NULL DEFAULT '',
  family_name       text NOT NULL DEFAULT '',
  specialty_code    text NOT NULL DEFAULT '',
  specialty_display text NOT NULL DEFAULT '',
  organization_id   uuid REFERENCES organizations(id),
  sandbox           boolean NOT NULL DEFAULT false,
  last_updated      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX practitioners_organization ON practitioners (organization_id);

-- Attribution of a member to an organization (and optionally one of its
-- practitioners). period_end NULL = open. ended_at set = withdrawn.
CREATE TABLE attributions (
  id              uuid PRIMARY KEY,
  member_id       uuid NOT NULL REFERENCES members(id) ON DELETE CASCADE,
  organization_id uuid NOT NULL REFERENCES organizations(id),
  practitioner_id uuid REFERENCES practitioners(id),
  period_start    date NOT NULL,
  period_end      date,
  source          text NOT NULL CHECK (source IN ('PAYER','OPERATOR','ROSTER','SANDBOX')),
  ended_at        timestamptz,
  sandbox         boolean NOT NULL DEFAULT false,
  created_at      timestamptz NOT NULL DEFAULT now(),
  last_updated    timestamptz NOT NULL DEFAULT now(),
  CHECK (period_end IS NULL OR period_end >= period_start)
);
CREATE INDEX attributions_org_member ON attributions (organization_id, member_id) WHERE ended_at IS NULL;
CREATE INDEX attributions_member ON attributions (member_id);

-- Opt-out (42 CFR 422.121(a)(4)): a row means the member has opted out of
-- Provider Access sharing; no row means sharing (the default). The history of
-- every request, by whom and on whose behalf, is in opt_out_events.
CREATE TABLE provider_access_opt_outs (
  member_id    uuid PRIMARY KEY REFERENCES members(id) ON DELETE CASCADE,
  scope        text NOT NULL DEFAULT 'GLOBAL' CHECK (scope IN ('GLOBAL')),
  since        timestamptz NOT NULL DEFAULT now(),
  last_updated timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE opt_out_events (
  id                  uuid PRIMARY KEY,
  member_id           uuid NOT NULL REFERENCES members(id) ON DELETE CASCADE,
  opted_out           boolean NOT NULL,
  requested_by        text NOT NULL CHECK (requested_by IN ('MEMBER','PERSONAL_REPRESENTATIVE')),
  representative_name text NOT NULL DEFAULT '',
  effective_date      date NOT NULL,
  recorded_by         text NOT NULL DEFAULT '',   -- principal that recorded it
  recorded_at         timestamptz NOT NULL DEFAULT now(),
  CHECK (requested_by = 'MEMBER' OR representative_name <> '')
);
CREATE INDEX opt_out_events_member ON opt_out_events (member_id, recorded_at);

CREATE TABLE coverages (
  id            uuid PRIMARY KEY,
  member_id     uuid NOT NULL REFERENCES members(id) ON DELETE CASCADE,
  identifier    text NOT NULL UNIQUE,
  status        text NOT NULL DEFAULT 'active' CHECK (status IN ('active','cancelled','draft','entered-in-error')),
  type_code     text NOT NULL DEFAULT '',
  type_display  text NOT NULL DEFAULT '',
  plan_name     text NOT NULL DEFAULT '',
  group_number  text NOT NULL DEFAULT '',
  relationship  text NOT NULL DEFAULT 'self',
  payer_name    text NOT NULL DEFAULT '',
  period_start  date,
  period_end    date,
  last_updated  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX coverages_member ON coverages (member_id);
CREATE INDEX coverages_last_updated ON coverages (last_updated);

-- Claims. Every monetary amount is a column listed in auth.MoneyFields.
CREATE TABLE claims (
  id                        uuid PRIMARY KEY,
  member_id                 uuid NOT NULL REFERENCES members(id) ON DELETE CASCADE,
  identifier                text NOT NULL UNIQUE,
  type                      text NOT NULL CHECK (type IN ('INSTITUTIONAL_INPATIENT','INSTITUTIONAL_OUTPATIENT',
                              'PROFESSIONAL','ORAL','PHARMACY')),
  status                    text NOT NULL DEFAULT 'ACTIVE' CHECK (status IN ('ACTIVE','CANCELLED','ENTERED_IN_ERROR')),
  outcome                   text NOT NULL DEFAULT 'complete' CHECK (outcome IN ('complete','partial','queued','error')),
  service_start             date NOT NULL,
  service_end               date,
  created                   date NOT NULL,
  processed                 date,
  coverage_id               uuid REFERENCES coverages(id),
  billing_organization_id   uuid REFERENCES organizations(id),
  rendering_practitioner_id uuid REFERENCES practitioners(id),
  facility_name             text NOT NULL DEFAULT '',
  place_of_service          text NOT NULL DEFAULT '',
  type_of_bill              text NOT NULL DEFAULT '',
  drg                       text NOT NULL DEFAULT '',
  in_network                boolean NOT NULL DEFAULT true,
  sensitive                 boolean NOT NULL DEFAULT false,
  security_labels           text[] NOT NULL DEFAULT '{}',
  total_submitted           numeric(12,2),
  total_allowed             numeric(12,2),
  total_paid                numeric(12,2),
  payment_amount            numeric(12,2),
  payment_date              date,
  payment_adjustment        numeric(12,2),
  copay                     numeric(12,2),
  coinsurance               numeric(12,2),
  deductible                numeric(12,2),
  noncovered                numeric(12,2),
  member_liability          numeric(12,2),
  last_updated              timestamptz NOT NULL DEFAULT now(),
  CHECK (service_end IS NULL OR service_end >= service_start)
);
CREATE INDEX claims_member_service ON claims (member_id, service_start DESC, id);
CREATE INDEX claims_last_updated ON claims (last_updated);

CREATE TABLE claim_lines (
  claim_id         uuid NOT NULL REFERENCES claims(id) ON DELETE CASCADE,
  sequence         int NOT NULL CHECK (sequence > 0),
  service_date     date,
  product_code     text NOT NULL,
  product_system   text NOT NULL,
  product_display  text NOT NULL DEFAULT '',
  modifiers        text[] NOT NULL DEFAULT '{}',
  quantity         numeric(10,2) NOT NULL DEFAULT 1,
  revenue_code     text NOT NULL DEFAULT '',
  place_of_service text NOT NULL DEFAULT '',
  denial_reason    text NOT NULL DEFAULT '',
  submitted        numeric(12,2),
  allowed          numeric(12,2),
  paid             numeric(12,2),
  copay            numeric(12,2),
  coinsurance      numeric(12,2),
  deductible       numeric(12,2),
  member_liability numeric(12,2),
  last_updated     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (claim_id, sequence)
);

CREATE TABLE claim_diagnoses (
  claim_id             uuid NOT NULL REFERENCES claims(id) ON DELETE CASCADE,
  sequence             int NOT NULL CHECK (sequence > 0),
  code                 text NOT NULL,
  system               text NOT NULL,
  display              text NOT NULL DEFAULT '',
  type                 text NOT NULL DEFAULT 'secondary',
  present_on_admission text NOT NULL DEFAULT '',
  last_updated         timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (claim_id, sequence)
);

CREATE TABLE claim_procedures (
  claim_id     uuid NOT NULL REFERENCES claims(id) ON DELETE CASCADE,
  sequence     int NOT NULL CHECK (sequence > 0),
  code         text NOT NULL,
  system       text NOT NULL,
  display      text NOT NULL DEFAULT '',
  performed_on date,
  last_updated timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (claim_id, sequence)
);

CREATE TABLE encounters (
  id              uuid PRIMARY KEY,
  member_id       uuid NOT NULL REFERENCES members(id) ON DELETE CASCADE,
  identifier      text NOT NULL UNIQUE,
  status          text NOT NULL CHECK (status IN ('planned','arrived','triaged','in-progress','onleave',
                    'finished','cancelled','entered-in-error','unknown')),
  class           text NOT NULL,
  type_code       text NOT NULL DEFAULT '',
  type_display    text NOT NULL DEFAULT '',
  period_start    timestamptz NOT NULL,
  period_end      timestamptz,
  practitioner_id uuid REFERENCES practitioners(id),
  organization_id uuid REFERENCES organizations(id),
  reason_code     text NOT NULL DEFAULT '',
  reason_display  text NOT NULL DEFAULT '',
  sensitive       boolean NOT NULL DEFAULT false,
  security_labels text[] NOT NULL DEFAULT '{}',
  last_updated    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX encounters_member ON encounters (member_id, period_start DESC, id);
CREATE INDEX encounters_last_updated ON encounters (last_updated);

-- Prior authorizations (PDex Prior Authorization, §pdex-395): pending,
-- approved and denied with the specific reason; drug PAs flagged.
CREATE TABLE prior_authorizations (
  id                         uuid PRIMARY KEY,
  member_id                  uuid NOT NULL REFERENCES members(id) ON DELETE CASCADE,
  identifier                 text NOT NULL UNIQUE,
  status                     text NOT NULL CHECK (status IN ('PENDING','APPROVED','PARTIALLY_APPROVED','DENIED','CANCELLED')),
  drug                       boolean NOT NULL DEFAULT false,
  service_category           text NOT NULL DEFAULT '',
  requested_on               date NOT NULL,
  decided_on                 date,
  authorized_start           date,
  authorized_end             date,
  last_status_change         timestamptz NOT NULL,
  requesting_practitioner_id uuid REFERENCES practitioners(id),
  organization_id            uuid REFERENCES organizations(id),
  denial_reason_code         text NOT NULL DEFAULT '',
  denial_reason              text NOT NULL DEFAULT '',
  sensitive                  boolean NOT NULL DEFAULT false,
  security_labels            text[] NOT NULL DEFAULT '{}',
  last_updated               timestamptz NOT NULL DEFAULT now(),
  CHECK (status <> 'DENIED' OR denial_reason <> '')
);
CREATE INDEX prior_authorizations_member ON prior_authorizations (member_id, requested_on DESC, id);
CREATE INDEX prior_authorizations_last_updated ON prior_authorizations (last_updated);

CREATE TABLE prior_authorization_items (
  prior_authorization_id uuid NOT NULL REFERENCES prior_authorizations(id) ON DELETE CASCADE,
  sequence               int NOT NULL CHECK (sequence > 0),
  product_code           text NOT NULL,
  product_system         text NOT NULL,
  product_display        text NOT NULL DEFAULT '',
  quantity_requested     numeric(10,2) NOT NULL DEFAULT 1,
  quantity_approved      numeric(10,2) NOT NULL DEFAULT 0,
  quantity_used          numeric(10,2) NOT NULL DEFAULT 0,
  status                 text NOT NULL DEFAULT '',
  denial_reason          text NOT NULL DEFAULT '',
  submitted              numeric(12,2),
  last_updated           timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (prior_authorization_id, sequence)
);

-- US Core clinical resources, kept as FHIR R4 JSON with the typed columns the
-- policy and the API filter on.
CREATE TABLE clinical_resources (
  id              uuid PRIMARY KEY,
  member_id       uuid NOT NULL REFERENCES members(id) ON DELETE CASCADE,
  resource_type   text NOT NULL CHECK (resource_type IN ('Condition','Observation','MedicationRequest',
                    'Immunization','AllergyIntolerance','Procedure')),
  source_id       text NOT NULL,
  code            text NOT NULL DEFAULT '',
  code_system     text NOT NULL DEFAULT '',
  display         text NOT NULL DEFAULT '',
  status          text NOT NULL DEFAULT '',
  date_of_service date,
  resource        jsonb NOT NULL,
  sensitive       boolean NOT NULL DEFAULT false,
  security_labels text[] NOT NULL DEFAULT '{}',
  last_updated    timestamptz NOT NULL DEFAULT now(),
  UNIQUE (resource_type, source_id)
);
CREATE INDEX clinical_resources_member ON clinical_resources (member_id, resource_type, date_of_service DESC, id);
CREATE INDEX clinical_resources_last_updated ON clinical_resources (last_updated);

DO $$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['organizations','access_requests','members','practitioners','attributions',
    'provider_access_opt_outs','coverages','claims','claim_lines','claim_diagnoses','claim_procedures',
    'encounters','prior_authorizations','prior_authorization_items','clinical_resources']
  LOOP
    EXECUTE format('CREATE TRIGGER %I BEFORE INSERT OR UPDATE ON %I FOR EACH ROW EXECUTE FUNCTION touch_last_updated()',
                   t || '_last_updated', t);
  END LOOP;
END $$;

-- API clients and their credentials.
CREATE TABLE clients (
  id              text PRIMARY KEY,             -- the OAuth2 client_id: random, opaque
  organization_id uuid NOT NULL REFERENCES organizations(id),
  name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
  description     text NOT NULL DEFAULT '',
  environment     text NOT NULL CHECK (environment IN ('SANDBOX','PRODUCTION')),
  access_type     text NOT NULL CHECK (access_type IN ('PROVIDER_ACCESS','PATIENT_ACCESS')),
  status          text NOT NULL DEFAULT 'ACTIVE' CHECK (status IN ('ACTIVE','REVOKED')),
  bound_member_id uuid REFERENCES members(id),
  jwks            jsonb,
  jwks_url        text NOT NULL DEFAULT '',
  created_by      uuid REFERENCES users(id),
  created_at      timestamptz NOT NULL DEFAULT now(),
  revoked_at      timestamptz,
  last_used_at    timestamptz,
  UNIQUE (organization_id, name),
  CHECK (bound_member_id IS NULL OR access_type = 'PATIENT_ACCESS'),
  CHECK ((status = 'REVOKED') = (revoked_at IS NOT NULL))
);

-- Secrets are 256 random bits, stored only as SHA-256. A rotated secret keeps
-- working until expires_at (the overlap window).
CREATE TABLE client_secrets (
  id          uuid PRIMARY KEY,
  client_id   text NOT NULL REFERENCES clients(id),
  sha256      bytea NOT NULL UNIQUE CHECK (length(sha256) = 32),
  created_at  timestamptz NOT NULL DEFAULT now(),
  expires_at  timestamptz
);
CREATE INDEX client_secrets_client ON client_secrets (client_id);

-- Tokens issued, for "tokens issued in the last 24 h" and forensics (no token text).
CREATE TABLE token_issuances (
  client_id  text NOT NULL REFERENCES clients(id),
  issued_at  timestamptz NOT NULL DEFAULT now(),
  jti        text NOT NULL,
  PRIMARY KEY (client_id, issued_at, jti)
);

-- The gateway's own token-signing keys, private halves encrypted with
-- KEY_ENCRYPTION_KEY (AES-256-GCM).
CREATE TABLE signing_keys (
  kid               text PRIMARY KEY,
  alg               text NOT NULL CHECK (alg IN ('RS256','RS384','ES256','ES384')),
  private_key_sealed bytea NOT NULL,
  public_jwk        jsonb NOT NULL,
  created_at        timestamptz NOT NULL DEFAULT now(),
  active_from       timestamptz NOT NULL DEFAULT now(),
  retired_at        timestamptz
);

-- Client-assertion jti values, kept until their exp so a replay is refused on
-- every instance (SMART Backend Services).
CREATE TABLE used_jtis (
  client_id  text NOT NULL,
  jti        text NOT NULL,
  expires_at timestamptz NOT NULL,
  PRIMARY KEY (client_id, jti)
);
CREATE INDEX used_jtis_expires ON used_jtis (expires_at);

-- Provider rosters submitted for operator confirmation.
CREATE TABLE roster_submissions (
  id              uuid PRIMARY KEY,
  organization_id uuid NOT NULL REFERENCES organizations(id),
  submitted_by    text NOT NULL,
  submitted_at    timestamptz NOT NULL DEFAULT now(),
  period_start    date NOT NULL,
  period_end      date
);

CREATE TABLE roster_rows (
  id                  uuid PRIMARY KEY,
  roster_id           uuid NOT NULL REFERENCES roster_submissions(id),
  row_number          int NOT NULL,
  member_identifier   text NOT NULL DEFAULT '',
  given_name          text NOT NULL DEFAULT '',
  family_name         text NOT NULL DEFAULT '',
  birth_date          date,
  gender              text NOT NULL DEFAULT '',
  matched_member_id   uuid REFERENCES members(id),
  match_method        text NOT NULL DEFAULT '' CHECK (match_method IN ('','IDENTIFIER','DEMOGRAPHICS')),
  status              text NOT NULL DEFAULT 'PENDING' CHECK (status IN ('PENDING','UNMATCHED','CONFIRMED','REJECTED')),
  reason              text NOT NULL DEFAULT '',
  decided_by          text NOT NULL DEFAULT '',
  decided_at          timestamptz,
  UNIQUE (roster_id, row_number)
);

-- Bulk export jobs. A job belongs to an organization and an environment and
-- records who started it; progress is a member cursor persisted per batch.
CREATE TABLE export_jobs (
  id                 text PRIMARY KEY,          -- random, unguessable
  organization_id    uuid NOT NULL REFERENCES organizations(id),
  environment        text NOT NULL CHECK (environment IN ('SANDBOX','PRODUCTION')),
  client_id          text REFERENCES clients(id),
  user_id            uuid REFERENCES users(id),
  group_id           text,
  request_url        text NOT NULL,
  params             jsonb NOT NULL DEFAULT '{}',
  export_type        text NOT NULL DEFAULT 'PROVIDER_DOWNLOAD'
                     CHECK (export_type IN ('PROVIDER_DOWNLOAD','PROVIDER_DELTA','PROVIDER_SNAPSHOT')),
  status             text NOT NULL DEFAULT 'QUEUED'
                     CHECK (status IN ('QUEUED','RUNNING','COMPLETED','FAILED','CANCELLED')),
  received_at        timestamptz NOT NULL DEFAULT now(),
  started_at         timestamptz,
  completed_at       timestamptz,
  transaction_time   timestamptz,
  cursor_member_id   uuid,
  members_done       int NOT NULL DEFAULT 0,
  members_total      int,
  lease_owner        text,
  lease_expires_at   timestamptz,
  attempts           int NOT NULL DEFAULT 0,
  error              text NOT NULL DEFAULT '',
  expires_at         timestamptz,
  CHECK (client_id IS NOT NULL OR user_id IS NOT NULL)
);
CREATE INDEX export_jobs_claim ON export_jobs (status, received_at) WHERE status IN ('QUEUED','RUNNING');
CREATE INDEX export_jobs_organization ON export_jobs (organization_id, environment, received_at DESC);

CREATE TABLE export_files (
  job_id       text NOT NULL REFERENCES export_jobs(id) ON DELETE CASCADE,
  name         text NOT NULL,
  kind         text NOT NULL CHECK (kind IN ('output','error','deleted')),
  resource_type text NOT NULL,
  count        int NOT NULL DEFAULT 0,
  bytes        bigint NOT NULL DEFAULT 0,
  created_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (job_id, name)
);

-- Audit: one row per request × member read. Append-only: the gateway's
-- role never updates or deletes (enforced by the trigger below).
CREATE TABLE audit_events (
  id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  at              timestamptz NOT NULL DEFAULT now(),
  request_id      text NOT NULL DEFAULT '',
  principal_kind  text NOT NULL,
  principal_id    text NOT NULL,
  organization_id uuid,
  environment     text,
  operation       text NOT NULL,
  member_id       uuid,
  resources       jsonb NOT NULL DEFAULT '{}',   -- {"Claim": 12, "Encounter": 3}
  outcome         text NOT NULL DEFAULT 'SUCCESS' CHECK (outcome IN ('SUCCESS','PARTIAL','FAILURE')),
  export_job_id   text
);
CREATE INDEX audit_events_member ON audit_events (member_id, at);
CREATE INDEX audit_events_organization ON audit_events (organization_id, at);
CREATE INDEX audit_events_at ON audit_events (at);

CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit_events is append-only';
END $$;
CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
  FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();

-- Email outbox: delivered when SMTP_URL is set; operators read it.
CREATE TABLE email_outbox (
  id           uuid PRIMARY KEY,
  to_address   text NOT NULL,
  subject      text NOT NULL,
  body         text NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  sent_at      timestamptz,
  attempts     int NOT NULL DEFAULT 0,
  last_error   text NOT NULL DEFAULT ''
);
CREATE INDEX email_outbox_unsent ON email_outbox (created_at) WHERE sent_at IS NULL;

-- Import runs of the payer's files.
CREATE TABLE import_runs (
  id          uuid PRIMARY KEY,
  kind        text NOT NULL CHECK (kind IN ('fhir','attribution','optout')),
  files       text[] NOT NULL,
  started_by  text NOT NULL,
  started_at  timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz,
  counts      jsonb NOT NULL DEFAULT '{}',
  outcome     text NOT NULL DEFAULT 'RUNNING' CHECK (outcome IN ('RUNNING','SUCCEEDED','FAILED'))
);

-- Plain-language member and provider education (42 CFR 422.121(a)(4)(ii), (a)(5)).
CREATE TABLE educational_materials (
  id         text NOT NULL,
  audience   text NOT NULL CHECK (audience IN ('MEMBER','PROVIDER')),
  language   text NOT NULL,
  title      text NOT NULL,
  body       text NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (id, language)
);

-- Idempotency of mutations under retry (clientMutationId).
CREATE TABLE mutation_results (
  principal_id       text NOT NULL,
  client_mutation_id text NOT NULL,
  mutation           text NOT NULL,
  result             jsonb NOT NULL,
  created_at         timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (principal_id, mutation, client_mutation_id)
);
