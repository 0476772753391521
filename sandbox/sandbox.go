// Package sandbox generates the synthetic data set of the sandbox: provider
// organizations, practitioners, and members with their coverage,
// attributions, opt-outs, claims, encounters, prior authorizations and
// clinical resources, plus the attributions a newly registered organization
// gets over those members (OrgAttributions).
//
// The package is pure: records out, no I/O, no SQL, no clock. The store loads
// what it produces (store.DB.ReplaceSandbox). Generation is deterministic:
// the same Options give the same records, IDs included, and each member is
// generated from its own sub-seed, so members can be produced one at a time,
// in any order and in parallel, without holding the data set in memory.
package sandbox

import (
	"encoding/binary"
	"fmt"
	"iter"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/google/uuid"

	"example.com/gateway/gateway"
)

// MaxMembers bounds Options.Members: member identifiers have seven digits
// for the member's number.
const MaxMembers = 10_000_000

// Options choose the data set.
type Options struct {
	Members int          // number of members, 0..MaxMembers
	Seed    int64        // any value; IDs and content derive from it
	Today   gateway.Date // attribution periods, opt-outs and dates of service are relative to it
}

// Generator produces the data set of its Options. It is safe for concurrent
// use: every method only reads it.
type Generator struct {
	opts          Options
	hash          uint64 // of the seed
	prefix        uint16 // of every ID
	tag           string // four seed-derived digits of member identifiers
	orgs          []gateway.Organization
	practitioners []gateway.Practitioner // practitionersPerOrg per organization, by slot

	// The code tables by sensitivity: drugs also by specialty (index 1).
	labs  [hiv + 1][]lab
	drugs [hiv + 1][2][]drug
}

// New returns the generator of opts. It returns an error when Today is zero
// or Members is out of range.
func New(opts Options) (*Generator, error) {
	switch {
	case opts.Today.IsZero():
		return nil, fmt.Errorf("sandbox: today is required")
	case opts.Members < 0 || opts.Members > MaxMembers:
		return nil, fmt.Errorf("sandbox: members must be between 0 and %d, got %d", MaxMembers, opts.Members)
	}
	h := splitmix(uint64(opts.Seed))
	g := &Generator{
		opts:   opts,
		hash:   h,
		prefix: uint16(splitmix(h) >> 48),
		tag:    fmt.Sprintf("%04d", h%10_000),
	}
	g.providers()
	for _, l := range labs {
		g.labs[l.sensitive] = append(g.labs[l.sensitive], l)
	}
	for _, d := range drugs {
		if d.sensitive != notSensitive || !d.specialty {
			g.drugs[d.sensitive][0] = append(g.drugs[d.sensitive][0], d)
		} else {
			g.drugs[d.sensitive][1] = append(g.drugs[d.sensitive][1], d)
		}
	}
	return g, nil
}

// Options returns the generator's options.
func (g *Generator) Options() Options { return g.opts }

// Organizations returns the synthetic provider organizations (in-network,
// status SANDBOX, Synthetic set). The slice is a copy.
func (g *Generator) Organizations() []gateway.Organization {
	return append([]gateway.Organization(nil), g.orgs...)
}

// Practitioners returns the synthetic practitioners, each belonging to one
// synthetic organization. The slice is a copy.
func (g *Generator) Practitioners() []gateway.Practitioner {
	out := make([]gateway.Practitioner, len(g.practitioners))
	for i, p := range g.practitioners {
		p.OrganizationID = ptr(*p.OrganizationID)
		out[i] = p
	}
	return out
}

// Members yields the records of every member, in order.
func (g *Generator) Members() iter.Seq[*MemberData] {
	return func(yield func(*MemberData) bool) {
		for i := range g.opts.Members {
			if !yield(g.Member(i)) {
				return
			}
		}
	}
}

// MemberData is one member with everything that belongs to them.
type MemberData struct {
	Member              gateway.Member
	Coverage            gateway.Coverage
	Attributions        []gateway.Attribution
	OptOuts             []OptOut // the opt-out history, oldest first
	Claims              []Claim
	Encounters          []Encounter
	PriorAuthorizations []PriorAuthorization
	Clinical            []ClinicalResource
}

// OptedOut reports whether the member has currently opted out of Provider
// Access sharing: their last opt-out event opted out.
func (d *MemberData) OptedOut() bool {
	return len(d.OptOuts) > 0 && d.OptOuts[len(d.OptOuts)-1].OptedOut
}

// OptOut is one opt-out (or opt-back-in) request of a member (42 CFR
// 422.121(a)(4)).
type OptOut struct {
	ID                 string
	MemberID           string
	OptedOut           bool // false: the member opted back in
	RequestedBy        gateway.OptOutRequester
	RepresentativeName string // set when RequestedBy is a personal representative
	EffectiveDate      gateway.Date
}

// Claim is a claim with its child rows and security labels.
type Claim struct {
	gateway.Claim
	SecurityLabels []string // HL7 v3 ActCode, set when Sensitive
	Lines          []gateway.ClaimLine
	Diagnoses      []gateway.ClaimDiagnosis
	Procedures     []gateway.ClaimProcedure
}

// Encounter is an encounter with its security labels.
type Encounter struct {
	gateway.Encounter
	SecurityLabels []string
}

// PriorAuthorization is a prior authorization with its items and security
// labels.
type PriorAuthorization struct {
	gateway.PriorAuthorization
	SecurityLabels []string
	Items          []gateway.PriorAuthorizationItem
}

// ClinicalResource is a clinical resource with its security labels.
type ClinicalResource struct {
	gateway.ClinicalResource
	SecurityLabels []string
}

// The kinds of random streams: each entity has its own, so adding data of
// one kind never shifts another.
const (
	streamMember uint64 = iota + 1
	streamOrganization
	streamPractitioner
)

// rng returns the random stream of entity i of a kind.
func (g *Generator) rng(kind uint64, i int) *rand.Rand {
	s1 := splitmix(uint64(g.opts.Seed) ^ kind<<56)
	return rand.New(rand.NewPCG(s1, splitmix(s1^uint64(i))))
}

// idKind tells the entities of one member apart in their IDs.
type idKind byte

const (
	idMember idKind = iota + 1
	idCoverage
	idAttribution
	idOptOut
	idClaim
	idEncounter
	idPriorAuthorization
	idClinical
	idOrganization
	idPractitioner
)

// id returns the ID of the j-th entity of a kind of member i (j < 255; -1
// when the member has one). IDs are UUIDs (version 8, RFC 9562) derived
// from the seed: 16 bits of the seed's hash, the member number, the kind
// and j, then 62 bits of a hash of all of them. Rows of one table are thus
// ordered by member, so a load appends to its indexes instead of touching
// random pages (and a member's rows sit together), while the IDs stay
// opaque and differ from seed to seed.
func (g *Generator) id(kind idKind, i, j int) string {
	var b uuid.UUID
	b[0], b[1] = byte(g.prefix>>8), byte(g.prefix)
	binary.BigEndian.PutUint32(b[2:6], uint32(i))
	b[6] = 0x80 | byte(kind)&0x0f // version 8
	b[7] = byte(j + 1)
	binary.BigEndian.PutUint64(b[8:], splitmix(g.hash^uint64(kind)<<48^uint64(i)<<8^uint64(j+1)))
	b[8] = 0x80 | b[8]&0x3f // RFC 9562 variant
	return b.String()
}

// memberKey returns the eleven digits that identify member i in identifiers:
// the seed's tag and the member number.
func (g *Generator) memberKey(i int) string {
	return g.tag + fmt.Sprintf("%07d", i)
}

// providers builds the synthetic organizations and their practitioners.
func (g *Generator) providers() {
	seen := map[string]bool{}
	for k, s := range organizationSeeds {
		r := g.rng(streamOrganization, k)
		typ := gateway.OrgProviderHealthSystem
		if s.aco {
			typ = gateway.OrgAccountableCareOrganization
		}
		g.orgs = append(g.orgs, gateway.Organization{
			ID:        g.id(idOrganization, 0, k),
			Name:      s.name,
			Type:      typ,
			NPI:       uniqueNPI(r, '2', seen),
			TIN:       digits(r, 9),
			Status:    gateway.OrgStatusSandbox,
			InNetwork: true,
			Synthetic: true,
			CreatedAt: g.opts.Today.Time(),
		})
	}
	for k := range g.orgs {
		for slot := range practitionersPerOrg {
			n := k*practitionersPerOrg + slot
			r := g.rng(streamPractitioner, n)
			specialty := pick(r, specialtiesBySlot[slot])
			g.practitioners = append(g.practitioners, gateway.Practitioner{
				ID:             g.id(idPractitioner, 0, n),
				NPI:            uniqueNPI(r, '1', seen),
				GivenName:      givenName(r, r.IntN(2) == 0),
				FamilyName:     pick(r, familyNames),
				SpecialtyCode:  specialty.code,
				SpecialtyName:  specialty.display,
				OrganizationID: ptr(g.orgs[k].ID),
				Sandbox:        true,
			})
		}
	}
}

// practitioner returns the practitioner in slot of organization org.
func (g *Generator) practitioner(org, slot int) *gateway.Practitioner {
	return &g.practitioners[org*practitionersPerOrg+slot]
}

// NPI returns a valid NPI: first digit, eight random digits and the Luhn
// check digit computed over "80840" and the first nine digits (45 CFR
// 162.406).
func npi(r *rand.Rand, first byte) string {
	b := make([]byte, 10)
	b[0] = first
	for i := 1; i < 9; i++ {
		b[i] = byte('0' + r.IntN(10))
	}
	b[9] = gateway.NPICheckDigit(string(b[:9]))
	return string(b)
}

func uniqueNPI(r *rand.Rand, first byte, seen map[string]bool) string {
	for {
		n := npi(r, first)
		if !seen[n] {
			seen[n] = true
			return n
		}
	}
}

// splitmix is SplitMix64's finalizer: a bijective mix of x.
func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

func pick[T any](r *rand.Rand, s []T) T { return s[r.IntN(len(s))] }

// between returns a uniform integer in [lo, hi].
func between(r *rand.Rand, lo, hi int) int {
	if hi <= lo {
		return lo
	}
	return lo + r.IntN(hi-lo+1)
}

// chance reports true with probability p.
func chance(r *rand.Rand, p float64) bool { return r.Float64() < p }

func digits(r *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('0' + r.IntN(10))
	}
	return string(b)
}

func givenName(r *rand.Rand, female bool) string {
	if female {
		return pick(r, givenNamesFemale)
	}
	return pick(r, givenNamesMale)
}

func ptr[T any](v T) *T { return &v }

func itoa(n int) string { return strconv.Itoa(n) }

// dateBetween returns a uniform date in [lo, hi] (lo when hi is before lo).
func dateBetween(r *rand.Rand, lo, hi gateway.Date) gateway.Date {
	days := int(hi.Time().Sub(lo.Time()).Hours() / 24)
	if days <= 0 {
		return lo
	}
	return lo.AddDays(r.IntN(days + 1))
}

// minDate and maxDate compare dates.
func minDate(a, b gateway.Date) gateway.Date {
	if b.Before(a) {
		return b
	}
	return a
}

func maxDate(a, b gateway.Date) gateway.Date {
	if b.After(a) {
		return b
	}
	return a
}

// at returns the instant hh:mm UTC on d.
func at(d gateway.Date, minutes int) time.Time {
	return d.Time().Add(time.Duration(minutes) * time.Minute)
}
