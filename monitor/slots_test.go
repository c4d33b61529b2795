package monitor

import (
	"context"
	"strings"
	"testing"

	"github.com/auditpg/auditpg/internal/pgtemp"
	"github.com/auditpg/auditpg/internal/testdb"
)

// TestReplicationSlots: the summary lists the server's slots, and its
// health warns of an inactive one.
func TestReplicationSlots(t *testing.T) {
	c, err := pgtemp.Start(t.Context(), pgtemp.WithSetting("wal_level", "logical"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop() })
	db := openDBAt(t, c.DSN())
	testdb.Exec(t, db, `SELECT pg_create_logical_replication_slot('auditpg_left', 'pgoutput')`)
	m, err := New(db)
	if err != nil {
		t.Fatal(err)
	}
	s, err := m.Summary(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(s.ReplicationSlots) != 1 || s.ReplicationSlots[0].Name != "auditpg_left" || s.ReplicationSlots[0].Active || s.ReplicationSlots[0].Type != "logical" {
		t.Fatalf("slots %+v; want auditpg_left, logical, inactive", s.ReplicationSlots)
	}
	var found bool
	for _, comp := range s.Health.Components {
		if comp.Name == "replication slots" {
			found = comp.Status == Warning && strings.Contains(strings.Join(comp.Reasons, "; "), "auditpg_left is inactive")
		}
	}
	if !found {
		t.Errorf("health %+v; want a warning of the inactive slot", s.Health.Components)
	}
}

func TestJudgeSlots(t *testing.T) {
	for _, c := range []struct {
		slot ReplicationSlot
		want Status
	}{
		{ReplicationSlot{Name: "a", Active: true, RetainedBytes: 1 << 20}, Healthy},
		{ReplicationSlot{Name: "a", Active: true, RetainedBytes: SlotRetainedWarning}, Warning},
		{ReplicationSlot{Name: "a", Active: true, RetainedBytes: SlotRetainedCritical}, Critical},
		{ReplicationSlot{Name: "a", Active: false, RetainedBytes: 0}, Warning},
	} {
		b := &componentBuilder{c: Component{Status: Healthy}}
		judgeSlots(b, []ReplicationSlot{c.slot})
		if b.c.Status != c.want {
			t.Errorf("%+v: %s (%v); want %s", c.slot, b.c.Status, b.c.Reasons, c.want)
		}
	}
}
