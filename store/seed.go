package store

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"example.com/gateway/gateway"
	"example.com/gateway/sandbox"
)

// SeedStats counts the rows ReplaceSandbox wrote.
type SeedStats struct {
	Organizations           int
	Practitioners           int
	Members                 int
	Coverages               int
	Attributions            int // of the synthetic organizations
	OrgAttributions         int // regenerated for registered organizations
	OptOuts                 int // members currently opted out
	OptOutEvents            int
	Claims                  int
	ClaimLines              int
	ClaimDiagnoses          int
	ClaimProcedures         int
	Encounters              int
	PriorAuthorizations     int
	PriorAuthorizationItems int
	ClinicalResources       int

	// TriggersSkipped reports that the rows were copied with
	// session_replication_role = replica (see ReplaceSandbox).
	TriggersSkipped bool
	Elapsed         time.Duration
}

// Rows returns the total number of rows written.
func (s SeedStats) Rows() int {
	return s.Organizations + s.Practitioners + s.Members + s.Coverages + s.Attributions +
		s.OrgAttributions + s.OptOuts + s.OptOutEvents + s.Claims + s.ClaimLines +
		s.ClaimDiagnoses + s.ClaimProcedures + s.Encounters + s.PriorAuthorizations +
		s.PriorAuthorizationItems + s.ClinicalResources
}

// seedBatchSize is how many members are generated and copied together:
// enough to keep per-statement costs small, few enough that memory stays
// bounded (a few batches are in flight at once).
const seedBatchSize = 500

// seedLockSQL serializes concurrent reseeds (several instances starting at
// once): the second waits, then replaces the first one's rows.
const seedLockSQL = `SELECT pg_advisory_xact_lock(7315823401)`

// registeredSandboxOrgsSQL finds the registered (non-synthetic)
// organizations that have sandbox attributions, so that reseeding gives
// them new ones over the new members.
const registeredSandboxOrgsSQL = `
SELECT DISTINCT a.organization_id
FROM attributions a JOIN organizations o ON o.id = a.organization_id
WHERE a.sandbox AND a.source = 'SANDBOX' AND NOT o.synthetic
ORDER BY 1`

// Rows outside the sandbox data set that point at sandbox members would
// block their deletion: their references are set aside, and restored after
// the load when the member still exists (the same seed gives the same IDs).
const (
	unbindSandboxClientsSQL = `
UPDATE clients c SET bound_member_id = NULL
FROM members m
WHERE m.id = c.bound_member_id AND m.sandbox
RETURNING c.id, m.id`

	rebindSandboxClientsSQL = `
UPDATE clients c SET bound_member_id = b.member_id
FROM unnest($1::text[], $2::uuid[]) AS b(client_id, member_id)
WHERE c.id = b.client_id AND EXISTS (SELECT 1 FROM members m WHERE m.id = b.member_id AND m.sandbox)`

	unmatchSandboxRosterRowsSQL = `
UPDATE roster_rows r SET matched_member_id = NULL
FROM members m
WHERE m.id = r.matched_member_id AND m.sandbox
RETURNING r.id, m.id`

	rematchSandboxRosterRowsSQL = `
UPDATE roster_rows r SET matched_member_id = b.member_id
FROM unnest($1::uuid[], $2::uuid[]) AS b(row_id, member_id)
WHERE r.id = b.row_id AND EXISTS (SELECT 1 FROM members m WHERE m.id = b.member_id AND m.sandbox)`
)

// deleteSandboxSQL deletes the sandbox members; their rows go with them
// (ON DELETE CASCADE), including other organizations' sandbox
// attributions of them.
const deleteSandboxSQL = `DELETE FROM members WHERE sandbox`

// The synthetic organizations and practitioners are upserted rather than
// deleted and copied: the same seed gives the same IDs, and deleting a
// referenced row costs a scan of every referencing table. Those the new
// data set lacks (another seed) go, with any attribution naming them.
const (
	deleteStaleSandboxAttributionsSQL = `
DELETE FROM attributions
WHERE organization_id IN (SELECT id FROM organizations WHERE synthetic AND id <> ALL($1::uuid[]))
   OR practitioner_id IN (SELECT id FROM practitioners WHERE sandbox AND id <> ALL($2::uuid[]))`

	deleteStaleSandboxPractitionersSQL = `
DELETE FROM practitioners WHERE sandbox AND id <> ALL($1::uuid[])`

	deleteStaleSandboxOrganizationsSQL = `
DELETE FROM organizations WHERE synthetic AND id <> ALL($1::uuid[])`

	upsertSandboxOrganizationsSQL = `
INSERT INTO organizations (id, name, type, npi, tin, status, in_network, synthetic, created_at)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                     $7::boolean[], $8::boolean[], $9::timestamptz[])
ON CONFLICT (id) DO UPDATE SET
  name = EXCLUDED.name, type = EXCLUDED.type, npi = EXCLUDED.npi, tin = EXCLUDED.tin,
  status = EXCLUDED.status, in_network = EXCLUDED.in_network, synthetic = EXCLUDED.synthetic`

	upsertSandboxPractitionersSQL = `
INSERT INTO practitioners (id, npi, given_name, family_name, specialty_code, specialty_display, organization_id, sandbox)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                     $7::uuid[], $8::boolean[])
ON CONFLICT (id) DO UPDATE SET
  npi = EXCLUDED.npi, given_name = EXCLUDED.given_name, family_name = EXCLUDED.family_name,
  specialty_code = EXCLUDED.specialty_code, specialty_display = EXCLUDED.specialty_display,
  organization_id = EXCLUDED.organization_id, sandbox = EXCLUDED.sandbox`
)

// The member data is copied with triggers off when the role may do so
// (superusers, such as the private cluster's, or roles granted SET on
// session_replication_role): the per-row foreign-key checks and the
// last_updated trigger are most of the load's cost. It is safe here: the
// generator's references are consistent by construction (a test checks
// them), every row they point at was written or locked by this
// transaction, the columns' defaults set last_updated as the trigger would
// on insert, and constraints other than foreign keys (NOT NULL, CHECK,
// UNIQUE) still apply. Deletes always run with triggers on, so their
// cascades and checks apply.
const (
	skipTriggersSavepointSQL = `SAVEPOINT sandbox_copy`
	skipTriggersSQL          = `SET LOCAL session_replication_role = replica`
	skipTriggersFailedSQL    = `ROLLBACK TO SAVEPOINT sandbox_copy`
	skipTriggersReleaseSQL   = `RELEASE SAVEPOINT sandbox_copy`
	restoreTriggersSQL       = `SET LOCAL session_replication_role = origin`
)

// skipTriggers turns triggers off for the rest of tx if the role may, and
// reports whether it did. Either way tx is left outside the savepoint it
// tries in, so the load runs in the top-level transaction.
func skipTriggers(ctx context.Context, tx *sqlx.Tx) (skipped bool, err error) {
	if _, err := tx.ExecContext(ctx, skipTriggersSavepointSQL); err != nil {
		return false, err
	}
	_, err = tx.ExecContext(ctx, skipTriggersSQL)
	skipped = err == nil
	var pqErr *pq.Error
	if errors.As(err, &pqErr) && pqErr.Code == "42501" { // insufficient_privilege
		_, err = tx.ExecContext(ctx, skipTriggersFailedSQL)
	}
	if err != nil {
		return false, err
	}
	_, err = tx.ExecContext(ctx, skipTriggersReleaseSQL)
	return skipped && err == nil, err
}

// analyzeSandboxSQL refreshes the planner's statistics after the load.
const analyzeSandboxSQL = `
ANALYZE organizations, practitioners, members, coverages, attributions, provider_access_opt_outs,
  opt_out_events, claims, claim_lines, claim_diagnoses, claim_procedures, encounters,
  prior_authorizations, prior_authorization_items, clinical_resources`

// ReplaceSandbox atomically replaces the sandbox data set with g's: in one
// transaction it deletes every sandbox member with all of their rows, loads
// g's organizations, practitioners and members with COPY, gives registered
// organizations that had sandbox attributions new ones over the new members
// (sandbox.OrgAttributions), and refreshes the planner's statistics. Members
// are generated and copied in batches, so memory does not grow with the
// number of members. Rows outside the sandbox data set are kept; API
// clients and roster rows pointing at a sandbox member keep pointing at it
// when the new data set has a member with that ID (the same seed), and are
// unbound otherwise.
func (db *DB) ReplaceSandbox(ctx context.Context, g *sandbox.Generator) (SeedStats, error) {
	start := time.Now()
	var stats SeedStats
	err := db.inConnTx(ctx, func(conn *sqlx.Conn, tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, seedLockSQL); err != nil {
			return err
		}
		var registered []string
		if err := tx.SelectContext(ctx, &registered, registeredSandboxOrgsSQL); err != nil {
			return fmt.Errorf("find registered sandbox organizations: %w", err)
		}
		clients, err := setAsideSandboxRefs(ctx, tx, unbindSandboxClientsSQL)
		if err != nil {
			return fmt.Errorf("unbind sandbox clients: %w", err)
		}
		rosterRows, err := setAsideSandboxRefs(ctx, tx, unmatchSandboxRosterRowsSQL)
		if err != nil {
			return fmt.Errorf("unmatch sandbox roster rows: %w", err)
		}
		if _, err := tx.ExecContext(ctx, deleteSandboxSQL); err != nil {
			return fmt.Errorf("delete sandbox rows: %w", err)
		}
		if err := upsertSandboxProviders(ctx, tx, g, &stats); err != nil {
			return err
		}
		if stats.TriggersSkipped, err = skipTriggers(ctx, tx); err != nil {
			return fmt.Errorf("skip triggers: %w", err)
		}
		if err := copySandboxMembers(ctx, conn, g, &stats); err != nil {
			return err
		}
		if stats.TriggersSkipped {
			if _, err := tx.ExecContext(ctx, restoreTriggersSQL); err != nil {
				return fmt.Errorf("restore triggers: %w", err)
			}
		}
		if err := restoreSandboxRefs(ctx, tx, rebindSandboxClientsSQL, clients); err != nil {
			return fmt.Errorf("rebind sandbox clients: %w", err)
		}
		if err := restoreSandboxRefs(ctx, tx, rematchSandboxRosterRowsSQL, rosterRows); err != nil {
			return fmt.Errorf("rematch sandbox roster rows: %w", err)
		}
		n, err := attributeSandboxMembers(ctx, tx, registered, g.Options().Today)
		if err != nil {
			return err
		}
		stats.OrgAttributions = n
		if _, err := tx.ExecContext(ctx, analyzeSandboxSQL); err != nil {
			return fmt.Errorf("analyze: %w", err)
		}
		return nil
	})
	if err != nil {
		return SeedStats{}, fmt.Errorf("replace sandbox: %w", err)
	}
	stats.Elapsed = time.Since(start)
	return stats, nil
}

// inConnTx runs fn in a transaction on a dedicated connection, committing
// when fn returns nil. fn may use the connection's driver directly
// (conn.Raw) for COPY while the transaction is open.
func (db *DB) inConnTx(ctx context.Context, fn func(conn *sqlx.Conn, tx *sqlx.Tx) error) (err error) {
	conn, err := db.Connx(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	tx, err := conn.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if err = fn(conn, tx); err != nil {
		return err
	}
	return tx.Commit()
}

// sandboxRef is a row outside the sandbox data set and the sandbox member it
// points at.
type sandboxRef struct {
	Row, Member string
}

// setAsideSandboxRefs runs query (an UPDATE … RETURNING row id, member id) and returns
// what it cleared.
func setAsideSandboxRefs(ctx context.Context, tx *sqlx.Tx, query string) ([]sandboxRef, error) {
	rows, err := tx.QueryContext(ctx, query)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var refs []sandboxRef
	for rows.Next() {
		var r sandboxRef
		if err := rows.Scan(&r.Row, &r.Member); err != nil {
			return nil, err
		}
		refs = append(refs, r)
	}
	return refs, rows.Err()
}

// restoreSandboxRefs runs query with the row and member IDs of refs.
func restoreSandboxRefs(ctx context.Context, tx *sqlx.Tx, query string, refs []sandboxRef) error {
	if len(refs) == 0 {
		return nil
	}
	ids, members := make([]string, len(refs)), make([]string, len(refs))
	for i, r := range refs {
		ids[i], members[i] = r.Row, r.Member
	}
	_, err := tx.ExecContext(ctx, query, pq.Array(ids), pq.Array(members))
	return err
}

// upsertSandboxProviders writes the synthetic organizations and practitioners and
// deletes those of an earlier data set that g lacks.
func upsertSandboxProviders(ctx context.Context, tx *sqlx.Tx, g *sandbox.Generator, stats *SeedStats) error {
	orgs, practitioners := g.Organizations(), g.Practitioners()
	var o struct {
		id, name, typ, npi, tin, status []string
		inNetwork, synthetic            []bool
		created                         []time.Time
	}
	for _, org := range orgs {
		o.id = append(o.id, org.ID)
		o.name = append(o.name, org.Name)
		o.typ = append(o.typ, string(org.Type))
		o.npi = append(o.npi, org.NPI)
		o.tin = append(o.tin, org.TIN)
		o.status = append(o.status, string(org.Status))
		o.inNetwork = append(o.inNetwork, org.InNetwork)
		o.synthetic = append(o.synthetic, org.Synthetic)
		o.created = append(o.created, org.CreatedAt)
	}
	var p struct {
		id, npi, given, family, code, display, org []string
		sandbox                                    []bool
	}
	for _, pr := range practitioners {
		p.id = append(p.id, pr.ID)
		p.npi = append(p.npi, pr.NPI)
		p.given = append(p.given, pr.GivenName)
		p.family = append(p.family, pr.FamilyName)
		p.code = append(p.code, pr.SpecialtyCode)
		p.display = append(p.display, pr.SpecialtyName)
		p.org = append(p.org, *pr.OrganizationID)
		p.sandbox = append(p.sandbox, pr.Sandbox)
	}
	if _, err := tx.ExecContext(ctx, deleteStaleSandboxAttributionsSQL, pq.Array(o.id), pq.Array(p.id)); err != nil {
		return fmt.Errorf("delete stale sandbox attributions: %w", err)
	}
	if _, err := tx.ExecContext(ctx, deleteStaleSandboxPractitionersSQL, pq.Array(p.id)); err != nil {
		return fmt.Errorf("delete stale sandbox practitioners: %w", err)
	}
	if _, err := tx.ExecContext(ctx, deleteStaleSandboxOrganizationsSQL, pq.Array(o.id)); err != nil {
		return fmt.Errorf("delete stale sandbox organizations: %w", err)
	}
	created := make([]string, len(o.created))
	for i, t := range o.created {
		created[i] = t.Format(time.RFC3339Nano)
	}
	if _, err := tx.ExecContext(ctx, upsertSandboxOrganizationsSQL, pq.Array(o.id), pq.Array(o.name),
		pq.Array(o.typ), pq.Array(o.npi), pq.Array(o.tin), pq.Array(o.status), pq.Array(o.inNetwork),
		pq.Array(o.synthetic), pq.Array(created)); err != nil {
		return fmt.Errorf("upsert sandbox organizations: %w", err)
	}
	if _, err := tx.ExecContext(ctx, upsertSandboxPractitionersSQL, pq.Array(p.id), pq.Array(p.npi),
		pq.Array(p.given), pq.Array(p.family), pq.Array(p.code), pq.Array(p.display), pq.Array(p.org),
		pq.Array(p.sandbox)); err != nil {
		return fmt.Errorf("upsert sandbox practitioners: %w", err)
	}
	stats.Organizations, stats.Practitioners = len(orgs), len(practitioners)
	return nil
}

// copySandboxMembers generates g's members in batches on a few goroutines
// and copies each batch, table by table, on conn (inside its transaction)
// while the next batches are generated. At most two batches per generating
// goroutine are in memory at once.
func copySandboxMembers(ctx context.Context, conn *sqlx.Conn, g *sandbox.Generator, stats *SeedStats) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	total := g.Options().Members
	batches := (total + seedBatchSize - 1) / seedBatchSize
	workers := max(1, runtime.GOMAXPROCS(0))
	next := make(chan int)
	done := make(chan []*sandbox.MemberData, workers)
	go func() {
		defer close(next)
		for b := range batches {
			select {
			case next <- b:
			case <-ctx.Done():
				return
			}
		}
	}()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for b := range next {
				batch := make([]*sandbox.MemberData, 0, seedBatchSize)
				for i := b * seedBatchSize; i < min((b+1)*seedBatchSize, total); i++ {
					batch = append(batch, g.Member(i))
				}
				select {
				case done <- batch:
				case <-ctx.Done():
					return
				}
			}
		})
	}
	go func() { wg.Wait(); close(done) }()

	var err error
	tables := sandboxTables()
	for batch := range done {
		for _, t := range tables {
			if err != nil {
				break // drain: let the generators stop
			}
			var n int
			if n, err = copySandboxTable(ctx, conn, t, batch); err != nil {
				cancel()
			}
			*t.count(stats) += n
		}
	}
	if err != nil {
		return err
	}
	return ctx.Err()
}

// sandboxTable is a member-data table and how a member's rows are written
// to it.
type sandboxTable struct {
	name    string
	copySQL string
	count   func(*SeedStats) *int
	rows    func(w *copyWriter, d *sandbox.MemberData)
}

// copySandboxTable copies t's rows of batch with one COPY on the driver
// connection of conn, and returns how many it copied.
func copySandboxTable(ctx context.Context, conn *sqlx.Conn, t sandboxTable, batch []*sandbox.MemberData) (n int, err error) {
	err = conn.Raw(func(dc any) error {
		w, err := newCopyWriter(ctx, dc, t.copySQL)
		if err != nil {
			return err
		}
		for _, d := range batch {
			t.rows(w, d)
		}
		n, err = w.close()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("copy %s: %w", t.name, err)
	}
	return n, nil
}

// The COPY statements of the sandbox's member data. last_updated is left
// to the column's default (and trigger).
const (
	copyMembersSQL = `COPY members (id, member_identifier, given_name, family_name, birth_date, gender,
  address_line, city, state, postal_code, phone, sandbox) FROM STDIN`
	copyCoveragesSQL = `COPY coverages (id, member_id, identifier, status, type_code, type_display, plan_name,
  group_number, relationship, payer_name, period_start, period_end) FROM STDIN`
	copyAttributionsSQL = `COPY attributions (id, member_id, organization_id, practitioner_id, period_start,
  period_end, source, ended_at, sandbox, created_at) FROM STDIN`
	copyOptOutsSQL      = `COPY provider_access_opt_outs (member_id, since) FROM STDIN`
	copyOptOutEventsSQL = `COPY opt_out_events (id, member_id, opted_out, requested_by, representative_name,
  effective_date, recorded_by, recorded_at) FROM STDIN`
	copyClaimsSQL = `COPY claims (id, member_id, identifier, type, status, outcome, service_start, service_end,
  created, processed, coverage_id, billing_organization_id, rendering_practitioner_id, facility_name,
  place_of_service, type_of_bill, drg, in_network, sensitive, security_labels, total_submitted,
  total_allowed, total_paid, payment_amount, payment_date, payment_adjustment, copay, coinsurance,
  deductible, noncovered, member_liability) FROM STDIN`
	copyClaimLinesSQL = `COPY claim_lines (claim_id, sequence, service_date, product_code, product_system,
  product_display, modifiers, quantity, revenue_code, place_of_service, denial_reason, submitted,
  allowed, paid, copay, coinsurance, deductible, member_liability) FROM STDIN`
	copyClaimDiagnosesSQL = `COPY claim_diagnoses (claim_id, sequence, code, system, display, type,
  present_on_admission) FROM STDIN`
	copyClaimProceduresSQL = `COPY claim_procedures (claim_id, sequence, code, system, display,
  performed_on) FROM STDIN`
	copyEncountersSQL = `COPY encounters (id, member_id, identifier, status, class, type_code, type_display,
  period_start, period_end, practitioner_id, organization_id, reason_code, reason_display, sensitive,
  security_labels) FROM STDIN`
	copyPriorAuthorizationsSQL = `COPY prior_authorizations (id, member_id, identifier, status, drug,
  service_category, requested_on, decided_on, authorized_start, authorized_end, last_status_change,
  requesting_practitioner_id, organization_id, denial_reason_code, denial_reason, sensitive,
  security_labels) FROM STDIN`
	copyPriorAuthorizationItemsSQL = `COPY prior_authorization_items (prior_authorization_id, sequence,
  product_code, product_system, product_display, quantity_requested, quantity_approved, quantity_used,
  status, denial_reason, submitted) FROM STDIN`
	copyClinicalResourcesSQL = `COPY clinical_resources (id, member_id, resource_type, source_id, code,
  code_system, display, status, date_of_service, resource, sensitive, security_labels) FROM STDIN`
)

// sandboxTables lists the member-data tables in load order (parents first),
// each writing its columns in its COPY statement's order.
func sandboxTables() []sandboxTable {
	return []sandboxTable{
		{"members", copyMembersSQL, func(s *SeedStats) *int { return &s.Members }, func(w *copyWriter, d *sandbox.MemberData) {
			m := &d.Member
			w.text(m.ID).text(m.Identifier).text(m.GivenName).text(m.FamilyName).date(m.BirthDate).
				text(string(m.Gender)).text(m.AddressLine).text(m.City).text(m.State).text(m.PostalCode).
				text(m.Phone).bool(m.Sandbox).end()
		}},
		{"coverages", copyCoveragesSQL, func(s *SeedStats) *int { return &s.Coverages }, func(w *copyWriter, d *sandbox.MemberData) {
			c := &d.Coverage
			w.text(c.ID).text(c.MemberID).text(c.Identifier).text(c.Status).text(c.TypeCode).
				text(c.TypeDisplay).text(c.PlanName).text(c.GroupNumber).text(c.Relationship).
				text(c.PayerName).date(c.PeriodStart).date(c.PeriodEnd).end()
		}},
		{"attributions", copyAttributionsSQL, func(s *SeedStats) *int { return &s.Attributions }, func(w *copyWriter, d *sandbox.MemberData) {
			for _, a := range d.Attributions {
				w.text(a.ID).text(a.MemberID).text(a.OrganizationID).ref(a.PractitionerID).
					date(a.PeriodStart).date(a.PeriodEnd).text(string(a.Source)).timePtr(a.EndedAt).
					bool(a.Sandbox).time(a.CreatedAt).end()
			}
		}},
		{"provider_access_opt_outs", copyOptOutsSQL, func(s *SeedStats) *int { return &s.OptOuts }, func(w *copyWriter, d *sandbox.MemberData) {
			if d.OptedOut() {
				w.text(d.Member.ID).time(d.OptOuts[len(d.OptOuts)-1].EffectiveDate.Time()).end()
			}
		}},
		{"opt_out_events", copyOptOutEventsSQL, func(s *SeedStats) *int { return &s.OptOutEvents }, func(w *copyWriter, d *sandbox.MemberData) {
			for _, o := range d.OptOuts {
				w.text(o.ID).text(o.MemberID).bool(o.OptedOut).text(string(o.RequestedBy)).
					text(o.RepresentativeName).date(o.EffectiveDate).text("sandbox").
					time(o.EffectiveDate.Time()).end()
			}
		}},
		{"claims", copyClaimsSQL, func(s *SeedStats) *int { return &s.Claims }, func(w *copyWriter, d *sandbox.MemberData) {
			for i := range d.Claims {
				c := &d.Claims[i]
				w.text(c.ID).text(c.MemberID).text(c.Identifier).text(string(c.Type)).text(string(c.Status)).
					text(c.Outcome).date(c.ServiceStart).date(c.ServiceEnd).date(c.Created).date(c.Processed).
					ref(c.CoverageID).ref(c.BillingOrganizationID).ref(c.RenderingPractitionerID).
					text(c.FacilityName).text(c.PlaceOfService).text(c.TypeOfBill).text(c.DRG).
					bool(c.InNetwork).bool(c.Sensitive).array(c.SecurityLabels).money(c.TotalSubmitted).
					money(c.TotalAllowed).money(c.TotalPaid).money(c.PaymentAmount).date(c.PaymentDate).
					money(c.PaymentAdjust).money(c.Copay).money(c.Coinsurance).money(c.Deductible).
					money(c.NonCovered).money(c.MemberLiability).end()
			}
		}},
		{"claim_lines", copyClaimLinesSQL, func(s *SeedStats) *int { return &s.ClaimLines }, func(w *copyWriter, d *sandbox.MemberData) {
			for i := range d.Claims {
				for _, l := range d.Claims[i].Lines {
					w.text(l.ClaimID).int(l.Sequence).date(l.ServiceDate).text(l.ProductCode).
						text(l.ProductSystem).text(l.ProductDisplay).array(l.Modifiers).float(l.Quantity).
						text(l.RevenueCode).text(l.PlaceOfService).text(l.DenialReason).money(l.Submitted).
						money(l.Allowed).money(l.Paid).money(l.Copay).money(l.Coinsurance).
						money(l.Deductible).money(l.MemberLiability).end()
				}
			}
		}},
		{"claim_diagnoses", copyClaimDiagnosesSQL, func(s *SeedStats) *int { return &s.ClaimDiagnoses }, func(w *copyWriter, d *sandbox.MemberData) {
			for i := range d.Claims {
				for _, x := range d.Claims[i].Diagnoses {
					w.text(x.ClaimID).int(x.Sequence).text(x.Code).text(x.System).text(x.Display).
						text(x.Type).text(x.PresentOnAdmission).end()
				}
			}
		}},
		{"claim_procedures", copyClaimProceduresSQL, func(s *SeedStats) *int { return &s.ClaimProcedures }, func(w *copyWriter, d *sandbox.MemberData) {
			for i := range d.Claims {
				for _, x := range d.Claims[i].Procedures {
					w.text(x.ClaimID).int(x.Sequence).text(x.Code).text(x.System).text(x.Display).
						date(x.Date).end()
				}
			}
		}},
		{"encounters", copyEncountersSQL, func(s *SeedStats) *int { return &s.Encounters }, func(w *copyWriter, d *sandbox.MemberData) {
			for i := range d.Encounters {
				e := &d.Encounters[i]
				w.text(e.ID).text(e.MemberID).text(e.Identifier).text(e.Status).text(e.Class).
					text(e.TypeCode).text(e.TypeDisplay).time(e.PeriodStart).timePtr(e.PeriodEnd).
					ref(e.PractitionerID).ref(e.OrganizationID).text(e.ReasonCode).text(e.ReasonDisplay).
					bool(e.Sensitive).array(e.SecurityLabels).end()
			}
		}},
		{"prior_authorizations", copyPriorAuthorizationsSQL, func(s *SeedStats) *int { return &s.PriorAuthorizations }, func(w *copyWriter, d *sandbox.MemberData) {
			for i := range d.PriorAuthorizations {
				p := &d.PriorAuthorizations[i]
				w.text(p.ID).text(p.MemberID).text(p.Identifier).text(string(p.Status)).bool(p.Drug).
					text(p.ServiceCategory).date(p.RequestedOn).date(p.DecidedOn).date(p.AuthorizedStart).
					date(p.AuthorizedEnd).time(p.LastStatusChange).ref(p.RequestingPractitionerID).
					ref(p.OrganizationID).text(p.DenialReasonCode).text(p.DenialReason).bool(p.Sensitive).
					array(p.SecurityLabels).end()
			}
		}},
		{"prior_authorization_items", copyPriorAuthorizationItemsSQL, func(s *SeedStats) *int { return &s.PriorAuthorizationItems }, func(w *copyWriter, d *sandbox.MemberData) {
			for i := range d.PriorAuthorizations {
				for _, it := range d.PriorAuthorizations[i].Items {
					w.text(it.PriorAuthorizationID).int(it.Sequence).text(it.ProductCode).
						text(it.ProductSystem).text(it.ProductDisplay).float(it.QuantityRequested).
						float(it.QuantityApproved).float(it.QuantityUsed).text(it.Status).
						text(it.DenialReason).money(it.Submitted).end()
				}
			}
		}},
		{"clinical_resources", copyClinicalResourcesSQL, func(s *SeedStats) *int { return &s.ClinicalResources }, func(w *copyWriter, d *sandbox.MemberData) {
			for i := range d.Clinical {
				c := &d.Clinical[i]
				w.text(c.ID).text(c.MemberID).text(string(c.ResourceType)).text(c.SourceID).text(c.Code).
					text(c.CodeSystem).text(c.Display).text(c.Status).date(c.DateOfService).
					bytes(c.Resource).bool(c.Sensitive).array(c.SecurityLabels).end()
			}
		}},
	}
}

// copyWriter writes the rows of one COPY … FROM STDIN in PostgreSQL's text
// format straight to lib/pq's COPY stream: no per-row database/sql call and
// no boxing of values, which would cost more CPU than generating the data.
// Methods chain; a row ends with end.
type copyWriter struct {
	ctx   context.Context
	stmt  driver.Stmt
	data  copyDataWriter
	buf   []byte // complete rows not yet handed to the driver, '\n'-separated
	start bool   // the next value starts a row
	rows  int
	err   error
}

// copyDataWriter is lib/pq's COPY statement, which takes raw rows.
type copyDataWriter interface {
	CopyData(ctx context.Context, line string) (driver.Result, error)
}

// copyFlushSize is how many bytes of rows are handed to the driver at once.
const copyFlushSize = 32 << 10

// newCopyWriter starts query, a COPY … FROM STDIN, on the driver connection
// dc (lib/pq's, inside a transaction).
func newCopyWriter(ctx context.Context, dc any, query string) (*copyWriter, error) {
	conn, ok := dc.(driver.Conn)
	if !ok {
		return nil, fmt.Errorf("copy: driver connection %T", dc)
	}
	stmt, err := conn.Prepare(query)
	if err != nil {
		return nil, err
	}
	data, ok := stmt.(copyDataWriter)
	if !ok {
		stmt.Close()
		return nil, fmt.Errorf("copy: driver statement %T cannot copy raw rows", stmt)
	}
	return &copyWriter{ctx: ctx, stmt: stmt, data: data, buf: make([]byte, 0, copyFlushSize+4096), start: true}, nil
}

// close sends the remaining rows, ends the COPY and returns the number of
// rows written.
func (w *copyWriter) close() (int, error) {
	w.flush()
	if w.err == nil {
		_, w.err = w.stmt.Exec(nil) // ends the COPY and reports its errors
	}
	if err := w.stmt.Close(); w.err == nil {
		w.err = err
	}
	return w.rows, w.err
}

func (w *copyWriter) flush() {
	if len(w.buf) == 0 || w.err != nil {
		w.buf = w.buf[:0]
		return
	}
	// CopyData adds the newline after the last row.
	_, w.err = w.data.CopyData(w.ctx, string(w.buf[:len(w.buf)-1]))
	w.buf = w.buf[:0]
}

// sep starts a value: a tab unless it is the row's first.
func (w *copyWriter) sep() {
	if !w.start {
		w.buf = append(w.buf, '\t')
	}
	w.start = false
}

// end ends the row.
func (w *copyWriter) end() {
	w.buf = append(w.buf, '\n')
	w.start = true
	w.rows++
	if len(w.buf) >= copyFlushSize {
		w.flush()
	}
}

func (w *copyWriter) null() *copyWriter {
	w.sep()
	w.buf = append(w.buf, `\N`...)
	return w
}

// text writes s, escaping what the text format requires.
func (w *copyWriter) text(s string) *copyWriter {
	w.sep()
	w.buf = appendCopyEscaped(w.buf, s)
	return w
}

// bytes writes b as text.
func (w *copyWriter) bytes(b []byte) *copyWriter {
	w.sep()
	w.buf = appendCopyEscaped(w.buf, b)
	return w
}

func appendCopyEscaped[T string | []byte](buf []byte, s T) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			buf = append(buf, `\\`...)
		case '\n':
			buf = append(buf, `\n`...)
		case '\r':
			buf = append(buf, `\r`...)
		case '\t':
			buf = append(buf, `\t`...)
		default:
			buf = append(buf, c)
		}
	}
	return buf
}

// ref writes an optional reference (a nil ID is NULL).
func (w *copyWriter) ref(id *string) *copyWriter {
	if id == nil {
		return w.null()
	}
	return w.text(*id)
}

func (w *copyWriter) bool(b bool) *copyWriter {
	w.sep()
	if b {
		w.buf = append(w.buf, 't')
	} else {
		w.buf = append(w.buf, 'f')
	}
	return w
}

func (w *copyWriter) int(n int) *copyWriter {
	w.sep()
	w.buf = strconv.AppendInt(w.buf, int64(n), 10)
	return w
}

func (w *copyWriter) float(f float64) *copyWriter {
	w.sep()
	w.buf = strconv.AppendFloat(w.buf, f, 'f', -1, 64)
	return w
}

// date writes a date (the zero Date is NULL).
func (w *copyWriter) date(d gateway.Date) *copyWriter {
	if d.IsZero() {
		return w.null()
	}
	w.sep()
	w.buf = d.Time().AppendFormat(w.buf, time.DateOnly)
	return w
}

func (w *copyWriter) time(t time.Time) *copyWriter {
	w.sep()
	w.buf = t.AppendFormat(w.buf, "2006-01-02 15:04:05.999999Z07:00")
	return w
}

func (w *copyWriter) timePtr(t *time.Time) *copyWriter {
	if t == nil {
		return w.null()
	}
	return w.time(*t)
}

// money writes an amount as a decimal with two places (nil is NULL).
func (w *copyWriter) money(m *gateway.Money) *copyWriter {
	if m == nil {
		return w.null()
	}
	w.sep()
	c := int64(*m)
	if c < 0 {
		w.buf = append(w.buf, '-')
		c = -c
	}
	w.buf = strconv.AppendInt(w.buf, c/100, 10)
	w.buf = append(w.buf, '.', byte('0'+c%100/10), byte('0'+c%10))
	return w
}

// array writes a text[] literal of elements, each quoted.
func (w *copyWriter) array(elements []string) *copyWriter {
	w.sep()
	w.buf = append(w.buf, '{')
	for i, e := range elements {
		if i > 0 {
			w.buf = append(w.buf, ',')
		}
		w.buf = append(w.buf, '"')
		for j := 0; j < len(e); j++ {
			switch c := e[j]; c {
			case '"':
				w.buf = append(w.buf, `\\"`...) // array escape, then COPY escape of the backslash
			case '\\':
				w.buf = append(w.buf, `\\\\`...)
			case '\n', '\r', '\t':
				w.buf = append(w.buf, ' ')
			default:
				w.buf = append(w.buf, c)
			}
		}
		w.buf = append(w.buf, '"')
	}
	w.buf = append(w.buf, '}')
	return w
}

// sandboxMemberRefsSQL lists the sandbox members for
// sandbox.OrgAttributions.
const sandboxMemberRefsSQL = `
SELECT m.id, EXISTS (SELECT 1 FROM provider_access_opt_outs o WHERE o.member_id = m.id) AS opted_out
FROM members m
WHERE m.sandbox
ORDER BY m.id`

// deleteOrgSandboxAttributionsSQL removes an organization's sandbox
// attributions before new ones are made.
const deleteOrgSandboxAttributionsSQL = `
DELETE FROM attributions WHERE organization_id = ANY($1::uuid[]) AND sandbox AND source = 'SANDBOX'`

// AttributeSandboxMembers gives the registered organization orgID its own
// deterministic sandbox attributions (DESIGN.md §2 step 2, see
// sandbox.OrgAttributions), replacing any sandbox attributions it had. It
// returns how many it made: none when the sandbox has no members.
func (db *DB) AttributeSandboxMembers(ctx context.Context, orgID string) (int, error) {
	var n int
	err := db.inTx(ctx, func(tx *sqlx.Tx) (err error) {
		n, err = attributeSandboxMembers(ctx, tx, []string{orgID}, db.today())
		return err
	})
	return n, err
}

// attributeSandboxMembers replaces the sandbox attributions of the
// organizations orgIDs within tx. Registration calls it in its own
// transaction; ReplaceSandbox after loading new members.
func attributeSandboxMembers(ctx context.Context, tx *sqlx.Tx, orgIDs []string, today gateway.Date) (int, error) {
	if len(orgIDs) == 0 {
		return 0, nil
	}
	if _, err := tx.ExecContext(ctx, deleteOrgSandboxAttributionsSQL, pq.Array(orgIDs)); err != nil {
		return 0, fmt.Errorf("delete organization sandbox attributions: %w", err)
	}
	var refs []sandbox.MemberRef
	rows, err := tx.QueryContext(ctx, sandboxMemberRefsSQL)
	if err != nil {
		return 0, fmt.Errorf("list sandbox members: %w", err)
	}
	for rows.Next() {
		var r sandbox.MemberRef
		if err := rows.Scan(&r.ID, &r.OptedOut); err != nil {
			rows.Close()
			return 0, err
		}
		refs = append(refs, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	if len(refs) == 0 {
		return 0, nil
	}
	stmt, err := tx.PrepareContext(ctx, copyAttributionsSQL)
	if err != nil {
		return 0, err
	}
	defer stmt.Close()
	n := 0
	for _, org := range orgIDs {
		for _, a := range sandbox.OrgAttributions(org, today, refs) {
			if _, err := stmt.ExecContext(ctx, copyAttributionArgs(a)...); err != nil {
				return 0, fmt.Errorf("copy organization sandbox attributions: %w", err)
			}
			n++
		}
	}
	if _, err := stmt.ExecContext(ctx); err != nil {
		return 0, fmt.Errorf("copy organization sandbox attributions: %w", err)
	}
	return n, nil
}

// copyAttributionArgs returns the values of copyAttributionsSQL's columns
// for a through database/sql.
func copyAttributionArgs(a gateway.Attribution) []any {
	var practitioner, end, ended any
	if a.PractitionerID != nil {
		practitioner = *a.PractitionerID
	}
	if !a.PeriodEnd.IsZero() {
		end = a.PeriodEnd.String()
	}
	if a.EndedAt != nil {
		ended = *a.EndedAt
	}
	return []any{a.ID, a.MemberID, a.OrganizationID, practitioner, a.PeriodStart.String(), end,
		string(a.Source), ended, a.Sandbox, a.CreatedAt}
}
