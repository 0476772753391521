package scalar

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/99designs/gqlgen/graphql"

	"example.com/gateway/gateway"
)

func marshal(m graphql.Marshaler) string {
	var b bytes.Buffer
	m.MarshalGQL(&b)
	return b.String()
}

// nonBuffer is an io.Writer that is not a *bytes.Buffer (the slow path).
type nonBuffer struct{ strings.Builder }

func TestMarshalMoney(t *testing.T) {
	for cents, want := range map[gateway.Money]string{
		0: "0.00", 5: "0.05", 50: "0.50", 123450: "1234.50", -307: "-3.07", 100000000: "1000000.00",
	} {
		if got := marshal(MarshalMoney(cents)); got != want {
			t.Errorf("MarshalMoney(%d) = %s, want %s", cents, got, want)
		}
		var w nonBuffer
		MarshalMoney(cents).MarshalGQL(&w)
		if w.String() != want {
			t.Errorf("MarshalMoney(%d) to a plain writer = %s", cents, w.String())
		}
		if !json.Valid([]byte(want)) {
			t.Errorf("%s is not a JSON number", want)
		}
	}
	for in, want := range map[any]gateway.Money{"12.5": 1250, json.Number("7"): 700, 3: 300, 1.25: 125} {
		if got, err := UnmarshalMoney(in); err != nil || got != want {
			t.Errorf("UnmarshalMoney(%v) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []any{"1.234", "abc", true} {
		if _, err := UnmarshalMoney(in); gateway.ErrorCode(err) != gateway.CodeInvalid {
			t.Errorf("UnmarshalMoney(%v) error = %v, want BAD_USER_INPUT", in, err)
		}
	}
}

func TestMarshalDate(t *testing.T) {
	if got := marshal(MarshalDate(gateway.NewDate(2016, 1, 2))); got != `"2016-01-02"` {
		t.Errorf("MarshalDate = %s", got)
	}
	if got := marshal(MarshalDate(gateway.NewDate(999, 12, 31))); got != `"0999-12-31"` {
		t.Errorf("MarshalDate = %s", got)
	}
	if got := marshal(MarshalDate(gateway.Date{})); got != "null" {
		t.Errorf("zero Date = %s, want null", got)
	}
	if d, err := UnmarshalDate("2024-02-29"); err != nil || d != gateway.NewDate(2024, 2, 29) {
		t.Errorf("UnmarshalDate = %v, %v", d, err)
	}
	for _, in := range []any{"2023-02-29", "02/03/1980", 20240101, ""} {
		if _, err := UnmarshalDate(in); gateway.ErrorCode(err) != gateway.CodeInvalid {
			t.Errorf("UnmarshalDate(%v) error = %v, want BAD_USER_INPUT", in, err)
		}
	}
}

func TestMarshalJSON(t *testing.T) {
	if got := marshal(MarshalJSON(json.RawMessage(`{"a":1}`))); got != `{"a":1}` {
		t.Errorf("MarshalJSON = %s", got)
	}
	if got := marshal(MarshalJSON(nil)); got != "null" {
		t.Errorf("empty JSON = %s", got)
	}
	if got, err := UnmarshalJSON(map[string]any{"b": true}); err != nil || string(got) != `{"b":true}` {
		t.Errorf("UnmarshalJSON = %s, %v", got, err)
	}
}
