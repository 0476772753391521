package sandbox

import (
	"math"
	"slices"

	"example.com/gateway/gateway"
)

const systemDataAbsent = "http://terminology.hl7.org/CodeSystem/data-absent-reason"

// notApplicable is the product of institutional lines billed by revenue code
// only (CARIN BB: productOrService is required).
var notApplicable = code{systemDataAbsent, "not-applicable", "Not Applicable"}

// claims generates 0–20 claims (about 10) of every type.
func (b *builder) claims() {
	n := b.r.IntN(21)
	b.d.Claims = make([]Claim, 0, n)
	for j := range n {
		b.d.Claims = append(b.d.Claims, b.claim(j))
	}
}

// claimTerms are a claim's cost-sharing terms.
type claimTerms struct {
	deductibleLeft gateway.Money
	copay          gateway.Money
	coinsurance    int // percent
	allowedRatio   [2]float64
}

func (b *builder) claim(j int) Claim {
	r := b.r
	var c Claim
	c.Lines = make([]gateway.ClaimLine, 0, 6)
	c.Diagnoses = make([]gateway.ClaimDiagnosis, 0, 3)
	c.ID = b.g.id(idClaim, b.i, j)
	c.MemberID = b.d.Member.ID
	c.Identifier = "SBXC" + b.key + twoDigits(j)
	c.Status = gateway.ClaimActive
	switch u := r.IntN(100); {
	case u < 2:
		c.Status = gateway.ClaimCancelled
	case u < 3:
		c.Status = gateway.ClaimEnteredInError
	}
	c.CoverageID = b.coverage
	c.InNetwork = !chance(r, 0.05)
	// Dates leave room for adjudication and payment before today.
	c.ServiceStart = b.dos(0.05, 75)
	c.ServiceEnd = c.ServiceStart
	sens := b.sensitivity(0.05)
	org := b.careOrg()

	switch u := r.IntN(100); {
	case u < 8:
		sens = b.inpatient(&c, org, sens)
	case u < 23:
		b.outpatient(&c, org, sens)
	case u < 63:
		b.professional(&c, org, sens)
	case u < 75:
		sens = notSensitive // dental care is not a protected category
		b.oral(&c, org)
	default:
		sens = b.pharmacy(&c, org, sens)
	}
	if sens != notSensitive {
		c.Sensitive = true
		c.SecurityLabels = sens.labels()
	}
	for k := range c.Lines {
		c.Lines[k].ClaimID = c.ID
		c.Lines[k].Sequence = k + 1
	}
	for k := range c.Diagnoses {
		c.Diagnoses[k].ClaimID = c.ID
		c.Diagnoses[k].Sequence = k + 1
	}
	for k := range c.Procedures {
		c.Procedures[k].ClaimID = c.ID
		c.Procedures[k].Sequence = k + 1
	}
	b.adjudicate(&c)
	return c
}

func (b *builder) inpatient(c *Claim, org int, sens sensitivity) sensitivity {
	r := b.r
	var adm admission
	for {
		adm = pick(r, admissions)
		if (sens == notSensitive) == (adm.sensitive == notSensitive) {
			break
		}
	}
	c.Type = gateway.ClaimInpatient
	days := max(1, adm.days+between(r, -1, 3))
	c.ServiceEnd = c.ServiceStart.AddDays(days)
	c.DRG = adm.drg
	c.TypeOfBill = "0111"
	c.PlaceOfService = "21"
	c.FacilityName = organizationSeeds[org].hospital
	slot := slotHospitalist
	switch {
	case adm.sensitive != notSensitive:
		slot = slotBehavioral
	case adm.drg == "470" || adm.drg == "247" || adm.drg == "807":
		slot = slotSpecialist
	}
	c.BillingOrganizationID, c.RenderingPractitionerID = b.practitioner(org, slot)

	c.Diagnoses = append(c.Diagnoses, diagnosis(adm.diagnosis, "principal", "Y"))
	for range r.IntN(3) {
		c.Diagnoses = append(c.Diagnoses, diagnosis(pick(r, diagnosesChronic), "secondary", pick(r, []string{"Y", "Y", "N", "U"})))
	}
	for _, p := range adm.procedures {
		c.Procedures = append(c.Procedures, gateway.ClaimProcedure{
			Code: p.code, System: p.system, Display: p.display,
			Date: c.ServiceStart.AddDays(r.IntN(2)),
		})
	}
	c.Lines = append(c.Lines, b.line(notApplicable, revenueRoom, float64(days), c.ServiceStart, "21"))
	for range between(r, 1, 4) {
		rev := pick(r, revenueAncillary)
		c.Lines = append(c.Lines, b.line(productForRevenue(rev.code.code), rev, 1,
			dateBetween(r, c.ServiceStart, c.ServiceEnd), "21"))
	}
	return adm.sensitive
}

// productForRevenue returns the HCPCS/CPT product billed under an
// institutional revenue code, or notApplicable.
func productForRevenue(rev string) code {
	switch rev {
	case "0300":
		return servicesAncillary[1].code // comprehensive metabolic panel
	case "0320":
		return servicesAncillary[6].code // chest x-ray
	case "0450":
		return servicesOutpatient[0].code // ED visit
	case "0636":
		return servicesAncillary[11].code // dexamethasone injection
	case "0730":
		return servicesAncillary[7].code // ECG
	case "0420":
		return servicesAncillary[10].code // therapeutic exercises
	}
	return notApplicable
}

// revenueFor returns the revenue code of an outpatient service.
func revenueFor(cpt string) string {
	switch {
	case cpt == "99284" || cpt == "99285":
		return "0450"
	case cpt == "73721" || cpt == "70450" || cpt == "71046":
		return "0320"
	case cpt == "45378" || cpt == "29881" || cpt == "66984":
		return "0360"
	case cpt == "93000":
		return "0730"
	case cpt == "97110":
		return "0420"
	case cpt == "36415" || (cpt[0] == '8' && len(cpt) == 5):
		return "0300"
	case cpt[0] == 'J' || cpt[0] == 'H' || cpt == "90686" || cpt == "90471":
		return "0636"
	}
	return "0510"
}

func (b *builder) outpatient(c *Claim, org int, sens sensitivity) {
	r := b.r
	c.Type = gateway.ClaimOutpatient
	c.TypeOfBill = "0131"
	c.PlaceOfService = "22"
	c.FacilityName = organizationSeeds[org].hospital
	main := pick(r, servicesOutpatient)
	slot := slotSpecialist
	if sens != notSensitive {
		main = pick(r, servicesSensitive[sens])
		slot = slotBehavioral
	}
	if main.code.code == "99284" || main.code.code == "99285" {
		c.PlaceOfService = "23"
		slot = slotHospitalist
	}
	c.BillingOrganizationID, c.RenderingPractitionerID = b.practitioner(org, slot)
	b.diagnoses(c, sens)
	c.Lines = append(c.Lines, b.line(main.code, priced{code{systemRevenue, revenueFor(main.code.code), ""}, main.low, main.high}, 1, c.ServiceStart, c.PlaceOfService))
	for range between(r, 1, 3) {
		s := pick(r, servicesAncillary)
		c.Lines = append(c.Lines, b.line(s.code, priced{code{systemRevenue, revenueFor(s.code.code), ""}, s.low, s.high}, 1, c.ServiceStart, c.PlaceOfService))
	}
	c.Procedures = append(c.Procedures, gateway.ClaimProcedure{
		Code: main.code.code, System: main.code.system, Display: main.code.display, Date: c.ServiceStart,
	})
}

func (b *builder) professional(c *Claim, org int, sens sensitivity) {
	r := b.r
	c.Type = gateway.ClaimProfessional
	c.PlaceOfService = "11"
	if chance(r, 0.1) {
		c.PlaceOfService = pick(r, []string{"02", "10"}) // telehealth
	}
	visit := pick(r, servicesVisit)
	slot := slotPrimary
	if sens != notSensitive {
		visit = pick(r, servicesSensitive[sens])
		slot = slotBehavioral
	} else if chance(r, 0.25) {
		slot = slotSpecialist
	}
	c.BillingOrganizationID, c.RenderingPractitionerID = b.practitioner(org, slot)
	b.diagnoses(c, sens)
	extra := between(r, 1, 4)
	l := b.line(visit.code, priced{low: visit.low, high: visit.high}, 1, c.ServiceStart, c.PlaceOfService)
	if chance(r, 0.4) {
		l.Modifiers = []string{"25"} // separately identifiable E/M on the day of a procedure
	}
	c.Lines = append(c.Lines, l)
	for range extra {
		s := pick(r, servicesAncillary)
		qty := 1.0
		if s.code.code == "97110" {
			qty = float64(between(r, 1, 4))
		}
		l := b.line(s.code, priced{low: s.low, high: s.high}, qty, c.ServiceStart, c.PlaceOfService)
		if chance(r, 0.1) {
			l.Modifiers = []string{pick(r, modifiers)}
		}
		c.Lines = append(c.Lines, l)
	}
}

func (b *builder) oral(c *Claim, org int) {
	r := b.r
	c.Type = gateway.ClaimOral
	c.PlaceOfService = "11"
	c.BillingOrganizationID, c.RenderingPractitionerID = b.practitioner(org, slotDentist)
	c.Diagnoses = append(c.Diagnoses, diagnosis(pick(r, diagnosesOral), "principal", ""))
	if chance(r, 0.3) {
		c.Diagnoses = append(c.Diagnoses, diagnosis(pick(r, diagnosesOral), "secondary", ""))
	}
	exam := servicesOral[r.IntN(2)]
	c.Lines = append(c.Lines, b.line(exam.code, priced{low: exam.low, high: exam.high}, 1, c.ServiceStart, "11"))
	for range between(r, 1, 3) {
		s := servicesOral[2+r.IntN(len(servicesOral)-2)]
		c.Lines = append(c.Lines, b.line(s.code, priced{low: s.low, high: s.high}, 1, c.ServiceStart, "11"))
	}
}

func (b *builder) pharmacy(c *Claim, org int, sens sensitivity) sensitivity {
	r := b.r
	c.Type = gateway.ClaimPharmacy
	c.PlaceOfService = "01"
	c.BillingOrganizationID, c.RenderingPractitionerID = b.practitioner(org, slotPrimary) // the prescriber
	d := b.drug(sens, chance(r, 0.1))
	sens = d.sensitive
	b.diagnoses(c, sens)
	c.Diagnoses = c.Diagnoses[:1]
	n := 1
	if chance(r, 0.15) {
		n = 2
	}
	for k := range n {
		if k > 0 {
			d = b.drug(sens, false)
		}
		qty := float64(pick(r, []int{30, 30, 60, 90}))
		if d.specialty {
			qty = float64(pick(r, []int{1, 2, 4}))
		}
		submitted := gateway.Money(math.Round(float64(d.unitCost) * qty * (0.9 + 0.4*r.Float64())))
		c.Lines = append(c.Lines, gateway.ClaimLine{
			ServiceDate:    c.ServiceStart,
			ProductCode:    d.ndc,
			ProductSystem:  systemNDC,
			ProductDisplay: d.display,
			Quantity:       qty,
			PlaceOfService: "01",
			Submitted:      b.amount(max(submitted, 100)),
		})
	}
	return sens
}

// drug picks a drug of sensitivity sens (any non-sensitive one when sens has
// none), a specialty drug when specialty is set (for non-sensitive drugs).
func (b *builder) drug(sens sensitivity, specialty bool) drug {
	fit := b.g.drugs[sens][0]
	if sens == notSensitive && specialty {
		fit = b.g.drugs[sens][1]
	}
	if len(fit) == 0 {
		return b.drug(notSensitive, specialty)
	}
	return pick(b.r, fit)
}

// diagnoses adds 1–3 diagnoses: the principal one of the sensitivity when
// sensitive, else acute or chronic; secondary ones chronic.
func (b *builder) diagnoses(c *Claim, sens sensitivity) {
	r := b.r
	switch {
	case sens != notSensitive:
		c.Diagnoses = append(c.Diagnoses, diagnosis(pick(r, diagnosesSensitive[sens]), "principal", ""))
	case chance(r, 0.5):
		c.Diagnoses = append(c.Diagnoses, diagnosis(pick(r, diagnosesAcute), "principal", ""))
	default:
		c.Diagnoses = append(c.Diagnoses, diagnosis(pick(r, diagnosesChronic), "principal", ""))
	}
	for range r.IntN(3) {
		d := pick(r, diagnosesChronic)
		if !slices.ContainsFunc(c.Diagnoses, func(x gateway.ClaimDiagnosis) bool { return x.Code == d.code }) {
			c.Diagnoses = append(c.Diagnoses, diagnosis(d, "secondary", ""))
		}
	}
}

func diagnosis(c code, typ, poa string) gateway.ClaimDiagnosis {
	return gateway.ClaimDiagnosis{Code: c.code, System: c.system, Display: c.display, Type: typ, PresentOnAdmission: poa}
}

// line returns a service line of product p charged in p's range per unit;
// the revenue code, if any, is rev's code.
func (b *builder) line(product code, rev priced, qty float64, date gateway.Date, pos string) gateway.ClaimLine {
	unit := between(b.r, rev.low*100, rev.high*100)
	return gateway.ClaimLine{
		ServiceDate:    date,
		ProductCode:    product.code,
		ProductSystem:  product.system,
		ProductDisplay: product.display,
		Quantity:       qty,
		RevenueCode:    rev.code.code,
		PlaceOfService: pos,
		Submitted:      b.amount(gateway.Money(float64(unit) * qty)),
	}
}

// adjudicate fills every amount of the claim and its lines consistently:
// per line submitted ≥ allowed ≥ paid, allowed = paid + deductible + copay +
// coinsurance, member liability = deductible + copay + coinsurance; denied
// lines are allowed nothing. The claim's amounts are the sums of its lines;
// the payment is the total paid plus a (rare, negative) adjustment.
func (b *builder) adjudicate(c *Claim) {
	r := b.r
	t := claimTerms{coinsurance: pick(r, []int{0, 10, 20, 20, 30}), allowedRatio: [2]float64{0.45, 0.9}}
	if !c.InNetwork {
		t.allowedRatio = [2]float64{0.3, 0.6}
	}
	if chance(r, 0.4) {
		t.deductibleLeft = gateway.Money(between(r, 50, 1500) * 100)
	}
	switch c.Type {
	case gateway.ClaimProfessional:
		t.copay = gateway.Money(pick(r, []int{0, 20, 25, 30, 40, 50}) * 100)
	case gateway.ClaimOutpatient:
		t.copay = gateway.Money(pick(r, []int{0, 100, 150, 250}) * 100)
	case gateway.ClaimPharmacy:
		t.copay = gateway.Money(pick(r, []int{5, 10, 15, 35, 60}) * 100)
	case gateway.ClaimOral:
		t.coinsurance = pick(r, []int{0, 20, 50})
	}
	var sum struct{ submitted, allowed, paid, copay, coins, deduct, liability, noncovered gateway.Money }
	denied := 0
	for k := range c.Lines {
		l := &c.Lines[k]
		s := *l.Submitted
		var a, d, cp, ci gateway.Money
		if chance(r, 0.04) {
			reason := pick(r, claimDenials)
			l.DenialReason = reason.code + ": " + reason.text
			denied++
			sum.noncovered += s
		} else {
			ratio := t.allowedRatio[0] + (t.allowedRatio[1]-t.allowedRatio[0])*r.Float64()
			a = gateway.Money(math.Round(float64(s) * ratio))
			d = min(a, t.deductibleLeft)
			t.deductibleLeft -= d
			cp = min(a-d, t.copay)
			t.copay -= cp // one copay per claim
			ci = gateway.Money(math.Round(float64(a-d-cp) * float64(t.coinsurance) / 100))
		}
		p := a - d - cp - ci
		l.Allowed, l.Paid = b.amount(a), b.amount(p)
		l.Deductible, l.Copay, l.Coinsurance = b.amount(d), b.amount(cp), b.amount(ci)
		l.MemberLiability = b.amount(d + cp + ci)
		sum.submitted += s
		sum.allowed += a
		sum.paid += p
		sum.deduct += d
		sum.copay += cp
		sum.coins += ci
		sum.liability += d + cp + ci
	}
	c.Outcome = "complete"
	if denied > 0 && denied < len(c.Lines) {
		c.Outcome = "partial"
	}
	c.TotalSubmitted, c.TotalAllowed, c.TotalPaid = b.amount(sum.submitted), b.amount(sum.allowed), b.amount(sum.paid)
	c.Copay, c.Coinsurance, c.Deductible = b.amount(sum.copay), b.amount(sum.coins), b.amount(sum.deduct)
	c.MemberLiability, c.NonCovered = b.amount(sum.liability), b.amount(sum.noncovered)
	var adjust gateway.Money
	if sum.paid > 100 && chance(r, 0.03) {
		adjust = -gateway.Money(between(r, 1, int(min(sum.paid, 5000))))
	}
	c.PaymentAdjust = b.amount(adjust)
	c.PaymentAmount = b.amount(sum.paid + adjust)
	c.Created = c.ServiceEnd.AddDays(between(r, 1, 30))
	c.Processed = c.Created.AddDays(between(r, 1, 21))
	c.PaymentDate = c.Processed.AddDays(between(r, 0, 7))
}

func twoDigits(n int) string {
	return string([]byte{byte('0' + n/10%10), byte('0' + n%10)})
}
