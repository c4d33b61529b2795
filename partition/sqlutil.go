package partition

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"hash/fnv"
	"strings"
	"time"

	"github.com/auditpg/auditpg/internal/pgerr"
	"github.com/cenkalti/backoff/v5"
)

const (
	stateLockNotAvailable = "55P03"
	stateDuplicateTable   = "42P07"
	stateDeadlock         = "40P01"
)

// literal quotes s as an SQL string literal. Only values the package itself
// formats (timestamps) go through it: DDL cannot take bind parameters.
func literal(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// boundText formats a bound for DDL and for bind parameters: UTC with an
// explicit offset, so the server reads the same instant whatever its TimeZone.
func boundText(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05+00") }

// inTx runs f in a transaction whose lock_timeout is the configured one and
// commits it; a lock timeout or deadlock is retried with backoff, the whole
// transaction again, up to the configured retries.
func (m *Manager) inTx(ctx context.Context, what string, f func(tx *sql.Tx) error) error {
	return m.retryLocks(ctx, what, func() error {
		tx, err := m.q.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		if _, err := tx.ExecContext(ctx, `SELECT set_config('lock_timeout', $1, true)`, durationSetting(m.cfg.lockTimeout)); err != nil {
			return err
		}
		if err := f(tx); err != nil {
			return err
		}
		return tx.Commit()
	})
}

func durationSetting(d time.Duration) string { return fmt.Sprintf("%dms", max(d.Milliseconds(), 1)) }

// retryLocks runs op again while it fails on a lock timeout or a deadlock.
func (m *Manager) retryLocks(ctx context.Context, what string, op func() error) error {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = 100 * time.Millisecond
	b.MaxInterval = 5 * time.Second
	attempt := 0
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		attempt++
		err := op()
		switch st := pgerr.SQLState(err); {
		case err == nil:
			return struct{}{}, nil
		case st == stateLockNotAvailable || st == stateDeadlock:
			if attempt <= m.cfg.retries {
				m.cfg.logger.InfoContext(ctx, "partition: lock not available, retrying", "step", what, "attempt", attempt)
			}
			return struct{}{}, err
		default:
			return struct{}{}, backoff.Permanent(err)
		}
	}, backoff.WithBackOff(b), backoff.WithMaxTries(uint(m.cfg.retries)+1))
	if err != nil {
		if st := pgerr.SQLState(err); st == stateLockNotAvailable || st == stateDeadlock {
			return fmt.Errorf("%s: %w after %d attempts (lock_timeout %v; a long transaction may hold the table, retry later): %w",
				what, ErrLockTimeout, attempt, m.cfg.lockTimeout, err)
		}
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// lockKey is the advisory lock key of a table's maintenance: the same for
// every process that manages the same table.
func lockKey(schema, name string) int64 {
	h := fnv.New64a()
	h.Write([]byte("auditpg.partition\x00" + schema + "\x00" + name))
	return int64(h.Sum64())
}

// sessionLock holds a session-level advisory lock on a dedicated connection:
// advisory locks belong to a session, so the lock must not go back to the
// pool while held.
type sessionLock struct {
	conn *sql.Conn
	key  int64
}

// acquireLock takes the maintenance lock: waiting when wait is true (the
// wait ends with ctx), else returning ErrBusy if another session holds it.
// The key names the table by schema and name as the server resolves them,
// so that "audit_log" and "public.audit_log" share one lock.
func (m *Manager) acquireLock(ctx context.Context, wait bool) (*sessionLock, error) {
	conn, err := m.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("partition: maintenance lock: %w", err)
	}
	schema := m.cfg.table.Schema
	if schema == "" {
		err = conn.QueryRowContext(ctx, `SELECT coalesce((SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE c.oid = to_regclass($1)), current_schema(), '')`, m.cfg.table.String()).Scan(&schema)
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("partition: maintenance lock: %w", err)
		}
	}
	key := lockKey(schema, m.cfg.table.Name)
	var ok bool
	if wait {
		ok = true
		_, err = conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, key)
	} else {
		err = conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&ok)
	}
	if err != nil {
		discard(conn)
		return nil, fmt.Errorf("partition: maintenance lock: %w", err)
	}
	if !ok {
		conn.Close()
		return nil, ErrBusy
	}
	return &sessionLock{conn: conn, key: key}, nil
}

// release unlocks; if that fails the connection is discarded, which ends the
// session and so releases the lock.
func (l *sessionLock) release() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var ok bool
	if err := l.conn.QueryRowContext(ctx, `SELECT pg_advisory_unlock($1)`, l.key).Scan(&ok); err != nil || !ok {
		discard(l.conn)
		return
	}
	l.conn.Close()
}

// discard closes conn's session instead of returning it to the pool.
func discard(conn *sql.Conn) {
	conn.Raw(func(any) error { return driver.ErrBadConn })
	conn.Close()
}
