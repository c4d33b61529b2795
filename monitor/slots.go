package monitor

import "context"

// ReplicationSlot is one replication slot of the server and the WAL it
// holds back: a slot nobody reads retains WAL until the disk fills.
type ReplicationSlot struct {
	Name      string `json:"name"`
	Type      string `json:"type"`     // logical or physical
	Database  string `json:"database"` // "" for a physical slot
	Temporary bool   `json:"temporary"`
	Active    bool   `json:"active"`
	// RetainedBytes is pg_current_wal_lsn() - restart_lsn (on a standby,
	// from the last WAL received).
	RetainedBytes int64 `json:"retained_bytes"`
}

// Thresholds of the "replication slots" health component: the WAL a slot
// retains.
const (
	SlotRetainedWarning  = 1 << 30  // 1 GB
	SlotRetainedCritical = 10 << 30 // 10 GB
)

// ReplicationSlots lists the server's replication slots (pg_replication_slots).
func (m *Monitor) ReplicationSlots(ctx context.Context) ([]ReplicationSlot, error) {
	return list(ctx, m, "replication slots", `
SELECT slot_name::text, slot_type, coalesce(database::text, ''), temporary, active,
       coalesce(pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn() ELSE pg_current_wal_lsn() END,
                                restart_lsn), 0)::bigint
  FROM pg_replication_slots
 ORDER BY 1`, func(r scanner, s *ReplicationSlot) error {
		return r.Scan(&s.Name, &s.Type, &s.Database, &s.Temporary, &s.Active, &s.RetainedBytes)
	})
}

// judgeSlots flags the slots that retain much WAL, and the inactive ones.
func judgeSlots(b *componentBuilder, slots []ReplicationSlot) {
	for _, s := range slots {
		held := formatBytes(roundMB(float64(s.RetainedBytes)))
		switch {
		case s.RetainedBytes >= SlotRetainedCritical:
			b.flag(Critical, "slot %s retains %s of WAL (critical at 10 GB)", s.Name, held)
		case s.RetainedBytes >= SlotRetainedWarning:
			b.flag(Warning, "slot %s retains %s of WAL (warning at 1 GB)", s.Name, held)
		}
		if !s.Active {
			b.flag(Warning, "slot %s is inactive and retains %s of WAL: drop it if nothing will read it again "+
				"(auditpg cache drop-slot for auditpg's, else SELECT pg_drop_replication_slot)", s.Name, held)
		} else if s.RetainedBytes < SlotRetainedWarning {
			b.flag(Healthy, "slot %s is active, %s of WAL retained", s.Name, held)
		}
	}
}
