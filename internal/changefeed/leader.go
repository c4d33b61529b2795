package changefeed

import (
	"context"
	"errors"
	"hash/fnv"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// DecoderName is the application_name of the connection of a Leader: the
// candidate's, which holds the advisory lock while it leads and, then,
// sends the invalidations and the heartbeats. StreamName is that of the
// leader's replication connection (the walsender of its slot).
const (
	DecoderName = "auditpg change feed decoder"
	StreamName  = "auditpg change feed wal stream"
)

// LeaderLockKey is the key of the session-level advisory lock that the
// Leader of a database holds: the same in every process, so that one
// decodes at a time.
var LeaderLockKey = func() int64 {
	h := fnv.New64a()
	h.Write([]byte("auditpg.changefeed.wal\x00" + Publication))
	return int64(h.Sum64())
}()

// Leader is a candidate to decode the database's WAL for every auditpg
// process. Run holds a connection of its own and tries the advisory lock
// LeaderLockKey on it, every RetryLock (jittered), until it gets it; the
// candidate that holds the lock streams the changes (see the stream in
// wal.go) until its connection fails or Run's context ends, which releases
// the lock and lets another candidate take over.
type Leader struct {
	// Config is the configuration of the connections; Run copies it.
	Config *pgconn.Config
	// Elected, if set, is called when this candidate took the lock;
	// Streaming when its slot exists and All was published (every process
	// then hears of every change); Failed when an attempt to connect, to
	// lead or to stream failed (Run tries again), with an error that says
	// what to do.
	Elected   func()
	Streaming func(slot string)
	Failed    func(err error)
	// RetryLock is the time between a candidate's attempts at the lock
	// (default 1s, ±50%).
	RetryLock time.Duration
	// HeartbeatEvery is the time between the leader's heartbeats (default
	// HeartbeatInterval).
	HeartbeatEvery time.Duration
	// MaxLag is how far behind the commits it decodes the leader may fall
	// before it stops its heartbeats (default 1s; see maxDecodeLag).
	MaxLag time.Duration

	leading   atomic.Bool
	changes   atomic.Int64 // rows inserted, updated or deleted, and tables truncated, decoded
	commits   atomic.Int64 // transactions whose tables were published
	takeovers atomic.Int64 // slots created
}

// Leading reports whether this candidate holds the lock now.
func (l *Leader) Leading() bool { return l.leading.Load() }

// LeaderStats counts what a Leader decoded.
type LeaderStats struct {
	Changes int64 // rows inserted, updated or deleted, and tables truncated
	Commits int64 // transactions whose tables were published
	Slots   int64 // replication slots created: the first, and one after each loss of the stream
}

// Stats returns what the Leader decoded so far.
func (l *Leader) Stats() LeaderStats {
	return LeaderStats{Changes: l.changes.Load(), Commits: l.commits.Load(), Slots: l.takeovers.Load()}
}

// Run is a candidate, then the leader, until ctx is done; it returns ctx's
// error.
func (l *Leader) Run(ctx context.Context) error {
	delay := 100 * time.Millisecond
	for {
		err := l.candidate(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil && l.Failed != nil {
			l.Failed(err)
		}
		if !sleep(ctx, jitter(delay)) {
			return ctx.Err()
		}
		delay = min(2*delay, 5*time.Second)
	}
}

// candidate connects, waits for the lock and leads while it holds it.
func (l *Leader) candidate(ctx context.Context) error {
	conn, err := pgconn.ConnectConfig(ctx, named(l.Config, DecoderName))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	for {
		got, err := tryLock(ctx, conn)
		if err != nil {
			return err
		}
		if got {
			break
		}
		if !sleep(ctx, jitter(l.retryLock())) {
			return ctx.Err()
		}
	}
	l.leading.Store(true)
	defer l.leading.Store(false)
	if l.Elected != nil {
		l.Elected()
	}
	delay := 100 * time.Millisecond
	for {
		began := time.Now()
		err := l.stream(ctx, conn)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if conn.IsClosed() {
			return err // the lock went with the connection: compete again
		}
		if l.Failed != nil {
			l.Failed(err)
		}
		if time.Since(began) > 10*time.Second {
			delay = 100 * time.Millisecond // it streamed for a while: retry soon
		}
		if !sleep(ctx, jitter(delay)) {
			return ctx.Err()
		}
		delay = min(2*delay, 10*time.Second)
	}
}

// tryLock takes LeaderLockKey on conn if no other session holds it.
func tryLock(ctx context.Context, conn *pgconn.PgConn) (bool, error) {
	res := conn.ExecParams(ctx, `SELECT pg_try_advisory_lock($1::bigint)`,
		[][]byte{[]byte(strconv.FormatInt(LeaderLockKey, 10))}, nil, nil, nil).Read()
	if res.Err != nil {
		return false, res.Err
	}
	if len(res.Rows) != 1 || len(res.Rows[0]) != 1 {
		return false, errors.New("changefeed: pg_try_advisory_lock returned no row")
	}
	return string(res.Rows[0][0]) == "t", nil
}

func (l *Leader) retryLock() time.Duration {
	if l.RetryLock > 0 {
		return l.RetryLock
	}
	return time.Second
}

func (l *Leader) heartbeatEvery() time.Duration {
	if l.HeartbeatEvery > 0 {
		return l.HeartbeatEvery
	}
	return HeartbeatInterval
}

func (l *Leader) maxLag() time.Duration {
	if l.MaxLag > 0 {
		return l.MaxLag
	}
	return maxDecodeLag
}

// sleep waits d, or until ctx is done: it reports whether ctx is still on.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
