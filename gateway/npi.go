package gateway

// ValidNPI reports whether npi is a National Provider Identifier: ten
// digits whose last is the Luhn check digit computed over the prefix 80840
// followed by the first nine digits (45 CFR 162.406; CMS, "Requirements for
// National Provider Identifier Check Digit"). The SQL function npi_valid
// (migrations/0001) is the same check for the database's CHECK constraints.
func ValidNPI(npi string) bool {
	if len(npi) != 10 {
		return false
	}
	// The prefix 80840 contributes a constant 24 to the Luhn sum (as its
	// digits sit when the full 15-digit number is checked), so only the ten
	// NPI digits need the loop.
	sum := 24
	for i := 0; i < 10; i++ {
		c := npi[9-i]
		if c < '0' || c > '9' {
			return false
		}
		d := int(c - '0')
		if i%2 == 1 { // every second digit from the right, check digit first
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return sum%10 == 0
}

// NPICheckDigit returns the check digit that makes first9 followed by it a
// valid NPI (ValidNPI); first9 must be nine digits.
func NPICheckDigit(first9 string) byte {
	for d := byte('0'); d <= '9'; d++ {
		if ValidNPI(first9 + string(d)) {
			return d
		}
	}
	panic("gateway.NPICheckDigit: " + first9 + " is not nine digits")
}
