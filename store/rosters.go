package store

import (
	"context"
	"fmt"
	"strings"
	"unicode"

	"github.com/google/uuid"
	"github.com/lib/pq"

	"example.com/gateway/auth"
	"example.com/gateway/gateway"
)

// Provider rosters: a provider lists the members it treats; the payer
// matches each row (the member identifier exactly, else name, birth date
// and gender) and an operator confirms the matches, which become
// attributions (42 CFR 422.121(b)(1); Da Vinci ATR's member attribution
// lists). What comes back to the provider says nothing about any member
// but the row's own outcome.

// MaxRosterRows bounds one roster.
const MaxRosterRows = 5000

// NewRoster is the input of SubmitRoster.
type NewRoster struct {
	OrganizationID string
	Environment    gateway.Environment // people: default PRODUCTION; clients: their own
	PeriodStart    gateway.Date
	PeriodEnd      gateway.Date // zero: open-ended
	Rows           []NewRosterRow
}

// NewRosterRow is one patient of a roster.
type NewRosterRow struct {
	MemberIdentifier string
	GivenName        string
	FamilyName       string
	BirthDate        gateway.Date
	Gender           gateway.Gender // "" unknown to the provider
	PeriodStart      gateway.Date   // zero: the roster's
	PeriodEnd        gateway.Date
}

// Validate reports every problem of the roster itself at once. Problems of
// one row do not fail the roster: the row comes back unmatched with its
// reason.
func (in *NewRoster) Validate() error {
	var fe gateway.FieldErrors
	switch {
	case len(in.Rows) == 0:
		fe.Add("input.rows", "must list at least one patient")
	case len(in.Rows) > MaxRosterRows:
		fe.Add("input.rows", "lists more than %d patients: split the roster", MaxRosterRows)
	}
	if in.PeriodStart.IsZero() {
		fe.Add("input.periodStart", "is required")
	}
	if !in.PeriodEnd.IsZero() && in.PeriodEnd.Before(in.PeriodStart) {
		fe.Add("input.periodEnd", "is before periodStart")
	}
	if in.Environment != "" && in.Environment != gateway.EnvSandbox && in.Environment != gateway.EnvProduction {
		fe.Add("input.environment", "must be SANDBOX or PRODUCTION")
	}
	return fe.Err()
}

// rosterRowMatch is a row on its way into roster_rows.
type rosterRowMatch struct {
	NewRosterRow
	n          int
	start, end gateway.Date
	member     string
	method     gateway.RosterMatchMethod
	agree      *bool
	status     gateway.RosterRowStatus
	reason     string
}

const insertRosterSQL = `
INSERT INTO roster_submissions (id, organization_id, submitted_by, period_start, period_end, environment)
VALUES ($1, $2, $3, $4, $5, $6)`

// matchByIdentifierSQL finds members by exact identifier in one data set,
// and whether each row's demographics agree (for operators only).
const matchByIdentifierSQL = `
SELECT r.n, m.id,
  (lower(m.given_name) = lower(r.given) AND lower(m.family_name) = lower(r.family)
   AND m.birth_date = r.birth AND m.gender = r.gender) IS TRUE AS agree
FROM unnest($1::int[], $2::text[], $3::text[], $4::text[], $5::date[], $6::text[])
  AS r(n, ident, given, family, birth, gender)
JOIN members m ON m.member_identifier = r.ident AND m.sandbox = $7`

// matchByDemographicsSQL finds members by name, birth date and gender in
// one data set; a row matches only when exactly one member does.
const matchByDemographicsSQL = `
SELECT r.n, min(m.id::text) AS id, count(*) AS matches
FROM unnest($1::int[], $2::text[], $3::text[], $4::date[], $5::text[]) AS r(n, given, family, birth, gender)
JOIN members m ON lower(m.family_name) = lower(r.family) AND lower(m.given_name) = lower(r.given)
  AND m.birth_date = r.birth AND m.gender = r.gender AND m.sandbox = $6
GROUP BY r.n`

const insertRosterRowSQL = `
INSERT INTO roster_rows (id, roster_id, row_number, member_identifier, given_name, family_name, birth_date,
  gender, period_start, period_end, matched_member_id, match_method, demographics_agree, status, reason)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`

// SubmitRoster records a provider's roster and matches each row against the
// members of the roster's environment: by the member identifier exactly,
// else by name, birth date and gender when exactly one member has them.
// Matched rows wait for an operator (PENDING); the others come back
// UNMATCHED with a reason about the row alone (gateway.RosterReason*), so a
// roster cannot be used to learn about members it does not name. People of
// a provider organization and its Provider Access clients submit rosters.
func (db *DB) SubmitRoster(ctx context.Context, p auth.Principal, in NewRoster, m Mutation) (gateway.Roster, error) {
	if err := in.Validate(); err != nil {
		return gateway.Roster{}, err
	}
	if p.IsClient() {
		if in.Environment != "" && in.Environment != p.Environment() {
			return gateway.Roster{}, &gateway.Error{Code: gateway.CodeInvalid, Path: "input.environment",
				Message: "an API client submits rosters for its own environment"}
		}
		in.Environment = p.Environment()
	} else if in.Environment == "" {
		in.Environment = gateway.EnvProduction
	}
	id, _, err := mutate(ctx, db, p, m, in, func(t *portalTx) (string, error) {
		if err := t.actor.Can(auth.RightSubmitRoster, in.OrganizationID); err != nil {
			return "", err
		}
		org, err := lockOrganization(ctx, t.Tx, in.OrganizationID)
		if err != nil {
			return "", err
		}
		if !providerOrganization(org) {
			return "", &gateway.Error{Code: gateway.CodeForbidden, Message: "only provider organizations submit rosters"}
		}
		rows, err := matchRoster(ctx, t, in)
		if err != nil {
			return "", err
		}
		id := uuid.NewString()
		if _, err := t.ExecContext(ctx, insertRosterSQL, id, org.ID, t.recordedBy(), in.PeriodStart,
			argDate(in.PeriodEnd), in.Environment); err != nil {
			return "", fmt.Errorf("insert roster: %w", err)
		}
		stmt, err := t.PreparexContext(ctx, insertRosterRowSQL)
		if err != nil {
			return "", err
		}
		defer stmt.Close()
		for _, r := range rows {
			if _, err := stmt.ExecContext(ctx, uuid.New(), id, r.n, r.MemberIdentifier, r.GivenName, r.FamilyName,
				argDate(r.BirthDate), string(r.Gender), argDate(r.PeriodStart), argDate(r.PeriodEnd),
				argString(r.member), string(r.method), r.agree, r.status, r.reason); err != nil {
				return "", fmt.Errorf("insert roster row: %w", err)
			}
		}
		return id, nil
	})
	if err != nil {
		return gateway.Roster{}, err
	}
	r, err := db.rosterWithRows(ctx, id)
	// Operators do not submit rosters: the submitter sees no match details.
	return RedactRoster(auth.PortalActor(p, "", ""), r), err
}

// matchRoster checks and matches the rows of a roster, two statements for
// the whole roster.
func matchRoster(ctx context.Context, t *portalTx, in NewRoster) ([]*rosterRowMatch, error) {
	sandbox := in.Environment == gateway.EnvSandbox
	rows := make([]*rosterRowMatch, len(in.Rows))
	var identN, demoN []int
	var idents, idGiven, idFamily, idGender, dGiven, dFamily, dGender []string
	var idBirth, dBirth []any
	for i, r := range in.Rows {
		r.MemberIdentifier = strings.TrimSpace(r.MemberIdentifier)
		r.GivenName, r.FamilyName = strings.TrimSpace(r.GivenName), strings.TrimSpace(r.FamilyName)
		row := &rosterRowMatch{NewRosterRow: r, n: i + 1, status: gateway.RosterUnmatched}
		rows[i] = row
		start, end := r.PeriodStart, r.PeriodEnd
		if start.IsZero() {
			start = in.PeriodStart
		}
		if end.IsZero() && r.PeriodStart.IsZero() {
			end = in.PeriodEnd
		}
		row.start, row.end = start, end
		demographics := r.GivenName != "" && r.FamilyName != "" && !r.BirthDate.IsZero() && r.Gender != ""
		switch {
		case r.MemberIdentifier == "" && !demographics:
			row.reason = gateway.RosterReasonMissingFields
			continue
		case !end.IsZero() && end.Before(start),
			!r.BirthDate.IsZero() && r.BirthDate.After(t.today),
			len(r.MemberIdentifier) > 64 || strings.ContainsFunc(r.MemberIdentifier, unicode.IsControl),
			len(r.GivenName) > maxShortText || len(r.FamilyName) > maxShortText,
			!validGender(r.Gender):
			row.reason = gateway.RosterReasonInvalidValue
			continue
		}
		row.reason = gateway.RosterReasonNoMatch
		if r.MemberIdentifier != "" {
			identN = append(identN, row.n)
			idents = append(idents, r.MemberIdentifier)
			idGiven, idFamily, idGender = append(idGiven, r.GivenName), append(idFamily, r.FamilyName), append(idGender, string(r.Gender))
			idBirth = append(idBirth, argDate(r.BirthDate))
		}
		if demographics {
			demoN = append(demoN, row.n)
			dGiven, dFamily, dGender = append(dGiven, r.GivenName), append(dFamily, r.FamilyName), append(dGender, string(r.Gender))
			dBirth = append(dBirth, r.BirthDate.String())
		}
	}
	if len(identN) > 0 {
		var found []struct {
			N     int    `db:"n"`
			ID    string `db:"id"`
			Agree bool   `db:"agree"`
		}
		err := t.SelectContext(ctx, &found, matchByIdentifierSQL, pq.Array(identN), pq.Array(idents), pq.Array(idGiven),
			pq.Array(idFamily), pq.Array(dateStrings(idBirth)), pq.Array(idGender), sandbox)
		if err != nil {
			return nil, fmt.Errorf("match roster by identifier: %w", err)
		}
		for _, f := range found {
			r := rows[f.N-1]
			agree := f.Agree
			r.member, r.method, r.agree = f.ID, gateway.MatchIdentifier, &agree
		}
	}
	if len(demoN) > 0 {
		var found []struct {
			N       int    `db:"n"`
			ID      string `db:"id"`
			Matches int    `db:"matches"`
		}
		err := t.SelectContext(ctx, &found, matchByDemographicsSQL, pq.Array(demoN), pq.Array(dGiven), pq.Array(dFamily),
			pq.Array(dateStrings(dBirth)), pq.Array(dGender), sandbox)
		if err != nil {
			return nil, fmt.Errorf("match roster by demographics: %w", err)
		}
		for _, f := range found {
			// Several members with the same name, birth date and gender: no
			// match, and the reason does not say so.
			if r := rows[f.N-1]; r.member == "" && f.Matches == 1 {
				r.member, r.method = f.ID, gateway.MatchDemographics
			}
		}
	}
	seen := map[string]bool{}
	for _, r := range rows {
		switch {
		case r.member == "":
		case seen[r.member]:
			r.member, r.method, r.agree = "", "", nil
			r.reason = gateway.RosterReasonDuplicateRow
		default:
			seen[r.member] = true
			r.status, r.reason = gateway.RosterPending, ""
		}
		r.PeriodStart, r.PeriodEnd = r.start, r.end
	}
	return rows, nil
}

func validGender(g gateway.Gender) bool {
	switch g {
	case "", gateway.GenderMale, gateway.GenderFemale, gateway.GenderOther, gateway.GenderUnknown:
		return true
	}
	return false
}

// dateStrings turns dates-or-nil into a text array's elements ("" for none
// is not a date: NULL elements are passed as nil pointers).
func dateStrings(ds []any) []*string {
	out := make([]*string, len(ds))
	for i, d := range ds {
		switch v := d.(type) {
		case gateway.Date:
			s := v.String()
			out[i] = &s
		case string:
			out[i] = &v
		}
	}
	return out
}

// RosterDecision is the input of ConfirmRosterMatch.
type RosterDecision struct {
	RosterRowID string
	Confirm     bool   // false: reject the match
	Reason      string // why a match is rejected
}

const lockRosterRowSQL = `
SELECT r.id, r.matched_member_id, r.status, r.period_start, r.period_end, s.organization_id, s.environment
FROM roster_rows r JOIN roster_submissions s ON s.id = r.roster_id
WHERE r.id = $1
FOR UPDATE OF r`

const decideRosterRowSQL = `
UPDATE roster_rows SET status = $2, reason = $3, attribution_id = $4, decided_by = $5, decided_at = now()
WHERE id = $1`

// ConfirmRosterMatch records an operator's decision on a matched roster
// row: confirmed, the member is attributed to the roster's organization
// for the row's period (source ROSTER); rejected, with a reason. Returns
// FORBIDDEN for anyone but operators, NOT_FOUND for an unknown row,
// CONFLICT for a row that is not awaiting confirmation.
func (db *DB) ConfirmRosterMatch(ctx context.Context, p auth.Principal, in RosterDecision, m Mutation) (gateway.RosterRow, error) {
	in.Reason = strings.TrimSpace(in.Reason)
	if !in.Confirm && in.Reason == "" {
		return gateway.RosterRow{}, &gateway.Error{Code: gateway.CodeInvalid, Path: "input.reason",
			Message: "input.reason is required to reject a match"}
	}
	id, _, err := mutate(ctx, db, p, m, in, func(t *portalTx) (string, error) {
		if err := t.actor.Can(auth.RightConfirmRoster, ""); err != nil {
			return "", err
		}
		var row struct {
			ID              string                  `db:"id"`
			MatchedMemberID *string                 `db:"matched_member_id"`
			Status          gateway.RosterRowStatus `db:"status"`
			PeriodStart     gateway.Date            `db:"period_start"`
			PeriodEnd       gateway.Date            `db:"period_end"`
			OrgID           string                  `db:"organization_id"`
			Env             gateway.Environment     `db:"environment"`
		}
		if !isUUID(in.RosterRowID) {
			return "", gateway.ErrNotFound
		}
		if err := t.GetContext(ctx, &row, lockRosterRowSQL, in.RosterRowID); err != nil {
			return "", notFound(err)
		}
		if row.Status != gateway.RosterPending || row.MatchedMemberID == nil {
			return "", &gateway.Error{Code: gateway.CodeConflict, Message: "the row is not awaiting confirmation; it is " + string(row.Status)}
		}
		status, reason := gateway.RosterRejected, in.Reason
		var attribution *string
		if in.Confirm {
			status, reason = gateway.RosterConfirmed, ""
			var a gateway.Attribution
			err := t.GetContext(ctx, &a, insertAttributionSQL, uuid.New(), *row.MatchedMemberID, row.OrgID, nil,
				row.PeriodStart, argDate(row.PeriodEnd), gateway.SourceRoster, row.Env == gateway.EnvSandbox, t.recordedBy())
			if err != nil {
				return "", fmt.Errorf("insert attribution: %w", err)
			}
			attribution = &a.ID
		}
		_, err := t.ExecContext(ctx, decideRosterRowSQL, row.ID, status, reason, attribution, t.recordedBy())
		return row.ID, err
	})
	if err != nil {
		return gateway.RosterRow{}, err
	}
	var row gateway.RosterRow
	err = db.GetContext(ctx, &row, rosterRowByIDSQL, id)
	return row, notFound(err)
}

// Reads.

const rosterByIDSQL = `
SELECT id, organization_id, environment, submitted_by, submitted_at, period_start, period_end
FROM roster_submissions WHERE id = $1`

const rosterRowColumns = `r.id, r.roster_id, r.row_number, r.member_identifier, r.given_name, r.family_name,
  r.birth_date, nullif(r.gender, '') AS gender, r.period_start, r.period_end, r.matched_member_id,
  nullif(r.match_method, '') AS match_method, r.demographics_agree, r.status, r.reason, r.attribution_id,
  r.decided_by, r.decided_at`

const rosterRowsByRosterSQL = `SELECT ` + rosterRowColumns + ` FROM roster_rows r WHERE r.roster_id = $1 ORDER BY r.row_number`

const rosterRowByIDSQL = `SELECT ` + rosterRowColumns + ` FROM roster_rows r WHERE r.id = $1`

func (db *DB) rosterWithRows(ctx context.Context, id string) (gateway.Roster, error) {
	var out gateway.Roster
	if !isUUID(id) {
		return out, gateway.ErrNotFound
	}
	if err := db.GetContext(ctx, &out, rosterByIDSQL, id); err != nil {
		return out, notFound(err)
	}
	out.Rows = []gateway.RosterRow{}
	err := db.SelectContext(ctx, &out.Rows, rosterRowsByRosterSQL, id)
	return out, err
}

// RosterFor returns the roster if p may see it: its organization's people
// and clients, and operators. NOT_FOUND otherwise. The matched members are
// the operators' to see: for anyone else, MatchedMemberID,
// DemographicsAgree and the match method are cleared.
func (db *DB) RosterFor(ctx context.Context, p auth.Principal, id string) (gateway.Roster, error) {
	a, _, err := db.portalActor(ctx, p)
	if err != nil {
		return gateway.Roster{}, err
	}
	r, err := db.rosterWithRows(ctx, id)
	if err != nil {
		return r, err
	}
	if a.Can(auth.RightReadRoster, r.OrganizationID) != nil {
		return gateway.Roster{}, gateway.ErrNotFound
	}
	return RedactRoster(a, r), nil
}

// RedactRoster clears what only operators may see of a roster's matches.
func RedactRoster(a auth.Actor, r gateway.Roster) gateway.Roster {
	if a.IsOperator() {
		return r
	}
	rows := make([]gateway.RosterRow, len(r.Rows))
	for i, row := range r.Rows {
		row.MatchedMemberID, row.DemographicsAgree, row.MatchMethod, row.AttributionID = nil, nil, nil, nil
		rows[i] = row
	}
	r.Rows = rows
	return r
}
