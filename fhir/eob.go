package fhir

import (
	"strings"

	"example.com/gateway/gateway"
)

// ExplanationOfBenefit is FHIR R4 ExplanationOfBenefit as the CARIN BB 2.1
// profiles and the PDex prior authorization profile use it.
type ExplanationOfBenefit struct {
	ResourceType     string           `json:"resourceType"`
	ID               string           `json:"id"`
	Meta             Meta             `json:"meta"`
	Identifier       []Identifier     `json:"identifier,omitempty"`
	Status           string           `json:"status"`
	Type             CodeableConcept  `json:"type"`
	SubType          *CodeableConcept `json:"subType,omitempty"`
	Use              string           `json:"use"`
	Patient          Reference        `json:"patient"`
	BillablePeriod   *Period          `json:"billablePeriod,omitempty"`
	Created          string           `json:"created"`
	Insurer          Reference        `json:"insurer"`
	Provider         Reference        `json:"provider"`
	Outcome          string           `json:"outcome"`
	PreAuthRef       []string         `json:"preAuthRef,omitempty"`
	PreAuthRefPeriod []Period         `json:"preAuthRefPeriod,omitempty"`
	CareTeam         []CareTeam       `json:"careTeam,omitempty"`
	SupportingInfo   []SupportingInfo `json:"supportingInfo,omitempty"`
	Diagnosis        []Diagnosis      `json:"diagnosis,omitempty"`
	Procedure        []Procedure      `json:"procedure,omitempty"`
	Insurance        []Insurance      `json:"insurance"`
	Item             []Item           `json:"item,omitempty"`
	Adjudication     []Adjudication   `json:"adjudication,omitempty"`
	Total            []Total          `json:"total,omitempty"`
	Payment          *Payment         `json:"payment,omitempty"`
}

// CareTeam is ExplanationOfBenefit.careTeam.
type CareTeam struct {
	Sequence      int              `json:"sequence"`
	Provider      Reference        `json:"provider"`
	Responsible   *bool            `json:"responsible,omitempty"`
	Role          *CodeableConcept `json:"role,omitempty"`
	Qualification *CodeableConcept `json:"qualification,omitempty"`
}

// SupportingInfo is ExplanationOfBenefit.supportingInfo.
type SupportingInfo struct {
	Sequence       int              `json:"sequence"`
	Category       CodeableConcept  `json:"category"`
	Code           *CodeableConcept `json:"code,omitempty"`
	TimingDate     string           `json:"timingDate,omitempty"`
	TimingPeriod   *Period          `json:"timingPeriod,omitempty"`
	ValueString    string           `json:"valueString,omitempty"`
	ValueQuantity  *Quantity        `json:"valueQuantity,omitempty"`
	ValueReference *Reference       `json:"valueReference,omitempty"`
}

// Diagnosis is ExplanationOfBenefit.diagnosis.
type Diagnosis struct {
	Sequence                 int               `json:"sequence"`
	DiagnosisCodeableConcept CodeableConcept   `json:"diagnosisCodeableConcept"`
	Type                     []CodeableConcept `json:"type,omitempty"`
	OnAdmission              *CodeableConcept  `json:"onAdmission,omitempty"`
}

// Procedure is ExplanationOfBenefit.procedure.
type Procedure struct {
	Sequence                 int               `json:"sequence"`
	Type                     []CodeableConcept `json:"type,omitempty"`
	Date                     string            `json:"date,omitempty"`
	ProcedureCodeableConcept CodeableConcept   `json:"procedureCodeableConcept"`
}

// Insurance is ExplanationOfBenefit.insurance.
type Insurance struct {
	Focal    bool      `json:"focal"`
	Coverage Reference `json:"coverage"`
}

// Item is ExplanationOfBenefit.item.
type Item struct {
	Sequence                int               `json:"sequence"`
	CareTeamSequence        []int             `json:"careTeamSequence,omitempty"`
	Revenue                 *CodeableConcept  `json:"revenue,omitempty"`
	Category                *CodeableConcept  `json:"category,omitempty"`
	ProductOrService        CodeableConcept   `json:"productOrService"`
	Modifier                []CodeableConcept `json:"modifier,omitempty"`
	ServicedDate            string            `json:"servicedDate,omitempty"`
	ServicedPeriod          *Period           `json:"servicedPeriod,omitempty"`
	LocationCodeableConcept *CodeableConcept  `json:"locationCodeableConcept,omitempty"`
	Quantity                *Quantity         `json:"quantity,omitempty"`
	Adjudication            []Adjudication    `json:"adjudication,omitempty"`
}

// Adjudication is ExplanationOfBenefit.adjudication and item.adjudication.
// Amount is set only under Policy.Money.
type Adjudication struct {
	Extension []Extension      `json:"extension,omitempty"`
	Category  CodeableConcept  `json:"category"`
	Reason    *CodeableConcept `json:"reason,omitempty"`
	Amount    *Money           `json:"amount,omitempty"`
	Value     *float64         `json:"value,omitempty"`
}

// Total is ExplanationOfBenefit.total (only under Policy.Money).
type Total struct {
	Category CodeableConcept `json:"category"`
	Amount   Money           `json:"amount"`
}

// Payment is ExplanationOfBenefit.payment. Only Type may appear without
// Policy.Money.
type Payment struct {
	Type       *CodeableConcept `json:"type,omitempty"`
	Adjustment *Money           `json:"adjustment,omitempty"`
	Date       string           `json:"date,omitempty"`
	Amount     *Money           `json:"amount,omitempty"`
}

// claimKind is what a gateway.ClaimType decides in the mapping.
type claimKind struct {
	basis, full      string // meta.profile without and with money
	typ, typeDisplay string // claim-type code
	subType          Coding // C4BBInstitutionalClaimSubType, institutional only
	role             Coding // careTeam role of the claim's practitioner
}

func kindOf(t gateway.ClaimType) claimKind {
	switch t {
	case gateway.ClaimInpatient:
		// UB-04 names the attending physician (FL 76); "rendering" would need
		// a taxonomy qualification the claim row does not carry.
		return claimKind{ProfileEOBInpatientBasis, ProfileEOBInpatient, "institutional", "Institutional",
			Coding{systemC4BBInstitutionalSubType, "inpatient", "Inpatient"},
			Coding{systemC4BBClaimCareTeamRole, "attending", "Attending"}}
	case gateway.ClaimOutpatient:
		return claimKind{ProfileEOBOutpatientBasis, ProfileEOBOutpatient, "institutional", "Institutional",
			Coding{systemC4BBInstitutionalSubType, "outpatient", "Outpatient"},
			Coding{systemC4BBClaimCareTeamRole, "attending", "Attending"}}
	case gateway.ClaimOral:
		return claimKind{ProfileEOBOralBasis, ProfileEOBOral, "oral", "Oral", Coding{},
			Coding{systemC4BBClaimCareTeamRole, "rendering", "Rendering provider"}}
	case gateway.ClaimPharmacy:
		// C4BBClaimPharmacyTeamRole: a practitioner on a pharmacy claim is
		// the prescriber (the pharmacy is the billing organization).
		return claimKind{ProfileEOBPharmacyBasis, ProfileEOBPharmacy, "pharmacy", "Pharmacy", Coding{},
			Coding{systemC4BBClaimCareTeamRole, "prescribing", "Prescribing provider"}}
	default: // gateway.ClaimProfessional (the database allows nothing else)
		return claimKind{ProfileEOBProfessionalBasis, ProfileEOBProfessional, "professional", "Professional", Coding{},
			Coding{systemC4BBClaimCareTeamRole, "rendering", "Rendering provider"}}
	}
}

func (k claimKind) institutional() bool { return k.typ == "institutional" }

// FromClaim maps an adjudicated claim with its lines, diagnoses
// and procedures to a CARIN BB 2.1 ExplanationOfBenefit (use=claim).
//
// Without p.Money it builds no monetary element at all (no amount, total,
// benefitBalance, payment amount, date or adjustment) and declares the
// Basis profile of the claim's type; non-monetary adjudication (network and
// benefit payment status, adjustment or reject reasons) and payment.type
// stay. With p.Money it adds totals, line adjudication amounts and the
// payment, and declares the full profile, unless the claim has no total (an
// EOB without totals can only conform to the Basis profile).
//
// Elements the records cannot fill but a profile requires (a coverage, the
// pharmacy days supply, DAW code and refill number) carry the
// data-absent-reason extension.
func FromClaim(c gateway.Claim, lines []gateway.ClaimLine, dx []gateway.ClaimDiagnosis, px []gateway.ClaimProcedure, p Policy) *ExplanationOfBenefit {
	k := kindOf(c.Type)
	e := &ExplanationOfBenefit{
		ResourceType: "ExplanationOfBenefit",
		ID:           c.ID,
		Meta:         Meta{LastUpdated: instant(c.LastUpdated)},
		Identifier: []Identifier{{
			Type:   ccp(systemC4BBIdentifierType, "uc", "Unique Claim ID"),
			System: SystemClaimID,
			Value:  c.Identifier,
		}},
		Status:         claimStatus(c.Status),
		Type:           cc(systemClaimType, k.typ, k.typeDisplay),
		Use:            "claim",
		Patient:        PatientRef(c.MemberID),
		BillablePeriod: period(c.ServiceStart, c.ServiceEnd),
		// CARIN: created is the date the claim was adjudicated (CPCDS 179).
		Created:   firstDate(c.Processed, c.Created),
		Insurer:   PayerRef(),
		Provider:  claimProvider(c),
		Outcome:   claimOutcome(c.Outcome),
		Insurance: []Insurance{{Focal: true, Coverage: refOrAbsent("Coverage", c.CoverageID)}},
	}
	if k.subType.Code != "" {
		e.SubType = &CodeableConcept{Coding: []Coding{k.subType}}
	}

	var careTeam []int
	if c.RenderingPractitionerID != nil && *c.RenderingPractitionerID != "" {
		role := CodeableConcept{Coding: []Coding{k.role}}
		e.CareTeam = []CareTeam{{Sequence: 1, Provider: Ref("Practitioner", *c.RenderingPractitionerID), Role: &role}}
		careTeam = []int{1}
	}

	e.SupportingInfo = claimSupportingInfo(c, k)
	e.Diagnosis = claimDiagnoses(dx, c.Type)
	e.Procedure = claimProcedures(px)

	// Network status: the claim row has one flag, in_network (the claim was
	// adjudicated in network), which feeds benefitpaymentstatus and the
	// provider network status slices the profiles require.
	network := networkStatus(c.InNetwork)
	switch c.Type {
	case gateway.ClaimProfessional:
		e.Adjudication = []Adjudication{statusAdjudication("billingnetworkstatus", network)}
	case gateway.ClaimOral:
		e.Adjudication = []Adjudication{
			statusAdjudication("billingnetworkstatus", network),
			statusAdjudication("renderingnetworkstatus", network),
			statusAdjudication("benefitpaymentstatus", network),
		}
	default:
		e.Adjudication = []Adjudication{
			statusAdjudication("billingnetworkstatus", network),
			statusAdjudication("benefitpaymentstatus", network),
		}
	}

	e.Item = make([]Item, len(lines))
	denied := 0
	for i, l := range lines {
		e.Item[i] = claimItem(&c, l, i, careTeam, network, p)
		if l.DenialReason != "" {
			denied++
		}
	}

	if pt := paymentType(e.Outcome, denied, len(lines)); pt != nil {
		e.Payment = &Payment{Type: pt}
	}
	profile := k.basis
	if p.Money {
		e.Total = claimTotals(c)
		if c.PaymentAmount != nil || c.PaymentAdjust != nil || !c.PaymentDate.IsZero() {
			if e.Payment == nil {
				e.Payment = &Payment{}
			}
			e.Payment.Amount = money(c.PaymentAmount)
			e.Payment.Adjustment = money(c.PaymentAdjust)
			e.Payment.Date = c.PaymentDate.String()
		}
		if len(e.Total) > 0 {
			profile = k.full
		}
	}
	e.Meta.Profile = []string{profile}
	return e
}

func claimItem(c *gateway.Claim, l gateway.ClaimLine, i int, careTeam []int, network Coding, p Policy) Item {
	it := Item{
		Sequence:         l.Sequence,
		CareTeamSequence: careTeam,
		ProductOrService: cc(CodeSystem(l.ProductSystem), l.ProductCode, l.ProductDisplay),
		// CARIN professional and oral: serviced[x] 1..1.
		ServicedDate: firstDate(l.ServiceDate, c.ServiceStart),
		Quantity:     &Quantity{Value: decimal(l.Quantity)},
	}
	if it.Sequence <= 0 {
		it.Sequence = i + 1
	}
	if l.RevenueCode != "" {
		it.Revenue = ccp(SystemRevenue, l.RevenueCode, "")
	}
	if len(l.Modifiers) > 0 {
		it.Modifier = make([]CodeableConcept, len(l.Modifiers))
		for j, m := range l.Modifiers {
			it.Modifier[j] = cc(modifierSystem(m), m, "")
		}
	}
	// CARIN professional and oral: locationCodeableConcept 1..1, CMS place
	// of service; the line's, else the claim's.
	if pos := firstString(l.PlaceOfService, c.PlaceOfService); pos != "" {
		it.LocationCodeableConcept = ccp(SystemPOS, pos, "")
	}

	var adj []Adjudication
	if c.Type == gateway.ClaimProfessional || c.Type == gateway.ClaimOral {
		adj = append(adj, statusAdjudication("benefitpaymentstatus", network))
	}
	if l.DenialReason != "" {
		adj = append(adj, reasonAdjudication(c.Type, l.DenialReason))
	}
	if p.Money {
		adj = appendAmount(adj, systemAdjudication, "submitted", "Submitted Amount", l.Submitted)
		adj = appendAmount(adj, systemAdjudication, "eligible", "Eligible Amount", l.Allowed)
		adj = appendAmount(adj, systemAdjudication, "benefit", "Benefit Amount", l.Paid)
		adj = appendAmount(adj, systemAdjudication, "copay", "CoPay", l.Copay)
		adj = appendAmount(adj, systemC4BBAdjudication, "coinsurance", "Co-insurance", l.Coinsurance)
		adj = appendAmount(adj, systemAdjudication, "deductible", "Deductible", l.Deductible)
		adj = appendAmount(adj, systemC4BBAdjudication, "memberliability", "Member liability", l.MemberLiability)
	}
	it.Adjudication = adj
	return it
}

// claimTotals are the claim-level amounts as total[] (Policy.Money only).
func claimTotals(c gateway.Claim) []Total {
	var t []Total
	add := func(system, code, display string, m *gateway.Money) {
		if m != nil {
			t = append(t, Total{Category: cc(system, code, display), Amount: *money(m)})
		}
	}
	add(systemAdjudication, "submitted", "Submitted Amount", c.TotalSubmitted)
	add(systemAdjudication, "eligible", "Eligible Amount", c.TotalAllowed)
	add(systemAdjudication, "benefit", "Benefit Amount", c.TotalPaid)
	add(systemAdjudication, "copay", "CoPay", c.Copay)
	add(systemC4BBAdjudication, "coinsurance", "Co-insurance", c.Coinsurance)
	add(systemAdjudication, "deductible", "Deductible", c.Deductible)
	add(systemC4BBAdjudication, "noncovered", "Noncovered", c.NonCovered)
	add(systemC4BBAdjudication, "memberliability", "Member liability", c.MemberLiability)
	return t
}

func appendAmount(adj []Adjudication, system, code, display string, m *gateway.Money) []Adjudication {
	if m == nil {
		return adj
	}
	return append(adj, Adjudication{Category: cc(system, code, display), Amount: money(m)})
}

// statusAdjudication is a non-monetary adjudication slice of CARIN's
// C4BBAdjudicationDiscriminator whose reason is a C4BBPayerAdjudicationStatus.
func statusAdjudication(slice string, status Coding) Adjudication {
	reason := CodeableConcept{Coding: []Coding{status}}
	return Adjudication{Category: cc(systemC4BBAdjudicationDiscrim, slice, ""), Reason: &reason}
}

func networkStatus(in bool) Coding {
	if in {
		return Coding{systemC4BBPayerAdjudicationSt, "innetwork", "In Network"}
	}
	return Coding{systemC4BBPayerAdjudicationSt, "outofnetwork", "Out Of Network"}
}

// reasonAdjudication carries a line's denial reason: CARIN's rejectreason
// (NCPDP reject code) on pharmacy claims, adjustmentreason (X12 CARC)
// elsewhere. A reason that looks like a code is coded; free text stays text.
func reasonAdjudication(t gateway.ClaimType, reason string) Adjudication {
	slice, system := "adjustmentreason", SystemCARC
	if t == gateway.ClaimPharmacy {
		slice, system = "rejectreason", SystemNCPDPRejectCode
	}
	r := CodeableConcept{Text: reason}
	if looksLikeCode(reason) {
		r = cc(system, reason, "")
	}
	return Adjudication{Category: cc(systemC4BBAdjudicationDiscrim, slice, ""), Reason: &r}
}

// paymentType is payment.type (C4BBPayerClaimPaymentStatusCode) for an
// adjudicated claim: denied when every line carries a denial reason,
// partially paid when some do, paid otherwise. It says whether, not how much.
func paymentType(outcome string, denied, lines int) *CodeableConcept {
	if lines == 0 || (outcome != "complete" && outcome != "partial") {
		return nil
	}
	switch {
	case denied == lines:
		return ccp(systemC4BBPayerAdjudicationSt, "denied", "Denied")
	case denied > 0:
		return ccp(systemC4BBPayerAdjudicationSt, "partiallypaid", "Partially Paid")
	}
	return ccp(systemC4BBPayerAdjudicationSt, "paid", "Paid")
}

func claimProvider(c gateway.Claim) Reference {
	switch {
	case c.BillingOrganizationID != nil && *c.BillingOrganizationID != "":
		return Ref("Organization", *c.BillingOrganizationID)
	case c.RenderingPractitionerID != nil && *c.RenderingPractitionerID != "":
		return Ref("Practitioner", *c.RenderingPractitionerID)
	}
	return Reference{Extension: absent()}
}

func claimStatus(s gateway.ClaimStatus) string {
	switch s {
	case gateway.ClaimCancelled:
		return "cancelled"
	case gateway.ClaimEnteredInError:
		return "entered-in-error"
	}
	return "active"
}

func claimOutcome(o string) string {
	switch o {
	case "queued", "complete", "error", "partial":
		return o
	}
	return "complete"
}

// claimSupportingInfo: the claim received date everywhere, the admission
// period, type of bill and DRG on institutional claims, the service facility
// on professional and oral claims, and the three NCPDP elements the pharmacy
// profile requires (1..1) but the claim row does not carry, as data absent.
func claimSupportingInfo(c gateway.Claim, k claimKind) []SupportingInfo {
	si := make([]SupportingInfo, 0, 4)
	add := func(s SupportingInfo) {
		s.Sequence = len(si) + 1
		si = append(si, s)
	}
	category := func(code, display string) CodeableConcept {
		return cc(systemC4BBSupportingInfoType, code, display)
	}
	if !c.Created.IsZero() {
		add(SupportingInfo{Category: category("clmrecvddate", "Claim Received Date"), TimingDate: c.Created.String()})
	}
	switch {
	case c.Type == gateway.ClaimInpatient:
		// Inpatient: admissionperiod 1..1. The row has no separate admission
		// dates; the statement period is the admission for a whole stay.
		add(SupportingInfo{Category: category("admissionperiod", "Admission Period"),
			TimingPeriod: &Period{Start: c.ServiceStart.String(), End: c.ServiceEnd.String()}})
	case c.Type == gateway.ClaimPharmacy:
		add(SupportingInfo{Category: category("dayssupply", "Days Supply"), ValueQuantity: &Quantity{Extension: absent()}})
		add(SupportingInfo{Category: category("dawcode", "DAW (Dispense As Written) Code"), Code: &CodeableConcept{Extension: absent()}})
		add(SupportingInfo{Category: category("refillnum", "Refill Number"), ValueQuantity: &Quantity{Extension: absent()}})
	case (c.Type == gateway.ClaimProfessional || c.Type == gateway.ClaimOral) && c.FacilityName != "":
		add(SupportingInfo{Category: category("servicefacility", "Service Facility"), ValueReference: &Reference{Display: c.FacilityName}})
	}
	if k.institutional() && c.TypeOfBill != "" {
		add(SupportingInfo{Category: category("typeofbill", "Type of Bill"), Code: ccp(SystemTOB, c.TypeOfBill, "")})
	}
	if c.Type == gateway.ClaimInpatient && c.DRG != "" {
		add(SupportingInfo{Category: category("drg", "DRG"), Code: ccp(SystemMSDRG, c.DRG, "")})
	}
	return si
}

func claimDiagnoses(dx []gateway.ClaimDiagnosis, t gateway.ClaimType) []Diagnosis {
	if len(dx) == 0 {
		return nil
	}
	out := make([]Diagnosis, len(dx))
	for i, d := range dx {
		system := d.System
		if system == "" {
			system = SystemICD10CM
		}
		out[i] = Diagnosis{
			Sequence:                 seq(d.Sequence, i),
			DiagnosisCodeableConcept: cc(CodeSystem(system), d.Code, d.Display),
			Type:                     []CodeableConcept{diagnosisType(d.Type, t)},
		}
		if d.PresentOnAdmission != "" && t == gateway.ClaimInpatient {
			out[i].OnAdmission = ccp(SystemPOA, d.PresentOnAdmission, "")
		}
	}
	return out
}

// diagnosisType maps the row's diagnosis type to the value set the claim
// type's profile binds (required): ex-diagnosistype principal and admitting,
// C4BBClaimDiagnosisType for the rest.
func diagnosisType(typ string, t gateway.ClaimType) CodeableConcept {
	typ = strings.ToLower(strings.TrimSpace(typ))
	switch {
	case typ == "principal":
		return cc(systemDiagnosisType, "principal", "Principal Diagnosis")
	case typ == "admitting" && t == gateway.ClaimInpatient:
		return cc(systemDiagnosisType, "admitting", "Admitting Diagnosis")
	case typ == "externalcauseofinjury" && (t == gateway.ClaimInpatient || t == gateway.ClaimOutpatient):
		return cc(systemC4BBClaimDiagnosisType, "externalcauseofinjury", "External Cause of Injury")
	case typ == "patientreasonforvisit" && t == gateway.ClaimOutpatient:
		return cc(systemC4BBClaimDiagnosisType, "patientreasonforvisit", "Patient Reason for Visit")
	case t == gateway.ClaimInpatient || t == gateway.ClaimOutpatient:
		return cc(systemC4BBClaimDiagnosisType, "other", "Other")
	}
	return cc(systemC4BBClaimDiagnosisType, "secondary", "Secondary")
}

func claimProcedures(px []gateway.ClaimProcedure) []Procedure {
	if len(px) == 0 {
		return nil
	}
	principal := 0 // the lowest sequence is the principal procedure (UB-04 FL 74)
	for i, p := range px {
		if p.Sequence < px[principal].Sequence {
			principal = i
		}
	}
	out := make([]Procedure, len(px))
	for i, p := range px {
		system := p.System
		if system == "" {
			system = SystemICD10PCS
		}
		typ := cc(systemC4BBClaimProcedureType, "other", "Other")
		if i == principal {
			typ = cc(systemC4BBClaimProcedureType, "principal", "Principal")
		}
		out[i] = Procedure{
			Sequence:                 seq(p.Sequence, i),
			Type:                     []CodeableConcept{typ},
			Date:                     p.Date.String(),
			ProcedureCodeableConcept: cc(CodeSystem(system), p.Code, p.Display),
		}
	}
	return out
}

// CodeSystem returns the FHIR code system URI of a code system as the
// payer's files name it: a URI is kept (the Blue Button HCPCS URI becomes
// SystemHCPCS), and the usual short names (CPT, HCPCS, NDC, CDT, HIPPS,
// ICD-10-CM, ICD-10-PCS, SNOMED, LOINC, RxNorm, CVX, POS, revenue) map to
// their canonical URIs. Anything else is returned unchanged.
func CodeSystem(s string) string {
	if strings.IndexByte(s, ':') >= 0 {
		if s == "https://bluebutton.cms.gov/resources/codesystem/hcpcs" {
			return SystemHCPCS
		}
		return s
	}
	switch strings.ToUpper(s) { // no allocation when s is already upper case
	case "CPT", "CPT4", "CPT-4":
		return SystemCPT
	case "HCPCS":
		return SystemHCPCS
	case "NDC":
		return SystemNDC
	case "CDT":
		return SystemCDT
	case "HIPPS":
		return SystemHIPPS
	case "ICD-10-CM", "ICD10CM", "ICD-10":
		return SystemICD10CM
	case "ICD-10-PCS", "ICD10PCS":
		return SystemICD10PCS
	case "SNOMED", "SNOMED-CT", "SNOMEDCT", "SCT":
		return SystemSNOMED
	case "LOINC":
		return SystemLOINC
	case "RXNORM":
		return SystemRxNorm
	case "CVX":
		return SystemCVX
	case "POS":
		return SystemPOS
	case "REVENUE", "NUBC":
		return SystemRevenue
	}
	return s
}

// modifierSystem: numeric modifiers are CPT (Level I), alphanumeric ones
// HCPCS Level II (AMACPTCMSHCPCSModifiers).
func modifierSystem(m string) string {
	for i := 0; i < len(m); i++ {
		if m[i] < '0' || m[i] > '9' {
			return SystemHCPCS
		}
	}
	return SystemCPT
}

// looksLikeCode reports whether s is a short code (a CARC such as "50" or
// "B7", an NCPDP reject code such as "70") rather than free text.
func looksLikeCode(s string) bool {
	if len(s) == 0 || len(s) > 5 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

func seq(s, i int) int {
	if s > 0 {
		return s
	}
	return i + 1
}

func firstDate(ds ...gateway.Date) string {
	for _, d := range ds {
		if !d.IsZero() {
			return d.String()
		}
	}
	return ""
}

func firstString(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
