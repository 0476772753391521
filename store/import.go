package store

// Import: loading the payer's files (package ingest reads them into
// batches). Each batch is copied into session-local staging tables (TEMP,
// filled with COPY), then merged into the real tables with set-based
// INSERT … ON CONFLICT statements keyed by business identifiers, all in one
// transaction per batch:
//
//  1. staging: COPY every record of the batch, references as written;
//  2. lines whose identifier belongs to a sandbox row are rejected (an
//     import never touches the synthetic data set);
//  3. organizations, practitioners and members are merged, and the source
//     system's ids of their resources remembered (import_source_ids);
//  4. references are resolved, once per distinct reference (stg_keys): by
//     source id, then by gateway id, then by business identifier, to rows
//     that are not sandbox data; coverages are merged in between, so that
//     claims may refer to coverages of the same batch;
//  5. lines with a reference that does not resolve are taken out of the
//     batch (Dangling: the caller may retry them after the rest of the load
//     or reject them);
//  6. claims, prior authorizations, encounters and clinical resources are
//     merged, their child rows (claim lines, diagnoses, procedures, prior
//     authorization items) inserted, updated or deleted only where they
//     differ.
//
// Every merge updates a row only when its content differs (WHERE … IS
// DISTINCT FROM …), so reloading a file writes nothing, last_updated stays
// put, and the row counts as unchanged. A statement the
// database refuses (a constraint the reader did not foresee) rolls back to
// a savepoint and the batch is bisected until the one line at fault is
// rejected: valid lines always load, and a rejected line never half-writes.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"example.com/gateway/gateway"
	"example.com/gateway/ingest"
)

// ImportOptions configure the loading of batches.
type ImportOptions struct {
	// RecordedBy is recorded on opt-out events (opt_out_events.recorded_by):
	// who ran the import.
	RecordedBy string
	// ReplaceOrganizationNPI is --replace-scope organization=NPI (attribution
	// only): rows for other organizations are rejected, and EndUnseen ends
	// the organization's payer attributions that the load did not contain.
	ReplaceOrganizationNPI string
}

// BatchResult is what loading one batch did.
type BatchResult struct {
	// Counts are by resource type (or "attribution", "optout"): lines
	// loaded (inserted or changed), unchanged, and rejected (the batch's own
	// rejects and Rejects). Dangling lines are in no count yet.
	Counts map[string]*gateway.ImportCounts
	// Rejects are lines the database refused: an identifier of the sandbox
	// data set, a reference that does not resolve in a CSV, a constraint.
	Rejects []ingest.Reject
	// Dangling are FHIR lines with a reference that resolves neither within
	// the batch nor in the database. They are not loaded: the caller retries
	// them once the rest of the load is in, or rejects them.
	Dangling []ingest.Reject
}

func (r *BatchResult) count(typ string) *gateway.ImportCounts {
	if r.Counts == nil {
		r.Counts = map[string]*gateway.ImportCounts{}
	}
	c := r.Counts[typ]
	if c == nil {
		c = &gateway.ImportCounts{}
		r.Counts[typ] = c
	}
	return c
}

// Add adds o's counts, rejects and dangling lines to r.
func (r *BatchResult) Add(o BatchResult) {
	for typ, c := range o.Counts {
		t := r.count(typ)
		t.Loaded += c.Loaded
		t.Unchanged += c.Unchanged
		t.Rejected += c.Rejected
		t.Ended += c.Ended
	}
	r.Rejects = append(r.Rejects, o.Rejects...)
	r.Dangling = append(r.Dangling, o.Dangling...)
}

// Importer loads batches over one connection of its own: the staging
// tables are that session's (TEMP), created once. Each batch is one
// transaction, unless Begin opened a transaction for the whole load
// (--replace-scope must replace a list atomically, or not at all).
type Importer struct {
	conn *sqlx.Conn
	tx   *sqlx.Tx // the open transaction
	opts ImportOptions
	// atomic: Begin was called; batches share one transaction.
	atomic bool
	// noTriggers: the merges run with session_replication_role = replica
	// (see importSkipTriggersSQL).
	noTriggers bool
}

// The merges run with triggers off when the role may do so (superusers,
// such as the private cluster's, or roles granted SET on
// session_replication_role): the per-row foreign-key checks are most of a
// merge's cost (about 10 µs each, four per claim). It is safe: every
// reference a merge writes was resolved by a join in this transaction and
// its target row locked FOR KEY SHARE once per batch (lockTargetsSQL), so
// it exists and cannot be deleted before the commit; every child row's
// parent is written by the same transaction; every UPDATE sets
// last_updated itself exactly when the row's content changes (WHERE … IS
// DISTINCT FROM …), and inserts take the column's default, as the
// touch_last_updated trigger would; NOT NULL, CHECK and UNIQUE constraints
// still apply. Without the privilege, the triggers run and the same SQL
// gives the same rows, more slowly.
const (
	importCanSkipTriggersSQL = `SET session_replication_role = replica; RESET session_replication_role`
	importSkipTriggersSQL    = `SET LOCAL session_replication_role = replica`
)

// importStagingSQL creates the staging tables of an Importer's session
// (TEMP: no WAL, invisible to other sessions), once.
const importStagingSQL = `
CREATE TEMP TABLE IF NOT EXISTS stg_organizations (line int NOT NULL, source_id text NOT NULL, npi text NOT NULL,
  name text NOT NULL, type text NOT NULL, tin text NOT NULL, address jsonb NOT NULL);
CREATE TEMP TABLE IF NOT EXISTS stg_practitioners (line int NOT NULL, source_id text NOT NULL, npi text NOT NULL,
  given_name text NOT NULL, family_name text NOT NULL, specialty_code text NOT NULL, specialty_display text NOT NULL);
CREATE TEMP TABLE IF NOT EXISTS stg_members (line int NOT NULL, source_id text NOT NULL, member_identifier text NOT NULL,
  given_name text NOT NULL, family_name text NOT NULL, birth_date date, gender text NOT NULL, address_line text NOT NULL,
  city text NOT NULL, state text NOT NULL, postal_code text NOT NULL, phone text NOT NULL);
CREATE TEMP TABLE IF NOT EXISTS stg_coverages (line int NOT NULL, source_id text NOT NULL, patient_ref text NOT NULL,
  patient_ident text NOT NULL, identifier text NOT NULL, status text NOT NULL, type_code text NOT NULL,
  type_display text NOT NULL, plan_name text NOT NULL, group_number text NOT NULL, relationship text NOT NULL,
  payer_name text NOT NULL, period_start date, period_end date);
CREATE TEMP TABLE IF NOT EXISTS stg_claims (line int NOT NULL, patient_ref text NOT NULL, patient_ident text NOT NULL,
  coverage_ref text NOT NULL, coverage_ident text NOT NULL, billing_ref text NOT NULL, billing_ident text NOT NULL,
  rendering_ref text NOT NULL, rendering_ident text NOT NULL, identifier text NOT NULL, type text NOT NULL,
  status text NOT NULL, outcome text NOT NULL, service_start date NOT NULL, service_end date, created date NOT NULL,
  processed date, facility_name text NOT NULL, place_of_service text NOT NULL, type_of_bill text NOT NULL,
  drg text NOT NULL, in_network boolean NOT NULL, sensitive boolean NOT NULL, security_labels text[] NOT NULL,
  total_submitted numeric(12,2), total_allowed numeric(12,2), total_paid numeric(12,2), payment_amount numeric(12,2),
  payment_date date, payment_adjustment numeric(12,2), copay numeric(12,2), coinsurance numeric(12,2),
  deductible numeric(12,2), noncovered numeric(12,2), member_liability numeric(12,2));
CREATE TEMP TABLE IF NOT EXISTS stg_claim_lines (line int NOT NULL, sequence int NOT NULL, service_date date,
  product_code text NOT NULL, product_system text NOT NULL, product_display text NOT NULL, modifiers text[] NOT NULL,
  quantity numeric(10,2) NOT NULL, revenue_code text NOT NULL, place_of_service text NOT NULL, denial_reason text NOT NULL,
  submitted numeric(12,2), allowed numeric(12,2), paid numeric(12,2), copay numeric(12,2), coinsurance numeric(12,2),
  deductible numeric(12,2), member_liability numeric(12,2));
CREATE TEMP TABLE IF NOT EXISTS stg_claim_diagnoses (line int NOT NULL, sequence int NOT NULL, code text NOT NULL,
  system text NOT NULL, display text NOT NULL, type text NOT NULL, present_on_admission text NOT NULL);
CREATE TEMP TABLE IF NOT EXISTS stg_claim_procedures (line int NOT NULL, sequence int NOT NULL, code text NOT NULL,
  system text NOT NULL, display text NOT NULL, performed_on date);
CREATE TEMP TABLE IF NOT EXISTS stg_prior_auths (line int NOT NULL, patient_ref text NOT NULL, patient_ident text NOT NULL,
  requester_ref text NOT NULL, requester_ident text NOT NULL, organization_ref text NOT NULL,
  organization_ident text NOT NULL, identifier text NOT NULL, status text NOT NULL, drug boolean NOT NULL,
  service_category text NOT NULL, requested_on date NOT NULL, decided_on date, authorized_start date,
  authorized_end date, last_status_change timestamptz NOT NULL, denial_reason_code text NOT NULL,
  denial_reason text NOT NULL, sensitive boolean NOT NULL, security_labels text[] NOT NULL);
CREATE TEMP TABLE IF NOT EXISTS stg_pa_items (line int NOT NULL, sequence int NOT NULL, product_code text NOT NULL,
  product_system text NOT NULL, product_display text NOT NULL, quantity_requested numeric(10,2) NOT NULL,
  quantity_approved numeric(10,2) NOT NULL, quantity_used numeric(10,2) NOT NULL, status text NOT NULL,
  denial_reason text NOT NULL, submitted numeric(12,2));
CREATE TEMP TABLE IF NOT EXISTS stg_encounters (line int NOT NULL, patient_ref text NOT NULL, patient_ident text NOT NULL,
  practitioner_ref text NOT NULL, practitioner_ident text NOT NULL, organization_ref text NOT NULL,
  organization_ident text NOT NULL, identifier text NOT NULL, status text NOT NULL, class text NOT NULL,
  type_code text NOT NULL, type_display text NOT NULL, period_start timestamptz NOT NULL, period_end timestamptz,
  reason_code text NOT NULL, reason_display text NOT NULL, sensitive boolean NOT NULL, security_labels text[] NOT NULL);
CREATE TEMP TABLE IF NOT EXISTS stg_clinical (line int NOT NULL, patient_ref text NOT NULL, patient_ident text NOT NULL,
  resource_type text NOT NULL, source_id text NOT NULL, code text NOT NULL, code_system text NOT NULL,
  display text NOT NULL, status text NOT NULL, date_of_service date, resource jsonb NOT NULL,
  sensitive boolean NOT NULL, security_labels text[] NOT NULL);
CREATE TEMP TABLE IF NOT EXISTS stg_clinical_refs (line int NOT NULL, rtype text NOT NULL, ref_id text NOT NULL,
  old text NOT NULL);
CREATE TEMP TABLE IF NOT EXISTS stg_attributions (line int NOT NULL, member_identifier text NOT NULL,
  organization_npi text NOT NULL, practitioner_npi text NOT NULL, period_start date NOT NULL, period_end date);
CREATE TEMP TABLE IF NOT EXISTS stg_attr_resolved (line int NOT NULL, member_id uuid, organization_id uuid,
  practitioner_npi text NOT NULL, practitioner_id uuid, period_start date NOT NULL, period_end date);
CREATE TEMP TABLE IF NOT EXISTS stg_opt_outs (line int NOT NULL, member_identifier text NOT NULL, opted_out boolean NOT NULL,
  requested_by text NOT NULL, representative_name text NOT NULL, effective_date date NOT NULL, member_id uuid);
CREATE TEMP TABLE IF NOT EXISTS stg_keys (rtype text NOT NULL, ref_id text NOT NULL, ident text NOT NULL, target uuid,
  PRIMARY KEY (rtype, ref_id, ident));
CREATE TEMP TABLE IF NOT EXISTS stg_opt_state (member_id uuid PRIMARY KEY, opted_out boolean NOT NULL,
  effective_date date NOT NULL);
CREATE TEMP TABLE IF NOT EXISTS stg_attr_scope (member_id uuid NOT NULL, organization_id uuid NOT NULL,
  practitioner_id uuid, period_start date NOT NULL);
-- The merged claims and prior authorizations of a batch: their staged
-- line, their row id, whether the merge inserted them and whether anything
-- of them changed.
CREATE TEMP TABLE IF NOT EXISTS stg_claim_ids (line int PRIMARY KEY, id uuid NOT NULL, inserted boolean NOT NULL,
  changed boolean NOT NULL);
CREATE TEMP TABLE IF NOT EXISTS stg_pa_ids (line int PRIMARY KEY, id uuid NOT NULL, inserted boolean NOT NULL,
  changed boolean NOT NULL);
-- Temporary tables have no statistics (autovacuum never analyzes them), so
-- the planner guesses their sizes: indexes on the join keys keep its
-- guesses from turning a join into a quadratic nested loop.
CREATE INDEX IF NOT EXISTS stg_claims_line ON stg_claims (line);
CREATE INDEX IF NOT EXISTS stg_claims_identifier ON stg_claims (identifier);
CREATE INDEX IF NOT EXISTS stg_claim_ids_id ON stg_claim_ids (id);
CREATE INDEX IF NOT EXISTS stg_claim_lines_line ON stg_claim_lines (line, sequence);
CREATE INDEX IF NOT EXISTS stg_claim_diagnoses_line ON stg_claim_diagnoses (line, sequence);
CREATE INDEX IF NOT EXISTS stg_claim_procedures_line ON stg_claim_procedures (line, sequence);
CREATE INDEX IF NOT EXISTS stg_prior_auths_line ON stg_prior_auths (line);
CREATE INDEX IF NOT EXISTS stg_prior_auths_identifier ON stg_prior_auths (identifier);
CREATE INDEX IF NOT EXISTS stg_pa_ids_id ON stg_pa_ids (id);
CREATE INDEX IF NOT EXISTS stg_pa_items_line ON stg_pa_items (line, sequence);
CREATE INDEX IF NOT EXISTS stg_clinical_refs_line ON stg_clinical_refs (line);`

// NewImporter returns an Importer on a connection of its own; Close
// returns the connection.
func (db *DB) NewImporter(ctx context.Context, opts ImportOptions) (*Importer, error) {
	conn, err := db.Connx(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := conn.ExecContext(ctx, importStagingSQL); err != nil {
		conn.Close()
		return nil, fmt.Errorf("import staging: %w", err)
	}
	im := &Importer{conn: conn, opts: opts}
	_, err = conn.ExecContext(ctx, importCanSkipTriggersSQL)
	var pqErr *pq.Error
	switch {
	case err == nil:
		im.noTriggers = true
	case errors.As(err, &pqErr) && pqErr.Code == "42501": // insufficient_privilege
	default:
		conn.Close()
		return nil, err
	}
	return im, nil
}

// TriggersSkipped reports whether the merges run without per-row triggers
// (see importSkipTriggersSQL).
func (im *Importer) TriggersSkipped() bool { return im.noTriggers }

// Close abandons an open transaction, drops the session's staging tables
// and returns the connection to the pool.
func (im *Importer) Close() error {
	if im.tx != nil {
		im.tx.Rollback()
		im.tx = nil
	}
	_, err := im.conn.ExecContext(context.Background(), `DISCARD TEMP`)
	return errors.Join(err, im.conn.Close())
}

func (im *Importer) begin(ctx context.Context) error {
	tx, err := im.conn.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	if im.noTriggers {
		if _, err := tx.ExecContext(ctx, importSkipTriggersSQL); err != nil {
			tx.Rollback()
			return err
		}
	}
	im.tx = tx
	return nil
}

// Begin opens one transaction for every batch loaded until Commit or
// Rollback (--replace-scope).
func (im *Importer) Begin(ctx context.Context) error {
	if im.tx != nil {
		return errors.New("import: a transaction is already open")
	}
	if err := im.begin(ctx); err != nil {
		return err
	}
	if _, err := im.tx.ExecContext(ctx, `TRUNCATE stg_attr_scope`); err != nil {
		return err
	}
	im.atomic = true
	return nil
}

// Commit commits the transaction Begin opened.
func (im *Importer) Commit() error {
	if im.tx == nil {
		return errors.New("import: no open transaction")
	}
	err := im.tx.Commit()
	im.tx, im.atomic = nil, false
	return err
}

// Rollback abandons the transaction Begin opened.
func (im *Importer) Rollback() error {
	if im.tx == nil {
		return nil
	}
	err := im.tx.Rollback()
	im.tx, im.atomic = nil, false
	return err
}

// ImportBatch loads one batch in its own transaction, on an Importer of its
// own (see the file comment for the steps; loading many batches, use an
// Importer).
func (db *DB) ImportBatch(ctx context.Context, b *ingest.Batch, opts ImportOptions) (BatchResult, error) {
	im, err := db.NewImporter(ctx, opts)
	if err != nil {
		return BatchResult{}, err
	}
	defer im.Close()
	return im.Load(ctx, b)
}

// Load loads one batch: in its own transaction, or in the one Begin
// opened. An error is a database or connection failure, after which
// nothing of the batch is stored; a line the database refuses is a reject,
// not an error (the batch is bisected, under savepoints, until the line at
// fault is found).
func (im *Importer) Load(ctx context.Context, b *ingest.Batch) (BatchResult, error) {
	if im.atomic {
		return im.load(ctx, b)
	}
	if err := im.begin(ctx); err != nil {
		return BatchResult{}, err
	}
	res, err := im.load(ctx, b)
	if err != nil {
		im.tx.Rollback()
		im.tx = nil
		return BatchResult{}, err
	}
	err = im.tx.Commit()
	im.tx = nil
	if err != nil {
		return BatchResult{}, err
	}
	return res, nil
}

func (im *Importer) load(ctx context.Context, b *ingest.Batch) (BatchResult, error) {
	t := &importTx{tx: im.tx, opts: im.opts, noTriggers: im.noTriggers}
	// The batch's own rejects count here; the caller has them (b.Rejects).
	var res BatchResult
	for _, r := range b.Rejects {
		res.count(rejectType(r, b.Kind)).Rejected++
	}
	for typ, n := range b.Skipped {
		res.count(typ).Unchanged += n
	}
	lines := b.RecordLines()
	if len(lines) == 0 {
		return res, nil
	}
	r, err := t.loadBisect(ctx, b, lines)
	if err != nil {
		return BatchResult{}, err
	}
	res.Add(r)
	return res, nil
}

// importTx is one transaction of an Importer.
type importTx struct {
	tx         *sqlx.Tx
	opts       ImportOptions
	noTriggers bool
}

func rejectType(r ingest.Reject, k ingest.Kind) string {
	switch {
	case r.Type != "":
		return r.Type
	case k == ingest.KindFHIR:
		return "(unreadable)"
	}
	return string(k)
}

func (t *importTx) loadBisect(ctx context.Context, b *ingest.Batch, lines []int) (BatchResult, error) {
	if _, err := t.tx.ExecContext(ctx, `SAVEPOINT import_batch`); err != nil {
		return BatchResult{}, err
	}
	res, err := t.load(ctx, b)
	if err == nil {
		_, err = t.tx.ExecContext(ctx, `RELEASE SAVEPOINT import_batch`)
		return res, err
	}
	if _, rerr := t.tx.ExecContext(context.WithoutCancel(ctx), `ROLLBACK TO SAVEPOINT import_batch`); rerr != nil {
		return BatchResult{}, errors.Join(err, rerr)
	}
	var pqErr *pq.Error
	if !errors.As(err, &pqErr) || !(strings.HasPrefix(string(pqErr.Code), "22") || strings.HasPrefix(string(pqErr.Code), "23")) || ctx.Err() != nil {
		return BatchResult{}, err
	}
	if len(lines) == 1 {
		var res BatchResult
		typ := b.TypeOfLine(lines[0])
		// The code's name and the constraint, never the message: it may
		// quote the value (PHI).
		reason := "refused by the database: " + pqErr.Code.Name()
		if pqErr.Constraint != "" {
			reason += " (constraint " + pqErr.Constraint + ")"
		}
		res.Rejects = []ingest.Reject{{Line: lines[0], Reason: reason, Type: typ}}
		res.count(typ).Rejected++
		return res, nil
	}
	mid := len(lines) / 2
	var out BatchResult
	for _, part := range [][]int{lines[:mid], lines[mid:]} {
		sub := b.Range(part[0], part[len(part)-1]+1)
		r, err := t.loadBisect(ctx, sub, part)
		if err != nil {
			return BatchResult{}, err
		}
		out.Add(r)
	}
	return out, nil
}

// load stages and merges the records of b (no rejects, no savepoint).
func (t *importTx) load(ctx context.Context, b *ingest.Batch) (BatchResult, error) {
	var res BatchResult
	truncate := importTruncateSQL
	if b.Kind != ingest.KindFHIR {
		truncate = truncateCSVSQL
	}
	if _, err := t.tx.ExecContext(ctx, truncate); err != nil {
		return res, err
	}
	switch b.Kind {
	case ingest.KindAttribution:
		return t.loadAttributions(ctx, b)
	case ingest.KindOptOut:
		return t.loadOptOuts(ctx, b)
	}
	return t.loadFHIR(ctx, b)
}

// importTruncateSQL empties the staging tables of one batch (FHIR) —
// stg_attr_scope, which collects a whole load, excepted.
const importTruncateSQL = `TRUNCATE stg_organizations, stg_practitioners, stg_members, stg_coverages, stg_claims,
  stg_claim_lines, stg_claim_diagnoses, stg_claim_procedures, stg_prior_auths, stg_pa_items, stg_encounters,
  stg_clinical, stg_clinical_refs, stg_keys, stg_claim_ids, stg_pa_ids`

// truncateCSVSQL is importTruncateSQL for the CSV kinds.
const truncateCSVSQL = `TRUNCATE stg_attributions, stg_attr_resolved, stg_opt_outs, stg_opt_state`

// copyRows copies n rows into a staging table with COPY FROM STDIN.
func (t *importTx) copyRows(ctx context.Context, table string, cols []string, n int, row func(i int) []any) error {
	if n == 0 {
		return nil
	}
	stmt, err := t.tx.PrepareContext(ctx, pq.CopyIn(table, cols...))
	if err != nil {
		return fmt.Errorf("copy %s: %w", table, err)
	}
	defer stmt.Close()
	for i := 0; i < n; i++ {
		if _, err := stmt.ExecContext(ctx, row(i)...); err != nil {
			return fmt.Errorf("copy %s: %w", table, err)
		}
	}
	if _, err := stmt.ExecContext(ctx); err != nil {
		return fmt.Errorf("copy %s: %w", table, err)
	}
	return stmt.Close()
}

// dedupeLast keeps the last record of each key (a later line of the same batch
// supersedes an earlier one) and returns the number dropped.
func dedupeLast[T any](s []T, key func(*T) string) ([]T, int) {
	if len(s) < 2 {
		return s, 0
	}
	last := make(map[string]int, len(s))
	for i := range s {
		last[key(&s[i])] = i
	}
	if len(last) == len(s) {
		return s, 0
	}
	out := make([]T, 0, len(last))
	for i := range s {
		if last[key(&s[i])] == i {
			out = append(out, s[i])
		}
	}
	return out, len(s) - len(out)
}

func importDate(d gateway.Date) any {
	if d.IsZero() {
		return nil
	}
	return d.String()
}

func importLabels(s []string) any {
	if s == nil {
		s = []string{}
	}
	return pq.StringArray(s)
}

// loadFHIR stages and merges a batch of FHIR records.
func (t *importTx) loadFHIR(ctx context.Context, b *ingest.Batch) (BatchResult, error) {
	var res BatchResult
	// Lines with children are deduplicated here (their children are keyed
	// by line); the others by DISTINCT ON in their merge.
	claims, dupClaims := dedupeLast(b.Claims, func(c *ingest.Claim) string { return c.Identifier })
	pas, dupPAs := dedupeLast(b.PriorAuthorizations, func(p *ingest.PriorAuthorization) string { return p.Identifier })
	encs, dupEncs := dedupeLast(b.Encounters, func(e *ingest.Encounter) string { return e.Identifier })
	clin, dupClin := dedupeLast(b.Clinical, func(c *ingest.Clinical) string { return string(c.ResourceType) + "/" + c.SourceID })
	if dupClaims+dupPAs > 0 {
		res.count("ExplanationOfBenefit").Unchanged += dupClaims + dupPAs
	}
	if dupEncs > 0 {
		res.count("Encounter").Unchanged += dupEncs
	}
	if dupClin > 0 {
		kept := map[string]int{}
		for i := range clin {
			kept[string(clin[i].ResourceType)]++
		}
		for i := range b.Clinical {
			kept[string(b.Clinical[i].ResourceType)]--
		}
		for typ, n := range kept {
			if n < 0 {
				res.count(typ).Unchanged += -n
			}
		}
	}
	// staged counts the lines of each type still in the batch.
	staged := map[string]int{}
	if err := t.stageFHIR(ctx, b, claims, pas, encs, clin, staged); err != nil {
		return res, err
	}

	// Sandbox rows are never touched.
	var conflicts []struct {
		Line int    `db:"line"`
		Type string `db:"type"`
		Path string `db:"path"`
	}
	if err := t.tx.SelectContext(ctx, &conflicts, importSandboxConflictsSQL); err != nil {
		return res, fmt.Errorf("import sandbox check: %w", err)
	}
	if len(conflicts) > 0 {
		drop := make([]int64, len(conflicts))
		for i, c := range conflicts {
			drop[i] = int64(c.Line)
			res.Rejects = append(res.Rejects, ingest.Reject{Line: c.Line, Reason: "the identifier belongs to a row of the sandbox's synthetic data set", Path: c.Path, Type: c.Type})
			res.count(c.Type).Rejected++
			staged[c.Type]--
		}
		if _, err := t.tx.ExecContext(ctx, importDropLinesSQL, pq.Int64Array(drop)); err != nil {
			return res, err
		}
	}

	loaded := map[string]int{}
	merge := func(typ, query string, args ...any) error {
		if staged[typ] <= 0 {
			return nil
		}
		var n int
		if err := t.tx.GetContext(ctx, &n, query, args...); err != nil {
			return fmt.Errorf("import %s: %w", typ, err)
		}
		loaded[typ] += n
		return nil
	}
	exec := func(typ, query string) error {
		if staged[typ] <= 0 {
			return nil
		}
		if _, err := t.tx.ExecContext(ctx, query); err != nil {
			return fmt.Errorf("import %s: %w", typ, err)
		}
		return nil
	}
	if err := merge("Organization", mergeOrganizationsSQL); err != nil {
		return res, err
	}
	if err := exec("Organization", organizationSourceIDsSQL); err != nil {
		return res, err
	}
	if err := merge("Practitioner", mergePractitionersSQL); err != nil {
		return res, err
	}
	if err := exec("Practitioner", practitionerSourceIDsSQL); err != nil {
		return res, err
	}
	if err := merge("Patient", mergeMembersSQL); err != nil {
		return res, err
	}
	if err := exec("Patient", memberSourceIDsSQL); err != nil {
		return res, err
	}

	clinical := 0
	for _, t := range clinicalTypes {
		clinical += staged[t]
	}
	refs := staged["Coverage"] + staged["ExplanationOfBenefit"] + staged["Encounter"] + clinical
	if refs > 0 {
		if _, err := t.tx.ExecContext(ctx, importKeysSQL); err != nil {
			return res, fmt.Errorf("import references: %w", err)
		}
		if _, err := t.tx.ExecContext(ctx, `ANALYZE stg_keys`); err != nil {
			return res, err
		}
		if _, err := t.tx.ExecContext(ctx, resolveKeysSQL); err != nil {
			return res, fmt.Errorf("import references: %w", err)
		}
		if err := t.lockTargets(ctx, "Patient", "Practitioner", "Organization"); err != nil {
			return res, err
		}
	}
	if err := merge("Coverage", mergeCoveragesSQL); err != nil {
		return res, err
	}
	if err := exec("Coverage", coverageSourceIDsSQL); err != nil {
		return res, err
	}
	if refs > 0 {
		if _, err := t.tx.ExecContext(ctx, resolveCoverageKeysSQL); err != nil {
			return res, fmt.Errorf("import references: %w", err)
		}
		if err := t.lockTargets(ctx, "Coverage"); err != nil {
			return res, err
		}
		var dangling []struct {
			Line int    `db:"line"`
			Type string `db:"type"`
			Path string `db:"path"`
		}
		if err := t.tx.SelectContext(ctx, &dangling, importDanglingSQL); err != nil {
			return res, fmt.Errorf("import references: %w", err)
		}
		if len(dangling) > 0 {
			drop := make([]int64, 0, len(dangling))
			for i, d := range dangling {
				if i > 0 && dangling[i-1].Line == d.Line {
					continue // one reason per line
				}
				drop = append(drop, int64(d.Line))
				res.Dangling = append(res.Dangling, ingest.Reject{Line: d.Line, Reason: "reference does not resolve: no such resource in this load or the database", Path: d.Path, Type: d.Type})
				staged[d.Type]--
			}
			if _, err := t.tx.ExecContext(ctx, importDropLinesSQL, pq.Int64Array(drop)); err != nil {
				return res, err
			}
		}
	}

	if staged["ExplanationOfBenefit"] > 0 {
		if len(claims) > 0 {
			if _, err := t.tx.ExecContext(ctx, mergeClaimsSQL); err != nil {
				return res, fmt.Errorf("import claims: %w", err)
			}
			if _, err := t.tx.ExecContext(ctx, claimIDsSQL); err != nil {
				return res, fmt.Errorf("import claims: %w", err)
			}
			if _, err := t.tx.ExecContext(ctx, mergeClaimChildrenSQL); err != nil {
				return res, fmt.Errorf("import claim lines: %w", err)
			}
		}
		if len(pas) > 0 {
			if _, err := t.tx.ExecContext(ctx, mergePriorAuthsSQL); err != nil {
				return res, fmt.Errorf("import prior authorizations: %w", err)
			}
			if _, err := t.tx.ExecContext(ctx, priorAuthIDsSQL); err != nil {
				return res, fmt.Errorf("import prior authorizations: %w", err)
			}
			if _, err := t.tx.ExecContext(ctx, mergePriorAuthItemsSQL); err != nil {
				return res, fmt.Errorf("import prior authorization items: %w", err)
			}
		}
		var n int
		if err := t.tx.GetContext(ctx, &n, changedEOBsSQL); err != nil {
			return res, err
		}
		loaded["ExplanationOfBenefit"] = n
	}
	if err := merge("Encounter", mergeEncountersSQL); err != nil {
		return res, err
	}
	if clinical > 0 {
		var byType []struct {
			Type string `db:"resource_type"`
			N    int    `db:"n"`
		}
		if err := t.tx.SelectContext(ctx, &byType, mergeClinicalSQL); err != nil {
			return res, fmt.Errorf("import clinical resources: %w", err)
		}
		for _, r := range byType {
			loaded[r.Type] += r.N
		}
	}

	for typ, n := range staged {
		if n > 0 || loaded[typ] > 0 {
			c := res.count(typ)
			c.Loaded += loaded[typ]
			c.Unchanged += n - loaded[typ]
		}
	}
	return res, nil
}

// clinicalTypes are the FHIR types of clinical_resources.
var clinicalTypes = []string{"Condition", "Observation", "MedicationRequest", "Immunization", "AllergyIntolerance", "Procedure"}

func refArgs(r ingest.Ref) (string, string) { return r.ID, r.Identifier }

// stageFHIR copies the batch's records into the staging tables and counts
// them by type in staged.
func (t *importTx) stageFHIR(ctx context.Context, b *ingest.Batch, claims []ingest.Claim, pas []ingest.PriorAuthorization,
	encs []ingest.Encounter, clin []ingest.Clinical, staged map[string]int) error {
	staged["Organization"] = len(b.Organizations)
	staged["Practitioner"] = len(b.Practitioners)
	staged["Patient"] = len(b.Members)
	staged["Coverage"] = len(b.Coverages)
	staged["ExplanationOfBenefit"] = len(claims) + len(pas)
	staged["Encounter"] = len(encs)
	for i := range clin {
		staged[string(clin[i].ResourceType)]++
	}

	if err := t.copyRows(ctx, "stg_organizations",
		[]string{"line", "source_id", "npi", "name", "type", "tin", "address"}, len(b.Organizations),
		func(i int) []any {
			o := &b.Organizations[i]
			return []any{o.Line, o.SourceID, o.NPI, o.Name, string(o.Type), o.TIN, o.Address}
		}); err != nil {
		return err
	}
	if err := t.copyRows(ctx, "stg_practitioners",
		[]string{"line", "source_id", "npi", "given_name", "family_name", "specialty_code", "specialty_display"}, len(b.Practitioners),
		func(i int) []any {
			p := &b.Practitioners[i]
			return []any{p.Line, p.SourceID, p.NPI, p.GivenName, p.FamilyName, p.SpecialtyCode, p.SpecialtyName}
		}); err != nil {
		return err
	}
	if err := t.copyRows(ctx, "stg_members",
		[]string{"line", "source_id", "member_identifier", "given_name", "family_name", "birth_date", "gender",
			"address_line", "city", "state", "postal_code", "phone"}, len(b.Members),
		func(i int) []any {
			m := &b.Members[i]
			return []any{m.Line, m.SourceID, m.Identifier, m.GivenName, m.FamilyName, importDate(m.BirthDate), string(m.Gender),
				m.AddressLine, m.City, m.State, m.PostalCode, m.Phone}
		}); err != nil {
		return err
	}
	if err := t.copyRows(ctx, "stg_coverages",
		[]string{"line", "source_id", "patient_ref", "patient_ident", "identifier", "status", "type_code", "type_display",
			"plan_name", "group_number", "relationship", "payer_name", "period_start", "period_end"}, len(b.Coverages),
		func(i int) []any {
			c := &b.Coverages[i]
			pr, pi := refArgs(c.Patient)
			return []any{c.Line, c.SourceID, pr, pi, c.Identifier, c.Status, c.TypeCode, c.TypeDisplay, c.PlanName,
				c.GroupNumber, c.Relationship, c.PayerName, importDate(c.PeriodStart), importDate(c.PeriodEnd)}
		}); err != nil {
		return err
	}
	if err := t.copyRows(ctx, "stg_claims",
		[]string{"line", "patient_ref", "patient_ident", "coverage_ref", "coverage_ident", "billing_ref", "billing_ident",
			"rendering_ref", "rendering_ident", "identifier", "type", "status", "outcome", "service_start", "service_end",
			"created", "processed", "facility_name", "place_of_service", "type_of_bill", "drg", "in_network", "sensitive",
			"security_labels", "total_submitted", "total_allowed", "total_paid", "payment_amount", "payment_date",
			"payment_adjustment", "copay", "coinsurance", "deductible", "noncovered", "member_liability"}, len(claims),
		func(i int) []any {
			c := &claims[i]
			pr, pi := refArgs(c.Patient)
			cr, ci := refArgs(c.Coverage)
			br, bi := refArgs(c.BillingOrganization)
			rr, ri := refArgs(c.RenderingPractitioner)
			return []any{c.Line, pr, pi, cr, ci, br, bi, rr, ri, c.Identifier, string(c.Type), string(c.Status), c.Outcome,
				importDate(c.ServiceStart), importDate(c.ServiceEnd), importDate(c.Created), importDate(c.Processed), c.FacilityName,
				c.PlaceOfService, c.TypeOfBill, c.DRG, c.InNetwork, c.Sensitive, importLabels(c.SecurityLabels),
				c.TotalSubmitted, c.TotalAllowed, c.TotalPaid, c.PaymentAmount, importDate(c.PaymentDate), c.PaymentAdjust,
				c.Copay, c.Coinsurance, c.Deductible, c.NonCovered, c.MemberLiability}
		}); err != nil {
		return err
	}
	type child struct{ claim, i int }
	var lines, dx, px []child
	for ci := range claims {
		for i := range claims[ci].Lines {
			lines = append(lines, child{ci, i})
		}
		for i := range claims[ci].Diagnoses {
			dx = append(dx, child{ci, i})
		}
		for i := range claims[ci].Procedures {
			px = append(px, child{ci, i})
		}
	}
	if err := t.copyRows(ctx, "stg_claim_lines",
		[]string{"line", "sequence", "service_date", "product_code", "product_system", "product_display", "modifiers",
			"quantity", "revenue_code", "place_of_service", "denial_reason", "submitted", "allowed", "paid", "copay",
			"coinsurance", "deductible", "member_liability"}, len(lines),
		func(i int) []any {
			c := &claims[lines[i].claim]
			l := &c.Lines[lines[i].i]
			return []any{c.Line, l.Sequence, importDate(l.ServiceDate), l.ProductCode, l.ProductSystem, l.ProductDisplay,
				importLabels(l.Modifiers), l.Quantity, l.RevenueCode, l.PlaceOfService, l.DenialReason, l.Submitted, l.Allowed,
				l.Paid, l.Copay, l.Coinsurance, l.Deductible, l.MemberLiability}
		}); err != nil {
		return err
	}
	if err := t.copyRows(ctx, "stg_claim_diagnoses",
		[]string{"line", "sequence", "code", "system", "display", "type", "present_on_admission"}, len(dx),
		func(i int) []any {
			c := &claims[dx[i].claim]
			d := &c.Diagnoses[dx[i].i]
			return []any{c.Line, d.Sequence, d.Code, d.System, d.Display, d.Type, d.PresentOnAdmission}
		}); err != nil {
		return err
	}
	if err := t.copyRows(ctx, "stg_claim_procedures",
		[]string{"line", "sequence", "code", "system", "display", "performed_on"}, len(px),
		func(i int) []any {
			c := &claims[px[i].claim]
			p := &c.Procedures[px[i].i]
			return []any{c.Line, p.Sequence, p.Code, p.System, p.Display, importDate(p.Date)}
		}); err != nil {
		return err
	}
	if err := t.copyRows(ctx, "stg_prior_auths",
		[]string{"line", "patient_ref", "patient_ident", "requester_ref", "requester_ident", "organization_ref",
			"organization_ident", "identifier", "status", "drug", "service_category", "requested_on", "decided_on",
			"authorized_start", "authorized_end", "last_status_change", "denial_reason_code", "denial_reason",
			"sensitive", "security_labels"}, len(pas),
		func(i int) []any {
			p := &pas[i]
			pr, pi := refArgs(p.Patient)
			rr, ri := refArgs(p.RequestingPractitioner)
			or, oi := refArgs(p.Organization)
			return []any{p.Line, pr, pi, rr, ri, or, oi, p.Identifier, string(p.Status), p.Drug, p.ServiceCategory,
				importDate(p.RequestedOn), importDate(p.DecidedOn), importDate(p.AuthorizedStart), importDate(p.AuthorizedEnd),
				p.LastStatusChange, p.DenialReasonCode, p.DenialReason, p.Sensitive, importLabels(p.SecurityLabels)}
		}); err != nil {
		return err
	}
	var items []child
	for pi := range pas {
		for i := range pas[pi].Items {
			items = append(items, child{pi, i})
		}
	}
	if err := t.copyRows(ctx, "stg_pa_items",
		[]string{"line", "sequence", "product_code", "product_system", "product_display", "quantity_requested",
			"quantity_approved", "quantity_used", "status", "denial_reason", "submitted"}, len(items),
		func(i int) []any {
			p := &pas[items[i].claim]
			it := &p.Items[items[i].i]
			return []any{p.Line, it.Sequence, it.ProductCode, it.ProductSystem, it.ProductDisplay, it.QuantityRequested,
				it.QuantityApproved, it.QuantityUsed, it.Status, it.DenialReason, it.Submitted}
		}); err != nil {
		return err
	}
	if err := t.copyRows(ctx, "stg_encounters",
		[]string{"line", "patient_ref", "patient_ident", "practitioner_ref", "practitioner_ident", "organization_ref",
			"organization_ident", "identifier", "status", "class", "type_code", "type_display", "period_start",
			"period_end", "reason_code", "reason_display", "sensitive", "security_labels"}, len(encs),
		func(i int) []any {
			e := &encs[i]
			pr, pi := refArgs(e.Patient)
			rr, ri := refArgs(e.Practitioner)
			or, oi := refArgs(e.Organization)
			var end any
			if e.PeriodEnd != nil {
				end = *e.PeriodEnd
			}
			return []any{e.Line, pr, pi, rr, ri, or, oi, e.Identifier, e.Status, e.Class, e.TypeCode, e.TypeDisplay,
				e.PeriodStart, end, e.ReasonCode, e.ReasonDisplay, e.Sensitive, importLabels(e.SecurityLabels)}
		}); err != nil {
		return err
	}
	type ref struct{ clin, i int }
	var crefs []ref
	for ci := range clin {
		for i := range clin[ci].References {
			crefs = append(crefs, ref{ci, i})
		}
	}
	if err := t.copyRows(ctx, "stg_clinical_refs", []string{"line", "rtype", "ref_id", "old"}, len(crefs),
		func(i int) []any {
			c := &clin[crefs[i].clin]
			r := &c.References[crefs[i].i]
			return []any{c.Line, r.Type, r.ID, r.Reference}
		}); err != nil {
		return err
	}
	return t.copyRows(ctx, "stg_clinical",
		[]string{"line", "patient_ref", "patient_ident", "resource_type", "source_id", "code", "code_system", "display",
			"status", "date_of_service", "resource", "sensitive", "security_labels"}, len(clin),
		func(i int) []any {
			c := &clin[i]
			pr, pi := refArgs(c.Patient)
			return []any{c.Line, pr, pi, string(c.ResourceType), c.SourceID, c.Code, c.CodeSystem, c.Display, c.Status,
				importDate(c.DateOfService), string(c.Resource), c.Sensitive, importLabels(c.SecurityLabels)}
		})
}

const analyzeStagingSQL = `ANALYZE stg_organizations, stg_practitioners, stg_members, stg_coverages, stg_claims,
  stg_claim_lines, stg_claim_diagnoses, stg_claim_procedures, stg_prior_auths, stg_pa_items, stg_encounters,
  stg_clinical, stg_clinical_refs`

// importSandboxConflictsSQL finds staged lines whose business identifier is
// that of a sandbox row (or, for member data, of a sandbox member's row).
const importSandboxConflictsSQL = `
SELECT s.line, 'Organization' AS type, 'Organization.identifier' AS path
  FROM stg_organizations s JOIN organizations o ON o.npi = s.npi WHERE o.synthetic
UNION ALL
SELECT s.line, 'Practitioner', 'Practitioner.identifier'
  FROM stg_practitioners s JOIN practitioners p ON p.npi = s.npi WHERE p.sandbox
UNION ALL
SELECT s.line, 'Patient', 'Patient.identifier'
  FROM stg_members s JOIN members m ON m.member_identifier = s.member_identifier WHERE m.sandbox
UNION ALL
SELECT s.line, 'Coverage', 'Coverage.identifier'
  FROM stg_coverages s JOIN coverages c ON c.identifier = s.identifier JOIN members m ON m.id = c.member_id WHERE m.sandbox
UNION ALL
SELECT s.line, 'ExplanationOfBenefit', 'ExplanationOfBenefit.identifier'
  FROM stg_claims s JOIN claims c ON c.identifier = s.identifier JOIN members m ON m.id = c.member_id WHERE m.sandbox
UNION ALL
SELECT s.line, 'ExplanationOfBenefit', 'ExplanationOfBenefit.identifier'
  FROM stg_prior_auths s JOIN prior_authorizations c ON c.identifier = s.identifier
  JOIN members m ON m.id = c.member_id WHERE m.sandbox
UNION ALL
SELECT s.line, 'Encounter', 'Encounter.identifier'
  FROM stg_encounters s JOIN encounters c ON c.identifier = s.identifier JOIN members m ON m.id = c.member_id WHERE m.sandbox
UNION ALL
SELECT s.line, s.resource_type, s.resource_type || '.id'
  FROM stg_clinical s JOIN clinical_resources c ON c.resource_type = s.resource_type AND c.source_id = s.source_id
  JOIN members m ON m.id = c.member_id WHERE m.sandbox
ORDER BY 1`

// importDropLinesSQL takes lines ($1) out of every staging table.
const importDropLinesSQL = `
WITH a AS (DELETE FROM stg_organizations WHERE line = ANY($1)),
     b AS (DELETE FROM stg_practitioners WHERE line = ANY($1)),
     c AS (DELETE FROM stg_members WHERE line = ANY($1)),
     d AS (DELETE FROM stg_coverages WHERE line = ANY($1)),
     e AS (DELETE FROM stg_claims WHERE line = ANY($1)),
     f AS (DELETE FROM stg_claim_lines WHERE line = ANY($1)),
     g AS (DELETE FROM stg_claim_diagnoses WHERE line = ANY($1)),
     h AS (DELETE FROM stg_claim_procedures WHERE line = ANY($1)),
     i AS (DELETE FROM stg_prior_auths WHERE line = ANY($1)),
     j AS (DELETE FROM stg_pa_items WHERE line = ANY($1)),
     k AS (DELETE FROM stg_encounters WHERE line = ANY($1)),
     l AS (DELETE FROM stg_clinical_refs WHERE line = ANY($1))
DELETE FROM stg_clinical WHERE line = ANY($1)`

// The organizations, practitioners and members merges. A later line of
// the batch wins over an earlier one with the same identifier. An element
// the payer's Organization or Practitioner resources often lack (address,
// specialty) is kept when the line has none.
const mergeOrganizationsSQL = `
WITH src AS (
  SELECT DISTINCT ON (npi) npi, name, type, tin, address FROM stg_organizations ORDER BY npi, line DESC
), up AS (
  INSERT INTO organizations AS o (id, name, type, npi, tin, address)
  SELECT gen_random_uuid(), name, type, npi, tin, address FROM src
  ON CONFLICT (npi) DO UPDATE
     SET last_updated = now(), name = EXCLUDED.name, tin = EXCLUDED.tin,
         address = CASE WHEN EXCLUDED.address = '{}' THEN o.address ELSE EXCLUDED.address END
   WHERE NOT o.synthetic
     AND (o.name, o.tin, o.address) IS DISTINCT FROM
         (EXCLUDED.name, EXCLUDED.tin, CASE WHEN EXCLUDED.address = '{}' THEN o.address ELSE EXCLUDED.address END)
  RETURNING 1
)
SELECT count(*) FROM up`

const organizationSourceIDsSQL = `
INSERT INTO import_source_ids (resource_type, source_id, target_id)
SELECT DISTINCT ON (s.source_id) 'Organization', s.source_id, o.id
  FROM stg_organizations s JOIN organizations o ON o.npi = s.npi
 WHERE s.source_id <> '' AND NOT o.synthetic
 ORDER BY s.source_id, s.line DESC
ON CONFLICT (resource_type, source_id) DO UPDATE SET target_id = EXCLUDED.target_id
 WHERE import_source_ids.target_id <> EXCLUDED.target_id`

const mergePractitionersSQL = `
WITH src AS (
  SELECT DISTINCT ON (npi) * FROM stg_practitioners ORDER BY npi, line DESC
), up AS (
  INSERT INTO practitioners AS p (id, npi, given_name, family_name, specialty_code, specialty_display)
  SELECT gen_random_uuid(), npi, given_name, family_name, specialty_code, specialty_display FROM src
  ON CONFLICT (npi) DO UPDATE
     SET last_updated = now(), given_name = EXCLUDED.given_name, family_name = EXCLUDED.family_name,
         specialty_code = CASE WHEN EXCLUDED.specialty_code = '' THEN p.specialty_code ELSE EXCLUDED.specialty_code END,
         specialty_display = CASE WHEN EXCLUDED.specialty_code = '' THEN p.specialty_display ELSE EXCLUDED.specialty_display END
   WHERE NOT p.sandbox
     AND (p.given_name, p.family_name, p.specialty_code, p.specialty_display) IS DISTINCT FROM
         (EXCLUDED.given_name, EXCLUDED.family_name,
          CASE WHEN EXCLUDED.specialty_code = '' THEN p.specialty_code ELSE EXCLUDED.specialty_code END,
          CASE WHEN EXCLUDED.specialty_code = '' THEN p.specialty_display ELSE EXCLUDED.specialty_display END)
  RETURNING 1
)
SELECT count(*) FROM up`

const practitionerSourceIDsSQL = `
INSERT INTO import_source_ids (resource_type, source_id, target_id)
SELECT DISTINCT ON (s.source_id) 'Practitioner', s.source_id, p.id
  FROM stg_practitioners s JOIN practitioners p ON p.npi = s.npi
 WHERE s.source_id <> '' AND NOT p.sandbox
 ORDER BY s.source_id, s.line DESC
ON CONFLICT (resource_type, source_id) DO UPDATE SET target_id = EXCLUDED.target_id
 WHERE import_source_ids.target_id <> EXCLUDED.target_id`

const mergeMembersSQL = `
WITH src AS (
  SELECT DISTINCT ON (member_identifier) * FROM stg_members ORDER BY member_identifier, line DESC
), up AS (
  INSERT INTO members AS m (id, member_identifier, given_name, family_name, birth_date, gender, address_line,
                            city, state, postal_code, phone)
  SELECT gen_random_uuid(), member_identifier, given_name, family_name, birth_date, gender, address_line,
         city, state, postal_code, phone FROM src
  ON CONFLICT (member_identifier) DO UPDATE
     SET last_updated = now(), given_name = EXCLUDED.given_name, family_name = EXCLUDED.family_name, birth_date = EXCLUDED.birth_date,
         gender = EXCLUDED.gender, address_line = EXCLUDED.address_line, city = EXCLUDED.city,
         state = EXCLUDED.state, postal_code = EXCLUDED.postal_code, phone = EXCLUDED.phone
   WHERE NOT m.sandbox
     AND (m.given_name, m.family_name, m.birth_date, m.gender, m.address_line, m.city, m.state, m.postal_code, m.phone)
         IS DISTINCT FROM
         (EXCLUDED.given_name, EXCLUDED.family_name, EXCLUDED.birth_date, EXCLUDED.gender, EXCLUDED.address_line,
          EXCLUDED.city, EXCLUDED.state, EXCLUDED.postal_code, EXCLUDED.phone)
  RETURNING 1
)
SELECT count(*) FROM up`

const memberSourceIDsSQL = `
INSERT INTO import_source_ids (resource_type, source_id, target_id)
SELECT DISTINCT ON (s.source_id) 'Patient', s.source_id, m.id
  FROM stg_members s JOIN members m ON m.member_identifier = s.member_identifier
 WHERE s.source_id <> '' AND NOT m.sandbox
 ORDER BY s.source_id, s.line DESC
ON CONFLICT (resource_type, source_id) DO UPDATE SET target_id = EXCLUDED.target_id
 WHERE import_source_ids.target_id <> EXCLUDED.target_id`

// importKeysSQL collects the batch's distinct references.
const importKeysSQL = `
INSERT INTO stg_keys (rtype, ref_id, ident)
SELECT DISTINCT rtype, ref_id, ident FROM (
  SELECT 'Patient' AS rtype, patient_ref AS ref_id, patient_ident AS ident FROM stg_coverages
  UNION ALL SELECT 'Patient', patient_ref, patient_ident FROM stg_claims
  UNION ALL SELECT 'Coverage', coverage_ref, coverage_ident FROM stg_claims
  UNION ALL SELECT 'Organization', billing_ref, billing_ident FROM stg_claims
  UNION ALL SELECT 'Practitioner', rendering_ref, rendering_ident FROM stg_claims
  UNION ALL SELECT 'Patient', patient_ref, patient_ident FROM stg_prior_auths
  UNION ALL SELECT 'Practitioner', requester_ref, requester_ident FROM stg_prior_auths
  UNION ALL SELECT 'Organization', organization_ref, organization_ident FROM stg_prior_auths
  UNION ALL SELECT 'Patient', patient_ref, patient_ident FROM stg_encounters
  UNION ALL SELECT 'Practitioner', practitioner_ref, practitioner_ident FROM stg_encounters
  UNION ALL SELECT 'Organization', organization_ref, organization_ident FROM stg_encounters
  UNION ALL SELECT 'Patient', patient_ref, patient_ident FROM stg_clinical
  UNION ALL SELECT rtype, ref_id, '' FROM stg_clinical_refs
) k
WHERE ref_id <> '' OR ident <> ''`

// uuidPattern guards the cast of a reference id to uuid (CASE evaluates
// the cast only when it matches).
const uuidPattern = `'^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$'`

// resolveKeysSQL resolves the references to members, practitioners and
// organizations: by the source system's id, by the gateway's own id, by
// business identifier (member identifier, NPI); never to sandbox rows.
const resolveKeysSQL = `
UPDATE stg_keys k SET target = CASE k.rtype
  WHEN 'Patient' THEN coalesce(
    (SELECT m.id FROM import_source_ids x JOIN members m ON m.id = x.target_id
      WHERE x.resource_type = 'Patient' AND x.source_id = k.ref_id AND NOT m.sandbox),
    (SELECT m.id FROM members m
      WHERE m.id = CASE WHEN k.ref_id ~ ` + uuidPattern + ` THEN k.ref_id::uuid END AND NOT m.sandbox),
    (SELECT m.id FROM members m WHERE k.ident <> '' AND m.member_identifier = k.ident AND NOT m.sandbox))
  WHEN 'Practitioner' THEN coalesce(
    (SELECT p.id FROM import_source_ids x JOIN practitioners p ON p.id = x.target_id
      WHERE x.resource_type = 'Practitioner' AND x.source_id = k.ref_id AND NOT p.sandbox),
    (SELECT p.id FROM practitioners p
      WHERE p.id = CASE WHEN k.ref_id ~ ` + uuidPattern + ` THEN k.ref_id::uuid END AND NOT p.sandbox),
    (SELECT p.id FROM practitioners p WHERE k.ident <> '' AND p.npi = k.ident AND NOT p.sandbox))
  WHEN 'Organization' THEN coalesce(
    (SELECT o.id FROM import_source_ids x JOIN organizations o ON o.id = x.target_id
      WHERE x.resource_type = 'Organization' AND x.source_id = k.ref_id AND NOT o.synthetic),
    (SELECT o.id FROM organizations o
      WHERE o.id = CASE WHEN k.ref_id ~ ` + uuidPattern + ` THEN k.ref_id::uuid END AND NOT o.synthetic),
    (SELECT o.id FROM organizations o WHERE k.ident <> '' AND o.npi = k.ident AND NOT o.synthetic))
  END
WHERE k.rtype <> 'Coverage'`

// lockTargetsSQL locks the rows the batch's references resolved to (of
// the types in $1) against deletion until the commit, once per row rather
// than once per referring row as a foreign key check would, and returns how
// many resolved targets it did not find (deleted meanwhile).
const lockTargetsSQL = `
WITH m AS (SELECT 1 FROM members WHERE 'Patient' = ANY($1)
             AND id IN (SELECT target FROM stg_keys WHERE rtype = 'Patient') FOR KEY SHARE),
     p AS (SELECT 1 FROM practitioners WHERE 'Practitioner' = ANY($1)
             AND id IN (SELECT target FROM stg_keys WHERE rtype = 'Practitioner') FOR KEY SHARE),
     o AS (SELECT 1 FROM organizations WHERE 'Organization' = ANY($1)
             AND id IN (SELECT target FROM stg_keys WHERE rtype = 'Organization') FOR KEY SHARE),
     c AS (SELECT 1 FROM coverages WHERE 'Coverage' = ANY($1)
             AND id IN (SELECT target FROM stg_keys WHERE rtype = 'Coverage') FOR KEY SHARE)
SELECT (SELECT count(DISTINCT target) FROM stg_keys WHERE rtype = ANY($1) AND target IS NOT NULL)
     - (SELECT count(*) FROM m) - (SELECT count(*) FROM p) - (SELECT count(*) FROM o) - (SELECT count(*) FROM c)`

// errTargetsGone is a batch whose referenced rows were deleted while it
// loaded: rerunning the import is safe.
var errTargetsGone = errors.New("rows referenced by the batch were deleted while it loaded: rerun the import")

// lockTargets runs lockTargetsSQL when triggers are off.
func (t *importTx) lockTargets(ctx context.Context, types ...string) error {
	if !t.noTriggers {
		return nil
	}
	var missing int
	if err := t.tx.GetContext(ctx, &missing, lockTargetsSQL, pq.StringArray(types)); err != nil {
		return fmt.Errorf("import references: %w", err)
	}
	if missing != 0 {
		return errTargetsGone
	}
	return nil
}

// resolveCoverageKeysSQL resolves references to coverages, after the
// batch's own coverages are merged.
const resolveCoverageKeysSQL = `
UPDATE stg_keys k SET target = coalesce(
    (SELECT c.id FROM import_source_ids x JOIN coverages c ON c.id = x.target_id JOIN members m ON m.id = c.member_id
      WHERE x.resource_type = 'Coverage' AND x.source_id = k.ref_id AND NOT m.sandbox),
    (SELECT c.id FROM coverages c JOIN members m ON m.id = c.member_id
      WHERE c.id = CASE WHEN k.ref_id ~ ` + uuidPattern + ` THEN k.ref_id::uuid END AND NOT m.sandbox),
    (SELECT c.id FROM coverages c JOIN members m ON m.id = c.member_id
      WHERE k.ident <> '' AND c.identifier = k.ident AND NOT m.sandbox))
WHERE k.rtype = 'Coverage'`

const mergeCoveragesSQL = `
WITH src AS (
  SELECT DISTINCT ON (s.identifier) s.*, k.target AS member_id
    FROM stg_coverages s
    JOIN stg_keys k ON k.rtype = 'Patient' AND k.ref_id = s.patient_ref AND k.ident = s.patient_ident
   WHERE k.target IS NOT NULL
   ORDER BY s.identifier, s.line DESC
), up AS (
  INSERT INTO coverages AS c (id, member_id, identifier, status, type_code, type_display, plan_name, group_number,
                              relationship, payer_name, period_start, period_end)
  SELECT gen_random_uuid(), member_id, identifier, status, type_code, type_display, plan_name, group_number,
         relationship, payer_name, period_start, period_end FROM src
  ON CONFLICT (identifier) DO UPDATE
     SET last_updated = now(), member_id = EXCLUDED.member_id, status = EXCLUDED.status, type_code = EXCLUDED.type_code,
         type_display = EXCLUDED.type_display, plan_name = EXCLUDED.plan_name, group_number = EXCLUDED.group_number,
         relationship = EXCLUDED.relationship, payer_name = EXCLUDED.payer_name,
         period_start = EXCLUDED.period_start, period_end = EXCLUDED.period_end
   WHERE (c.member_id, c.status, c.type_code, c.type_display, c.plan_name, c.group_number, c.relationship,
          c.payer_name, c.period_start, c.period_end) IS DISTINCT FROM
         (EXCLUDED.member_id, EXCLUDED.status, EXCLUDED.type_code, EXCLUDED.type_display, EXCLUDED.plan_name,
          EXCLUDED.group_number, EXCLUDED.relationship, EXCLUDED.payer_name, EXCLUDED.period_start, EXCLUDED.period_end)
  RETURNING 1
)
SELECT count(*) FROM up`

const coverageSourceIDsSQL = `
INSERT INTO import_source_ids (resource_type, source_id, target_id)
SELECT DISTINCT ON (s.source_id) 'Coverage', s.source_id, c.id
  FROM stg_coverages s JOIN coverages c ON c.identifier = s.identifier
  JOIN members m ON m.id = c.member_id
 WHERE s.source_id <> '' AND NOT m.sandbox
 ORDER BY s.source_id, s.line DESC
ON CONFLICT (resource_type, source_id) DO UPDATE SET target_id = EXCLUDED.target_id
 WHERE import_source_ids.target_id <> EXCLUDED.target_id`

// importDanglingSQL lists the staged lines with a reference that did not
// resolve, and the element of the reference.
const importDanglingSQL = `
WITH d(line, type, path, rtype, ref_id, ident) AS (
  SELECT line, 'Coverage', 'Coverage.beneficiary', 'Patient', patient_ref, patient_ident FROM stg_coverages
  UNION ALL SELECT line, 'ExplanationOfBenefit', 'ExplanationOfBenefit.patient', 'Patient', patient_ref, patient_ident FROM stg_claims
  UNION ALL SELECT line, 'ExplanationOfBenefit', 'ExplanationOfBenefit.insurance.coverage', 'Coverage', coverage_ref, coverage_ident FROM stg_claims
  UNION ALL SELECT line, 'ExplanationOfBenefit', 'ExplanationOfBenefit.provider', 'Organization', billing_ref, billing_ident FROM stg_claims
  UNION ALL SELECT line, 'ExplanationOfBenefit', 'ExplanationOfBenefit.careTeam.provider', 'Practitioner', rendering_ref, rendering_ident FROM stg_claims
  UNION ALL SELECT line, 'ExplanationOfBenefit', 'ExplanationOfBenefit.patient', 'Patient', patient_ref, patient_ident FROM stg_prior_auths
  UNION ALL SELECT line, 'ExplanationOfBenefit', 'ExplanationOfBenefit.careTeam.provider', 'Practitioner', requester_ref, requester_ident FROM stg_prior_auths
  UNION ALL SELECT line, 'ExplanationOfBenefit', 'ExplanationOfBenefit.provider', 'Organization', organization_ref, organization_ident FROM stg_prior_auths
  UNION ALL SELECT line, 'Encounter', 'Encounter.subject', 'Patient', patient_ref, patient_ident FROM stg_encounters
  UNION ALL SELECT line, 'Encounter', 'Encounter.participant.individual', 'Practitioner', practitioner_ref, practitioner_ident FROM stg_encounters
  UNION ALL SELECT line, 'Encounter', 'Encounter.serviceProvider', 'Organization', organization_ref, organization_ident FROM stg_encounters
  UNION ALL SELECT line, resource_type, resource_type ||
      CASE WHEN resource_type IN ('Immunization','AllergyIntolerance') THEN '.patient' ELSE '.subject' END,
      'Patient', patient_ref, patient_ident FROM stg_clinical
  UNION ALL SELECT r.line, c.resource_type, c.resource_type || '.descendants().reference', r.rtype, r.ref_id, ''
      FROM stg_clinical_refs r JOIN stg_clinical c ON c.line = r.line
)
SELECT d.line, d.type, d.path
  FROM d LEFT JOIN stg_keys k ON k.rtype = d.rtype AND k.ref_id = d.ref_id AND k.ident = d.ident
 WHERE (d.ref_id <> '' OR d.ident <> '') AND k.target IS NULL
 ORDER BY d.line, d.path`

// mergeClaimsSQL merges claim headers and records the claims it inserted
// or changed in stg_claim_ids. (xmax is 0 on a freshly inserted row, and
// the upserting transaction's id on one ON CONFLICT updated.)
const mergeClaimsSQL = `
WITH up AS (
  INSERT INTO claims AS c (id, member_id, identifier, type, status, outcome, service_start, service_end, created,
      processed, coverage_id, billing_organization_id, rendering_practitioner_id, facility_name, place_of_service,
      type_of_bill, drg, in_network, sensitive, security_labels, total_submitted, total_allowed, total_paid,
      payment_amount, payment_date, payment_adjustment, copay, coinsurance, deductible, noncovered, member_liability)
  SELECT gen_random_uuid(), kp.target, s.identifier, s.type, s.status, s.outcome, s.service_start, s.service_end,
         s.created, s.processed, kc.target, kb.target, kr.target, s.facility_name, s.place_of_service, s.type_of_bill,
         s.drg, s.in_network, s.sensitive, s.security_labels, s.total_submitted, s.total_allowed, s.total_paid,
         s.payment_amount, s.payment_date, s.payment_adjustment, s.copay, s.coinsurance, s.deductible, s.noncovered,
         s.member_liability
    FROM stg_claims s
    JOIN stg_keys kp ON kp.rtype = 'Patient' AND kp.ref_id = s.patient_ref AND kp.ident = s.patient_ident
    LEFT JOIN stg_keys kc ON kc.rtype = 'Coverage' AND kc.ref_id = s.coverage_ref AND kc.ident = s.coverage_ident
    LEFT JOIN stg_keys kb ON kb.rtype = 'Organization' AND kb.ref_id = s.billing_ref AND kb.ident = s.billing_ident
    LEFT JOIN stg_keys kr ON kr.rtype = 'Practitioner' AND kr.ref_id = s.rendering_ref AND kr.ident = s.rendering_ident
  ON CONFLICT (identifier) DO UPDATE
     SET last_updated = now(), member_id = EXCLUDED.member_id, type = EXCLUDED.type, status = EXCLUDED.status, outcome = EXCLUDED.outcome,
         service_start = EXCLUDED.service_start, service_end = EXCLUDED.service_end, created = EXCLUDED.created,
         processed = EXCLUDED.processed, coverage_id = EXCLUDED.coverage_id,
         billing_organization_id = EXCLUDED.billing_organization_id,
         rendering_practitioner_id = EXCLUDED.rendering_practitioner_id, facility_name = EXCLUDED.facility_name,
         place_of_service = EXCLUDED.place_of_service, type_of_bill = EXCLUDED.type_of_bill, drg = EXCLUDED.drg,
         in_network = EXCLUDED.in_network, sensitive = EXCLUDED.sensitive, security_labels = EXCLUDED.security_labels,
         total_submitted = EXCLUDED.total_submitted, total_allowed = EXCLUDED.total_allowed,
         total_paid = EXCLUDED.total_paid, payment_amount = EXCLUDED.payment_amount,
         payment_date = EXCLUDED.payment_date, payment_adjustment = EXCLUDED.payment_adjustment,
         copay = EXCLUDED.copay, coinsurance = EXCLUDED.coinsurance, deductible = EXCLUDED.deductible,
         noncovered = EXCLUDED.noncovered, member_liability = EXCLUDED.member_liability
   WHERE (c.member_id, c.type, c.status, c.outcome, c.service_start, c.service_end, c.created, c.processed,
          c.coverage_id, c.billing_organization_id, c.rendering_practitioner_id, c.facility_name, c.place_of_service,
          c.type_of_bill, c.drg, c.in_network, c.sensitive, c.security_labels, c.total_submitted, c.total_allowed,
          c.total_paid, c.payment_amount, c.payment_date, c.payment_adjustment, c.copay, c.coinsurance, c.deductible,
          c.noncovered, c.member_liability)
         IS DISTINCT FROM
         (EXCLUDED.member_id, EXCLUDED.type, EXCLUDED.status, EXCLUDED.outcome, EXCLUDED.service_start,
          EXCLUDED.service_end, EXCLUDED.created, EXCLUDED.processed, EXCLUDED.coverage_id,
          EXCLUDED.billing_organization_id, EXCLUDED.rendering_practitioner_id, EXCLUDED.facility_name,
          EXCLUDED.place_of_service, EXCLUDED.type_of_bill, EXCLUDED.drg, EXCLUDED.in_network, EXCLUDED.sensitive,
          EXCLUDED.security_labels, EXCLUDED.total_submitted, EXCLUDED.total_allowed, EXCLUDED.total_paid,
          EXCLUDED.payment_amount, EXCLUDED.payment_date, EXCLUDED.payment_adjustment, EXCLUDED.copay,
          EXCLUDED.coinsurance, EXCLUDED.deductible, EXCLUDED.noncovered, EXCLUDED.member_liability)
  RETURNING c.identifier, c.id, (c.xmax = 0) AS inserted
)
INSERT INTO stg_claim_ids (line, id, inserted, changed)
SELECT s.line, up.id, up.inserted, true FROM up JOIN stg_claims s ON s.identifier = up.identifier`

// claimIDsSQL records the staged claims the merge left unchanged.
const claimIDsSQL = `
INSERT INTO stg_claim_ids (line, id, inserted, changed)
SELECT s.line, c.id, false, false FROM stg_claims s JOIN claims c ON c.identifier = s.identifier
 WHERE NOT EXISTS (SELECT 1 FROM stg_claim_ids i WHERE i.line = s.line)`

// mergeClaimChildrenSQL deletes the lines, diagnoses and procedures of the
// staged claims that the file no longer has, inserts or updates the others
// where they differ, and marks their claims changed.
const mergeClaimChildrenSQL = `
WITH del_l AS (
  DELETE FROM claim_lines t USING stg_claim_ids s
   WHERE t.claim_id = s.id AND NOT s.inserted
     AND NOT EXISTS (SELECT 1 FROM stg_claim_lines x WHERE x.line = s.line AND x.sequence = t.sequence)
  RETURNING t.claim_id
), up_l AS (
  INSERT INTO claim_lines AS t (claim_id, sequence, service_date, product_code, product_system, product_display,
      modifiers, quantity, revenue_code, place_of_service, denial_reason, submitted, allowed, paid, copay,
      coinsurance, deductible, member_liability)
  SELECT s.id, x.sequence, x.service_date, x.product_code, x.product_system, x.product_display, x.modifiers,
         x.quantity, x.revenue_code, x.place_of_service, x.denial_reason, x.submitted, x.allowed, x.paid, x.copay,
         x.coinsurance, x.deductible, x.member_liability
    FROM stg_claim_lines x JOIN stg_claim_ids s ON s.line = x.line
  ON CONFLICT (claim_id, sequence) DO UPDATE
     SET last_updated = now(), service_date = EXCLUDED.service_date, product_code = EXCLUDED.product_code,
         product_system = EXCLUDED.product_system, product_display = EXCLUDED.product_display,
         modifiers = EXCLUDED.modifiers, quantity = EXCLUDED.quantity, revenue_code = EXCLUDED.revenue_code,
         place_of_service = EXCLUDED.place_of_service, denial_reason = EXCLUDED.denial_reason,
         submitted = EXCLUDED.submitted, allowed = EXCLUDED.allowed, paid = EXCLUDED.paid, copay = EXCLUDED.copay,
         coinsurance = EXCLUDED.coinsurance, deductible = EXCLUDED.deductible,
         member_liability = EXCLUDED.member_liability
   WHERE (t.service_date, t.product_code, t.product_system, t.product_display, t.modifiers, t.quantity,
          t.revenue_code, t.place_of_service, t.denial_reason, t.submitted, t.allowed, t.paid, t.copay,
          t.coinsurance, t.deductible, t.member_liability)
         IS DISTINCT FROM
         (EXCLUDED.service_date, EXCLUDED.product_code, EXCLUDED.product_system, EXCLUDED.product_display,
          EXCLUDED.modifiers, EXCLUDED.quantity, EXCLUDED.revenue_code, EXCLUDED.place_of_service,
          EXCLUDED.denial_reason, EXCLUDED.submitted, EXCLUDED.allowed, EXCLUDED.paid, EXCLUDED.copay,
          EXCLUDED.coinsurance, EXCLUDED.deductible, EXCLUDED.member_liability)
  RETURNING t.claim_id
), del_d AS (
  DELETE FROM claim_diagnoses t USING stg_claim_ids s
   WHERE t.claim_id = s.id AND NOT s.inserted
     AND NOT EXISTS (SELECT 1 FROM stg_claim_diagnoses x WHERE x.line = s.line AND x.sequence = t.sequence)
  RETURNING t.claim_id
), up_d AS (
  INSERT INTO claim_diagnoses AS t (claim_id, sequence, code, system, display, type, present_on_admission)
  SELECT s.id, x.sequence, x.code, x.system, x.display, x.type, x.present_on_admission
    FROM stg_claim_diagnoses x JOIN stg_claim_ids s ON s.line = x.line
  ON CONFLICT (claim_id, sequence) DO UPDATE
     SET last_updated = now(), code = EXCLUDED.code, system = EXCLUDED.system, display = EXCLUDED.display, type = EXCLUDED.type,
         present_on_admission = EXCLUDED.present_on_admission
   WHERE (t.code, t.system, t.display, t.type, t.present_on_admission) IS DISTINCT FROM
         (EXCLUDED.code, EXCLUDED.system, EXCLUDED.display, EXCLUDED.type, EXCLUDED.present_on_admission)
  RETURNING t.claim_id
), del_p AS (
  DELETE FROM claim_procedures t USING stg_claim_ids s
   WHERE t.claim_id = s.id AND NOT s.inserted
     AND NOT EXISTS (SELECT 1 FROM stg_claim_procedures x WHERE x.line = s.line AND x.sequence = t.sequence)
  RETURNING t.claim_id
), up_p AS (
  INSERT INTO claim_procedures AS t (claim_id, sequence, code, system, display, performed_on)
  SELECT s.id, x.sequence, x.code, x.system, x.display, x.performed_on
    FROM stg_claim_procedures x JOIN stg_claim_ids s ON s.line = x.line
  ON CONFLICT (claim_id, sequence) DO UPDATE
     SET last_updated = now(), code = EXCLUDED.code, system = EXCLUDED.system, display = EXCLUDED.display,
         performed_on = EXCLUDED.performed_on
   WHERE (t.code, t.system, t.display, t.performed_on) IS DISTINCT FROM
         (EXCLUDED.code, EXCLUDED.system, EXCLUDED.display, EXCLUDED.performed_on)
  RETURNING t.claim_id
)
UPDATE stg_claim_ids s SET changed = true
 WHERE NOT s.changed AND s.id IN (SELECT claim_id FROM del_l UNION ALL SELECT claim_id FROM up_l
                                  UNION ALL SELECT claim_id FROM del_d UNION ALL SELECT claim_id FROM up_d
                                  UNION ALL SELECT claim_id FROM del_p UNION ALL SELECT claim_id FROM up_p)`

const mergePriorAuthsSQL = `
WITH up AS (
  INSERT INTO prior_authorizations AS p (id, member_id, identifier, status, drug, service_category, requested_on,
      decided_on, authorized_start, authorized_end, last_status_change, requesting_practitioner_id,
      organization_id, denial_reason_code, denial_reason, sensitive, security_labels)
  SELECT gen_random_uuid(), kp.target, s.identifier, s.status, s.drug, s.service_category, s.requested_on,
         s.decided_on, s.authorized_start, s.authorized_end, s.last_status_change, kr.target, ko.target,
         s.denial_reason_code, s.denial_reason, s.sensitive, s.security_labels
    FROM stg_prior_auths s
    JOIN stg_keys kp ON kp.rtype = 'Patient' AND kp.ref_id = s.patient_ref AND kp.ident = s.patient_ident
    LEFT JOIN stg_keys kr ON kr.rtype = 'Practitioner' AND kr.ref_id = s.requester_ref AND kr.ident = s.requester_ident
    LEFT JOIN stg_keys ko ON ko.rtype = 'Organization' AND ko.ref_id = s.organization_ref AND ko.ident = s.organization_ident
  ON CONFLICT (identifier) DO UPDATE
     SET last_updated = now(), member_id = EXCLUDED.member_id, status = EXCLUDED.status, drug = EXCLUDED.drug,
         service_category = EXCLUDED.service_category, requested_on = EXCLUDED.requested_on,
         decided_on = EXCLUDED.decided_on, authorized_start = EXCLUDED.authorized_start,
         authorized_end = EXCLUDED.authorized_end, last_status_change = EXCLUDED.last_status_change,
         requesting_practitioner_id = EXCLUDED.requesting_practitioner_id,
         organization_id = EXCLUDED.organization_id, denial_reason_code = EXCLUDED.denial_reason_code,
         denial_reason = EXCLUDED.denial_reason, sensitive = EXCLUDED.sensitive,
         security_labels = EXCLUDED.security_labels
   WHERE (p.member_id, p.status, p.drug, p.service_category, p.requested_on, p.decided_on, p.authorized_start,
          p.authorized_end, p.last_status_change, p.requesting_practitioner_id, p.organization_id,
          p.denial_reason_code, p.denial_reason, p.sensitive, p.security_labels)
         IS DISTINCT FROM
         (EXCLUDED.member_id, EXCLUDED.status, EXCLUDED.drug, EXCLUDED.service_category, EXCLUDED.requested_on,
          EXCLUDED.decided_on, EXCLUDED.authorized_start, EXCLUDED.authorized_end, EXCLUDED.last_status_change,
          EXCLUDED.requesting_practitioner_id, EXCLUDED.organization_id, EXCLUDED.denial_reason_code,
          EXCLUDED.denial_reason, EXCLUDED.sensitive, EXCLUDED.security_labels)
  RETURNING p.identifier, p.id, (p.xmax = 0) AS inserted
)
INSERT INTO stg_pa_ids (line, id, inserted, changed)
SELECT s.line, up.id, up.inserted, true FROM up JOIN stg_prior_auths s ON s.identifier = up.identifier`

const priorAuthIDsSQL = `
INSERT INTO stg_pa_ids (line, id, inserted, changed)
SELECT s.line, p.id, false, false FROM stg_prior_auths s JOIN prior_authorizations p ON p.identifier = s.identifier
 WHERE NOT EXISTS (SELECT 1 FROM stg_pa_ids i WHERE i.line = s.line)`

const mergePriorAuthItemsSQL = `
WITH del AS (
  DELETE FROM prior_authorization_items t USING stg_pa_ids s
   WHERE t.prior_authorization_id = s.id AND NOT s.inserted
     AND NOT EXISTS (SELECT 1 FROM stg_pa_items x WHERE x.line = s.line AND x.sequence = t.sequence)
  RETURNING t.prior_authorization_id AS id
), up AS (
  INSERT INTO prior_authorization_items AS t (prior_authorization_id, sequence, product_code, product_system,
      product_display, quantity_requested, quantity_approved, quantity_used, status, denial_reason, submitted)
  SELECT s.id, x.sequence, x.product_code, x.product_system, x.product_display, x.quantity_requested,
         x.quantity_approved, x.quantity_used, x.status, x.denial_reason, x.submitted
    FROM stg_pa_items x JOIN stg_pa_ids s ON s.line = x.line
  ON CONFLICT (prior_authorization_id, sequence) DO UPDATE
     SET last_updated = now(), product_code = EXCLUDED.product_code, product_system = EXCLUDED.product_system,
         product_display = EXCLUDED.product_display, quantity_requested = EXCLUDED.quantity_requested,
         quantity_approved = EXCLUDED.quantity_approved, quantity_used = EXCLUDED.quantity_used,
         status = EXCLUDED.status, denial_reason = EXCLUDED.denial_reason, submitted = EXCLUDED.submitted
   WHERE (t.product_code, t.product_system, t.product_display, t.quantity_requested, t.quantity_approved,
          t.quantity_used, t.status, t.denial_reason, t.submitted)
         IS DISTINCT FROM
         (EXCLUDED.product_code, EXCLUDED.product_system, EXCLUDED.product_display, EXCLUDED.quantity_requested,
          EXCLUDED.quantity_approved, EXCLUDED.quantity_used, EXCLUDED.status, EXCLUDED.denial_reason,
          EXCLUDED.submitted)
  RETURNING t.prior_authorization_id AS id
)
UPDATE stg_pa_ids s SET changed = true
 WHERE NOT s.changed AND s.id IN (SELECT id FROM del UNION ALL SELECT id FROM up)`

const changedEOBsSQL = `
SELECT (SELECT count(*) FROM stg_claim_ids WHERE changed) + (SELECT count(*) FROM stg_pa_ids WHERE changed)`

const mergeEncountersSQL = `
WITH src AS (
  SELECT s.*, kp.target AS member_id, kr.target AS practitioner_id, ko.target AS organization_id
    FROM stg_encounters s
    JOIN stg_keys kp ON kp.rtype = 'Patient' AND kp.ref_id = s.patient_ref AND kp.ident = s.patient_ident
    LEFT JOIN stg_keys kr ON kr.rtype = 'Practitioner' AND kr.ref_id = s.practitioner_ref AND kr.ident = s.practitioner_ident
    LEFT JOIN stg_keys ko ON ko.rtype = 'Organization' AND ko.ref_id = s.organization_ref AND ko.ident = s.organization_ident
), up AS (
  INSERT INTO encounters AS e (id, member_id, identifier, status, class, type_code, type_display, period_start,
      period_end, practitioner_id, organization_id, reason_code, reason_display, sensitive, security_labels)
  SELECT gen_random_uuid(), member_id, identifier, status, class, type_code, type_display, period_start,
      period_end, practitioner_id, organization_id, reason_code, reason_display, sensitive, security_labels
    FROM src
  ON CONFLICT (identifier) DO UPDATE
     SET last_updated = now(), member_id = EXCLUDED.member_id, status = EXCLUDED.status, class = EXCLUDED.class,
         type_code = EXCLUDED.type_code, type_display = EXCLUDED.type_display,
         period_start = EXCLUDED.period_start, period_end = EXCLUDED.period_end,
         practitioner_id = EXCLUDED.practitioner_id, organization_id = EXCLUDED.organization_id,
         reason_code = EXCLUDED.reason_code, reason_display = EXCLUDED.reason_display,
         sensitive = EXCLUDED.sensitive, security_labels = EXCLUDED.security_labels
   WHERE (e.member_id, e.status, e.class, e.type_code, e.type_display, e.period_start, e.period_end,
          e.practitioner_id, e.organization_id, e.reason_code, e.reason_display, e.sensitive, e.security_labels)
         IS DISTINCT FROM
         (EXCLUDED.member_id, EXCLUDED.status, EXCLUDED.class, EXCLUDED.type_code, EXCLUDED.type_display,
          EXCLUDED.period_start, EXCLUDED.period_end, EXCLUDED.practitioner_id, EXCLUDED.organization_id,
          EXCLUDED.reason_code, EXCLUDED.reason_display, EXCLUDED.sensitive, EXCLUDED.security_labels)
  RETURNING 1
)
SELECT count(*) FROM up`

// mergeClinicalSQL merges clinical resources, keyed by resource type and
// the source system's id, with their practitioner and organization
// references rewritten to the gateway's ids, and counts the changed ones by
// type.
const mergeClinicalSQL = `
WITH rw AS (
  SELECT r.line, array_agg(r.old) AS olds, array_agg(r.rtype || '/' || k.target) AS news
    FROM stg_clinical_refs r JOIN stg_keys k ON k.rtype = r.rtype AND k.ref_id = r.ref_id AND k.ident = ''
   GROUP BY r.line
), src AS (
  SELECT s.line, s.resource_type, s.source_id, s.code, s.code_system, s.display, s.status, s.date_of_service,
         CASE WHEN rw.line IS NULL THEN s.resource ELSE import_rewrite_refs(s.resource, rw.olds, rw.news) END AS resource,
         s.sensitive, s.security_labels, kp.target AS member_id
    FROM stg_clinical s
    JOIN stg_keys kp ON kp.rtype = 'Patient' AND kp.ref_id = s.patient_ref AND kp.ident = s.patient_ident
    LEFT JOIN rw ON rw.line = s.line
), up AS (
  INSERT INTO clinical_resources AS c (id, member_id, resource_type, source_id, code, code_system, display,
      status, date_of_service, resource, sensitive, security_labels)
  SELECT gen_random_uuid(), member_id, resource_type, source_id, code, code_system, display, status,
      date_of_service, resource, sensitive, security_labels
    FROM src
  ON CONFLICT (resource_type, source_id) DO UPDATE
     SET last_updated = now(), member_id = EXCLUDED.member_id, code = EXCLUDED.code, code_system = EXCLUDED.code_system,
         display = EXCLUDED.display, status = EXCLUDED.status, date_of_service = EXCLUDED.date_of_service,
         resource = EXCLUDED.resource, sensitive = EXCLUDED.sensitive, security_labels = EXCLUDED.security_labels
   WHERE (c.member_id, c.code, c.code_system, c.display, c.status, c.date_of_service, c.resource, c.sensitive,
          c.security_labels)
         IS DISTINCT FROM
         (EXCLUDED.member_id, EXCLUDED.code, EXCLUDED.code_system, EXCLUDED.display, EXCLUDED.status,
          EXCLUDED.date_of_service, EXCLUDED.resource, EXCLUDED.sensitive, EXCLUDED.security_labels)
  RETURNING c.resource_type
)
SELECT resource_type, count(*) AS n FROM up GROUP BY resource_type`

// --- attribution -----------------------------------------------------------

// resolveAttributionsSQL resolves the staged rows' member, organization
// and practitioner (never sandbox rows), by joins the planner may run as
// hash joins or index lookups, as the batch and the tables' sizes say.
const resolveAttributionsSQL = `
INSERT INTO stg_attr_resolved (line, member_id, organization_id, practitioner_npi, practitioner_id, period_start, period_end)
SELECT s.line, m.id, o.id, s.practitioner_npi, p.id, s.period_start, s.period_end
  FROM stg_attributions s
  LEFT JOIN members m ON m.member_identifier = s.member_identifier AND NOT m.sandbox
  LEFT JOIN organizations o ON o.npi = s.organization_npi AND NOT o.synthetic
  LEFT JOIN practitioners p ON s.practitioner_npi <> '' AND p.npi = s.practitioner_npi AND NOT p.sandbox`

const lockAttributionTargetsSQL = `
WITH m AS (SELECT 1 FROM members WHERE id IN (SELECT member_id FROM stg_attr_resolved) FOR KEY SHARE),
     o AS (SELECT 1 FROM organizations WHERE id IN (SELECT organization_id FROM stg_attr_resolved) FOR KEY SHARE),
     p AS (SELECT 1 FROM practitioners WHERE id IN (SELECT practitioner_id FROM stg_attr_resolved) FOR KEY SHARE)
SELECT (SELECT count(DISTINCT member_id) + count(DISTINCT organization_id) + count(DISTINCT practitioner_id) FROM stg_attr_resolved)
     - (SELECT count(*) FROM m) - (SELECT count(*) FROM o) - (SELECT count(*) FROM p)`

// attributionUnresolvedSQL lists the staged lines whose member,
// organization or practitioner is unknown, with the column at fault.
const attributionUnresolvedSQL = `
SELECT line,
       CASE WHEN member_id IS NULL THEN 'member_identifier'
            WHEN organization_id IS NULL THEN 'organization_npi'
            ELSE 'practitioner_npi' END AS path
  FROM stg_attr_resolved
 WHERE member_id IS NULL OR organization_id IS NULL OR (practitioner_npi <> '' AND practitioner_id IS NULL)
 ORDER BY line`

// mergeAttributionsSQL upserts the payer's attributions (source PAYER),
// keyed by member, organization, practitioner and period start (the batch
// has one line per key: the reader's last): a changed period end updates
// the row; a row ended earlier (by an operator or a replace) that the payer
// sends again is open again. $1: also record the keys in stg_attr_scope
// (--replace-scope).
const mergeAttributionsSQL = `
WITH src AS (
  SELECT member_id, organization_id, practitioner_id, period_start, period_end
    FROM stg_attr_resolved
   WHERE member_id IS NOT NULL AND organization_id IS NOT NULL AND (practitioner_npi = '' OR practitioner_id IS NOT NULL)
), scope AS (
  INSERT INTO stg_attr_scope (member_id, organization_id, practitioner_id, period_start)
  SELECT member_id, organization_id, practitioner_id, period_start FROM src WHERE $1::boolean
), up AS (
  INSERT INTO attributions AS a (id, member_id, organization_id, practitioner_id, period_start, period_end, source)
  SELECT gen_random_uuid(), member_id, organization_id, practitioner_id, period_start, period_end, 'PAYER' FROM src
  ON CONFLICT (member_id, organization_id, (coalesce(practitioner_id, '00000000-0000-0000-0000-000000000000'::uuid)), period_start)
     WHERE source = 'PAYER'
  DO UPDATE SET last_updated = now(), period_end = EXCLUDED.period_end, ended_at = NULL
   WHERE (a.period_end, a.ended_at) IS DISTINCT FROM (EXCLUDED.period_end, NULL::timestamptz)
  RETURNING 1
)
SELECT count(*) FROM up`

func (t *importTx) loadAttributions(ctx context.Context, b *ingest.Batch) (BatchResult, error) {
	var res BatchResult
	c := res.count(string(ingest.KindAttribution))
	rows := b.Attributions
	if npi := t.opts.ReplaceOrganizationNPI; npi != "" {
		rows = make([]ingest.Attribution, 0, len(b.Attributions))
		for _, a := range b.Attributions {
			if a.OrganizationNPI != npi {
				res.Rejects = append(res.Rejects, ingest.Reject{Line: a.Line, Reason: "organization outside --replace-scope", Path: "organization_npi", Type: string(ingest.KindAttribution)})
				c.Rejected++
				continue
			}
			rows = append(rows, a)
		}
	}
	// A later line with the same key (member, organization, practitioner,
	// start) supersedes an earlier one: unchanged.
	rows, dup := dedupeLast(rows, func(a *ingest.Attribution) string {
		return a.MemberIdentifier + "\x00" + a.OrganizationNPI + "\x00" + a.PractitionerNPI + "\x00" + a.PeriodStart.String()
	})
	c.Unchanged += dup
	if len(rows) == 0 {
		return res, nil
	}
	if err := t.copyRows(ctx, "stg_attributions",
		[]string{"line", "member_identifier", "organization_npi", "practitioner_npi", "period_start", "period_end"}, len(rows),
		func(i int) []any {
			a := &rows[i]
			return []any{a.Line, a.MemberIdentifier, a.OrganizationNPI, a.PractitionerNPI, importDate(a.PeriodStart), importDate(a.PeriodEnd)}
		}); err != nil {
		return res, err
	}
	if _, err := t.tx.ExecContext(ctx, resolveAttributionsSQL); err != nil {
		return res, fmt.Errorf("import attributions: %w", err)
	}
	if t.noTriggers {
		var missing int
		if err := t.tx.GetContext(ctx, &missing, lockAttributionTargetsSQL); err != nil {
			return res, fmt.Errorf("import attributions: %w", err)
		}
		if missing != 0 {
			return res, errTargetsGone
		}
	}
	var unresolved []struct {
		Line int    `db:"line"`
		Path string `db:"path"`
	}
	if err := t.tx.SelectContext(ctx, &unresolved, attributionUnresolvedSQL); err != nil {
		return res, fmt.Errorf("import attributions: %w", err)
	}
	for _, u := range unresolved {
		what := map[string]string{"member_identifier": "member", "organization_npi": "organization", "practitioner_npi": "practitioner"}[u.Path]
		res.Rejects = append(res.Rejects, ingest.Reject{Line: u.Line, Reason: "no " + what + " with this identifier in the database", Path: u.Path, Type: string(ingest.KindAttribution)})
		c.Rejected++
	}
	var n int
	if err := t.tx.GetContext(ctx, &n, mergeAttributionsSQL, t.opts.ReplaceOrganizationNPI != ""); err != nil {
		return res, fmt.Errorf("import attributions: %w", err)
	}
	c.Loaded += n
	c.Unchanged += len(rows) - len(unresolved) - n
	return res, nil
}

// endUnseenAttributionsSQL ends ($2: now) the payer attributions of the
// organization with NPI $1 that the load did not contain.
const endUnseenAttributionsSQL = `
UPDATE attributions a SET ended_at = $2, last_updated = $2
  FROM organizations o
 WHERE o.npi = $1 AND a.organization_id = o.id AND a.source = 'PAYER' AND a.ended_at IS NULL
   AND NOT EXISTS (SELECT 1 FROM stg_attr_scope s
                    WHERE s.member_id = a.member_id AND s.organization_id = a.organization_id
                      AND s.practitioner_id IS NOT DISTINCT FROM a.practitioner_id
                      AND s.period_start = a.period_start)`

const organizationByNPISQL = `SELECT EXISTS (SELECT 1 FROM organizations WHERE npi = $1 AND NOT synthetic)`

// EndUnseen completes --replace-scope: it ends every payer attribution of
// the scope's organization that the load (every batch loaded since Begin)
// did not contain, and returns how many. Returns NOT_FOUND when no
// organization has the scope's NPI.
func (im *Importer) EndUnseen(ctx context.Context) (int, error) {
	if !im.atomic {
		return 0, errors.New("import: EndUnseen needs the transaction of Begin")
	}
	t := &importTx{tx: im.tx, opts: im.opts}
	npi := t.opts.ReplaceOrganizationNPI
	var ok bool
	if err := t.tx.GetContext(ctx, &ok, organizationByNPISQL, npi); err != nil {
		return 0, err
	}
	if !ok {
		return 0, gateway.Errorf(gateway.CodeNotFound, "no organization with NPI %s", npi)
	}
	r, err := t.tx.ExecContext(ctx, endUnseenAttributionsSQL, npi, time.Now())
	if err != nil {
		return 0, err
	}
	n, err := r.RowsAffected()
	return int(n), err
}

// CheckReplaceScope returns NOT_FOUND when no organization (outside the
// sandbox) has the NPI of --replace-scope, before anything is loaded.
func (db *DB) CheckReplaceScope(ctx context.Context, npi string) error {
	var ok bool
	if err := db.GetContext(ctx, &ok, organizationByNPISQL, npi); err != nil {
		return err
	}
	if !ok {
		return gateway.Errorf(gateway.CodeNotFound, "no organization with NPI %s", npi)
	}
	return nil
}

// --- opt-out ---------------------------------------------------------------

// resolveOptOutsSQL resolves the staged rows' members (never sandbox
// members).
const resolveOptOutsSQL = `
UPDATE stg_opt_outs s SET
  member_id = (SELECT m.id FROM members m WHERE m.member_identifier = s.member_identifier AND NOT m.sandbox)`

const lockOptOutTargetsSQL = `
WITH m AS (SELECT 1 FROM members WHERE id IN (SELECT member_id FROM stg_opt_outs) FOR KEY SHARE)
SELECT (SELECT count(DISTINCT member_id) FROM stg_opt_outs) - (SELECT count(*) FROM m)`

const optOutUnresolvedSQL = `SELECT line FROM stg_opt_outs WHERE member_id IS NULL ORDER BY line`

// optOutStateSQL computes each member's new state: the batch's last choice
// by effective date (then line), unless an event already recorded is more
// recent.
const optOutStateSQL = `
WITH last AS (
  INSERT INTO stg_opt_state (member_id, opted_out, effective_date)
  SELECT DISTINCT ON (member_id) member_id, opted_out, effective_date
    FROM stg_opt_outs WHERE member_id IS NOT NULL
   ORDER BY member_id, effective_date DESC, line DESC
  RETURNING 1
)
SELECT count(*) FROM last`

const optOutSupersededSQL = `
DELETE FROM stg_opt_state s
 WHERE EXISTS (SELECT 1 FROM opt_out_events e WHERE e.member_id = s.member_id AND e.effective_date > s.effective_date)`

// applyOptOutStateSQL sets provider_access_opt_outs to the computed states:
// a row for an opt-out (kept as it is when there already is one), none for
// an opt-in.
const applyOptOutStateSQL = `
WITH ins AS (
  INSERT INTO provider_access_opt_outs (member_id, since)
  SELECT member_id, effective_date::timestamp AT TIME ZONE 'UTC' FROM stg_opt_state WHERE opted_out
  ON CONFLICT (member_id) DO NOTHING
  RETURNING 1
), del AS (
  DELETE FROM provider_access_opt_outs x USING stg_opt_state s
   WHERE x.member_id = s.member_id AND NOT s.opted_out
  RETURNING 1
)
SELECT (SELECT count(*) FROM ins) + (SELECT count(*) FROM del)`

// insertOptOutEventsSQL records the batch's opt-out events that are not
// recorded yet (same member, choice, requester, representative and
// effective date). $1: recorded_by.
const insertOptOutEventsSQL = `
WITH ev AS (
  INSERT INTO opt_out_events (id, member_id, opted_out, requested_by, representative_name, effective_date, recorded_by)
  SELECT gen_random_uuid(), member_id, opted_out, requested_by, representative_name, effective_date, $1
    FROM (SELECT DISTINCT member_id, opted_out, requested_by, representative_name, effective_date
            FROM stg_opt_outs WHERE member_id IS NOT NULL) s
   WHERE NOT EXISTS (SELECT 1 FROM opt_out_events e
                      WHERE e.member_id = s.member_id AND e.opted_out = s.opted_out
                        AND e.requested_by = s.requested_by AND e.representative_name = s.representative_name
                        AND e.effective_date = s.effective_date)
  RETURNING 1
)
SELECT count(*) FROM ev`

func (t *importTx) loadOptOuts(ctx context.Context, b *ingest.Batch) (BatchResult, error) {
	var res BatchResult
	c := res.count(string(ingest.KindOptOut))
	if len(b.OptOuts) == 0 {
		return res, nil
	}
	if err := t.copyRows(ctx, "stg_opt_outs",
		[]string{"line", "member_identifier", "opted_out", "requested_by", "representative_name", "effective_date"}, len(b.OptOuts),
		func(i int) []any {
			o := &b.OptOuts[i]
			return []any{o.Line, o.MemberIdentifier, o.OptedOut, string(o.RequestedBy), o.RepresentativeName, importDate(o.EffectiveDate)}
		}); err != nil {
		return res, err
	}
	if _, err := t.tx.ExecContext(ctx, resolveOptOutsSQL); err != nil {
		return res, fmt.Errorf("import opt-outs: %w", err)
	}
	if t.noTriggers {
		var missing int
		if err := t.tx.GetContext(ctx, &missing, lockOptOutTargetsSQL); err != nil {
			return res, fmt.Errorf("import opt-outs: %w", err)
		}
		if missing != 0 {
			return res, errTargetsGone
		}
	}
	var unresolved []int
	if err := t.tx.SelectContext(ctx, &unresolved, optOutUnresolvedSQL); err != nil {
		return res, fmt.Errorf("import opt-outs: %w", err)
	}
	for _, line := range unresolved {
		res.Rejects = append(res.Rejects, ingest.Reject{Line: line, Reason: "no member with this identifier in the database", Path: "member_identifier", Type: string(ingest.KindOptOut)})
		c.Rejected++
	}
	var members int
	if err := t.tx.GetContext(ctx, &members, optOutStateSQL); err != nil {
		return res, fmt.Errorf("import opt-outs: %w", err)
	}
	// The state first: it must not see this batch's events.
	if _, err := t.tx.ExecContext(ctx, optOutSupersededSQL); err != nil {
		return res, fmt.Errorf("import opt-outs: %w", err)
	}
	if _, err := t.tx.ExecContext(ctx, applyOptOutStateSQL); err != nil {
		return res, fmt.Errorf("import opt-outs: %w", err)
	}
	var events int
	if err := t.tx.GetContext(ctx, &events, insertOptOutEventsSQL, t.opts.RecordedBy); err != nil {
		return res, fmt.Errorf("import opt-outs: %w", err)
	}
	// A line is loaded when it recorded a new event; a line that repeats an
	// event already recorded is unchanged.
	resolved := len(b.OptOuts) - len(unresolved)
	c.Loaded += min(events, resolved)
	c.Unchanged += resolved - min(events, resolved)
	return res, nil
}

// --- import runs -----------------------------------------------------------

const startImportRunSQL = `
INSERT INTO import_runs (id, kind, files, started_by, replace_scope)
VALUES (gen_random_uuid(), $1, $2, $3, $4) RETURNING id`

// StartImportRun records the start of an import run and returns its id.
func (db *DB) StartImportRun(ctx context.Context, kind string, files []string, startedBy, replaceScope string) (string, error) {
	var id string
	err := db.GetContext(ctx, &id, startImportRunSQL, kind, pq.StringArray(files), startedBy, replaceScope)
	return id, err
}

const updateImportRunSQL = `UPDATE import_runs SET counts = $2 WHERE id = $1`

// UpdateImportRun records a run's counts so far (progress).
func (db *DB) UpdateImportRun(ctx context.Context, id string, counts map[string]gateway.ImportCounts) error {
	b, err := json.Marshal(counts)
	if err != nil {
		return err
	}
	_, err = db.ExecContext(ctx, updateImportRunSQL, id, string(b))
	return err
}

const finishImportRunSQL = `
UPDATE import_runs SET counts = $2, outcome = $3, error = $4, finished_at = now() WHERE id = $1`

// FinishImportRun records how a run ended. It runs even when ctx is
// cancelled (an interrupted run is recorded as FAILED).
func (db *DB) FinishImportRun(ctx context.Context, id string, counts map[string]gateway.ImportCounts, outcome gateway.ImportOutcome, errText string) error {
	b, err := json.Marshal(counts)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	_, err = db.ExecContext(ctx, finishImportRunSQL, id, string(b), string(outcome), errText)
	return err
}

// ImportRunEdge is one import run of a page and its cursor.
type ImportRunEdge struct {
	Cursor string
	Node   gateway.ImportRun
}

// ImportRunPage is a page of import runs, newest first.
type ImportRunPage struct {
	Edges       []ImportRunEdge
	HasNextPage bool
	TotalCount  int
}

// EndCursor is the cursor of the page's last run, "" for an empty page.
func (p *ImportRunPage) EndCursor() string {
	if len(p.Edges) == 0 {
		return ""
	}
	return p.Edges[len(p.Edges)-1].Cursor
}

const importRunsSQL = `
SELECT id, kind, files, started_by, started_at, finished_at, counts, outcome, replace_scope, error
  FROM import_runs
 WHERE $1::timestamptz IS NULL OR (started_at, id) < ($1::timestamptz, $2::uuid)
 ORDER BY started_at DESC, id DESC
 LIMIT $3`

const importRunsCountSQL = `SELECT count(*) FROM import_runs`

// ImportRuns returns the import runs newest first: first of them (default
// 20, at most 100) after the cursor after. They are the payer's operational
// records, not member data: the caller (the importRuns resolver) must allow
// operators only. Returns BAD_USER_INPUT for first outside 0..100 or a
// malformed cursor.
func (db *DB) ImportRuns(ctx context.Context, first int, after string) (*ImportRunPage, error) {
	switch {
	case first == 0:
		first = 20
	case first < 0 || first > 100:
		return nil, &gateway.Error{Code: gateway.CodeInvalid, Message: "first must be between 1 and 100", Path: "first"}
	}
	var at, id any
	if after != "" {
		t, i, err := decodeRunCursor(after)
		if err != nil {
			return nil, &gateway.Error{Code: gateway.CodeInvalid, Message: "invalid cursor", Path: "after", Err: err}
		}
		at, id = t, i
	}
	var rows []struct {
		gateway.ImportRun
		FilesA  pq.StringArray `db:"files"`
		CountsB []byte         `db:"counts"`
	}
	if err := db.SelectContext(ctx, &rows, importRunsSQL, at, id, first+1); err != nil {
		return nil, err
	}
	page := &ImportRunPage{}
	if err := db.GetContext(ctx, &page.TotalCount, importRunsCountSQL); err != nil {
		return nil, err
	}
	if len(rows) > first {
		page.HasNextPage, rows = true, rows[:first]
	}
	for _, r := range rows {
		run := r.ImportRun
		run.Files = []string(r.FilesA)
		if err := json.Unmarshal(r.CountsB, &run.Counts); err != nil {
			return nil, fmt.Errorf("import run %s counts: %w", run.ID, err)
		}
		page.Edges = append(page.Edges, ImportRunEdge{Cursor: encodeRunCursor(run.StartedAt, run.ID), Node: run})
	}
	return page, nil
}

func encodeRunCursor(t time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(t.UTC().Format(time.RFC3339Nano) + "|" + id))
}

func decodeRunCursor(s string) (time.Time, string, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return time.Time{}, "", err
	}
	ts, id, ok := strings.Cut(string(b), "|")
	if !ok || len(id) != 36 {
		return time.Time{}, "", errors.New("malformed cursor")
	}
	t, err := time.Parse(time.RFC3339Nano, ts)
	return t, id, err
}
