package gateway

import (
	"database/sql/driver"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Date is a calendar date without a time zone (GraphQL scalar Date,
// "YYYY-MM-DD"). The zero Date is "no date".
type Date struct{ t time.Time }

// DateOf returns the calendar date of t in t's location.
func DateOf(t time.Time) Date {
	y, m, d := t.Date()
	return NewDate(y, m, d)
}

// NewDate returns the date y-m-d, normalised like time.Date.
func NewDate(y int, m time.Month, d int) Date {
	return Date{time.Date(y, m, d, 0, 0, 0, 0, time.UTC)}
}

// ParseDate parses "YYYY-MM-DD".
func ParseDate(s string) (Date, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return Date{}, fmt.Errorf("invalid date %q: want YYYY-MM-DD", s)
	}
	return Date{t}, nil
}

func (d Date) IsZero() bool             { return d.t.IsZero() }
func (d Date) Time() time.Time          { return d.t }
func (d Date) Before(o Date) bool       { return d.t.Before(o.t) }
func (d Date) After(o Date) bool        { return d.t.After(o.t) }
func (d Date) AddDays(n int) Date       { return Date{d.t.AddDate(0, 0, n)} }
func (d Date) AddDate(y, m, n int) Date { return Date{d.t.AddDate(y, m, n)} }

func (d Date) String() string {
	if d.IsZero() {
		return ""
	}
	return d.t.Format(time.DateOnly)
}

// Scan implements sql.Scanner for date columns.
func (d *Date) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*d = Date{}
	case time.Time:
		*d = NewDate(v.Date())
	case []byte:
		return d.Scan(string(v))
	case string:
		p, err := ParseDate(v)
		if err != nil {
			return err
		}
		*d = p
	default:
		return fmt.Errorf("gateway.Date: cannot scan %T", src)
	}
	return nil
}

// Value implements driver.Valuer; the zero Date is NULL.
func (d Date) Value() (driver.Value, error) {
	if d.IsZero() {
		return nil, nil
	}
	return d.String(), nil
}

// Money is an amount in US cents. It is stored as numeric(12,2) and shown as
// a decimal number with two places. Which principals may see money is the
// policy's decision (auth.MoneyFields), never the type's.
type Money int64

// ParseMoney parses a decimal amount such as "12", "12.5" or "-3.07".
func ParseMoney(s string) (Money, error) {
	s = strings.TrimSpace(s)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	whole, frac, _ := strings.Cut(s, ".")
	if whole == "" || len(frac) > 2 {
		return 0, fmt.Errorf("invalid amount %q", s)
	}
	frac = (frac + "00")[:2]
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid amount %q", s)
	}
	f, err := strconv.ParseInt(frac, 10, 64)
	if err != nil || f < 0 {
		return 0, fmt.Errorf("invalid amount %q", s)
	}
	c := w*100 + f
	if neg {
		c = -c
	}
	return Money(c), nil
}

// String formats the amount as a decimal with two places: "1234.50".
func (m Money) String() string {
	c := int64(m)
	sign := ""
	if c < 0 {
		sign, c = "-", -c
	}
	return fmt.Sprintf("%s%d.%02d", sign, c/100, c%100)
}

// Float returns the amount in dollars (for FHIR Money.value).
func (m Money) Float() float64 { return float64(m) / 100 }

// Scan implements sql.Scanner for numeric columns.
func (m *Money) Scan(src any) error {
	switch v := src.(type) {
	case []byte:
		return m.Scan(string(v))
	case string:
		p, err := ParseMoney(v)
		if err != nil {
			return err
		}
		*m = p
	case int64:
		*m = Money(v * 100)
	case float64:
		*m = Money(v*100 + 0.5)
	default:
		return fmt.Errorf("gateway.Money: cannot scan %T", src)
	}
	return nil
}

// Value implements driver.Valuer.
func (m Money) Value() (driver.Value, error) { return m.String(), nil }
