package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"example.com/gateway/auth"
	"example.com/gateway/gateway"
)

// Provider Access opt-out (42 CFR 422.121(a)(4)): sharing is on by default;
// a member, or their personal representative, opts out or back in at any
// time. The current state is one row of provider_access_opt_outs, which
// every member read checks when it runs (memberVisible), exports queued
// earlier included; the history of requests is kept in opt_out_events.

// OptOutRequest is the input of SetProviderAccessOptOut.
type OptOutRequest struct {
	MemberID           string
	OptedOut           bool // false: opt back in
	RequestedBy        gateway.OptOutRequester
	RepresentativeName string // required when a personal representative asks
}

// Validate reports every problem of the input at once.
func (in *OptOutRequest) Validate() error {
	var fe gateway.FieldErrors
	in.RepresentativeName = strings.TrimSpace(in.RepresentativeName)
	switch in.RequestedBy {
	case gateway.RequestedByMember:
		if in.RepresentativeName != "" {
			fe.Add("input.representativeName", "is only given when a personal representative asks")
		}
	case gateway.RequestedByPersonalRepresentative:
		checkText(&fe, "input.representativeName", in.RepresentativeName, true, maxShortText)
	default:
		fe.Add("input.requestedBy", "must be MEMBER or PERSONAL_REPRESENTATIVE")
	}
	return fe.Err()
}

const lockMemberSQL = `SELECT id FROM members WHERE id = $1 FOR UPDATE`

const insertOptOutEventSQL = `
INSERT INTO opt_out_events (id, member_id, opted_out, requested_by, representative_name, effective_date, recorded_by)
VALUES ($1, $2, $3, $4, $5, $6, $7)`

const optOutSQL = `
INSERT INTO provider_access_opt_outs (member_id, since) VALUES ($1, now())
ON CONFLICT (member_id) DO NOTHING`

const optInSQL = `DELETE FROM provider_access_opt_outs WHERE member_id = $1`

// SetProviderAccessOptOut records a member's request to opt out of
// Provider Access sharing, or back in, effective at once: the member's data
// disappears from (or returns to) every provider read from the next
// request on, including exports already queued. Operators record it for
// any member; a Patient Access client for its own bound member (the member
// acting through their app). Returns NOT_FOUND for a member the caller may
// not see, FORBIDDEN for providers and people.
func (db *DB) SetProviderAccessOptOut(ctx context.Context, p auth.Principal, in OptOutRequest, m Mutation) (gateway.ProviderAccessOptOut, error) {
	if err := in.Validate(); err != nil {
		return gateway.ProviderAccessOptOut{}, err
	}
	id, _, err := mutate(ctx, db, p, m, in, func(t *portalTx) (string, error) {
		if err := t.actor.CanSetOptOut(in.MemberID); err != nil {
			return "", err
		}
		var id string
		if err := t.GetContext(ctx, &id, lockMemberSQL, argUUID(in.MemberID)); err != nil {
			return "", notFound(err)
		}
		_, err := t.ExecContext(ctx, insertOptOutEventSQL, uuid.New(), id, in.OptedOut, in.RequestedBy,
			in.RepresentativeName, t.today, t.recordedBy())
		if err != nil {
			return "", fmt.Errorf("record opt-out: %w", err)
		}
		if in.OptedOut {
			_, err = t.ExecContext(ctx, optOutSQL, id)
		} else {
			_, err = t.ExecContext(ctx, optInSQL, id)
		}
		return id, err
	})
	if err != nil {
		return gateway.ProviderAccessOptOut{}, err
	}
	return db.optOutState(ctx, id)
}

const optOutSinceSQL = `SELECT since FROM provider_access_opt_outs WHERE member_id = $1`

const optOutHistorySQL = `
SELECT id, member_id, opted_out, requested_by, representative_name, effective_date, recorded_by, recorded_at
FROM opt_out_events WHERE member_id = $1 ORDER BY recorded_at DESC, id DESC`

func (db *DB) optOutState(ctx context.Context, memberID string) (gateway.ProviderAccessOptOut, error) {
	st := gateway.ProviderAccessOptOut{MemberID: memberID, History: []gateway.OptOutEvent{}}
	var since time.Time
	switch err := notFound(db.GetContext(ctx, &since, optOutSinceSQL, memberID)); {
	case err == nil:
		st.OptedOut, st.Since = true, &since
	case !errors.Is(err, gateway.ErrNotFound):
		return st, err
	}
	err := db.SelectContext(ctx, &st.History, optOutHistorySQL, memberID)
	return st, err
}

const memberExistsSQL = `SELECT id FROM members WHERE id = $1`

// OptOutFor returns a member's opt-out state and history to those who may
// change it (operators, the member's own Patient Access client); NOT_FOUND
// for everyone else.
func (db *DB) OptOutFor(ctx context.Context, p auth.Principal, memberID string) (gateway.ProviderAccessOptOut, error) {
	a, _, err := db.portalActor(ctx, p)
	if err != nil {
		return gateway.ProviderAccessOptOut{}, err
	}
	if a.CanSetOptOut(memberID) != nil || !isUUID(memberID) {
		return gateway.ProviderAccessOptOut{}, gateway.ErrNotFound
	}
	var id string
	if err := db.GetContext(ctx, &id, memberExistsSQL, memberID); err != nil {
		return gateway.ProviderAccessOptOut{}, notFound(err)
	}
	return db.optOutState(ctx, id)
}
