package sandbox

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"math/rand/v2"
	"slices"

	"github.com/google/uuid"

	"example.com/gateway/gateway"
)

// OrgAttributionCount is how many sandbox members a registered organization
// is attributed to (fewer when the sandbox has fewer members).
const OrgAttributionCount = 40

// orgOptedOutCount is how many of those picks are members who opted out.
const orgOptedOutCount = 3

// MemberRef is a sandbox member as OrgAttributions sees it.
type MemberRef struct {
	ID       string
	OptedOut bool // the member has opted out of Provider Access sharing
}

// OrgAttributions returns the sandbox attributions of a registered
// organization (DESIGN.md §2 step 2), so that its sandbox clients have
// something to read at once. From members (the sandbox's members, in any
// order) it picks OrgAttributionCount: a few of them opted out, the others
// not; the opted-out picks are ACTIVE (they would be visible but for the
// opt-out), and the rest mix ACTIVE (about 70%), UPCOMING, starting beyond
// the upcoming window and ended, with at least one of each when there are
// enough members. The picks depend only on orgID and the member IDs, so the
// same organization gets the same attributions over the same members,
// whatever the order of members; another organization gets others.
// Attributions are organization-level, source SANDBOX, Sandbox set, and
// their IDs derive from orgID and the member ID.
func OrgAttributions(orgID string, today gateway.Date, members []MemberRef) []gateway.Attribution {
	type scored struct {
		MemberRef
		score uint64
	}
	var sharing, optedOut []scored
	for _, m := range members {
		s := scored{m, orgScore(orgID, m.ID)}
		if m.OptedOut {
			optedOut = append(optedOut, s)
		} else {
			sharing = append(sharing, s)
		}
	}
	byScore := func(a, b scored) int {
		return cmp.Or(cmp.Compare(a.score, b.score), cmp.Compare(a.ID, b.ID))
	}
	slices.SortFunc(sharing, byScore)
	slices.SortFunc(optedOut, byScore)
	nOut := min(orgOptedOutCount, len(optedOut))
	nShare := min(OrgAttributionCount-nOut, len(sharing))
	r := rand.New(rand.NewPCG(orgScore(orgID, "states"), orgScore(orgID, "periods")))

	ns := uuid.NewSHA1(uuid.NameSpaceURL, []byte("urn:example:gateway:sandbox:org-attribution"))
	out := make([]gateway.Attribution, 0, nShare+nOut)
	add := func(memberID string, state gateway.AttributionStatus) {
		start, end := attributionPeriod(r, today, state)
		out = append(out, gateway.Attribution{
			ID:             uuid.NewSHA1(ns, []byte(orgID+"/"+memberID)).String(),
			MemberID:       memberID,
			OrganizationID: orgID,
			PeriodStart:    start,
			PeriodEnd:      end,
			Source:         gateway.SourceSandbox,
			Sandbox:        true,
			CreatedAt:      today.Time(),
		})
	}
	// The first picks cover every state; the rest follow the data set's mix.
	fixed := []gateway.AttributionStatus{gateway.AttributionUpcoming, gateway.AttributionEnded, gateway.AttributionFuture}
	for k, m := range sharing[:nShare] {
		state := gateway.AttributionActive
		switch {
		case k == 0:
			// ACTIVE first, so that even a tiny sandbox shows one member.
		case k <= len(fixed):
			state = fixed[k-1]
		default:
			state = rollAttributionState(r)
		}
		add(m.ID, state)
	}
	for _, m := range optedOut[:nOut] {
		add(m.ID, gateway.AttributionActive)
	}
	return out
}

// orgScore is a stable pseudo-random rank of name for an organization.
func orgScore(orgID, name string) uint64 {
	h := sha256.Sum256([]byte(orgID + "\x00" + name))
	return binary.BigEndian.Uint64(h[:8])
}
