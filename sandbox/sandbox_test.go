package sandbox_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"example.com/gateway/gateway"
	"example.com/gateway/sandbox"
)

var today = gateway.NewDate(2026, 3, 1)

func generate(t *testing.T, members int, seed int64) *sandbox.Generator {
	t.Helper()
	g, err := sandbox.New(sandbox.Options{Members: members, Seed: seed, Today: today})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestNewRejectsBadOptions(t *testing.T) {
	t.Parallel()
	for _, opts := range []sandbox.Options{
		{Members: 10},               // no today
		{Members: -1, Today: today}, // negative
		{Members: sandbox.MaxMembers + 1, Today: today}, // too many
	} {
		if _, err := sandbox.New(opts); err == nil {
			t.Errorf("New(%+v) = nil error, want one", opts)
		}
	}
}

func TestDeterministic(t *testing.T) {
	t.Parallel()
	a, b, c := generate(t, 200, 7), generate(t, 200, 7), generate(t, 200, 8)
	if !reflect.DeepEqual(a.Organizations(), b.Organizations()) || !reflect.DeepEqual(a.Practitioners(), b.Practitioners()) {
		t.Error("same seed: providers differ")
	}
	if reflect.DeepEqual(a.Organizations(), c.Organizations()) || reflect.DeepEqual(a.Practitioners(), c.Practitioners()) {
		t.Error("another seed: same providers")
	}
	for i := range 200 {
		da, db, dc := a.Member(i), b.Member(i), c.Member(i)
		if !reflect.DeepEqual(da, db) {
			t.Fatalf("same seed: member %d differs", i)
		}
		if reflect.DeepEqual(da, dc) || da.Member.ID == dc.Member.ID || da.Member.Identifier == dc.Member.Identifier {
			t.Fatalf("another seed: member %d is the same", i)
		}
	}

	// Members do not depend on how many there are, nor on the order they
	// are generated in.
	small, large := generate(t, 10, 7), generate(t, 500, 7)
	if !reflect.DeepEqual(small.Member(3), large.Member(3)) {
		t.Error("member 3 differs between a data set of 10 and one of 500")
	}
	late := large.Member(400)
	large.Member(0)
	if !reflect.DeepEqual(late, large.Member(400)) {
		t.Error("member 400 differs when generated again")
	}
}

func TestIDsAndIdentifiersUnique(t *testing.T) {
	t.Parallel()
	g := generate(t, 1000, 3)
	ids := map[string]string{}
	identifiers := map[string]bool{}
	seen := func(kind, id, identifier string) {
		t.Helper()
		if prev, ok := ids[id]; ok {
			t.Fatalf("%s id %s already used by a %s", kind, id, prev)
		}
		ids[id] = kind
		if identifier != "" {
			if identifiers[identifier] {
				t.Fatalf("%s identifier %s used twice", kind, identifier)
			}
			identifiers[identifier] = true
		}
	}
	for _, o := range g.Organizations() {
		seen("organization", o.ID, o.NPI)
	}
	for _, p := range g.Practitioners() {
		seen("practitioner", p.ID, p.NPI)
	}
	for d := range g.Members() {
		seen("member", d.Member.ID, d.Member.Identifier)
		if !strings.HasPrefix(d.Member.Identifier, "SBX") {
			t.Fatalf("member identifier %q lacks the SBX prefix", d.Member.Identifier)
		}
		seen("coverage", d.Coverage.ID, d.Coverage.Identifier)
		for _, a := range d.Attributions {
			seen("attribution", a.ID, "")
		}
		for _, o := range d.OptOuts {
			seen("opt-out", o.ID, "")
		}
		for _, c := range d.Claims {
			seen("claim", c.ID, c.Identifier)
		}
		for _, e := range d.Encounters {
			seen("encounter", e.ID, e.Identifier)
		}
		for _, p := range d.PriorAuthorizations {
			seen("prior authorization", p.ID, p.Identifier)
		}
		for _, c := range d.Clinical {
			seen("clinical resource", c.ID, "")
		}
	}
}

// npiValid is the NPI check: Luhn over "80840" and the ten digits.
func npiValid(npi string) bool {
	if len(npi) != 10 {
		return false
	}
	s := "80840" + npi
	sum := 0
	for i := range len(s) {
		d := int(s[len(s)-1-i] - '0')
		if d < 0 || d > 9 {
			return false
		}
		if i%2 == 1 {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return sum%10 == 0
}

func TestNPIs(t *testing.T) {
	t.Parallel()
	if !npiValid("1234567893") || npiValid("1234567890") {
		t.Fatal("npiValid disagrees with the CMS example 1234567893")
	}
	for _, seed := range []int64{0, 1, -5, 1 << 40} {
		g := generate(t, 0, seed)
		orgs := g.Organizations()
		if len(orgs) < 8 {
			t.Fatalf("%d organizations, want at least 8", len(orgs))
		}
		types := map[gateway.OrganizationType]bool{}
		for _, o := range orgs {
			if !npiValid(o.NPI) {
				t.Errorf("organization %s: invalid NPI %s", o.Name, o.NPI)
			}
			if len(o.TIN) != 9 || strings.Trim(o.TIN, "0123456789") != "" {
				t.Errorf("organization %s: TIN %q is not 9 digits", o.Name, o.TIN)
			}
			if !o.Synthetic || !o.InNetwork || o.Status != gateway.OrgStatusSandbox {
				t.Errorf("organization %s: %+v, want synthetic, in-network, SANDBOX", o.Name, o)
			}
			types[o.Type] = true
		}
		if !types[gateway.OrgProviderHealthSystem] || !types[gateway.OrgAccountableCareOrganization] {
			t.Errorf("organization types %v, want health systems and ACOs", types)
		}
		perOrg := map[string]int{}
		for _, p := range g.Practitioners() {
			if !npiValid(p.NPI) {
				t.Errorf("practitioner %s: invalid NPI %s", p.FamilyName, p.NPI)
			}
			if !p.Sandbox || p.OrganizationID == nil {
				t.Errorf("practitioner %s: %+v, want sandbox with an organization", p.FamilyName, p)
			} else {
				perOrg[*p.OrganizationID]++
			}
		}
		if len(perOrg) != len(orgs) {
			t.Errorf("practitioners belong to %d organizations, want all %d", len(perOrg), len(orgs))
		}
	}
}

// attributionState is the state of a relative to today (DESIGN.md §1 rule 3).
func attributionState(a gateway.Attribution) gateway.AttributionStatus {
	switch {
	case !a.PeriodEnd.IsZero() && a.PeriodEnd.Before(today):
		return gateway.AttributionEnded
	case !a.PeriodStart.After(today):
		return gateway.AttributionActive
	case !a.PeriodStart.After(today.AddDays(30)):
		return gateway.AttributionUpcoming
	}
	return gateway.AttributionFuture
}

func TestDistribution(t *testing.T) {
	t.Parallel()
	const members = 2000
	g := generate(t, members, 11)
	count := map[string]int{}
	orgs := map[string]bool{}
	for _, o := range g.Organizations() {
		orgs[o.ID] = true
	}
	practitioners := map[string]bool{}
	for _, p := range g.Practitioners() {
		practitioners[p.ID] = true
	}
	floor := gateway.NewDate(2016, 1, 1)
	for d := range g.Members() {
		m := d.Member
		if !m.Sandbox || m.GivenName == "" || m.FamilyName == "" || m.BirthDate.IsZero() || m.City == "" || len(m.PostalCode) != 5 {
			t.Fatalf("member %+v: incomplete", m)
		}
		if d.Coverage.MemberID != m.ID {
			t.Fatalf("coverage of member %s names member %s", m.ID, d.Coverage.MemberID)
		}
		if n := len(d.Attributions); n < 1 || n > 2 {
			t.Fatalf("member %s has %d attributions, want 1–2", m.ID, n)
		}
		for _, a := range d.Attributions {
			if !orgs[a.OrganizationID] || a.Source != gateway.SourceSandbox || !a.Sandbox || a.MemberID != m.ID {
				t.Fatalf("attribution %+v: want a SANDBOX attribution of the member to a synthetic organization", a)
			}
			if a.PractitionerID != nil {
				count["practitioner-level"]++
			}
			count["attribution "+string(attributionState(a))]++
		}
		if d.OptedOut() {
			count["opted out"]++
			last := d.OptOuts[len(d.OptOuts)-1]
			if last.RequestedBy == gateway.RequestedByPersonalRepresentative {
				count["opted out by a representative"]++
			}
		} else if len(d.OptOuts) > 0 {
			count["opted back in"]++
		}
		for _, o := range d.OptOuts {
			if o.RequestedBy == gateway.RequestedByPersonalRepresentative && o.RepresentativeName == "" {
				t.Fatalf("opt-out %+v: a representative without a name", o)
			}
			if !o.EffectiveDate.Before(today) {
				t.Fatalf("opt-out %+v: effective from today or later", o)
			}
		}
		for _, c := range d.Claims {
			checkClaim(t, c, orgs, practitioners)
			count["claim "+string(c.Type)]++
			count["claims"]++
			count["lines"] += len(c.Lines)
			if c.Sensitive {
				count["sensitive claims"]++
			}
			if c.ServiceStart.Before(floor) {
				count["claims before 2016"]++
			}
		}
		for _, e := range d.Encounters {
			count["encounters"]++
			if e.Sensitive {
				count["sensitive encounters"]++
			}
			if e.PractitionerID == nil || !practitioners[*e.PractitionerID] || e.OrganizationID == nil || !orgs[*e.OrganizationID] {
				t.Fatalf("encounter %s: provider references %v %v", e.ID, e.PractitionerID, e.OrganizationID)
			}
		}
		for _, p := range d.PriorAuthorizations {
			checkPriorAuthorization(t, p)
			count["pa "+string(p.Status)]++
			count["pas"]++
			if p.Drug {
				count["drug pas"]++
			}
			if p.Sensitive {
				count["sensitive pas"]++
			}
		}
		for _, c := range d.Clinical {
			checkClinical(t, c, m.ID)
			count["clinical "+string(c.ResourceType)]++
			count["clinical"]++
			if c.Sensitive {
				count["sensitive clinical"]++
			}
		}
	}
	t.Logf("%d members: %v", members, count)

	atLeast := func(key string, n int) {
		t.Helper()
		if count[key] < n {
			t.Errorf("%s: %d, want at least %d", key, count[key], n)
		}
	}
	for _, typ := range []gateway.ClaimType{gateway.ClaimInpatient, gateway.ClaimOutpatient, gateway.ClaimProfessional, gateway.ClaimOral, gateway.ClaimPharmacy} {
		atLeast("claim "+string(typ), 100)
	}
	for _, s := range []gateway.PriorAuthorizationStatus{gateway.PAPending, gateway.PAApproved, gateway.PAPartiallyApproved, gateway.PADenied, gateway.PACancelled} {
		atLeast("pa "+string(s), 50)
	}
	for _, typ := range []gateway.ClinicalType{gateway.ClinicalCondition, gateway.ClinicalObservation, gateway.ClinicalMedication, gateway.ClinicalImmunization, gateway.ClinicalAllergy, gateway.ClinicalProcedure} {
		atLeast("clinical "+string(typ), 200)
	}
	for _, s := range []gateway.AttributionStatus{gateway.AttributionActive, gateway.AttributionUpcoming, gateway.AttributionFuture, gateway.AttributionEnded} {
		atLeast("attribution "+string(s), 50)
	}
	atLeast("drug pas", 100)
	atLeast("practitioner-level", 200)
	atLeast("opted back in", 5)
	atLeast("opted out by a representative", 5)

	// The mixes asked for, within sampling noise.
	share := func(key, of string, lo, hi float64) {
		t.Helper()
		f := float64(count[key]) / float64(count[of])
		if f < lo || f > hi {
			t.Errorf("%s: %.3f of %s, want %.2f–%.2f", key, f, of, lo, hi)
		}
	}
	count["members"] = members
	attributions := 0
	for k, v := range count {
		if strings.HasPrefix(k, "attribution ") {
			attributions += v
		}
	}
	count["attributions"] = attributions
	share("claims", "members", 9, 11)
	share("lines", "claims", 2.4, 3.4)
	share("encounters", "members", 1.6, 2.4)
	share("pas", "members", 0.9, 1.5)
	share("opted out", "members", 0.03, 0.07)
	share("attribution ACTIVE", "attributions", 0.65, 0.75)
	share("attribution UPCOMING", "attributions", 0.07, 0.13)
	share("attribution FUTURE", "attributions", 0.03, 0.07)
	share("attribution ENDED", "attributions", 0.12, 0.18)
	share("sensitive claims", "claims", 0.03, 0.07)
	share("claims before 2016", "claims", 0.02, 0.07)
	share("sensitive encounters", "encounters", 0.02, 0.08)
	share("sensitive pas", "pas", 0.02, 0.08)
	share("sensitive clinical", "clinical", 0.02, 0.08)
}

func checkClaim(t *testing.T, c sandbox.Claim, orgs, practitioners map[string]bool) {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("claim %s (%s): %s", c.Identifier, c.Type, fmt.Sprintf(format, args...))
	}
	if len(c.Lines) == 0 || len(c.Diagnoses) < 1 || len(c.Diagnoses) > 3 {
		fail("%d lines, %d diagnoses", len(c.Lines), len(c.Diagnoses))
	}
	institutional := c.Type == gateway.ClaimInpatient || c.Type == gateway.ClaimOutpatient
	if institutional != (len(c.Procedures) > 0) {
		fail("%d procedures", len(c.Procedures))
	}
	if c.BillingOrganizationID == nil || !orgs[*c.BillingOrganizationID] ||
		c.RenderingPractitionerID == nil || !practitioners[*c.RenderingPractitionerID] || c.CoverageID == nil {
		fail("references %v %v %v", c.BillingOrganizationID, c.RenderingPractitionerID, c.CoverageID)
	}
	if c.Sensitive != (len(c.SecurityLabels) > 0) {
		fail("sensitive %v with labels %v", c.Sensitive, c.SecurityLabels)
	}
	if c.ServiceEnd.Before(c.ServiceStart) || c.Created.Before(c.ServiceEnd) || c.Processed.Before(c.Created) ||
		c.PaymentDate.Before(c.Processed) || c.PaymentDate.After(today) {
		fail("dates %s %s %s %s %s", c.ServiceStart, c.ServiceEnd, c.Created, c.Processed, c.PaymentDate)
	}
	amounts := []*gateway.Money{c.TotalSubmitted, c.TotalAllowed, c.TotalPaid, c.PaymentAmount, c.PaymentAdjust,
		c.Copay, c.Coinsurance, c.Deductible, c.NonCovered, c.MemberLiability}
	if slices.Contains(amounts, nil) {
		fail("a monetary field is missing")
	}
	var submitted, allowed, paid, liability gateway.Money
	for i, l := range c.Lines {
		if l.Sequence != i+1 || l.ClaimID != c.ID || l.ProductCode == "" || l.ProductSystem == "" {
			fail("line %+v", l)
		}
		for _, m := range []*gateway.Money{l.Submitted, l.Allowed, l.Paid, l.Copay, l.Coinsurance, l.Deductible, l.MemberLiability} {
			if m == nil || *m < 0 {
				fail("line %d: amount missing or negative", l.Sequence)
			}
		}
		if !(*l.Submitted >= *l.Allowed && *l.Allowed >= *l.Paid) {
			fail("line %d: submitted %s, allowed %s, paid %s", l.Sequence, l.Submitted, l.Allowed, l.Paid)
		}
		if *l.Allowed != *l.Paid+*l.Copay+*l.Coinsurance+*l.Deductible || *l.MemberLiability != *l.Copay+*l.Coinsurance+*l.Deductible {
			fail("line %d: cost sharing does not add up", l.Sequence)
		}
		if l.DenialReason != "" && *l.Allowed != 0 {
			fail("line %d: denied but allowed %s", l.Sequence, l.Allowed)
		}
		submitted += *l.Submitted
		allowed += *l.Allowed
		paid += *l.Paid
		liability += *l.MemberLiability
	}
	if *c.TotalSubmitted != submitted || *c.TotalAllowed != allowed || *c.TotalPaid != paid || *c.MemberLiability != liability {
		fail("totals do not match the lines")
	}
	if *c.PaymentAmount != *c.TotalPaid+*c.PaymentAdjust || *c.PaymentAdjust > 0 || *c.PaymentAmount < 0 {
		fail("payment %s, adjustment %s, paid %s", c.PaymentAmount, c.PaymentAdjust, c.TotalPaid)
	}
}

func checkPriorAuthorization(t *testing.T, p sandbox.PriorAuthorization) {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("prior authorization %s (%s): %s", p.Identifier, p.Status, fmt.Sprintf(format, args...))
	}
	if n := len(p.Items); n < 1 || n > 3 {
		fail("%d items", n)
	}
	if (p.Status == gateway.PADenied) != (p.DenialReason != "" && p.DenialReasonCode != "") {
		fail("denial reason %q %q", p.DenialReasonCode, p.DenialReason)
	}
	decided := p.Status != gateway.PAPending && p.Status != gateway.PACancelled
	if decided == p.DecidedOn.IsZero() || p.RequestedOn.After(today) || p.LastStatusChange.IsZero() {
		fail("requested %s, decided %s", p.RequestedOn, p.DecidedOn)
	}
	approved := p.Status == gateway.PAApproved || p.Status == gateway.PAPartiallyApproved
	if approved == p.AuthorizedStart.IsZero() {
		fail("authorized from %s", p.AuthorizedStart)
	}
	cut := false
	for _, it := range p.Items {
		if it.Sequence < 1 || it.ProductCode == "" || it.Submitted == nil {
			fail("item %+v", it)
		}
		if p.Drug != (it.ProductSystem == "http://hl7.org/fhir/sid/ndc") {
			fail("drug %v with item system %s", p.Drug, it.ProductSystem)
		}
		if !(it.QuantityRequested >= it.QuantityApproved && it.QuantityApproved >= it.QuantityUsed && it.QuantityUsed >= 0) {
			fail("item %d: quantities %v/%v/%v", it.Sequence, it.QuantityRequested, it.QuantityApproved, it.QuantityUsed)
		}
		if !approved && it.QuantityApproved != 0 {
			fail("item %d approved %v", it.Sequence, it.QuantityApproved)
		}
		cut = cut || it.QuantityApproved < it.QuantityRequested
	}
	if p.Status == gateway.PAPartiallyApproved && !cut {
		fail("partially approved, but every item approved in full")
	}
}

func checkClinical(t *testing.T, c sandbox.ClinicalResource, memberID string) {
	t.Helper()
	var r struct {
		ResourceType string `json:"resourceType"`
		ID           string `json:"id"`
		Meta         *struct {
			Security []struct{ Code string } `json:"security"`
		} `json:"meta"`
		Subject, Patient              *struct{ Reference string }
		Code, VaccineCode, Medication *struct {
			Coding []struct{ System, Code string } `json:"coding"`
		}
	}
	if err := json.Unmarshal(c.Resource, &r); err != nil {
		t.Fatalf("clinical resource %s: %v", c.ID, err)
	}
	if r.ResourceType != string(c.ResourceType) || r.ID != c.SourceID || c.SourceID == "" {
		t.Fatalf("clinical resource %s: resourceType %q id %q", c.ID, r.ResourceType, r.ID)
	}
	subject := r.Subject
	if c.ResourceType == gateway.ClinicalImmunization || c.ResourceType == gateway.ClinicalAllergy {
		subject = r.Patient
	}
	if subject == nil || subject.Reference != "Patient/"+memberID {
		t.Fatalf("clinical resource %s: subject %+v", c.ID, subject)
	}
	if c.Code == "" || c.CodeSystem == "" || c.Status == "" || c.DateOfService.IsZero() || c.DateOfService.After(today) {
		t.Fatalf("clinical resource %s: columns %+v", c.ID, c.ClinicalResource)
	}
	if c.Sensitive != (r.Meta != nil && len(r.Meta.Security) > 0) || c.Sensitive != (len(c.SecurityLabels) > 0) {
		t.Fatalf("clinical resource %s: sensitive %v, labels %v, meta %+v", c.ID, c.Sensitive, c.SecurityLabels, r.Meta)
	}
}

func TestOrgAttributions(t *testing.T) {
	t.Parallel()
	var members []sandbox.MemberRef
	for d := range generate(t, 500, 5).Members() {
		members = append(members, sandbox.MemberRef{ID: d.Member.ID, OptedOut: d.OptedOut()})
	}
	optedOut := map[string]bool{}
	for _, m := range members {
		optedOut[m.ID] = m.OptedOut
	}

	const org = "0e9f6a1c-5d3b-4c61-9b0e-2f4f3c1a7d20"
	got := sandbox.OrgAttributions(org, today, members)
	if len(got) != sandbox.OrgAttributionCount {
		t.Fatalf("%d attributions, want %d", len(got), sandbox.OrgAttributionCount)
	}
	states := map[gateway.AttributionStatus]int{}
	out, seen := 0, map[string]bool{}
	for _, a := range got {
		if a.OrganizationID != org || a.Source != gateway.SourceSandbox || !a.Sandbox || a.PractitionerID != nil || a.ID == "" {
			t.Fatalf("attribution %+v", a)
		}
		if seen[a.MemberID] {
			t.Fatalf("member %s picked twice", a.MemberID)
		}
		seen[a.MemberID] = true
		states[attributionState(a)]++
		if optedOut[a.MemberID] {
			out++
			if attributionState(a) != gateway.AttributionActive {
				t.Errorf("opted-out pick %s is %s, want ACTIVE", a.MemberID, attributionState(a))
			}
		}
	}
	for _, s := range []gateway.AttributionStatus{gateway.AttributionActive, gateway.AttributionUpcoming, gateway.AttributionFuture, gateway.AttributionEnded} {
		if states[s] == 0 {
			t.Errorf("no %s attribution in %v", s, states)
		}
	}
	if out == 0 {
		t.Error("no opted-out member picked")
	}

	// The same organization gets the same attributions, whatever the order
	// of members; another organization gets others.
	reversed := slices.Clone(members)
	slices.Reverse(reversed)
	if again := sandbox.OrgAttributions(org, today, reversed); !reflect.DeepEqual(got, again) {
		t.Error("attributions depend on the order of members")
	}
	other := sandbox.OrgAttributions("5b1c9e1e-8f0a-4f7e-a1d2-6c2b9a0f3e11", today, members)
	same := 0
	for _, a := range other {
		if seen[a.MemberID] {
			same++
		}
	}
	if same > len(other)/2 {
		t.Errorf("another organization shares %d of %d members", same, len(other))
	}

	// A small sandbox gives what it has.
	if n := len(sandbox.OrgAttributions(org, today, members[:3])); n != 3 {
		t.Errorf("3 members: %d attributions", n)
	}
	if n := len(sandbox.OrgAttributions(org, today, nil)); n != 0 {
		t.Errorf("no members: %d attributions", n)
	}
}
