package store

import (
	"context"

	"github.com/lib/pq"

	"example.com/gateway/auth"
	"example.com/gateway/gateway"
)

// ClinicalFilter narrows a member's clinical resources; zero fields do not
// filter.
type ClinicalFilter struct {
	From, To gateway.Date // date of service within [From, To]
}

// noDate orders resources without a date of service after all dated ones.
const noDate = `'0001-01-01'::date`

// clinicalByMembersSQL reads up to $15 resources of type $10 of each member
// in $9, latest date of service first (undated last), in one statement.
// Provider Access never sees undated resources: dosVisible cannot show
// that their date of service is on or after the floor.
var clinicalByMembersSQL = `
SELECT x.*
FROM members m
CROSS JOIN LATERAL (
  SELECT r.id, r.member_id, r.resource_type, r.source_id, r.code, r.code_system, r.display,
    r.status, r.date_of_service, r.resource, r.sensitive, r.last_updated
  FROM clinical_resources r
  WHERE r.member_id = m.id AND r.resource_type = $10::text
    AND ` + sensitiveVisible + ` AND ` + dosVisible("r.date_of_service") + `
    AND ($11::date IS NULL OR r.date_of_service >= $11::date)
    AND ($12::date IS NULL OR r.date_of_service <= $12::date)
    AND ($13::date IS NULL OR coalesce(r.date_of_service, ` + noDate + `) < $13::date
         OR (coalesce(r.date_of_service, ` + noDate + `) = $13::date AND r.id > $14::uuid))
  ORDER BY coalesce(r.date_of_service, ` + noDate + `) DESC, r.id
  LIMIT $15
) x
WHERE m.id = ANY($9::uuid[]) AND ` + memberVisible + `
ORDER BY x.member_id, coalesce(x.date_of_service, ` + noDate + `) DESC, x.id`

// ClinicalByMembers returns, for each of memberIDs that p may read, one
// page of its clinical resources of type typ matching f, in one statement.
// Returns BAD_USER_INPUT for a cursor that is not one of this list.
func (db *DB) ClinicalByMembers(ctx context.Context, p auth.Principal, memberIDs []string, typ gateway.ClinicalType, f ClinicalFilter, page Page) (map[string]*Paged[*gateway.ClinicalResource], error) {
	afterDate, afterID, err := parseDateIDCursor(page.After, "r")
	if err != nil {
		return nil, err
	}
	ids := uuids(memberIDs)
	args := scopeArgsWith(db.ScopeFor(p), pq.Array(ids), string(typ), argDate(f.From), argDate(f.To),
		afterDate, afterID, page.First+1)
	var rows []*gateway.ClinicalResource
	if err := db.selectPrepared(ctx, &rows, clinicalByMembersSQL, args...); err != nil {
		return nil, err
	}
	pages := pagesByMember(ids, rows, page,
		func(r *gateway.ClinicalResource) string { return r.MemberID },
		func(r *gateway.ClinicalResource) string {
			d := "0001-01-01"
			if !r.DateOfService.IsZero() {
				d = r.DateOfService.String()
			}
			return pageCursor("r", d, r.ID)
		})
	recordPages(ctx, ids, pages, string(typ))
	return pages, nil
}
