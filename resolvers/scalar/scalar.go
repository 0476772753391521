// Package scalar marshals the GraphQL scalars that map onto the domain's
// own types: Date (gateway.Date), Money (gateway.Money) and JSON (raw FHIR
// resources). gqlgen finds these functions by name (MarshalDate,
// UnmarshalDate, …; see gqlgen.yml), so the domain types stay free of
// GraphQL. Input errors are *gateway.Error with BAD_USER_INPUT, so the
// error presenter shows them instead of masking them as internal.
package scalar

import (
	"bytes"
	"encoding/json"
	"io"
	"strconv"

	"github.com/99designs/gqlgen/graphql"

	"example.com/gateway/gateway"
)

// MarshalDate writes "YYYY-MM-DD"; the zero Date ("no date") is null.
func MarshalDate(d gateway.Date) graphql.Marshaler {
	if d.IsZero() {
		return graphql.Null
	}
	y, m, day := d.Time().Date()
	return dateValue(uint32(y)<<9 | uint32(m)<<5 | uint32(day))
}

// dateValue is a date packed into 32 bits (year<<9 | month<<5 | day), so
// marshaling one costs a 4-byte allocation instead of a closure.
type dateValue uint32

func (v dateValue) MarshalGQL(w io.Writer) {
	if buf, ok := w.(*bytes.Buffer); ok { // the executor's buffer: no allocation
		var b [12]byte
		buf.Write(v.appendJSON(b[:0]))
		return
	}
	w.Write(v.appendJSON(nil))
}

func (v dateValue) appendJSON(b []byte) []byte {
	y, m, d := int(v>>9), int(v>>5&15), int(v&31)
	return append(b, '"',
		byte('0'+y/1000%10), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10), '-',
		byte('0'+m/10), byte('0'+m%10), '-',
		byte('0'+d/10), byte('0'+d%10), '"')
}

// UnmarshalDate reads "YYYY-MM-DD".
func UnmarshalDate(v any) (gateway.Date, error) {
	s, ok := v.(string)
	if !ok {
		return gateway.Date{}, invalid("a Date must be a string YYYY-MM-DD")
	}
	d, err := gateway.ParseDate(s)
	if err != nil {
		return gateway.Date{}, invalid("a Date must be YYYY-MM-DD")
	}
	return d, nil
}

// MarshalMoney writes the amount as a JSON number with two decimal places
// (1234.50), exact: no float is involved.
func MarshalMoney(m gateway.Money) graphql.Marshaler { return moneyValue(m) }

type moneyValue int64

func (v moneyValue) MarshalGQL(w io.Writer) {
	if buf, ok := w.(*bytes.Buffer); ok { // the executor's buffer: no allocation
		var b [24]byte
		buf.Write(v.appendJSON(b[:0]))
		return
	}
	w.Write(v.appendJSON(nil))
}

func (v moneyValue) appendJSON(b []byte) []byte {
	c := int64(v)
	if c < 0 {
		b = append(b, '-')
		c = -c
	}
	b = strconv.AppendInt(b, c/100, 10)
	return append(b, '.', byte('0'+c%100/10), byte('0'+c%10))
}

// UnmarshalMoney reads a number or a decimal string with at most two places.
func UnmarshalMoney(v any) (gateway.Money, error) {
	var s string
	switch v := v.(type) {
	case string:
		s = v
	case json.Number:
		s = v.String()
	case int:
		return gateway.Money(int64(v) * 100), nil
	case int64:
		return gateway.Money(v * 100), nil
	case float64:
		s = strconv.FormatFloat(v, 'f', -1, 64)
	default:
		return 0, invalid("Money must be a decimal number with at most two places")
	}
	m, err := gateway.ParseMoney(s)
	if err != nil {
		return 0, invalid("Money must be a decimal number with at most two places")
	}
	return m, nil
}

// MarshalJSON writes stored JSON (a jsonb column) as it is; empty is null.
func MarshalJSON(raw json.RawMessage) graphql.Marshaler {
	if len(raw) == 0 {
		return graphql.Null
	}
	return rawValue(raw)
}

type rawValue []byte

func (v rawValue) MarshalGQL(w io.Writer) { w.Write(v) }

// UnmarshalJSON accepts any input value and keeps it as JSON.
func UnmarshalJSON(v any) (json.RawMessage, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, invalid("not a JSON value")
	}
	return b, nil
}

func invalid(msg string) error {
	return &gateway.Error{Code: gateway.CodeInvalid, Message: msg}
}
