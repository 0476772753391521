package ingest

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"example.com/gateway/gateway"
)

type fEOB struct {
	ResourceType     string            `json:"resourceType"`
	ID               string            `json:"id"`
	Meta             *fMeta            `json:"meta"`
	Identifier       []fIdentifier     `json:"identifier"`
	Status           string            `json:"status"`
	Type             *fConcept         `json:"type"`
	SubType          *fConcept         `json:"subType"`
	Use              string            `json:"use"`
	Patient          *fReference       `json:"patient"`
	BillablePeriod   *fPeriod          `json:"billablePeriod"`
	Created          string            `json:"created"`
	Provider         *fReference       `json:"provider"`
	Outcome          string            `json:"outcome"`
	PreAuthRef       []string          `json:"preAuthRef"`
	PreAuthRefPeriod []fPeriod         `json:"preAuthRefPeriod"`
	CareTeam         []fCareTeam       `json:"careTeam"`
	SupportingInfo   []fSupportingInfo `json:"supportingInfo"`
	Diagnosis        []fDiagnosis      `json:"diagnosis"`
	Procedure        []fProcedure      `json:"procedure"`
	Insurance        []fInsurance      `json:"insurance"`
	Item             []fItem           `json:"item"`
	Adjudication     []fAdjudication   `json:"adjudication"`
	Total            []fTotal          `json:"total"`
	Payment          *fPayment         `json:"payment"`
}

type fCareTeam struct {
	Sequence int         `json:"sequence"`
	Provider *fReference `json:"provider"`
	Role     *fConcept   `json:"role"`
}

type fSupportingInfo struct {
	Category       fConcept    `json:"category"`
	Code           *fConcept   `json:"code"`
	TimingDate     string      `json:"timingDate"`
	ValueString    string      `json:"valueString"`
	ValueReference *fReference `json:"valueReference"`
}

type fDiagnosis struct {
	Sequence                 int        `json:"sequence"`
	DiagnosisCodeableConcept *fConcept  `json:"diagnosisCodeableConcept"`
	Type                     []fConcept `json:"type"`
	OnAdmission              *fConcept  `json:"onAdmission"`
}

type fProcedure struct {
	Sequence                 int        `json:"sequence"`
	Type                     []fConcept `json:"type"`
	Date                     string     `json:"date"`
	ProcedureCodeableConcept *fConcept  `json:"procedureCodeableConcept"`
}

type fInsurance struct {
	Focal    bool        `json:"focal"`
	Coverage *fReference `json:"coverage"`
}

type fTotal struct {
	Category fConcept `json:"category"`
	Amount   *fMoney  `json:"amount"`
}

type fPayment struct {
	Adjustment *fMoney `json:"adjustment"`
	Date       string  `json:"date"`
	Amount     *fMoney `json:"amount"`
}

func (r *fEOB) resourceType() string { return r.ResourceType }

type fItem struct {
	Sequence                int             `json:"sequence"`
	Revenue                 *fConcept       `json:"revenue"`
	Category                *fConcept       `json:"category"`
	ProductOrService        *fConcept       `json:"productOrService"`
	Modifier                []fConcept      `json:"modifier"`
	ServicedDate            string          `json:"servicedDate"`
	ServicedPeriod          *fPeriod        `json:"servicedPeriod"`
	LocationCodeableConcept *fConcept       `json:"locationCodeableConcept"`
	Quantity                *fQuantity      `json:"quantity"`
	Adjudication            []fAdjudication `json:"adjudication"`
}

type fAdjudication struct {
	Extension []fExtension `json:"extension"`
	Category  fConcept     `json:"category"`
	Reason    *fConcept    `json:"reason"`
	Amount    *fMoney      `json:"amount"`
	Value     *json.Number `json:"value"`
}

const (
	systemC4BBIdType = "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBIdentifierType"
	maxItems         = 999
	eobPath          = "ExplanationOfBenefit"
)

// explanationOfBenefit reads a CARIN BB ExplanationOfBenefit: use=claim is
// a claim with its lines, diagnoses and procedures; use=preauthorization a
// PDex prior authorization with its items.
func (p *Parser) explanationOfBenefit(b *Batch, line int, text []byte) error {
	var r fEOB
	if p.stdJSON {
		if err := json.Unmarshal(text, &r); err != nil {
			return err
		}
	} else {
		if p.strs == nil {
			p.strs = make(map[string]string, 1024)
		}
		if err := decodeEOB(text, &r, p.strs); err != nil {
			return err
		}
	}
	if r.ResourceType != "ExplanationOfBenefit" {
		return bad("resourceType", "resourceType %q does not match the resource", truncate(r.ResourceType, 40))
	}
	if len(r.Item) > maxItems {
		return bad(eobPath+".item", "more than %d items", maxItems)
	}
	switch r.Use {
	case "claim":
		return p.claim(b, line, &r)
	case "preauthorization":
		return p.priorAuthorization(b, line, &r)
	case "":
		return missing(eobPath + ".use")
	}
	return bad(eobPath+".use", "unsupported use: claim or preauthorization")
}

// claimIdentifier is the identifier of system id, else the one typed uc
// (CARIN unique claim id), else the first.
func claimIdentifier(ids []fIdentifier, system string) string {
	if v := identifierBySystem(ids, system); v != "" {
		return v
	}
	for _, id := range ids {
		if cd, ok := id.Type.bySystem(systemC4BBIdType); ok && cd.Code == "uc" && id.Value != "" {
			return id.Value
		}
	}
	if len(ids) > 0 {
		return ids[0].Value
	}
	return ""
}

func (p *Parser) claim(b *Batch, line int, r *fEOB) error {
	c := Claim{Line: line}
	var err error
	if c.Identifier = claimIdentifier(r.Identifier, systemClaimID); c.Identifier == "" {
		return missing(eobPath + ".identifier")
	}
	if err := checkText(c.Identifier, 64, eobPath+".identifier"); err != nil {
		return err
	}
	switch r.Status {
	case "active":
		c.Status = gateway.ClaimActive
	case "cancelled":
		c.Status = gateway.ClaimCancelled
	case "entered-in-error":
		c.Status = gateway.ClaimEnteredInError
	case "":
		return missing(eobPath + ".status")
	default:
		return bad(eobPath+".status", "unsupported status for an adjudicated claim")
	}
	switch r.Outcome {
	case "complete", "partial", "queued", "error":
		c.Outcome = r.Outcome
	case "":
		c.Outcome = "complete"
	default:
		return bad(eobPath+".outcome", "not a RemittanceOutcome code")
	}
	if c.Type, err = claimType(r); err != nil {
		return err
	}
	if c.Patient, err = requireRef(r.Patient, eobPath+".patient", "Patient"); err != nil {
		return err
	}
	if r.BillablePeriod == nil || r.BillablePeriod.Start == "" {
		return missing(eobPath + ".billablePeriod.start")
	}
	if c.ServiceStart, err = p.pastDate(r.BillablePeriod.Start, eobPath+".billablePeriod.start"); err != nil {
		return err
	}
	if c.ServiceEnd, err = p.pastDate(r.BillablePeriod.End, eobPath+".billablePeriod.end"); err != nil {
		return err
	}
	if !c.ServiceEnd.IsZero() && c.ServiceEnd.Before(c.ServiceStart) {
		return bad(eobPath+".billablePeriod.end", "period ends before it starts")
	}
	if r.Created == "" {
		return missing(eobPath + ".created")
	}
	created, err := p.pastDate(r.Created, eobPath+".created")
	if err != nil {
		return err
	}
	// CARIN: created is the adjudication date; the received date is
	// supportingInfo[clmrecvddate]. Without one, created is both.
	c.Created = created
	for i, si := range r.SupportingInfo {
		path := eobPath + ".supportingInfo[" + strconv.Itoa(i) + "]"
		switch si.Category.first().Code {
		case "clmrecvddate":
			recv, err := p.pastDate(si.TimingDate, path+".timingDate")
			if err != nil {
				return err
			}
			if !recv.IsZero() {
				c.Created = recv
				if recv != created {
					c.Processed = created
				}
			}
		case "typeofbill":
			c.TypeOfBill = si.Code.first().Code
		case "drg":
			c.DRG = si.Code.first().Code
		case "servicefacility":
			if si.ValueReference != nil {
				c.FacilityName = si.ValueReference.Display
			}
		}
	}
	if err := checkText(c.FacilityName, 200, eobPath+".supportingInfo"); err != nil {
		return err
	}
	if len(r.Insurance) > 0 {
		ins := r.Insurance[0]
		for i := range r.Insurance {
			if r.Insurance[i].Focal {
				ins = r.Insurance[i]
				break
			}
		}
		if c.Coverage, err = reference(ins.Coverage, eobPath+".insurance.coverage", "Coverage"); err != nil {
			return err
		}
	}
	if c.BillingOrganization, err = reference(r.Provider, eobPath+".provider", "Organization", "Practitioner", "PractitionerRole"); err != nil {
		return err
	}
	var providerPractitioner Ref
	if c.BillingOrganization.Type != "Organization" {
		providerPractitioner, c.BillingOrganization = c.BillingOrganization, Ref{}
		if providerPractitioner.Type == "PractitionerRole" {
			return bad(eobPath+".provider", "a PractitionerRole provider is not supported: refer to the Organization or Practitioner")
		}
	}
	for i, ct := range r.CareTeam {
		ref, err := reference(ct.Provider, eobPath+".careTeam["+strconv.Itoa(i)+"].provider", "Practitioner", "Organization", "PractitionerRole")
		if err != nil {
			return err
		}
		if ref.Type == "Practitioner" {
			c.RenderingPractitioner = ref
			break
		}
	}
	if c.RenderingPractitioner.IsZero() {
		c.RenderingPractitioner = providerPractitioner
	}

	// Network status: the billing network status slice (the claim row has
	// one in_network flag); absent means in network.
	c.InNetwork = true
	for _, a := range r.Adjudication {
		if a.Category.first().Code == "billingnetworkstatus" && a.Reason.first().Code == "outofnetwork" {
			c.InNetwork = false
		}
	}
	c.SecurityLabels, c.Sensitive = securityLabels(r.Meta)

	// Totals and payment (the full, financial profiles; Basis EOBs have
	// none).
	for i, t := range r.Total {
		path := eobPath + ".total[" + strconv.Itoa(i) + "].amount"
		m, err := money(t.Amount, path)
		if err != nil {
			return err
		}
		switch t.Category.first().Code {
		case "submitted":
			c.TotalSubmitted = m
		case "eligible":
			c.TotalAllowed = m
		case "benefit":
			c.TotalPaid = m
		case "copay":
			c.Copay = m
		case "coinsurance":
			c.Coinsurance = m
		case "deductible":
			c.Deductible = m
		case "noncovered":
			c.NonCovered = m
		case "memberliability":
			c.MemberLiability = m
		}
	}
	if pay := r.Payment; pay != nil {
		if c.PaymentAmount, err = money(pay.Amount, eobPath+".payment.amount"); err != nil {
			return err
		}
		if c.PaymentAdjust, err = money(pay.Adjustment, eobPath+".payment.adjustment"); err != nil {
			return err
		}
		if c.PaymentDate, err = p.pastDate(pay.Date, eobPath+".payment.date"); err != nil {
			return err
		}
	}

	// Lines. The claim's place of service is the one all lines share (the
	// mapping writes the claim's on each line that has none of its own).
	c.Lines = make([]gateway.ClaimLine, 0, len(r.Item))
	seen := make(map[int]bool, len(r.Item))
	for i := range r.Item {
		l, err := p.claimLine(&r.Item[i], i, c.Type)
		if err != nil {
			return err
		}
		if seen[l.Sequence] {
			return bad(eobPath+".item["+strconv.Itoa(i)+"].sequence", "duplicate sequence")
		}
		seen[l.Sequence] = true
		c.Lines = append(c.Lines, l)
	}
	if len(c.Lines) > 0 {
		pos := c.Lines[0].PlaceOfService
		for _, l := range c.Lines[1:] {
			if l.PlaceOfService != pos {
				pos = ""
				break
			}
		}
		if pos != "" {
			c.PlaceOfService = pos
			for i := range c.Lines {
				c.Lines[i].PlaceOfService = ""
			}
		}
	}

	clear(seen)
	for i, d := range r.Diagnosis {
		path := eobPath + ".diagnosis[" + strconv.Itoa(i) + "]"
		if d.DiagnosisCodeableConcept == nil {
			return bad(path+".diagnosisCodeableConcept", "required element missing (diagnosisReference is not supported)")
		}
		cd := d.DiagnosisCodeableConcept.first()
		if cd.Code == "" {
			return missing(path + ".diagnosisCodeableConcept.coding.code")
		}
		dx := gateway.ClaimDiagnosis{
			Sequence: d.Sequence,
			Code:     cd.Code,
			System:   cd.System,
			Display:  cd.Display,
			Type:     "secondary",
		}
		if err := checkCode(dx.System, dx.Code, path+".diagnosisCodeableConcept"); err != nil {
			return err
		}
		if len(d.Type) > 0 {
			if t := d.Type[0].first().Code; t != "" {
				dx.Type = t
			}
		}
		if d.OnAdmission != nil {
			dx.PresentOnAdmission = d.OnAdmission.first().Code
		}
		if dx.Sequence <= 0 {
			return bad(path+".sequence", "a positive sequence is required")
		}
		if seen[dx.Sequence] {
			return bad(path+".sequence", "duplicate sequence")
		}
		seen[dx.Sequence] = true
		c.Diagnoses = append(c.Diagnoses, dx)
	}
	clear(seen)
	for i, pr := range r.Procedure {
		path := eobPath + ".procedure[" + strconv.Itoa(i) + "]"
		if pr.ProcedureCodeableConcept == nil {
			return bad(path+".procedureCodeableConcept", "required element missing (procedureReference is not supported)")
		}
		cd := pr.ProcedureCodeableConcept.first()
		if cd.Code == "" {
			return missing(path + ".procedureCodeableConcept.coding.code")
		}
		px := gateway.ClaimProcedure{Sequence: pr.Sequence, Code: cd.Code, System: cd.System, Display: cd.Display}
		if px.Date, err = p.pastDate(pr.Date, path+".date"); err != nil {
			return err
		}
		if px.Sequence <= 0 {
			return bad(path+".sequence", "a positive sequence is required")
		}
		if seen[px.Sequence] {
			return bad(path+".sequence", "duplicate sequence")
		}
		seen[px.Sequence] = true
		c.Procedures = append(c.Procedures, px)
	}
	b.Claims = append(b.Claims, c)
	return nil
}

// claimType reads the claim-type code (and the institutional subtype).
func claimType(r *fEOB) (gateway.ClaimType, error) {
	cd, ok := r.Type.bySystem(systemClaimType)
	if !ok {
		cd = r.Type.first()
	}
	switch cd.Code {
	case "professional":
		return gateway.ClaimProfessional, nil
	case "oral":
		return gateway.ClaimOral, nil
	case "pharmacy":
		return gateway.ClaimPharmacy, nil
	case "institutional":
		if st, ok := r.SubType.bySystem(systemInstSubType); ok {
			switch st.Code {
			case "inpatient":
				return gateway.ClaimInpatient, nil
			case "outpatient":
				return gateway.ClaimOutpatient, nil
			}
		}
		if r.Meta != nil {
			for _, p := range r.Meta.Profile {
				switch {
				case strings.Contains(p, "Inpatient-Institutional"):
					return gateway.ClaimInpatient, nil
				case strings.Contains(p, "Outpatient-Institutional"):
					return gateway.ClaimOutpatient, nil
				}
			}
		}
		return "", bad(eobPath+".subType", "an institutional claim needs its subtype (inpatient or outpatient)")
	case "":
		return "", missing(eobPath + ".type")
	}
	return "", bad(eobPath+".type", "unsupported claim type: institutional, professional, oral or pharmacy")
}

func (p *Parser) claimLine(it *fItem, i int, t gateway.ClaimType) (gateway.ClaimLine, error) {
	path := eobPath + ".item[" + strconv.Itoa(i) + "]"
	l := gateway.ClaimLine{Sequence: it.Sequence}
	if l.Sequence <= 0 {
		return l, bad(path+".sequence", "a positive sequence is required")
	}
	var err error
	if l.ProductCode, l.ProductSystem, l.ProductDisplay, err = product(it.ProductOrService, path+".productOrService"); err != nil {
		return l, err
	}
	switch {
	case it.ServicedDate != "":
		l.ServiceDate, err = p.pastDate(it.ServicedDate, path+".servicedDate")
	case it.ServicedPeriod != nil:
		l.ServiceDate, err = p.pastDate(it.ServicedPeriod.Start, path+".servicedPeriod.start")
	}
	if err != nil {
		return l, err
	}
	for _, m := range it.Modifier {
		if code := m.first().Code; code != "" {
			l.Modifiers = append(l.Modifiers, code)
		}
	}
	if l.Quantity, err = quantity(it.Quantity, path+".quantity", 1); err != nil {
		return l, err
	}
	l.RevenueCode = it.Revenue.first().Code
	l.PlaceOfService = it.LocationCodeableConcept.first().Code
	for j, a := range it.Adjudication {
		apath := path + ".adjudication[" + strconv.Itoa(j) + "]"
		code := a.Category.first().Code
		switch code {
		case "adjustmentreason", "rejectreason", "denialreason":
			if a.Reason != nil {
				if cd := a.Reason.first(); cd.Code != "" {
					l.DenialReason = cd.Code
				} else {
					l.DenialReason = a.Reason.Text
				}
			}
			continue
		}
		m, err := money(a.Amount, apath+".amount")
		if err != nil {
			return l, err
		}
		switch code {
		case "submitted":
			l.Submitted = m
		case "eligible":
			l.Allowed = m
		case "benefit":
			l.Paid = m
		case "copay":
			l.Copay = m
		case "coinsurance":
			l.Coinsurance = m
		case "deductible":
			l.Deductible = m
		case "memberliability":
			l.MemberLiability = m
		}
	}
	if err := checkText(l.ProductDisplay+l.DenialReason, 1000, path); err != nil {
		return l, err
	}
	return l, nil
}

// product reads item.productOrService: a code with its system is required.
func product(c *fConcept, path string) (code, system, display string, err error) {
	if c == nil {
		return "", "", "", missing(path)
	}
	cd := c.first()
	switch {
	case cd.Code == "":
		return "", "", "", missing(path + ".coding.code")
	case cd.System == "":
		return "", "", "", missing(path + ".coding.system")
	}
	if err := checkCode(cd.System, cd.Code, path); err != nil {
		return "", "", "", err
	}
	return cd.Code, cd.System, cd.Display, nil
}

// checkCode checks the codes whose shape is known: NDC (10 or 11 digits,
// with or without hyphens), CPT (five characters), ICD-10-CM (a letter, a
// digit, then up to five more characters with an optional dot).
func checkCode(system, code, path string) error {
	if len(code) > 64 {
		return bad(path, "code longer than 64 characters")
	}
	switch system {
	case systemNDC:
		d := strings.ReplaceAll(code, "-", "")
		if (len(d) != 10 && len(d) != 11) || strings.Trim(d, "0123456789") != "" {
			return bad(path, "invalid NDC: 10 or 11 digits are required")
		}
	case systemCPT:
		if len(code) != 5 {
			return bad(path, "invalid CPT code: five characters are required")
		}
	case systemICD10CM:
		c := strings.ReplaceAll(code, ".", "")
		if len(c) < 3 || len(c) > 7 || c[0] < 'A' || c[0] > 'Z' || c[1] < '0' || c[1] > '9' {
			return bad(path, "invalid ICD-10-CM code")
		}
	}
	return nil
}

// priorAuthorization reads a PDex prior authorization.
func (p *Parser) priorAuthorization(b *Batch, line int, r *fEOB) error {
	pa := PriorAuthorization{Line: line}
	var err error
	pa.Identifier = identifierBySystem(r.Identifier, systemPriorAuthID)
	if pa.Identifier == "" && len(r.PreAuthRef) > 0 {
		pa.Identifier = r.PreAuthRef[0]
	}
	if pa.Identifier == "" && len(r.Identifier) > 0 {
		pa.Identifier = r.Identifier[0].Value
	}
	if pa.Identifier == "" {
		return missing(eobPath + ".identifier")
	}
	if err := checkText(pa.Identifier, 64, eobPath+".identifier"); err != nil {
		return err
	}
	if pa.Patient, err = requireRef(r.Patient, eobPath+".patient", "Patient"); err != nil {
		return err
	}
	if r.Created == "" {
		return missing(eobPath + ".created")
	}
	if pa.RequestedOn, err = p.pastDate(r.Created, eobPath+".created"); err != nil {
		return err
	}
	if len(r.PreAuthRefPeriod) > 0 {
		ap := r.PreAuthRefPeriod[0]
		if pa.AuthorizedStart, err = date(ap.Start, eobPath+".preAuthRefPeriod.start"); err != nil {
			return err
		}
		if pa.AuthorizedEnd, err = date(ap.End, eobPath+".preAuthRefPeriod.end"); err != nil {
			return err
		}
		if !pa.AuthorizedEnd.IsZero() && pa.AuthorizedEnd.Before(pa.AuthorizedStart) {
			return bad(eobPath+".preAuthRefPeriod.end", "period ends before it starts")
		}
	}

	// The requester: the provider organization, with the practitioner in
	// careTeam; or the practitioner as provider.
	prov, err := reference(r.Provider, eobPath+".provider", "Organization", "Practitioner")
	if err != nil {
		return err
	}
	if prov.Type == "Organization" {
		pa.Organization = prov
	} else {
		pa.RequestingPractitioner = prov
	}
	for i, ct := range r.CareTeam {
		ref, err := reference(ct.Provider, eobPath+".careTeam["+strconv.Itoa(i)+"].provider", "Practitioner", "Organization")
		if err != nil {
			return err
		}
		if ref.Type == "Practitioner" && pa.RequestingPractitioner.IsZero() {
			pa.RequestingPractitioner = ref
		}
	}

	// Decision: the header denialreason adjudication carries the
	// authorization's own review action; otherwise status and outcome say.
	var headerAction string
	var decided string
	for _, a := range r.Adjudication {
		if a.Category.first().Code != "denialreason" {
			continue
		}
		action, when := reviewAction(a.Extension)
		headerAction, decided = action, firstNonEmpty(decided, when)
		if a.Reason != nil {
			cd := a.Reason.first()
			pa.DenialReasonCode = cd.Code
			pa.DenialReason = firstNonEmpty(a.Reason.Text, cd.Display)
		}
	}
	switch {
	case r.Status == "cancelled":
		pa.Status = gateway.PACancelled
	case r.Status != "active" && r.Status != "":
		return bad(eobPath+".status", "unsupported status for a prior authorization")
	case headerAction != "":
		pa.Status = statusOfAction(headerAction)
	case r.Outcome == "queued":
		pa.Status = gateway.PAPending
	case r.Outcome == "partial":
		pa.Status = gateway.PAPartiallyApproved
	case r.Outcome == "complete" || r.Outcome == "":
		pa.Status = gateway.PAApproved
	default:
		return bad(eobPath+".outcome", "not a RemittanceOutcome code")
	}
	if pa.Status == "" {
		return bad(eobPath+".adjudication", "unknown review action code")
	}

	for i := range r.Item {
		it, when, err := p.priorAuthItem(&r.Item[i], i, &pa)
		if err != nil {
			return err
		}
		decided = firstNonEmpty(decided, when)
		pa.Items = append(pa.Items, it)
	}
	if pa.Status == gateway.PADenied && pa.DenialReason == "" {
		// The database requires the specific reason of a denial; an item's
		// reason is the authorization's when it has none of its own.
		for _, it := range pa.Items {
			if it.DenialReason != "" {
				pa.DenialReason = it.DenialReason
				break
			}
		}
		if pa.DenialReason == "" {
			return bad(eobPath+".adjudication", "a denied prior authorization needs its denial reason")
		}
	}
	if decided != "" {
		t, err := instantOf(decided, eobPath+".adjudication.extension")
		if err != nil {
			return err
		}
		pa.DecidedOn = gateway.DateOf(t.UTC())
		pa.LastStatusChange = t
	} else {
		pa.LastStatusChange = pa.RequestedOn.Time()
	}
	if pa.LastStatusChange.After(p.Today.Time().Add(48 * time.Hour)) {
		return bad(eobPath+".adjudication.extension", "decision date is in the future")
	}

	// Drug prior authorizations (not Provider Access data): the pharmacy
	// claim type, or a drug code (NDC, RxNorm) on an item. The free-text
	// service category is not trusted for it ("Specialty pharmacy" may be
	// a lab test).
	if cd, ok := r.Type.bySystem(systemClaimType); ok && cd.Code == "pharmacy" {
		pa.Drug = true
	}
	for i, it := range pa.Items {
		if it.ProductSystem == systemNDC || it.ProductSystem == systemRxNorm {
			pa.Drug = true
		}
		if c := r.Item[i].Category; c != nil && pa.ServiceCategory == "" {
			pa.ServiceCategory = firstNonEmpty(c.first().Code, c.Text)
		}
	}
	if pa.ServiceCategory == "" {
		// Without an item category (an X12 service type), the claim type is
		// all there is of the service's category.
		switch cd, _ := r.Type.bySystem(systemClaimType); cd.Code {
		case "institutional":
			pa.ServiceCategory = "Institutional"
		case "oral":
			pa.ServiceCategory = "Oral"
		}
	}
	pa.SecurityLabels, pa.Sensitive = securityLabels(r.Meta)
	b.PriorAuthorizations = append(b.PriorAuthorizations, pa)
	return nil
}

func (p *Parser) priorAuthItem(it *fItem, i int, pa *PriorAuthorization) (gateway.PriorAuthorizationItem, string, error) {
	path := eobPath + ".item[" + strconv.Itoa(i) + "]"
	out := gateway.PriorAuthorizationItem{Sequence: it.Sequence}
	if out.Sequence <= 0 {
		return out, "", bad(path+".sequence", "a positive sequence is required")
	}
	var err error
	if out.ProductCode, out.ProductSystem, out.ProductDisplay, err = product(it.ProductOrService, path+".productOrService"); err != nil {
		return out, "", err
	}
	if out.QuantityRequested, err = quantity(it.Quantity, path+".quantity", 1); err != nil {
		return out, "", err
	}
	var decided string
	for j, a := range it.Adjudication {
		apath := path + ".adjudication[" + strconv.Itoa(j) + "]"
		action, when := reviewAction(a.Extension)
		if action != "" {
			if out.Status = string(statusOfAction(action)); out.Status == "" {
				return out, "", bad(apath+".extension", "unknown review action code")
			}
		}
		decided = firstNonEmpty(decided, when)
		switch a.Category.first().Code {
		case "denialreason":
			// A reason with a code and a text is the authorization's (the
			// item inherits it); a code alone or a text alone is the item's
			// own.
			if a.Reason != nil {
				switch cd := a.Reason.first(); {
				case cd.Code == "":
					out.DenialReason = a.Reason.Text
				case a.Reason.Text == "":
					out.DenialReason = cd.Code
				}
			}
		case "allowedunits":
			if out.QuantityApproved, err = number(a.Value, apath+".value"); err != nil {
				return out, "", err
			}
		case "consumedunits":
			if out.QuantityUsed, err = number(a.Value, apath+".value"); err != nil {
				return out, "", err
			}
		case "submitted":
			if out.Submitted, err = money(a.Amount, apath+".amount"); err != nil {
				return out, "", err
			}
		}
	}
	return out, decided, nil
}

// reviewAction returns the PDex review action code and when-adjudicated
// dateTime among extensions.
func reviewAction(ext []fExtension) (code, when string) {
	for _, e := range ext {
		switch e.URL {
		case extReviewAction:
			for _, sub := range e.Extension {
				if sub.URL == extReviewActionCode && sub.ValueCodeableConcept != nil {
					code = sub.ValueCodeableConcept.first().Code
				}
			}
		case extWhenAdjudicated:
			when = e.ValueDateTime
		}
	}
	return code, when
}

// statusOfAction maps an X12 278 HCR01 action code to a status; "" for an
// unknown code.
func statusOfAction(code string) gateway.PriorAuthorizationStatus {
	switch code {
	case "A1":
		return gateway.PAApproved
	case "A2", "A6":
		return gateway.PAPartiallyApproved
	case "A3":
		return gateway.PADenied
	case "A4":
		return gateway.PAPending
	case "C", "CT":
		return gateway.PACancelled
	}
	return ""
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
