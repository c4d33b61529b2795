package partition

import (
	"fmt"
	"strings"
	"time"
)

// Interval is the time span one partition covers. Every bound is computed in
// UTC, whatever the session or process time zone.
type Interval int

// The supported intervals. Weeks start on Monday (ISO 8601), quarters in
// January, April, July and October.
const (
	Daily Interval = iota + 1
	Weekly
	Monthly
	Quarterly
	Yearly
)

var intervalNames = map[Interval]string{
	Daily: "daily", Weekly: "weekly", Monthly: "monthly", Quarterly: "quarterly", Yearly: "yearly",
}

// String returns the interval's name: daily, weekly, monthly, quarterly or yearly.
func (iv Interval) String() string {
	if s, ok := intervalNames[iv]; ok {
		return s
	}
	return fmt.Sprintf("Interval(%d)", int(iv))
}

// ParseInterval parses an interval name (daily, weekly, monthly, quarterly,
// yearly; case does not matter).
func ParseInterval(s string) (Interval, error) {
	for iv, name := range intervalNames {
		if strings.EqualFold(s, name) {
			return iv, nil
		}
	}
	return 0, fmt.Errorf("%w: %q (want daily, weekly, monthly, quarterly or yearly)", ErrInvalidInterval, s)
}

// MarshalText makes an Interval print by name in JSON.
func (iv Interval) MarshalText() ([]byte, error) { return []byte(iv.String()), nil }

// UnmarshalText parses an interval name.
func (iv *Interval) UnmarshalText(b []byte) error {
	v, err := ParseInterval(string(b))
	if err == nil {
		*iv = v
	}
	return err
}

func (iv Interval) valid() bool { _, ok := intervalNames[iv]; return ok }

// Floor returns the start, in UTC, of the partition range holding t.
func (iv Interval) Floor(t time.Time) time.Time {
	t = t.UTC()
	y, m, d := t.Date()
	switch iv {
	case Daily:
		return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	case Weekly:
		back := (int(t.Weekday()) + 6) % 7 // days since Monday
		return time.Date(y, m, d-back, 0, 0, 0, 0, time.UTC)
	case Monthly:
		return time.Date(y, m, 1, 0, 0, 0, 0, time.UTC)
	case Quarterly:
		return time.Date(y, m-(m-1)%3, 1, 0, 0, 0, 0, time.UTC)
	case Yearly:
		return time.Date(y, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	panic("partition: invalid interval " + iv.String())
}

// Add returns start moved by n intervals. start must be a range start
// (a value of Floor), so month arithmetic never overflows a month's end.
func (iv Interval) Add(start time.Time, n int) time.Time {
	switch iv {
	case Daily:
		return start.AddDate(0, 0, n)
	case Weekly:
		return start.AddDate(0, 0, 7*n)
	case Monthly:
		return start.AddDate(0, n, 0)
	case Quarterly:
		return start.AddDate(0, 3*n, 0)
	case Yearly:
		return start.AddDate(n, 0, 0)
	}
	panic("partition: invalid interval " + iv.String())
}

// Range returns the bounds [from, to) of the partition holding t.
func (iv Interval) Range(t time.Time) (from, to time.Time) {
	from = iv.Floor(t)
	return from, iv.Add(from, 1)
}

// postgresUnit is the date_trunc unit matching the interval.
func (iv Interval) postgresUnit() string {
	return map[Interval]string{Daily: "day", Weekly: "week", Monthly: "month", Quarterly: "quarter", Yearly: "year"}[iv]
}
