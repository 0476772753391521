package gateway_test

import (
	"strings"
	"testing"

	"example.com/gateway/gateway"
)

// luhn is an independent Luhn check (ISO/IEC 7812-1, Annex B) over a string
// of digits: doubling every second digit from the right, starting with the
// digit left of the check digit.
func luhn(digits string) bool {
	sum := 0
	double := false
	for i := len(digits) - 1; i >= 0; i-- {
		c := digits[i]
		if c < '0' || c > '9' {
			return false
		}
		d := int(c - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return sum%10 == 0
}

// FuzzValidNPI: ValidNPI agrees with an independent Luhn check over
// "80840" + the ten digits (CMS, "Requirements for NPI Check Digit") and
// never panics.
func FuzzValidNPI(f *testing.F) {
	for _, s := range []string{"1234567893", "1234567890", "", "123456789", "12345678931",
		"123456789a", "０１２３４５６７８９", "1245319599", "-123456789", " 1234567893"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, npi string) {
		got := gateway.ValidNPI(npi)
		want := len(npi) == 10 && luhn("80840"+npi)
		if got != want {
			t.Fatalf("ValidNPI(%q) = %v, independent Luhn says %v", npi, got, want)
		}
		if !got || len(npi) != 10 {
			return
		}
		// Changing any single digit breaks the check digit.
		for i := range 10 {
			d := npi[i]
			alt := byte('0' + (d-'0'+1)%10)
			if gateway.ValidNPI(npi[:i] + string(alt) + npi[i+1:]) {
				t.Fatalf("ValidNPI accepts %q and its one-digit change at %d", npi, i)
			}
		}
	})
}

// FuzzNormalizeTIN: a TIN normalises to exactly nine ASCII digits or is
// refused; normalising is idempotent; the EIN form 12-3456789 and the bare
// form agree.
func FuzzNormalizeTIN(f *testing.F) {
	for _, s := range []string{"123456789", "12-3456789", " 12-3456789 ", "1234567890", "12345678",
		"123-45-6789", "12-345678a", "", "١٢٣٤٥٦٧٨٩", "12\u20133456789"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		digits, ok := gateway.NormalizeTIN(s)
		if !ok {
			if digits != "" {
				t.Fatalf("NormalizeTIN(%q) refused but returned %q", s, digits)
			}
			return
		}
		if len(digits) != 9 || strings.Trim(digits, "0123456789") != "" {
			t.Fatalf("NormalizeTIN(%q) = %q: not nine digits", s, digits)
		}
		if again, ok := gateway.NormalizeTIN(digits); !ok || again != digits {
			t.Fatalf("NormalizeTIN not idempotent: %q → %q → %q, %v", s, digits, again, ok)
		}
		if ein, ok := gateway.NormalizeTIN(digits[:2] + "-" + digits[2:]); !ok || ein != digits {
			t.Fatalf("EIN form of %q normalises to %q, %v", digits, ein, ok)
		}
		// Only spaces and one EIN hyphen may be dropped.
		kept := strings.Map(func(r rune) rune {
			if r >= '0' && r <= '9' {
				return r
			}
			return -1
		}, s)
		if kept != digits {
			t.Fatalf("NormalizeTIN(%q) = %q, but the input's digits are %q", s, digits, kept)
		}
	})
}
