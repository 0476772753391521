package fhir

import (
	"strings"

	"example.com/gateway/gateway"
)

// FromPriorAuthorization maps a prior authorization and its items to a PDex
// Prior Authorization (ExplanationOfBenefit, use=preauthorization, profile
// pdex-priorauthorization; PDex §pdex-395).
//
//   - status: cancelled for CANCELLED, else active; outcome: queued while
//     PENDING, partial when PARTIALLY_APPROVED, complete otherwise.
//   - preAuthRef is the authorization's identifier, preAuthRefPeriod its
//     authorized period.
//   - Each item carries the decision as the PDex review action extension
//     (X12 278 HCR01 action code: A1 certified in total, A2 certified
//     partial, A3 not certified, A4 pended, C cancelled) and, when decided,
//     the when-adjudicated extension. The review action rides on the
//     item's denialreason adjudication when the item is denied (with the
//     specific reason), else on its allowedunits adjudication (value: the
//     units approved, 0 until approved); approved items also carry
//     consumedunits (the units used).
//   - A PA-level denial reason is a header adjudication[denialreason], its
//     code an X12 claim adjustment reason code, its text the reason. A
//     denied item's reason is its own (coded when it is code-shaped, else
//     text: the item row has no code column) or else the PA's.
//   - The service category becomes item.category only when it is an X12
//     service type code (a required binding); otherwise it only steers the
//     claim type.
//
// Without p.Money no amount appears anywhere (DOMAIN trap T3: the profile
// defines item.adjudication amounts); with it each item that has a
// submitted amount carries adjudication[submitted].amount. The header
// adjudication then has no amount slice, which the profile's
// adjudication-has-amount-type-slice invariant reports as a warning only.
//
// The record has no coverage: insurance.coverage carries the
// data-absent-reason extension.
func FromPriorAuthorization(pa gateway.PriorAuthorization, items []gateway.PriorAuthorizationItem, p Policy) *ExplanationOfBenefit {
	e := &ExplanationOfBenefit{
		ResourceType: "ExplanationOfBenefit",
		ID:           pa.ID,
		Meta:         Meta{LastUpdated: instant(pa.LastUpdated), Profile: []string{ProfilePDexPriorAuthorization}},
		Identifier:   []Identifier{{System: SystemPriorAuthorization, Value: pa.Identifier}},
		Status:       "active",
		Type:         priorAuthType(pa),
		Use:          "preauthorization",
		Patient:      PatientRef(pa.MemberID),
		Created:      pa.RequestedOn.String(),
		Insurer:      PayerRef(),
		Provider:     priorAuthProvider(pa),
		Outcome:      "complete",
		Insurance:    []Insurance{{Focal: true, Coverage: Reference{Extension: absent()}}},
	}
	switch pa.Status {
	case gateway.PACancelled:
		e.Status = "cancelled"
	case gateway.PAPending:
		e.Outcome = "queued"
	case gateway.PAPartiallyApproved:
		e.Outcome = "partial"
	}
	if pa.Identifier != "" {
		e.PreAuthRef = []string{pa.Identifier}
	}
	if ap := period(pa.AuthorizedStart, pa.AuthorizedEnd); ap != nil {
		e.PreAuthRefPeriod = []Period{*ap}
	}
	if pa.OrganizationID != nil && *pa.OrganizationID != "" &&
		pa.RequestingPractitionerID != nil && *pa.RequestingPractitionerID != "" {
		e.CareTeam = []CareTeam{{Sequence: 1, Provider: Ref("Practitioner", *pa.RequestingPractitionerID)}}
	}

	decided := pa.DecidedOn.String()
	if pa.DenialReason != "" || pa.DenialReasonCode != "" {
		code := reviewActionFor(pa.Status, 0, 0)
		e.Adjudication = []Adjudication{{
			Extension: reviewExtensions(code, decided),
			Category:  cc(systemPDexAdjudicationDiscrim, "denialreason", "Denial Reason"),
			Reason:    denialReason(pa.DenialReasonCode, pa.DenialReason),
		}}
	}

	e.Item = make([]Item, len(items))
	for i, it := range items {
		item := Item{
			Sequence:         seq(it.Sequence, i),
			ProductOrService: cc(CodeSystem(it.ProductSystem), it.ProductCode, it.ProductDisplay),
			Quantity:         &Quantity{Value: decimal(it.QuantityRequested)},
		}
		if looksLikeCode(pa.ServiceCategory) && len(pa.ServiceCategory) <= 2 {
			// An X12 service type code (PriorAuthServiceTypeCodes, a required
			// binding: a free-text category would not conform, so it is left
			// out and only steers the claim type).
			item.Category = ccp(systemX12ServiceType, pa.ServiceCategory, "")
		}
		code := itemReviewAction(pa.Status, it)
		ext := reviewExtensions(code, decided)
		var adj []Adjudication
		if code.Code == "A3" {
			// The item's own reason, else the authorization's (a fully denied
			// PA always has one: a database CHECK).
			var r *CodeableConcept
			if it.DenialReason == "" || it.DenialReason == pa.DenialReason {
				r = denialReason(pa.DenialReasonCode, firstString(pa.DenialReason, code.Display))
			} else if looksLikeCode(it.DenialReason) {
				r = denialReason(it.DenialReason, "")
			} else {
				r = denialReason("", it.DenialReason)
			}
			adj = append(adj, Adjudication{
				Extension: ext,
				Category:  cc(systemPDexAdjudicationDiscrim, "denialreason", "Denial Reason"),
				Reason:    r,
			})
		} else {
			adj = append(adj, Adjudication{
				Extension: ext,
				Category:  cc(systemPDexAdjudicationDiscrim, "allowedunits", "allowed units"),
				Value:     decimal(it.QuantityApproved),
			})
			if code.Code == "A1" || code.Code == "A2" {
				adj = append(adj, Adjudication{
					Category: cc(systemPDexAdjudicationDiscrim, "consumedunits", "consumed units"),
					Value:    decimal(it.QuantityUsed),
				})
			}
		}
		if p.Money && it.Submitted != nil {
			adj = append(adj, Adjudication{Category: cc(systemAdjudication, "submitted", "Submitted Amount"), Amount: money(it.Submitted)})
		}
		item.Adjudication = adj
		e.Item[i] = item
	}
	return e
}

// priorAuthType is the claim-type of a prior authorization: pharmacy for
// drug PAs; institutional, oral or professional by the service category's
// wording; professional otherwise.
func priorAuthType(pa gateway.PriorAuthorization) CodeableConcept {
	if pa.Drug {
		return cc(systemClaimType, "pharmacy", "Pharmacy")
	}
	c := strings.ToLower(pa.ServiceCategory)
	switch {
	case strings.Contains(c, "inpatient"), strings.Contains(c, "outpatient"),
		strings.Contains(c, "institutional"), strings.Contains(c, "facility"):
		return cc(systemClaimType, "institutional", "Institutional")
	case strings.Contains(c, "dental"), strings.Contains(c, "oral"):
		return cc(systemClaimType, "oral", "Oral")
	}
	return cc(systemClaimType, "professional", "Professional")
}

// priorAuthProvider: the requesting organization, else the requesting
// practitioner (who then is not repeated in careTeam).
func priorAuthProvider(pa gateway.PriorAuthorization) Reference {
	if pa.OrganizationID != nil && *pa.OrganizationID != "" {
		return Ref("Organization", *pa.OrganizationID)
	}
	return refOrAbsent("Practitioner", pa.RequestingPractitionerID)
}

// itemReviewAction is the X12 HCR01 action of one item: from the item's own
// status when it has one, else from the authorization's (a partially
// approved authorization's items by their approved quantity).
func itemReviewAction(status gateway.PriorAuthorizationStatus, it gateway.PriorAuthorizationItem) Coding {
	switch strings.ToUpper(strings.TrimSpace(it.Status)) {
	case "APPROVED", "CERTIFIED", "A1":
		status = gateway.PAApproved
	case "PARTIALLY_APPROVED", "PARTIAL", "MODIFIED", "A2", "A6":
		return reviewActionFor(gateway.PAPartiallyApproved, it.QuantityApproved, -1)
	case "DENIED", "NOT_CERTIFIED", "A3":
		status = gateway.PADenied
	case "PENDING", "PENDED", "A4":
		status = gateway.PAPending
	case "CANCELLED", "CANCELED", "C":
		status = gateway.PACancelled
	}
	return reviewActionFor(status, it.QuantityApproved, it.QuantityRequested)
}

// reviewActionFor maps a decision to its X12 HCR01 code. For a partial
// decision, approved and requested decide between in total, partial and
// not certified (requested < 0: partial whatever the quantities).
func reviewActionFor(status gateway.PriorAuthorizationStatus, approved, requested float64) Coding {
	switch status {
	case gateway.PAApproved:
		return Coding{systemX12ReviewAction, "A1", "Certified in total"}
	case gateway.PADenied:
		return Coding{systemX12ReviewAction, "A3", "Not Certified"}
	case gateway.PAPending:
		return Coding{systemX12ReviewAction, "A4", "Pended"}
	case gateway.PACancelled:
		return Coding{systemX12ReviewAction, "C", "Cancelled"}
	case gateway.PAPartiallyApproved:
		switch {
		case requested > 0 && approved >= requested:
			return Coding{systemX12ReviewAction, "A1", "Certified in total"}
		case requested > 0 && approved <= 0:
			return Coding{systemX12ReviewAction, "A3", "Not Certified"}
		}
	}
	return Coding{systemX12ReviewAction, "A2", "Certified - partial"}
}

// reviewExtensions are the PDex reviewAction extension with the action
// code, and the when-adjudicated extension when the decision has a date.
func reviewExtensions(code Coding, decided string) []Extension {
	action := CodeableConcept{Coding: []Coding{code}}
	ext := []Extension{{URL: extReviewAction, Extension: []Extension{{URL: extReviewActionCode, ValueCodeableConcept: &action}}}}
	if decided != "" && code.Code != "A4" {
		ext = append(ext, Extension{URL: extWhenAdjudicated, ValueDateTime: decided})
	}
	return ext
}

// denialReason is the reason of a denialreason adjudication: the X12 claim
// adjustment reason code when there is one, and the reason's text.
func denialReason(code, text string) *CodeableConcept {
	r := &CodeableConcept{Text: text}
	if code != "" {
		r.Coding = []Coding{{System: SystemCARC, Code: code}}
	}
	return r
}
