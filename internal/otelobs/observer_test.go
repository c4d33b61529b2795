package otelobs

import (
	"context"
	"errors"
	"testing"

	"github.com/auditpg/auditpg/internal/event"
	"github.com/auditpg/auditpg/internal/sqlclass"
)

func TestErrorType(t *testing.T) {
	for _, c := range []struct {
		ev   event.Event
		want string
	}{
		{event.Event{Err: errors.New("x"), SQLState: "40001"}, "40001"},
		{event.Event{Err: context.DeadlineExceeded}, "timeout"},
		{event.Event{Err: context.Canceled}, "canceled"},
		{event.Event{Err: errors.New("conn closed")}, "_OTHER"},
	} {
		if got := errorType(&c.ev); got != c.want {
			t.Errorf("errorType(%v) = %q, want %q", c.ev.Err, got, c.want)
		}
	}
}

func TestSingleTable(t *testing.T) {
	for _, c := range []struct {
		reads, writes []string
		want          string
	}{
		{nil, nil, ""},
		{[]string{"a"}, nil, "a"},
		{[]string{"a"}, []string{"a"}, "a"},
		{[]string{"a", "b"}, nil, ""},
		{[]string{"a"}, []string{"b"}, ""},
	} {
		if got := singleTable(&sqlclass.Statement{Reads: c.reads, Writes: c.writes}); got != c.want {
			t.Errorf("singleTable(%v, %v) = %q, want %q", c.reads, c.writes, got, c.want)
		}
	}
}
