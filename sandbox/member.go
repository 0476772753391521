package sandbox

import (
	"math/rand/v2"

	"example.com/gateway/gateway"
)

// floorDOS is the earliest date of service Provider Access shares (DESIGN.md
// §1 rule 4); about 5% of claims fall before it, to exercise the rule.
func floorDOS() gateway.Date { return gateway.NewDate(2016, 1, 1) }

// earliestDOS is the earliest date of service generated.
func earliestDOS() gateway.Date { return gateway.NewDate(2013, 1, 1) }

// upcomingDays is the default window of UPCOMING attributions
// (ATTRIBUTION_UPCOMING_DAYS); the generated periods keep clear of its edge.
const upcomingDays = 30

// builder generates the records of one member from the member's own random
// stream.
type builder struct {
	g     *Generator
	r     *rand.Rand
	i     int
	key   string // the member's eleven identifier digits
	today gateway.Date
	d     *MemberData

	birth    gateway.Date
	first    gateway.Date // earliest date of service from 2016 on (not before birth)
	home     int          // index of the organization most of the member's care comes from
	orgs     []int        // organizations the member is attributed to
	coverage *string
	amounts  []gateway.Money // storage of the member's amounts
}

// amount returns a pointer to m, allocated with the member's other amounts.
func (b *builder) amount(m gateway.Money) *gateway.Money {
	if len(b.amounts) == cap(b.amounts) {
		b.amounts = make([]gateway.Money, 0, 256)
	}
	b.amounts = append(b.amounts, m)
	return &b.amounts[len(b.amounts)-1]
}

// Member returns the records of member i, 0 ≤ i < MaxMembers (from
// Options.Members on, members outside the data set). Member(i) depends only
// on the seed, Today and i, not on Options.Members.
func (g *Generator) Member(i int) *MemberData {
	b := &builder{g: g, r: g.rng(streamMember, i), i: i, key: g.memberKey(i), today: g.opts.Today, d: &MemberData{}}
	b.member()
	b.attributions()
	b.optOuts()
	b.claims()
	b.encounters()
	b.priorAuthorizations()
	b.clinical()
	return b.d
}

// dos returns a date of service: from 2016 on, or, with probability pre,
// in 2013–2015 (when the member was born by then).
func (b *builder) dos(pre float64, lastDaysAgo int) gateway.Date {
	last := b.today.AddDays(-lastDaysAgo)
	if chance(b.r, pre) && b.birth.Before(floorDOS().AddDays(-365)) {
		return dateBetween(b.r, maxDate(earliestDOS(), b.birth), floorDOS().AddDays(-1))
	}
	return dateBetween(b.r, minDate(b.first, last), last)
}

func (b *builder) member() {
	r := b.r
	m := &b.d.Member
	m.ID = b.g.id(idMember, b.i, -1)
	m.Identifier = "SBX" + b.key
	switch u := r.IntN(100); {
	case u < 49:
		m.Gender = gateway.GenderFemale
	case u < 98:
		m.Gender = gateway.GenderMale
	case u < 99:
		m.Gender = gateway.GenderOther
	default:
		m.Gender = gateway.GenderUnknown
	}
	female := m.Gender == gateway.GenderFemale || (m.Gender != gateway.GenderMale && r.IntN(2) == 0)
	m.GivenName = givenName(r, female)
	m.FamilyName = pick(r, familyNames)
	b.birth = dateBetween(r, b.today.AddDate(-92, 0, 0), b.today.AddDate(-1, 0, 0))
	m.BirthDate = b.birth
	c := pick(r, cities)
	m.AddressLine = itoa(between(r, 100, 9899)) + " " + pick(r, streetNames)
	if chance(r, 0.15) {
		m.AddressLine += " Apt " + itoa(between(r, 1, 40))
	}
	m.City, m.State, m.PostalCode = c.name, c.state, c.zip
	m.Phone = c.areaCode + "-555-01" + digits(r, 2) // 555-0100..0199: reserved for fiction
	m.Sandbox = true
	b.first = maxDate(floorDOS(), b.birth)

	plan := pick(r, plans)
	b.d.Coverage = gateway.Coverage{
		ID:           b.g.id(idCoverage, b.i, -1),
		MemberID:     m.ID,
		Identifier:   "SBXCOV" + b.key,
		Status:       "active",
		TypeCode:     plan.typeCode,
		TypeDisplay:  plan.typeDisplay,
		PlanName:     plan.name,
		GroupNumber:  "GRP" + digits(r, 6),
		Relationship: "self",
		PayerName:    payerName,
		PeriodStart:  maxDate(earliestDOS(), b.birth),
	}
	b.coverage = &b.d.Coverage.ID
}

// attributions attributes the member to one or two synthetic organizations:
// about 70% ACTIVE, 10% UPCOMING, 5% starting after the upcoming window and
// 15% ended; about a third name one of the organization's practitioners.
func (b *builder) attributions() {
	r := b.r
	n := 1
	if chance(r, 0.4) {
		n = 2
	}
	for k := range n {
		org := r.IntN(len(b.g.orgs))
		for k == 1 && org == b.orgs[0] {
			org = r.IntN(len(b.g.orgs))
		}
		b.orgs = append(b.orgs, org)
		start, end := attributionPeriod(r, b.today, rollAttributionState(r))
		a := gateway.Attribution{
			ID:             b.g.id(idAttribution, b.i, k),
			MemberID:       b.d.Member.ID,
			OrganizationID: b.g.orgs[org].ID,
			PeriodStart:    start,
			PeriodEnd:      end,
			Source:         gateway.SourceSandbox,
			Sandbox:        true,
			CreatedAt:      minDate(start, b.today).Time(),
		}
		if chance(r, 0.35) {
			a.PractitionerID = ptr(b.g.practitioner(org, slotPrimary).ID)
		}
		b.d.Attributions = append(b.d.Attributions, a)
	}
	b.home = b.orgs[0]
	if chance(r, 0.15) {
		b.home = r.IntN(len(b.g.orgs)) // some care happens outside the attributed organization
	}
}

// rollAttributionState draws a state with the data set's mix.
func rollAttributionState(r *rand.Rand) gateway.AttributionStatus {
	switch u := r.IntN(100); {
	case u < 70:
		return gateway.AttributionActive
	case u < 80:
		return gateway.AttributionUpcoming
	case u < 85:
		return gateway.AttributionFuture
	default:
		return gateway.AttributionEnded
	}
}

// attributionPeriod returns a period in state relative to today; a zero end
// is open-ended. Periods keep a day clear of the window edges so that the
// state does not depend on whether an edge is inclusive.
func attributionPeriod(r *rand.Rand, today gateway.Date, state gateway.AttributionStatus) (start, end gateway.Date) {
	switch state {
	case gateway.AttributionUpcoming:
		start = today.AddDays(between(r, 1, upcomingDays-1))
		if chance(r, 0.5) {
			end = start.AddDays(between(r, 180, 730))
		}
	case gateway.AttributionFuture:
		start = today.AddDays(between(r, upcomingDays+1, 180))
		if chance(r, 0.5) {
			end = start.AddDays(between(r, 180, 730))
		}
	case gateway.AttributionEnded:
		end = today.AddDays(-between(r, 1, 540))
		start = end.AddDays(-between(r, 90, 1100))
	default: // ACTIVE
		start = today.AddDays(-between(r, 0, 1400))
		if chance(r, 0.5) {
			end = today.AddDays(between(r, 1, 540))
		}
	}
	return start, end
}

// optOuts: about 5% of members have opted out (some after an earlier
// opt-out and opt-in), and about 1% opted out and later back in.
func (b *builder) optOuts() {
	r := b.r
	var events []bool // opted out?
	switch u := r.IntN(1000); {
	case u < 40:
		events = []bool{true}
	case u < 50:
		events = []bool{true, false, true}
	case u < 60:
		events = []bool{true, false}
	default:
		return
	}
	date := b.today.AddDays(-between(r, 200, 900))
	for k, out := range events {
		o := OptOut{
			ID:            b.g.id(idOptOut, b.i, k),
			MemberID:      b.d.Member.ID,
			OptedOut:      out,
			RequestedBy:   gateway.RequestedByMember,
			EffectiveDate: date,
		}
		if chance(r, 0.25) {
			o.RequestedBy = gateway.RequestedByPersonalRepresentative
			o.RepresentativeName = givenName(r, r.IntN(2) == 0) + " " + pick(r, familyNames) +
				" (" + pick(r, representativeRelations) + ")"
		}
		b.d.OptOuts = append(b.d.OptOuts, o)
		date = minDate(date.AddDays(between(r, 20, 150)), b.today.AddDays(-1))
	}
}

// practitioner returns the member's provider in slot: usually of the home
// organization.
func (b *builder) practitioner(org, slot int) (orgID, practitionerID *string) {
	return ptr(b.g.orgs[org].ID), ptr(b.g.practitioner(org, slot).ID)
}

// careOrg returns the organization of one episode of care: the home
// organization mostly, another attributed one or any other sometimes.
func (b *builder) careOrg() int {
	switch u := b.r.IntN(100); {
	case u < 75:
		return b.home
	case u < 90:
		return b.orgs[len(b.orgs)-1]
	default:
		return b.r.IntN(len(b.g.orgs))
	}
}

// sensitivity draws whether a record is sensitive (probability p) and of
// which category.
func (b *builder) sensitivity(p float64) sensitivity {
	if !chance(b.r, p) {
		return notSensitive
	}
	switch u := b.r.IntN(10); {
	case u < 5:
		return substanceUse
	case u < 9:
		return mentalHealth
	default:
		return hiv
	}
}
