package gateway

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

func TestNPICheckDigit(t *testing.T) {
	if d := NPICheckDigit("123456789"); d != '3' { // CMS's worked example: 1234567893
		t.Errorf("check digit of 123456789 = %c, want 3", d)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 1000 {
		first9 := fmt.Sprintf("%09d", r.IntN(1_000_000_000))
		d := NPICheckDigit(first9)
		for c := byte('0'); c <= '9'; c++ {
			if ValidNPI(first9+string(c)) != (c == d) {
				t.Fatalf("%s: check digit %c, but %c validates %v", first9, d, c, c != d)
			}
		}
	}
}
