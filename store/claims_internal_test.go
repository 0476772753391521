package store

import (
	"testing"

	"example.com/gateway/gateway"
)

func TestParseCents(t *testing.T) {
	for in, want := range map[string]gateway.Money{
		"0": 0, "0.00": 0, "7": 700, "900.00": 90000, "1234.5": 123450, "-3.07": -307, "-0.05": -5, "9999999999.99": 999999999999,
	} {
		if got, ok := parseCents([]byte(in)); !ok || got != want {
			t.Errorf("parseCents(%q) = %d, %v; want %d", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "-", "1.234", "1..2", "abc", "1e5", "--1"} {
		if _, ok := parseCents([]byte(in)); ok {
			t.Errorf("parseCents(%q) accepted", in)
		}
	}
	var m moneyCol
	if err := m.Scan(nil); err != nil || m.valid {
		t.Errorf("Scan(nil) = %+v, %v", m, err)
	}
	if err := m.Scan([]byte("12.34")); err != nil || !m.valid || m.cents != 1234 {
		t.Errorf("Scan(12.34) = %+v, %v", m, err)
	}
	if err := m.Scan([]byte("x")); err == nil {
		t.Error("Scan(x): no error")
	}
}
