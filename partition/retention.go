package partition

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Cleanup applies the retention: every partition whose whole range ends at
// or before now-retention is dropped, detached, or detached into the archive
// schema (WithRetentionMode). The partition holding now is never removed,
// nor any later one, nor the default partition. With dryRun, Cleanup only
// lists what would go. With no retention set it does nothing.
//
// Detaching uses DETACH PARTITION ... CONCURRENTLY, which takes no lock that
// blocks queries, except when the table has a default partition: PostgreSQL
// forbids CONCURRENTLY then, and a plain DETACH takes a brief ACCESS
// EXCLUSIVE lock on the table, bounded by the lock timeout and retried.
// Each Removal says which was used.
func (m *Manager) Cleanup(ctx context.Context, dryRun bool) (*Report, error) {
	return m.removal(ctx, dryRun, (*Manager).cleanup)
}

// removal runs remove on the resolved table, under the maintenance lock
// (on the lock's connection) unless dryRun: a dry run reads only, so it
// need not wait for the lock.
func (m *Manager) removal(ctx context.Context, dryRun bool, remove func(*Manager, context.Context, *parent, *Report, bool) error) (*Report, error) {
	run := func(m *Manager, r *Report) error {
		r.DryRun = dryRun
		p, err := m.resolve(ctx, m.q)
		if err != nil {
			return err
		}
		r.Table = p.table
		return remove(m, ctx, p, r, dryRun)
	}
	if dryRun {
		r, t0 := m.newReport(), time.Now()
		err := run(m, r)
		r.Duration = time.Since(t0)
		return r, err
	}
	return m.locked(ctx, true, run)
}

// expired returns the partitions the retention removes at the given time.
func expired(parts []Partition, now time.Time, retention time.Duration) []Partition {
	if retention <= 0 {
		return nil
	}
	cutoff := now.Add(-retention)
	var out []Partition
	for _, q := range parts {
		if q.Default || q.From.IsZero() || q.To.IsZero() || q.To.After(cutoff) || q.To.After(now) || q.Contains(now) {
			continue
		}
		out = append(out, q)
	}
	return out
}

func (m *Manager) cleanup(ctx context.Context, p *parent, r *Report, dryRun bool) error {
	parts, err := m.partitions(ctx, p)
	if err != nil {
		return err
	}
	hasDefault := defaultOf(parts) != nil
	for _, q := range expired(parts, m.cfg.now(), m.cfg.retention) {
		rm := Removal{Name: q.Name, From: q.From, To: q.To, Mode: m.cfg.retentionMode, Detach: "concurrently", Reason: "retention"}
		if hasDefault {
			rm.Detach = "plain"
		}
		if !dryRun {
			if err := m.remove(ctx, p, q, hasDefault, &rm); err != nil {
				return err
			}
			m.cfg.logger.InfoContext(ctx, "partition: retention removed", "table", p.table.String(), "partition", q.Name, "mode", rm.Mode.String())
		}
		r.Removed = append(r.Removed, rm)
	}
	return nil
}

func (m *Manager) remove(ctx context.Context, p *parent, q Partition, hasDefault bool, rm *Removal) error {
	child := q.Table()
	if hasDefault && !q.DetachPending {
		def, err := m.defaultPartition(ctx, p)
		if err != nil {
			return err
		}
		err = m.inTx(ctx, "detach "+child.String(), func(tx *sql.Tx) error {
			locks := []string{fmt.Sprintf("LOCK TABLE %s IN ACCESS EXCLUSIVE MODE", p.table)}
			if def != nil {
				locks = append(locks, fmt.Sprintf("LOCK TABLE %s IN ACCESS EXCLUSIVE MODE", *def))
			}
			locks = append(locks, fmt.Sprintf("LOCK TABLE %s IN ACCESS EXCLUSIVE MODE", child),
				fmt.Sprintf("ALTER TABLE %s DETACH PARTITION %s", p.table, child))
			for _, stmt := range locks {
				if _, err := tx.ExecContext(ctx, stmt); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	} else if err := m.detachConcurrently(ctx, p, child); err != nil {
		return err
	}
	switch rm.Mode {
	case Drop:
		return m.inTx(ctx, "drop "+child.String(), func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, "DROP TABLE "+child.String())
			return err
		})
	case Archive:
		archived := Table{Schema: m.cfg.archiveSchema, Name: child.Name}
		rm.ArchivedAs = &archived
		return m.inTx(ctx, "archive "+child.String(), func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{m.cfg.archiveSchema}.Sanitize()); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, fmt.Sprintf("ALTER TABLE %s SET SCHEMA %s", child, pgx.Identifier{m.cfg.archiveSchema}.Sanitize()))
			return err
		})
	}
	return nil
}

// detachConcurrently runs DETACH ... CONCURRENTLY (or FINALIZE, when an
// earlier one was interrupted) on a connection of its own: it cannot run in
// a transaction block, so the lock timeout is a session setting there.
func (m *Manager) detachConcurrently(ctx context.Context, p *parent, child Table) error {
	conn, ok := m.q.(*sql.Conn)
	if !ok {
		var err error
		if conn, err = m.db.Conn(ctx); err != nil {
			return err
		}
		defer conn.Close()
	}
	if _, err := conn.ExecContext(ctx, `SELECT set_config('lock_timeout', $1, false)`, durationSetting(m.cfg.lockTimeout)); err != nil {
		discard(conn)
		return err
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), `RESET lock_timeout`)
	return m.retryLocks(ctx, "detach "+child.String(), func() error {
		var pending bool
		err := conn.QueryRowContext(ctx, `SELECT coalesce((SELECT inhdetachpending FROM pg_inherits WHERE inhrelid = to_regclass($1) AND inhparent = $2), false)`,
			child.String(), p.oid).Scan(&pending)
		if err != nil {
			return err
		}
		how := "CONCURRENTLY"
		if pending {
			how = "FINALIZE"
		}
		_, err = conn.ExecContext(ctx, fmt.Sprintf("ALTER TABLE %s DETACH PARTITION %s %s", p.table, child, how))
		return err
	})
}

// errHasRows stops the removal of a future partition found holding rows.
var errHasRows = errors.New("partition holds rows")

// CleanupFuture removes the surplus of future partitions: every partition
// starting at or after the end of the last one premake keeps ahead
// (WithPremake, of the table's interval) is dropped if it is empty. A
// partition holding rows is never removed: it is kept, with a warning that
// names it and its row count. Each drop runs in one transaction that locks
// the table (a brief ACCESS EXCLUSIVE lock, bounded by the lock timeout),
// checks the partition empty and drops it, so a row inserted meanwhile
// keeps it. With dryRun, CleanupFuture only lists what would go (and warns
// of the partitions it would keep).
func (m *Manager) CleanupFuture(ctx context.Context, dryRun bool) (*Report, error) {
	return m.removal(ctx, dryRun, (*Manager).cleanupFuture)
}

// beyondPremake returns the partitions that start at or after keep, the
// end of the last premade range.
func beyondPremake(parts []Partition, iv Interval, now time.Time, premake int) (keep time.Time, out []Partition) {
	keep = iv.Add(iv.Floor(now), premake+1)
	for _, q := range parts {
		if !q.Default && !q.From.IsZero() && !q.From.Before(keep) {
			out = append(out, q)
		}
	}
	return keep, out
}

func (m *Manager) cleanupFuture(ctx context.Context, p *parent, r *Report, dryRun bool) error {
	parts, err := m.partitions(ctx, p)
	if err != nil {
		return err
	}
	iv, err := m.interval(p, parts)
	if err != nil {
		return err
	}
	_, surplus := beyondPremake(parts, iv, m.cfg.now(), m.cfg.premake)
	def, err := m.defaultPartition(ctx, p)
	if err != nil {
		return err
	}
	step := "remove future partitions of " + p.table.Name
	for i, q := range surplus {
		m.cfg.progress(Progress{Step: step, Done: int64(i), Total: int64(len(surplus))})
		rm := Removal{Name: q.Name, From: q.From, To: q.To, Mode: Drop, Detach: "plain", Reason: "future"}
		var rows int64
		if dryRun {
			err = m.q.QueryRowContext(ctx, `SELECT count(*) FROM ONLY `+q.Table().String()).Scan(&rows)
			if err == nil && rows > 0 {
				err = errHasRows
			}
		} else {
			err = m.inTx(ctx, "drop "+q.Table().String(), func(tx *sql.Tx) error {
				locks := []string{fmt.Sprintf("LOCK TABLE %s IN ACCESS EXCLUSIVE MODE", p.table)}
				if def != nil {
					locks = append(locks, fmt.Sprintf("LOCK TABLE %s IN ACCESS EXCLUSIVE MODE", *def))
				}
				locks = append(locks, fmt.Sprintf("LOCK TABLE %s IN ACCESS EXCLUSIVE MODE", q.Table()))
				for _, l := range locks {
					if _, err := tx.ExecContext(ctx, l); err != nil {
						return err
					}
				}
				if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM ONLY `+q.Table().String()).Scan(&rows); err != nil {
					return err
				}
				if rows > 0 {
					return errHasRows
				}
				_, err := tx.ExecContext(ctx, "DROP TABLE "+q.Table().String())
				return err
			})
		}
		switch {
		case errors.Is(err, errHasRows):
			r.Warnings = append(r.Warnings, fmt.Sprintf("%s [%s, %s) holds %d rows: kept (only empty future partitions are removed)",
				q.Name, fmtBound(q.From), fmtBound(q.To), rows))
			continue
		case err != nil:
			return fmt.Errorf("partition: %s: removed %d of %d future partitions, then: %w", p.table, len(r.Removed), len(surplus), err)
		}
		if !dryRun {
			m.cfg.logger.InfoContext(ctx, "partition: removed a future partition", "table", p.table.String(), "partition", q.Name)
		}
		r.Removed = append(r.Removed, rm)
	}
	m.cfg.progress(Progress{Step: step, Done: int64(len(surplus)), Total: int64(len(surplus))})
	return nil
}
