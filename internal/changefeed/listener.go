package changefeed

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
)

// ListenerName and PublisherName are the application_name of the
// listener's and the publisher's connections, as pg_stat_activity shows
// them.
const (
	ListenerName  = "auditpg change feed listener"
	PublisherName = "auditpg change feed publisher"
)

// named returns a copy of cfg whose connection shows name as its
// application_name.
func named(cfg *pgconn.Config, name string) *pgconn.Config {
	c := cfg.Copy()
	if c.RuntimeParams == nil {
		c.RuntimeParams = map[string]string{}
	}
	c.RuntimeParams["application_name"] = name
	return c
}

// Listener keeps one connection LISTENing on Channel and hands every
// notification to its Changed function, reconnecting when the connection
// fails. Up and Down tell the state: between a Down and the next Up, a
// change may have been missed.
type Listener struct {
	// Config is the connection's configuration; Run copies it.
	Config *pgconn.Config
	// Changed is called, from Run's goroutine, with each payload received
	// (see ParsePayload), in the order of the commits that sent them.
	Changed func(payload string)
	// Up is called once the LISTEN is in place, after a start or a
	// reconnection; Down when the connection fails, with the cause.
	Up   func()
	Down func(err error)
	// Failed, if set, is called when an attempt to connect and LISTEN
	// fails (Run tries again).
	Failed func(err error)
	// Liveness is how long the connection may stay silent before it is
	// checked with an empty query (default 15s): a peer that vanished
	// without closing the connection is noticed within about that time.
	Liveness time.Duration
	// Heartbeat, if set, makes the Listener depend on a WAL decoder's
	// heartbeats as well as on its connection: Up only once a Heartbeat
	// payload arrived after the LISTEN, Down when none arrived for
	// Heartbeat, Up again at the next one, and Failed once when none
	// arrived within Heartbeat of the LISTEN. Heartbeat payloads are never
	// handed to Changed.
	Heartbeat time.Duration
	// RetryMin and RetryMax bound the delay between connection attempts,
	// doubled from RetryMin after each failure, ±50% (defaults 50ms, 1s).
	RetryMin, RetryMax time.Duration
}

// Run listens until ctx is done, and returns ctx's error.
func (l *Listener) Run(ctx context.Context) error {
	delay := l.retryMin()
	for {
		err := l.session(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, errWasUp) {
			delay = l.retryMin() // it worked for a while: retry soon
		} else if l.Failed != nil {
			l.Failed(err)
		}
		if !sleep(ctx, jitter(delay)) {
			return ctx.Err()
		}
		delay = min(2*delay, l.retryMax())
	}
}

// errWasUp marks a session that reported Up, or Failed for want of a
// heartbeat, before it failed.
var errWasUp = errors.New("changefeed: the listening connection failed")

// session connects, LISTENs, reports Up (at once, or at the first
// heartbeat), and hands on notifications until the connection fails; it
// reports Down for a failure while Up.
func (l *Listener) session(ctx context.Context) error {
	cfg := named(l.Config, ListenerName)
	var beat time.Time // the last heartbeat
	// pgconn calls this from the goroutine that reads the connection: Run's.
	cfg.OnNotification = func(_ *pgconn.PgConn, n *pgconn.Notification) {
		switch {
		case n.Channel != Channel:
		case n.Payload == Heartbeat:
			beat = time.Now()
		case l.Changed != nil:
			l.Changed(n.Payload)
		}
	}
	// A liveness timeout must only interrupt the wait, not send the
	// server a cancel request or close the connection.
	cfg.BuildContextWatcherHandler = func(pgConn *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.DeadlineContextWatcherHandler{Conn: pgConn.Conn()}
	}
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+Channel).ReadAll(); err != nil {
		return err
	}
	listened := time.Now()
	heard := listened // the last notification, or the last check of the connection
	up, failed, settled := false, false, false
	setUp := func(now bool) {
		if now != up {
			up, settled = now, true
			if up && l.Up != nil {
				l.Up()
			} else if !up && l.Down != nil {
				l.Down(ErrNoHeartbeat)
			}
		}
	}
	if l.Heartbeat <= 0 {
		setUp(true)
	}
	for {
		wait := l.liveness() - time.Since(heard)
		if l.Heartbeat > 0 {
			switch {
			case up:
				wait = min(wait, time.Until(beat.Add(l.Heartbeat)))
			case !failed:
				wait = min(wait, time.Until(listened.Add(l.Heartbeat)))
			}
		}
		wctx, cancel := context.WithTimeout(ctx, max(wait, time.Millisecond))
		err := conn.WaitForNotification(wctx)
		cancel()
		if err == nil {
			heard = time.Now()
		}
		if l.Heartbeat > 0 && (err == nil || pgconn.Timeout(err) && !conn.IsClosed()) {
			alive := !beat.IsZero() && time.Since(beat) < l.Heartbeat
			setUp(alive)
			if !alive && !failed && time.Since(listened) >= l.Heartbeat {
				failed, settled = true, true
				if l.Failed != nil {
					l.Failed(ErrNoHeartbeat)
				}
			}
		}
		switch {
		case err == nil:
		case ctx.Err() != nil:
			return ctx.Err()
		case pgconn.Timeout(err) && !conn.IsClosed():
			if time.Since(heard) < l.liveness() {
				continue // a heartbeat's deadline, not the liveness one
			}
			// Silent for a while: make sure the server is still there.
			check, cancel := context.WithTimeout(ctx, l.liveness())
			_, err = conn.Exec(check, "").ReadAll()
			cancel()
			if err == nil {
				heard = time.Now()
				continue
			}
			fallthrough
		default:
			if up && l.Down != nil {
				l.Down(err)
			}
			if !settled {
				return err // neither Up nor Failed yet: Run reports it as a failed attempt
			}
			return errors.Join(errWasUp, err)
		}
	}
}

// ErrNoHeartbeat is the cause of a Down, or a Failed, for heartbeats that
// stopped, or never came.
var ErrNoHeartbeat = errors.New("changefeed: no heartbeat from the WAL decoder: no process leads it, or its leader cannot stream (see that process's log)")

func (l *Listener) liveness() time.Duration {
	if l.Liveness > 0 {
		return l.Liveness
	}
	return 15 * time.Second
}

func (l *Listener) retryMin() time.Duration {
	if l.RetryMin > 0 {
		return l.RetryMin
	}
	return 50 * time.Millisecond
}

func (l *Listener) retryMax() time.Duration {
	if l.RetryMax > 0 {
		return l.RetryMax
	}
	return time.Second
}

// jitter returns d ±50%, so that processes that lost the server together do
// not reconnect together.
func jitter(d time.Duration) time.Duration {
	return d/2 + time.Duration(rand.Int64N(int64(d)+1))
}
