package partition

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestOptionErrors: New refuses a value an option cannot use, with an error
// that names the option and says what it wants, before touching the
// database.
func TestOptionErrors(t *testing.T) {
	for _, tc := range []struct {
		opt  Option
		want string
	}{
		{WithTable(Table{Schema: "s"}), "WithTable"},
		{WithInterval(Interval(0)), "WithInterval(Interval(0)): want Daily"},
		{WithPremake(-1), "WithPremake(-1): want 0"},
		{WithRetention(-time.Hour), "WithRetention(-1h0m0s): want 0"},
		{WithRetentionMode(RetentionMode(9)), "WithRetentionMode(9): want Drop"},
		{WithLockTimeout(0), "WithLockTimeout(0s): want a positive duration"},
		{WithRetries(-1), "WithRetries(-1): want 0"},
		{WithBatchSize(0), "WithBatchSize(0): want at least 1"},
		{WithClock(nil), "WithClock(nil)"},
		{WithLogger(nil), "WithLogger(nil)"},
		{WithProgress(nil), "WithProgress(nil)"},
	} {
		m, err := New(nil, WithPremake(2), tc.opt)
		if err == nil || m != nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%s): %v, %v; want no Manager and an error containing %q", tc.want, m, err, tc.want)
		}
	}
	if _, err := New(nil, WithInterval(Interval(0))); !errors.Is(err, ErrInvalidInterval) {
		t.Errorf("WithInterval(Interval(0)): %v, want it to wrap ErrInvalidInterval", err)
	}
	if _, err := New(nil, WithInterval(Weekly), WithRetention(0), WithRetries(0), WithPremake(0)); err != nil {
		t.Errorf("New with valid options: %v", err)
	}
}
