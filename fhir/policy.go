package fhir

// Policy is what the caller's data policy lets the mapping emit. The caller
// derives it from the principal (auth.MemberScope); the mapping only obeys
// it and never decides it.
type Policy struct {
	// Money allows monetary elements: amounts, totals, payment amount, date
	// and adjustment (Patient Access: true; Provider Access: false,
	// DESIGN.md §1 rule 2). False yields the CARIN BB Basis profiles.
	Money bool
}

// The payer: the insurer of every claim and the managing entity of every
// attribution group, as the Organization with id PayerID (see Payer).
const (
	PayerID   = "payer"
	PayerName = "Example Health Plan"
)

// MoneyElements returns the monetary elements of this package's output, as
// JSON keys ("parent.child" for a child of a parent element anywhere in the
// tree). Without Policy.Money none of them appears. It documents the mapping
// and lets tests of exported output check it; it is not the policy, which is
// auth.MoneyFields (what a principal may read) applied through Policy.Money.
func MoneyElements() []string {
	return []string{"amount", "total", "benefitBalance", "payment.amount", "payment.date", "payment.adjustment"}
}
