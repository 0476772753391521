package store

import (
	"context"
	"strconv"
	"time"

	"github.com/lib/pq"

	"example.com/gateway/auth"
	"example.com/gateway/gateway"
)

// EncounterFilter narrows a member's encounters; zero fields do not filter.
type EncounterFilter struct {
	// The encounter's period overlaps the dates [From, To]; either end may
	// be open (zero).
	From, To gateway.Date
}

// encountersByMembersSQL reads up to $15 encounters of each member in $9,
// newest first, in one statement (encounters_member index per member).
var encountersByMembersSQL = `
SELECT e.*
FROM members m
CROSS JOIN LATERAL (
  SELECT r.id, r.member_id, r.identifier, r.status, r.class, r.type_code, r.type_display,
    r.period_start, r.period_end, r.practitioner_id, r.organization_id, r.reason_code,
    r.reason_display, r.sensitive, r.last_updated
  FROM encounters r
  WHERE r.member_id = m.id AND ` + sensitiveVisible + ` AND ` + dosVisible("r.period_start") + `
    AND ($10::date IS NULL OR coalesce(r.period_end, r.period_start) >= $10::date)
    AND ($11::date IS NULL OR r.period_start < $11::date + 1)
    AND ($12::timestamptz IS NULL OR r.period_start < $12::timestamptz
         OR (r.period_start = $12::timestamptz AND r.id > $13::uuid))
  ORDER BY r.period_start DESC, r.id
  LIMIT $14
) e
WHERE m.id = ANY($9::uuid[]) AND ` + memberVisible + `
ORDER BY e.member_id, e.period_start DESC, e.id`

// EncountersByMembers returns, for each of memberIDs that p may read, one
// page of its encounters matching f (newest first), in one statement.
// Sensitive encounters and those before the date-of-service floor are
// withheld from Provider Access. Returns BAD_USER_INPUT for a cursor that
// is not one of this list.
func (db *DB) EncountersByMembers(ctx context.Context, p auth.Principal, memberIDs []string, f EncounterFilter, page Page) (map[string]*Paged[*gateway.Encounter], error) {
	var afterTime, afterID any
	if page.After != "" {
		parts, err := parseCursor(page.After, "e", 2)
		if err != nil {
			return nil, err
		}
		micros, err := strconv.ParseInt(parts[0], 10, 64)
		if err != nil {
			return nil, errBadCursor
		}
		if afterID, err = uuidCursorPart(parts[1]); err != nil {
			return nil, err
		}
		afterTime = time.UnixMicro(micros).UTC()
	}
	ids := uuids(memberIDs)
	args := scopeArgsWith(db.ScopeFor(p), pq.Array(ids), argDate(f.From), argDate(f.To),
		afterTime, afterID, page.First+1)
	var rows []*gateway.Encounter
	if err := db.selectPrepared(ctx, &rows, encountersByMembersSQL, args...); err != nil {
		return nil, err
	}
	pages := pagesByMember(ids, rows, page,
		func(e *gateway.Encounter) string { return e.MemberID },
		func(e *gateway.Encounter) string {
			return pageCursor("e", strconv.FormatInt(e.PeriodStart.UnixMicro(), 10), e.ID)
		})
	recordPages(ctx, ids, pages, "Encounter")
	return pages, nil
}
