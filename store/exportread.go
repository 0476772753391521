package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/lib/pq"

	"example.com/gateway/auth"
	"example.com/gateway/gateway"
)

// Scoped streaming reads for bulk export and attribution groups. Every
// statement binds the policy's MemberScope as $1..$8 (scopeArgs) and
// re-evaluates memberVisible when it runs, so attribution, opt-out and
// in-network state are those of the moment a batch is read, not of the
// kick-off (§pdex-358: consent is re-checked when the export runs). Rows
// are kept to the export window: last_updated at or before the job's
// transactionTime (and before _until), and after _since unless the member
// gets their full history. Exports read only under a Provider Access scope.
//
// Every resource handed to a callback is recorded in the AuditLog of the
// context (WithAuditLog), so the export worker audits exactly what it wrote.

// ExportSelection chooses the members of an export.
type ExportSelection struct {
	PatientIDs []string   // nil: every member of the organization's group
	Since      *time.Time // members newly attributed (or opted back in) after it get their full history
}

// ExportMember is one member of an export batch. FullHistory: the member
// joined the group (or opted back in) after _since, so all their data is
// exported, not only what changed (documented in docs/provider-access-api.md).
type ExportMember struct {
	ID          string `db:"id"`
	FullHistory bool   `db:"full_history"`
}

// ExportWindow bounds exported rows by last_updated.
type ExportWindow struct {
	TransactionTime time.Time  // rows updated later are left for the next export
	Since           *time.Time // _since: only rows updated after it (except full-history members)
	Until           *time.Time // _until: only rows updated before it
}

// ExportBatch is what one batch of an export reads.
type ExportBatch struct {
	Scope   auth.MemberScope
	Members []ExportMember
	Window  ExportWindow
	// Keep, when set, decides per resource whether it is exported (the
	// job's _typeFilter); resourceType is the FHIR type and row the record
	// (*gateway.Member, *gateway.Coverage, *ClaimRecord, …). Dropped rows are
	// neither yielded nor audited.
	Keep func(resourceType string, row any) bool
}

func (b ExportBatch) keep(resourceType string, row any) bool {
	return b.Keep == nil || b.Keep(resourceType, row)
}

var errNotProviderScope = errors.New("exports read only under a Provider Access scope")

// args returns the parameters $1..$13 shared by the data statements.
func (b ExportBatch) args() ([]any, error) {
	if b.Scope.Mode != auth.ScopeProvider {
		return nil, errNotProviderScope
	}
	ids := make([]string, len(b.Members))
	var full []string
	for i, m := range b.Members {
		ids[i] = m.ID
		if m.FullHistory {
			full = append(full, m.ID)
		}
	}
	return append(scopeArgs(b.Scope), pq.Array(ids), b.Window.TransactionTime,
		nullTime(b.Window.Until), nullTime(b.Window.Since), pq.Array(full)), nil
}

func nullTime(t *time.Time) any {
	if t == nil {
		return nil
	}
	return *t
}

// Fragments of the export statements. r is the member-data row.
const (
	// exportVis: the batch's members that are visible now. params declares
	// the types of the row-rule parameters $7 and $8 for statements that do
	// not use them (PostgreSQL must know every parameter's type).
	exportVis = `vis AS (SELECT m.id FROM members m WHERE m.id = ANY($9::uuid[]) AND ` + memberVisible + `),
params AS (SELECT $7::boolean AS exclude_sensitive, $8::date AS min_service_date)`
	// exportWindow: at or before transactionTime, before _until.
	exportWindow = `r.last_updated <= $10::timestamptz AND ($11::timestamptz IS NULL OR r.last_updated < $11::timestamptz)`
	// exportSince: after _since, unless the member gets their full history.
	exportSince = `($12::timestamptz IS NULL OR r.member_id = ANY($13::uuid[]) OR r.last_updated > $12::timestamptz)`
	// claimSince also counts a change of a line, diagnosis or procedure.
	claimSince = `($12::timestamptz IS NULL OR r.member_id = ANY($13::uuid[]) OR r.last_updated > $12::timestamptz
  OR EXISTS (SELECT 1 FROM claim_lines x WHERE x.claim_id = r.id AND x.last_updated > $12::timestamptz)
  OR EXISTS (SELECT 1 FROM claim_diagnoses x WHERE x.claim_id = r.id AND x.last_updated > $12::timestamptz)
  OR EXISTS (SELECT 1 FROM claim_procedures x WHERE x.claim_id = r.id AND x.last_updated > $12::timestamptz))`
	paSince = `($12::timestamptz IS NULL OR r.member_id = ANY($13::uuid[]) OR r.last_updated > $12::timestamptz
  OR EXISTS (SELECT 1 FROM prior_authorization_items x WHERE x.prior_authorization_id = r.id AND x.last_updated > $12::timestamptz))`

	// Row rules per table: sensitive rows withheld (42 CFR 422.121(a)(2)(iii))
	// and dates of service from 2016-01-01 (42 CFR 422.121(a)(2)).
	claimRows = sensitiveVisible + ` AND ` + claimDOSVisible + `
  AND ` + exportWindow + ` AND ` + claimSince
	// Drug prior authorizations are not Provider Access data ($14).
	paRows = sensitiveVisible + ` AND ($14::boolean = false OR r.drug = false)
  AND ` + priorAuthDOSVisible + `
  AND ` + exportWindow + ` AND ` + paSince
	encounterRows = sensitiveVisible + ` AND ($8::date IS NULL OR r.period_start >= $8::date)
  AND ` + exportWindow + ` AND ` + exportSince
	// A clinical resource without a date of service has none to fall before the floor.
	clinicalRows = sensitiveVisible + ` AND (r.date_of_service IS NULL OR $8::date IS NULL OR r.date_of_service >= $8::date)
  AND ` + exportWindow + ` AND ` + exportSince
)

// exportMembersSQL walks the organization's attributions in member order
// (index attributions_org_member), so each batch costs its own size, not the
// size of the rest of the group.
const exportMembersSQL = `
SELECT DISTINCT ON (a.member_id) a.member_id AS id,
  ($8::timestamptz IS NOT NULL AND (
     NOT EXISTS (SELECT 1 FROM attributions a2
                 WHERE a2.member_id = m.id AND a2.organization_id = $2::uuid AND a2.sandbox = $3::boolean
                   AND a2.created_at <= $8::timestamptz
                   AND (a2.ended_at IS NULL OR a2.ended_at > $8::timestamptz))
     OR EXISTS (SELECT 1 FROM opt_out_events e
                WHERE e.member_id = m.id AND NOT e.opted_out AND e.recorded_at > $8::timestamptz))) AS full_history
FROM attributions a
JOIN members m ON m.id = a.member_id
WHERE a.organization_id = $2::uuid AND a.ended_at IS NULL
  AND ($7::uuid IS NULL OR a.member_id > $7::uuid)
  AND ($9::uuid[] IS NULL OR a.member_id = ANY($9::uuid[]))
  AND ` + memberVisible + `
ORDER BY a.member_id
LIMIT $10`

// ExportMembers returns the next batch of at most limit members of the
// organization's group after member id after ("" for the first batch), in
// id order: attributed (ACTIVE or UPCOMING), not opted out, in-network, as
// of now.
func (db *DB) ExportMembers(ctx context.Context, scope auth.MemberScope, sel ExportSelection, after string, limit int) ([]ExportMember, error) {
	if scope.Mode != auth.ScopeProvider {
		return nil, errNotProviderScope
	}
	var cursor, patients any
	if after != "" {
		cursor = after
	}
	if sel.PatientIDs != nil {
		patients = pq.Array(sel.PatientIDs)
	}
	args := append(scopeArgs(scope)[:6], cursor, nullTime(sel.Since), patients, limit)
	var out []ExportMember
	err := db.SelectContext(ctx, &out, exportMembersSQL, args...)
	return out, err
}

const countExportMembersSQL = `
SELECT count(*)
FROM (SELECT DISTINCT a.member_id FROM attributions a WHERE a.organization_id = $2::uuid AND a.ended_at IS NULL) c
JOIN members m ON m.id = c.member_id
WHERE ($7::uuid[] IS NULL OR m.id = ANY($7::uuid[])) AND ` + memberVisible

// CountExportMembers returns how many members ExportMembers would yield now.
func (db *DB) CountExportMembers(ctx context.Context, scope auth.MemberScope, sel ExportSelection) (int, error) {
	if scope.Mode != auth.ScopeProvider {
		return 0, errNotProviderScope
	}
	var patients any
	if sel.PatientIDs != nil {
		patients = pq.Array(sel.PatientIDs)
	}
	var n int
	err := db.GetContext(ctx, &n, countExportMembersSQL, append(scopeArgs(scope)[:6], patients)...)
	return n, err
}

const exportPatientsSQL = `
WITH ` + exportVis + `
SELECT r.id, r.member_identifier, r.given_name, r.family_name, r.birth_date, r.gender, r.address_line,
       r.city, r.state, r.postal_code, r.phone, r.sandbox, r.last_updated
FROM members r JOIN vis ON vis.id = r.id
WHERE ` + exportWindow + `
  AND ($12::timestamptz IS NULL OR r.id = ANY($13::uuid[]) OR r.last_updated > $12::timestamptz)
ORDER BY r.id`

// ExportPatients yields the batch's members themselves (FHIR Patient).
func (db *DB) ExportPatients(ctx context.Context, b ExportBatch, fn func(*gateway.Member) error) error {
	return streamRows(ctx, db, b, exportPatientsSQL, nil, "Patient",
		func(m *gateway.Member) string { return m.ID }, fn)
}

const exportCoveragesSQL = `
WITH ` + exportVis + `
SELECT r.id, r.member_id, r.identifier, r.status, r.type_code, r.type_display, r.plan_name, r.group_number,
       r.relationship, r.payer_name, r.period_start, r.period_end, r.last_updated
FROM coverages r JOIN vis ON vis.id = r.member_id
WHERE ` + exportWindow + ` AND ` + exportSince + `
ORDER BY r.member_id, r.id`

// ExportCoverages yields the batch's coverages.
func (db *DB) ExportCoverages(ctx context.Context, b ExportBatch, fn func(*gateway.Coverage) error) error {
	return streamRows(ctx, db, b, exportCoveragesSQL, nil, "Coverage",
		func(c *gateway.Coverage) string { return c.MemberID }, fn)
}

const exportEncountersSQL = `
WITH ` + exportVis + `
SELECT r.id, r.member_id, r.identifier, r.status, r.class, r.type_code, r.type_display, r.period_start,
       r.period_end, r.practitioner_id, r.organization_id, r.reason_code, r.reason_display, r.sensitive,
       r.last_updated
FROM encounters r JOIN vis ON vis.id = r.member_id
WHERE ` + encounterRows + `
ORDER BY r.member_id, r.period_start, r.id`

// ExportEncounters yields the batch's encounters.
func (db *DB) ExportEncounters(ctx context.Context, b ExportBatch, fn func(*gateway.Encounter) error) error {
	return streamRows(ctx, db, b, exportEncountersSQL, nil, "Encounter",
		func(e *gateway.Encounter) string { return e.MemberID }, fn)
}

const exportClinicalSQL = `
WITH ` + exportVis + `
SELECT r.id, r.member_id, r.resource_type, r.source_id, r.code, r.code_system, r.display, r.status,
       r.date_of_service, r.resource, r.sensitive, r.last_updated
FROM clinical_resources r JOIN vis ON vis.id = r.member_id
WHERE r.resource_type = ANY($14::text[]) AND ` + clinicalRows + `
ORDER BY r.member_id, r.resource_type, r.id`

// ExportClinical yields the batch's stored clinical resources of the given
// types.
func (db *DB) ExportClinical(ctx context.Context, b ExportBatch, types []gateway.ClinicalType, fn func(*gateway.ClinicalResource) error) error {
	if len(types) == 0 {
		return nil
	}
	names := make([]string, len(types))
	for i, t := range types {
		names[i] = string(t)
	}
	return streamRowsTyped(ctx, db, b, exportClinicalSQL, []any{pq.Array(names)},
		func(r *gateway.ClinicalResource) (string, string) { return r.MemberID, string(r.ResourceType) }, fn)
}

// streamRows runs a batch statement and yields each row (struct-scanned)
// that Keep accepts, recording it in the context's AuditLog.
func streamRows[T any](ctx context.Context, db *DB, b ExportBatch, query string, extra []any, resourceType string,
	member func(*T) string, fn func(*T) error) error {
	return streamRowsTyped(ctx, db, b, query, extra, func(r *T) (string, string) { return member(r), resourceType }, fn)
}

func streamRowsTyped[T any](ctx context.Context, db *DB, b ExportBatch, query string, extra []any,
	member func(*T) (memberID, resourceType string), fn func(*T) error) error {
	args, err := b.args()
	if err != nil {
		return err
	}
	rows, err := db.QueryxContext(ctx, query, append(args, extra...)...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var r T
		if err := rows.StructScan(&r); err != nil {
			return err
		}
		id, typ := member(&r)
		if !b.keep(typ, &r) {
			continue
		}
		recordRead(ctx, id, typ, 1)
		if err := fn(&r); err != nil {
			return err
		}
	}
	return rows.Err()
}

// ClaimRecord is a claim with its lines, diagnoses and procedures, as the
// ExplanationOfBenefit mapping takes it. Claim.LastUpdated is the latest
// change of the claim or any of its parts.
type ClaimRecord struct {
	Claim      gateway.Claim
	Lines      []gateway.ClaimLine
	Diagnoses  []gateway.ClaimDiagnosis
	Procedures []gateway.ClaimProcedure
}

// PriorAuthorizationRecord is a prior authorization with its items.
// PriorAuthorization.LastUpdated is the latest change of it or its items.
type PriorAuthorizationRecord struct {
	PriorAuthorization gateway.PriorAuthorization
	Items              []gateway.PriorAuthorizationItem
}

// Claims and prior authorizations are read a chunk of exportChunk members
// at a time, each chunk in pages of at most exportPage rows (keyset), so
// memory holds a few pages whatever a member's history, and no statement
// sorts more than one chunk's rows.
const (
	exportChunk = 50
	exportPage  = 1000
)

// Money columns are selected only when the scope allows money (the
// *MoneySQL variants): for Provider Access they are never read at all
// (DESIGN.md §1 rule 2).
const (
	exportClaimsHead = `
WITH ` + exportVis + `
SELECT r.id, r.member_id, r.identifier, r.type, r.status, r.outcome, r.service_start, r.service_end,
       r.created, r.processed, r.coverage_id, r.billing_organization_id, r.rendering_practitioner_id,
       r.facility_name, r.place_of_service, r.type_of_bill, r.drg, r.in_network, r.sensitive, r.last_updated`
	exportClaimsMoney = `,
       r.total_submitted, r.total_allowed, r.total_paid, r.payment_amount, r.payment_date, r.payment_adjustment,
       r.copay, r.coinsurance, r.deductible, r.noncovered, r.member_liability`
	exportClaimsTail = `
FROM claims r JOIN vis ON vis.id = r.member_id
WHERE ` + claimRows + `
  AND (r.member_id, r.id) > ($14::uuid, $15::uuid)
ORDER BY r.member_id, r.id
LIMIT $16`
	exportClaimsSQL      = exportClaimsHead + exportClaimsTail
	exportClaimsMoneySQL = exportClaimsHead + exportClaimsMoney + exportClaimsTail

	exportClaimLinesHead = `
SELECT claim_id, sequence, service_date, product_code, product_system, product_display, modifiers, quantity,
       revenue_code, place_of_service, denial_reason, last_updated`
	exportClaimLinesMoney = `,
       submitted, allowed, paid, copay, coinsurance, deductible, member_liability`
	exportClaimLinesTail = `
FROM claim_lines WHERE claim_id = ANY($1::uuid[]) ORDER BY claim_id, sequence`
	exportClaimLinesSQL      = exportClaimLinesHead + exportClaimLinesTail
	exportClaimLinesMoneySQL = exportClaimLinesHead + exportClaimLinesMoney + exportClaimLinesTail
)

const exportClaimDiagnosesSQL = `
SELECT claim_id, sequence, code, system, display, type, present_on_admission, last_updated
FROM claim_diagnoses WHERE claim_id = ANY($1::uuid[]) ORDER BY claim_id, sequence`

const exportClaimProceduresSQL = `
SELECT claim_id, sequence, code, system, display, performed_on, last_updated
FROM claim_procedures WHERE claim_id = ANY($1::uuid[]) ORDER BY claim_id, sequence`

const zeroUUID = "00000000-0000-0000-0000-000000000000"

// ExportClaims yields the batch's claims as ExplanationOfBenefit records, a
// page of claims at a time with their parts; the next page is read while
// the caller processes the current one (see pipeline).
func (db *DB) ExportClaims(ctx context.Context, b ExportBatch, fn func(*ClaimRecord) error) error {
	args, err := b.args()
	if err != nil {
		return err
	}
	money := b.Scope.Money
	fetch := func(ctx context.Context, args []any, after pageKey) ([]ClaimRecord, error) {
		page := make([]ClaimRecord, 0, 256)
		ids := make([]string, 0, 256)
		query := exportClaimsSQL
		if money {
			query = exportClaimsMoneySQL
		}
		rows, err := db.QueryContext(ctx, query, append(args, after.member, after.id, exportPage)...)
		if err != nil {
			return nil, err
		}
		dest := make([]any, 0, 31)
		for rows.Next() {
			page = append(page, ClaimRecord{})
			c := &page[len(page)-1].Claim
			dest = append(dest[:0], &c.ID, &c.MemberID, &c.Identifier, &c.Type, &c.Status, &c.Outcome, &c.ServiceStart,
				&c.ServiceEnd, &c.Created, &c.Processed, &c.CoverageID, &c.BillingOrganizationID,
				&c.RenderingPractitionerID, &c.FacilityName, &c.PlaceOfService, &c.TypeOfBill, &c.DRG,
				&c.InNetwork, &c.Sensitive, &c.LastUpdated)
			if money {
				dest = append(dest, &c.TotalSubmitted, &c.TotalAllowed, &c.TotalPaid, &c.PaymentAmount, &c.PaymentDate,
					&c.PaymentAdjust, &c.Copay, &c.Coinsurance, &c.Deductible, &c.NonCovered, &c.MemberLiability)
			}
			if err := rows.Scan(dest...); err != nil {
				rows.Close()
				return nil, err
			}
			ids = append(ids, c.ID)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		if len(page) == 0 {
			return page, nil
		}
		return page, db.claimParts(ctx, page, ids, money)
	}
	last := func(page []ClaimRecord) pageKey {
		c := &page[len(page)-1].Claim
		return pageKey{c.MemberID, c.ID}
	}
	return pipeline(ctx, b, args, fetch, last, func(page []ClaimRecord) error {
		for i := range page {
			rec := &page[i]
			if !b.inWindow(rec.Claim.LastUpdated) || !b.keep("ExplanationOfBenefit", rec) {
				continue
			}
			recordRead(ctx, rec.Claim.MemberID, "ExplanationOfBenefit", 1)
			if err := fn(rec); err != nil {
				return err
			}
		}
		return nil
	})
}

// pageKey is a keyset position: the last (member, row) of a page.
type pageKey struct{ member, id string }

// pipeline reads the batch's rows with fetch, a chunk of members at a
// time (args with $9 narrowed to the chunk) and, within a chunk, page after
// page (each after the last row of the previous one), and hands the pages
// to consume in order. It reads page k+1 while consume works on page k: the
// database's work and the scanning overlap the caller's mapping and
// encoding, so a worker keeps both a CPU and the database busy. At most
// three pages are in memory. It returns the first error of either side; on
// an error of consume the reader is stopped and waited for.
func pipeline[T any](ctx context.Context, b ExportBatch, args []any,
	fetch func(ctx context.Context, args []any, after pageKey) ([]T, error),
	last func([]T) pageKey, consume func([]T) error) error {
	ctx, cancel := context.WithCancel(ctx)
	type result struct {
		page []T
		err  error
	}
	pages := make(chan result, 1)
	go func() {
		defer close(pages)
		for start := 0; start < len(b.Members); start += exportChunk {
			chunk := b.Members[start:min(start+exportChunk, len(b.Members))]
			ids := make([]string, len(chunk))
			for i, m := range chunk {
				ids[i] = m.ID
			}
			chunkArgs := append(args[:8:8], pq.Array(ids))
			chunkArgs = append(chunkArgs, args[9:]...)
			after := pageKey{zeroUUID, zeroUUID}
			for {
				page, err := fetch(ctx, chunkArgs, after)
				select {
				case pages <- result{page, err}:
				case <-ctx.Done():
					return
				}
				if err != nil {
					return
				}
				if len(page) < exportPage {
					break
				}
				after = last(page)
			}
		}
	}()
	var err error
	for r := range pages {
		if err == nil {
			err = r.err
		}
		if err == nil && len(r.page) > 0 {
			err = consume(r.page)
		}
		if err != nil {
			cancel() // stop the reader; drain until it is gone
		}
	}
	cancel()
	return err
}

// inWindow applies the window's upper bounds to a record whose last change
// is known only after its parts were read.
func (b ExportBatch) inWindow(lastUpdated time.Time) bool {
	if lastUpdated.After(b.Window.TransactionTime) {
		return false
	}
	return b.Window.Until == nil || lastUpdated.Before(*b.Window.Until)
}

// claimParts fills the lines, diagnoses and procedures of page (whose claim
// ids are ids, in page order) and moves each claim's LastUpdated to its
// latest part's.
func (db *DB) claimParts(ctx context.Context, page []ClaimRecord, ids []string, money bool) error {
	index := make(map[string]int, len(page))
	for i := range page {
		index[page[i].Claim.ID] = i
	}
	touch := func(claimID string, t time.Time) *ClaimRecord {
		rec := &page[index[claimID]]
		if t.After(rec.Claim.LastUpdated) {
			rec.Claim.LastUpdated = t
		}
		return rec
	}
	idArray := pq.Array(ids)

	query := exportClaimLinesSQL
	if money {
		query = exportClaimLinesMoneySQL
	}
	rows, err := db.QueryContext(ctx, query, idArray)
	if err != nil {
		return err
	}
	dest := make([]any, 0, 19)
	for rows.Next() {
		var l gateway.ClaimLine
		var mods pq.StringArray
		var t time.Time
		dest = append(dest[:0], &l.ClaimID, &l.Sequence, &l.ServiceDate, &l.ProductCode, &l.ProductSystem, &l.ProductDisplay,
			&mods, &l.Quantity, &l.RevenueCode, &l.PlaceOfService, &l.DenialReason, &t)
		if money {
			dest = append(dest, &l.Submitted, &l.Allowed, &l.Paid, &l.Copay, &l.Coinsurance, &l.Deductible, &l.MemberLiability)
		}
		if err := rows.Scan(dest...); err != nil {
			rows.Close()
			return err
		}
		if len(mods) > 0 {
			l.Modifiers = mods
		}
		rec := touch(l.ClaimID, t)
		rec.Lines = append(rec.Lines, l)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}

	rows, err = db.QueryContext(ctx, exportClaimDiagnosesSQL, idArray)
	if err != nil {
		return err
	}
	for rows.Next() {
		var d gateway.ClaimDiagnosis
		var t time.Time
		if err := rows.Scan(&d.ClaimID, &d.Sequence, &d.Code, &d.System, &d.Display, &d.Type, &d.PresentOnAdmission, &t); err != nil {
			rows.Close()
			return err
		}
		rec := touch(d.ClaimID, t)
		rec.Diagnoses = append(rec.Diagnoses, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}

	rows, err = db.QueryContext(ctx, exportClaimProceduresSQL, idArray)
	if err != nil {
		return err
	}
	for rows.Next() {
		var p gateway.ClaimProcedure
		var t time.Time
		if err := rows.Scan(&p.ClaimID, &p.Sequence, &p.Code, &p.System, &p.Display, &p.Date, &t); err != nil {
			rows.Close()
			return err
		}
		rec := touch(p.ClaimID, t)
		rec.Procedures = append(rec.Procedures, p)
	}
	rows.Close()
	return rows.Err()
}

const exportPriorAuthorizationsSQL = `
WITH ` + exportVis + `
SELECT r.id, r.member_id, r.identifier, r.status, r.drug, r.service_category, r.requested_on, r.decided_on,
       r.authorized_start, r.authorized_end, r.last_status_change, r.requesting_practitioner_id,
       r.organization_id, r.denial_reason_code, r.denial_reason, r.sensitive, r.last_updated
FROM prior_authorizations r JOIN vis ON vis.id = r.member_id
WHERE ` + paRows + `
  AND (r.member_id, r.id) > ($15::uuid, $16::uuid)
ORDER BY r.member_id, r.id
LIMIT $17`

const (
	exportPriorAuthorizationItemsHead = `
SELECT prior_authorization_id, sequence, product_code, product_system, product_display, quantity_requested,
       quantity_approved, quantity_used, status, denial_reason, last_updated`
	exportPriorAuthorizationItemsTail = `
FROM prior_authorization_items WHERE prior_authorization_id = ANY($1::uuid[])
ORDER BY prior_authorization_id, sequence`
	exportPriorAuthorizationItemsSQL      = exportPriorAuthorizationItemsHead + exportPriorAuthorizationItemsTail
	exportPriorAuthorizationItemsMoneySQL = exportPriorAuthorizationItemsHead + `, submitted` + exportPriorAuthorizationItemsTail
)

// ExportPriorAuthorizations yields the batch's prior authorizations:
// pending, approved, partially approved, denied (with the denial reason)
// and cancelled ones, whatever the age of their last status change (they
// are kept at least a year after it, §pdex-395); drug prior authorizations
// only when the scope allows them.
func (db *DB) ExportPriorAuthorizations(ctx context.Context, b ExportBatch, fn func(*PriorAuthorizationRecord) error) error {
	args, err := b.args()
	if err != nil {
		return err
	}
	money := b.Scope.Money
	fetch := func(ctx context.Context, args []any, after pageKey) ([]PriorAuthorizationRecord, error) {
		page := make([]PriorAuthorizationRecord, 0, 64)
		var ids []string
		rows, err := db.QueryContext(ctx, exportPriorAuthorizationsSQL,
			append(args, b.Scope.ExcludeDrugPA, after.member, after.id, exportPage)...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			page = append(page, PriorAuthorizationRecord{})
			p := &page[len(page)-1].PriorAuthorization
			if err := rows.Scan(&p.ID, &p.MemberID, &p.Identifier, &p.Status, &p.Drug, &p.ServiceCategory,
				&p.RequestedOn, &p.DecidedOn, &p.AuthorizedStart, &p.AuthorizedEnd, &p.LastStatusChange,
				&p.RequestingPractitionerID, &p.OrganizationID, &p.DenialReasonCode, &p.DenialReason,
				&p.Sensitive, &p.LastUpdated); err != nil {
				rows.Close()
				return nil, err
			}
			ids = append(ids, p.ID)
		}
		rows.Close()
		if err := rows.Err(); err != nil || len(page) == 0 {
			return page, err
		}
		index := make(map[string]int, len(page))
		for i := range page {
			index[page[i].PriorAuthorization.ID] = i
		}
		query := exportPriorAuthorizationItemsSQL
		if money {
			query = exportPriorAuthorizationItemsMoneySQL
		}
		rows, err = db.QueryContext(ctx, query, pq.Array(ids))
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		for rows.Next() {
			var it gateway.PriorAuthorizationItem
			var t time.Time
			dest := []any{&it.PriorAuthorizationID, &it.Sequence, &it.ProductCode, &it.ProductSystem,
				&it.ProductDisplay, &it.QuantityRequested, &it.QuantityApproved, &it.QuantityUsed, &it.Status,
				&it.DenialReason, &t}
			if money {
				dest = append(dest, &it.Submitted)
			}
			if err := rows.Scan(dest...); err != nil {
				return nil, err
			}
			rec := &page[index[it.PriorAuthorizationID]]
			if t.After(rec.PriorAuthorization.LastUpdated) {
				rec.PriorAuthorization.LastUpdated = t
			}
			rec.Items = append(rec.Items, it)
		}
		return page, rows.Err()
	}
	last := func(page []PriorAuthorizationRecord) pageKey {
		p := &page[len(page)-1].PriorAuthorization
		return pageKey{p.MemberID, p.ID}
	}
	return pipeline(ctx, b, args, fetch, last, func(page []PriorAuthorizationRecord) error {
		for i := range page {
			rec := &page[i]
			if !b.inWindow(rec.PriorAuthorization.LastUpdated) || !b.keep("ExplanationOfBenefit", rec) {
				continue
			}
			recordRead(ctx, rec.PriorAuthorization.MemberID, "ExplanationOfBenefit", 1)
			if err := fn(rec); err != nil {
				return err
			}
		}
		return nil
	})
}

// ExportRefTypes says which of the batch's row kinds count as referring to
// supporting resources (the job's types).
type ExportRefTypes struct {
	Claims, PriorAuthorizations, Encounters bool
	Practitioners                           bool // a referenced practitioner's organization counts too
}

// practitionerRefs: practitioners referred to by the batch's exported rows.
const practitionerRefs = `
  SELECT r.rendering_practitioner_id AS id FROM claims r JOIN vis ON vis.id = r.member_id
  WHERE $16::boolean AND ` + claimRows + `
  UNION
  SELECT r.requesting_practitioner_id FROM prior_authorizations r JOIN vis ON vis.id = r.member_id
  WHERE $17::boolean AND ` + paRowsRef + `
  UNION
  SELECT r.practitioner_id FROM encounters r JOIN vis ON vis.id = r.member_id
  WHERE $18::boolean AND ` + encounterRows

// paRowsRef is paRows with the drug flag at $19.
const paRowsRef = sensitiveVisible + ` AND ($19::boolean = false OR r.drug = false)
  AND ` + priorAuthDOSVisible + `
  AND ` + exportWindow + ` AND ` + paSince

const exportPractitionersSQL = `
WITH ` + exportVis + `,
refs AS (` + practitionerRefs + `),
ins AS (
  INSERT INTO export_refs (job_id, resource_type, resource_id, batch)
  SELECT $14, 'Practitioner', id, $15 FROM refs WHERE id IS NOT NULL
  ON CONFLICT DO NOTHING
  RETURNING resource_id
)
SELECT p.id, p.npi, p.given_name, p.family_name, p.specialty_code, p.specialty_display, p.organization_id,
       p.sandbox, p.last_updated
FROM practitioners p JOIN ins ON ins.resource_id = p.id
ORDER BY p.id`

const exportOrganizationsSQL = `
WITH ` + exportVis + `,
prac AS (` + practitionerRefs + `),
refs AS (
  SELECT r.billing_organization_id AS id FROM claims r JOIN vis ON vis.id = r.member_id
  WHERE $16::boolean AND ` + claimRows + `
  UNION
  SELECT r.organization_id FROM prior_authorizations r JOIN vis ON vis.id = r.member_id
  WHERE $17::boolean AND ` + paRowsRef + `
  UNION
  SELECT r.organization_id FROM encounters r JOIN vis ON vis.id = r.member_id
  WHERE $18::boolean AND ` + encounterRows + `
  UNION
  SELECT p.organization_id FROM practitioners p JOIN prac ON prac.id = p.id WHERE $20::boolean
),
ins AS (
  INSERT INTO export_refs (job_id, resource_type, resource_id, batch)
  SELECT $14, 'Organization', id, $15 FROM refs WHERE id IS NOT NULL
  ON CONFLICT DO NOTHING
  RETURNING resource_id
)
SELECT o.id, o.name, o.type, o.npi, o.tin, o.status, o.in_network, o.synthetic, o.created_at
FROM organizations o JOIN ins ON ins.resource_id = o.id
ORDER BY o.id`

// ExportPractitioners yields the practitioners the batch's exported rows
// refer to that the job has not exported yet, and records them as exported
// by batch (the referenced set is computed in SQL, so a job holds no set of
// ids in memory; ResetExportRefs forgets a rewritten batch's).
func (db *DB) ExportPractitioners(ctx context.Context, b ExportBatch, jobID string, batch int, t ExportRefTypes, fn func(*gateway.Practitioner) error) error {
	args, err := b.args()
	if err != nil {
		return err
	}
	args = append(args, jobID, batch, t.Claims, t.PriorAuthorizations, t.Encounters, b.Scope.ExcludeDrugPA)
	return streamSimple(ctx, db, exportPractitionersSQL, args, fn)
}

// ExportOrganizations yields the organizations the batch's exported rows
// (and, with t.Practitioners, their practitioners) refer to that the job has
// not exported yet, like ExportPractitioners.
func (db *DB) ExportOrganizations(ctx context.Context, b ExportBatch, jobID string, batch int, t ExportRefTypes, fn func(*gateway.Organization) error) error {
	args, err := b.args()
	if err != nil {
		return err
	}
	args = append(args, jobID, batch, t.Claims, t.PriorAuthorizations, t.Encounters, b.Scope.ExcludeDrugPA, t.Practitioners)
	return streamSimple(ctx, db, exportOrganizationsSQL, args, fn)
}

func streamSimple[T any](ctx context.Context, db *DB, query string, args []any, fn func(*T) error) error {
	rows, err := db.QueryxContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var r T
		if err := rows.StructScan(&r); err != nil {
			return err
		}
		if err := fn(&r); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Attribution groups.

// GroupSummary describes an organization's attribution group as a
// principal sees it now.
type GroupSummary struct {
	Members     int       `db:"members"`
	LastUpdated time.Time `db:"last_updated"` // the latest change of a visible member's attribution
}

// GroupMember is one visible member of an attribution group with the span
// of their current attributions to the organization (End zero: open).
type GroupMember struct {
	MemberID string       `db:"member_id"`
	Start    gateway.Date `db:"period_start"`
	End      gateway.Date `db:"period_end"`
}

// groupAttributions: the scope's organization's current attributions
// (ACTIVE or UPCOMING) of visible members.
const groupAttributions = `
FROM members m
JOIN attributions a ON a.member_id = m.id AND a.organization_id = $2::uuid AND a.ended_at IS NULL
  AND a.sandbox = $3::boolean AND a.period_start <= $5::date + $6::int
  AND (a.period_end IS NULL OR a.period_end >= $5::date)
WHERE ` + memberVisible

const groupSummarySQL = `
SELECT count(DISTINCT m.id) AS members, coalesce(max(a.last_updated), 'epoch') AS last_updated ` + groupAttributions

const groupMembersSQL = `
SELECT m.id AS member_id, min(a.period_start) AS period_start,
       CASE WHEN bool_or(a.period_end IS NULL) THEN NULL ELSE max(a.period_end) END AS period_end
` + groupAttributions + `
GROUP BY m.id
ORDER BY m.id`

// AttributionGroup reads the scope's organization's attribution group: the
// members it may read now (opted-out members are absent, with no count of
// them: §pdex-343/344) with their attribution periods. It calls summary
// once, then members with batches of at most batch members, all from one
// consistent snapshot; members is not called when withMembers is false.
// Only Provider Access scopes have a group.
func (db *DB) AttributionGroup(ctx context.Context, scope auth.MemberScope, withMembers bool, batch int,
	summary func(GroupSummary) error, members func([]GroupMember) error) error {
	if scope.Mode != auth.ScopeProvider {
		return errNotProviderScope
	}
	tx, err := db.BeginTxx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return err
	}
	defer tx.Rollback()
	args := scopeArgs(scope)[:6] // the group has no row rules
	var s GroupSummary
	if err := tx.GetContext(ctx, &s, groupSummarySQL, args...); err != nil {
		return err
	}
	if err := summary(s); err != nil {
		return err
	}
	if !withMembers {
		return nil
	}
	rows, err := tx.QueryxContext(ctx, groupMembersSQL, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	buf := make([]GroupMember, 0, batch)
	for rows.Next() {
		var gm GroupMember
		if err := rows.StructScan(&gm); err != nil {
			return err
		}
		if buf = append(buf, gm); len(buf) == batch {
			if err := members(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if len(buf) > 0 {
		return members(buf)
	}
	return nil
}

// WriteReadAudit writes one audit row per member id, each recording n
// resources of resourceType (for reads that stream more members than an
// AuditLog should hold, such as an attribution group: the caller writes a
// batch before it sends it).
func (db *DB) WriteReadAudit(ctx context.Context, p auth.Principal, ac AuditContext, resourceType string, memberIDs []string) error {
	l := &AuditLog{reads: make(map[string]map[string]int, len(memberIDs))}
	for _, id := range memberIDs {
		l.reads[id] = map[string]int{resourceType: 1}
	}
	return db.WriteAudit(ctx, p, ac, l)
}
