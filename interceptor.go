package auditpg

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/auditpg/auditpg/internal/pgerr"
	"github.com/auditpg/auditpg/internal/resultcache"
	"github.com/auditpg/auditpg/internal/sqlclass"
	"github.com/cenkalti/backoff/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/ngrok/sqlmw"
)

// shared is what the interceptors of one connector's connections share:
// the configuration, statistics, classifier memo, observers and cache.
type shared struct {
	cfg        config
	stats      *collector
	classifier *sqlclass.Memo
	observers  []Observer         // stats first, then the user's
	cache      *resultcache.Cache // nil when the cache mode is off
	// target is the connector's Target: its DSN's, or, when targetFromConn
	// (a config registered with pgx, known only once connected), the latest
	// connection's; nil for a non-pgx inner connector or before then.
	target         atomic.Pointer[Target]
	targetFromConn bool
}

// interceptor is the sqlmw.Interceptor of one connection: every call is
// timed, classified and handed to the observers here.
type interceptor struct {
	sqlmw.NullInterceptor // StmtClose and Result calls pass through untimed
	c                     *shared
	pgx                   *stdlib.Conn
	target                *Target // the connection's, for its events and cache scope
	inTx                  bool
	cs                    resultcache.Session
}

// retryMaxDelay caps the delay between connection attempts (a longer first
// delay stays as given): one attempt a second does not load a server that
// is down, and a longer wait would only delay the first read once it is
// back.
const retryMaxDelay = time.Second

// ConnectorConnect connects, retrying transient failures with backoff
// within the context's deadline: the delays double from the first
// (WithConnectRetry) up to retryMaxDelay, each drawn within ±50% so that
// callers that lost the server together do not all try again together.
func (ic *interceptor) ConnectorConnect(ctx context.Context, connector driver.Connector) (driver.Conn, error) {
	c := ic.c
	ev := &Event{Op: OpConnect, Start: time.Now(), Target: c.target.Load()}
	ctx = c.start(ctx, ev)
	b := &backoff.ExponentialBackOff{
		InitialInterval:     c.cfg.retryDelay,
		RandomizationFactor: 0.5,
		Multiplier:          2,
		MaxInterval:         max(retryMaxDelay, c.cfg.retryDelay),
	}
	var last error
	attempt := 0
	dc, err := backoff.Retry(ctx, func() (driver.Conn, error) {
		attempt++
		dc, err := connector.Connect(ctx)
		if err != nil {
			last = err
			if !transient(err) {
				return nil, backoff.Permanent(err)
			}
			if l := c.cfg.stats.logger; l != nil && attempt < c.cfg.retryAttempts {
				l.WarnContext(ctx, "auditpg: connection attempt failed, retrying", "error", err)
			}
		}
		return dc, err
	}, backoff.WithBackOff(b), backoff.WithMaxTries(uint(c.cfg.retryAttempts)), backoff.WithMaxElapsedTime(0))
	if err != nil && last != nil && !errors.Is(err, last) {
		err = fmt.Errorf("%w (last attempt: %w)", err, last) // the context ended the retries: say why we were retrying
	}
	ev.Duration = time.Since(ev.Start)
	c.stats.connected(ev.Duration, err)
	if err != nil {
		ev.Err, ev.SQLState = err, pgerr.SQLState(err)
		c.end(ctx, ev)
		return nil, err
	}
	ic.pgx, _ = dc.(*stdlib.Conn)
	ic.target = c.connTarget(ic.pgx)
	ev.Target = ic.target
	if c.cache != nil {
		var host string
		var port uint16
		if ic.target != nil {
			host, port = ic.target.Host, ic.target.Port
		}
		ic.cs.Attach(c.cache, ic.pgx, &ic.inTx, host, port)
	}
	c.end(ctx, ev)
	return dc, nil
}

// connTarget returns the Target of a new connection: the connector's, or,
// for a registered pgx config, the one its connection was made with. A
// target equal to the connector's latest reuses its pointer, as observers
// may key on it (OpenTelemetry's attributes do).
func (c *shared) connTarget(pc *stdlib.Conn) *Target {
	cur := c.target.Load()
	if !c.targetFromConn || pc == nil {
		return cur
	}
	cfg := pc.Conn().Config()
	t := Target{Host: cfg.Host, Port: cfg.Port, Database: cfg.Database, User: cfg.User}
	if cur != nil && *cur == t {
		return cur
	}
	c.target.Store(&t)
	return &t
}

// transient reports whether a failed connection attempt may succeed if
// tried again: network failures and a server that is starting, shutting
// down or full. Authentication and configuration errors are not.
func transient(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		class := pgErr.Code[:min(2, len(pgErr.Code))]
		return class == "08" || // connection exception
			class == "53" || // insufficient resources: too many connections, out of memory
			pgErr.Code == "57P03" // cannot_connect_now: starting up or in recovery
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return pgconn.Timeout(err) // pgx's own connect_timeout, not the caller's context
	}
	var netErr net.Error
	return errors.As(err, &netErr) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// start and end hand an event to every observer; end runs in reverse order
// so that nested observers (spans) unwind properly.
func (c *shared) start(ctx context.Context, ev *Event) context.Context {
	for _, o := range c.observers {
		ctx = o.Start(ctx, ev)
	}
	return ctx
}

// rewrite applies WithQueryRewriter's function, if any, to the text about
// to be sent; classification, statistics and cache keys keep the original.
func (c *shared) rewrite(ctx context.Context, query string) string {
	if c.cfg.rewriter == nil {
		return query
	}
	return c.cfg.rewriter(ctx, query)
}

func (c *shared) end(ctx context.Context, ev *Event) {
	ev.Slow = c.cfg.stats.isSlow(ev.Duration)
	for i := len(c.observers) - 1; i >= 0; i-- {
		c.observers[i].End(ctx, ev)
	}
}

// call times one call that returns no rows.
func (ic *interceptor) call(ctx context.Context, op Op, query string, fn func(context.Context) error) error {
	ev := &Event{Op: op, Query: query, InTx: ic.inTx, Start: time.Now(), Target: ic.target}
	if query != "" {
		ev.Statement = ic.c.classifier.Classify(query)
	}
	ctx = ic.c.start(ctx, ev)
	err := fn(ctx)
	ev.Duration = time.Since(ev.Start)
	if err != nil {
		ev.Err, ev.SQLState = err, pgerr.SQLState(err)
	}
	ic.c.end(ctx, ev)
	return err
}

func (ic *interceptor) ConnPing(ctx context.Context, p driver.Pinger) error {
	return ic.call(ctx, OpPing, "", p.Ping)
}

func (ic *interceptor) ConnBeginTx(ctx context.Context, conn driver.ConnBeginTx, opts driver.TxOptions) (context.Context, driver.Tx, error) {
	var tx driver.Tx
	err := ic.call(ctx, OpBegin, "", func(ctx context.Context) (err error) {
		tx, err = conn.BeginTx(ctx, opts)
		return err
	})
	ic.inTx = err == nil
	return ctx, tx, err
}

func (ic *interceptor) TxCommit(ctx context.Context, tx driver.Tx) error {
	ic.inTx = false
	err := ic.call(ctx, OpCommit, "", func(context.Context) error { return tx.Commit() })
	if ic.c.cache != nil {
		// A commit that failed without a word from the server may still
		// have committed: invalidate as if it had.
		ic.cs.EndTransaction(ctx, err == nil || pgerr.SQLState(err) == "")
	}
	return err
}

func (ic *interceptor) TxRollback(ctx context.Context, tx driver.Tx) error {
	ic.inTx = false
	err := ic.call(ctx, OpRollback, "", func(context.Context) error { return tx.Rollback() })
	if ic.c.cache != nil {
		ic.cs.EndTransaction(ctx, false)
	}
	return err
}

func (ic *interceptor) ConnPrepareContext(ctx context.Context, conn driver.ConnPrepareContext, query string) (context.Context, driver.Stmt, error) {
	var stmt driver.Stmt
	err := ic.call(ctx, OpPrepare, query, func(ctx context.Context) (err error) {
		stmt, err = conn.PrepareContext(ctx, ic.c.rewrite(ctx, query))
		return err
	})
	return ctx, stmt, err
}

func (ic *interceptor) ConnExecContext(ctx context.Context, conn driver.ExecerContext, query string, args []driver.NamedValue) (driver.Result, error) {
	return ic.exec(ctx, conn, nil, query, args)
}

func (ic *interceptor) StmtExecContext(ctx context.Context, stmt driver.StmtExecContext, query string, args []driver.NamedValue) (driver.Result, error) {
	return ic.exec(ctx, nil, stmt, query, args)
}

// exec times an exec through a connection or, when stmt is set, through a
// prepared statement. (No closures here: this is the hot path, and a closure
// that captures costs an allocation.)
func (ic *interceptor) exec(ctx context.Context, conn driver.ExecerContext, stmt driver.StmtExecContext, query string, args []driver.NamedValue) (driver.Result, error) {
	ev := &Event{Op: OpExec, Query: query, Statement: ic.c.classifier.Classify(query), Args: args,
		Prepared: stmt != nil, InTx: ic.inTx, Start: time.Now(), Target: ic.target}
	ctx = ic.c.start(ctx, ev)
	sql := query
	if stmt == nil {
		sql = ic.c.rewrite(ctx, query)
	}
	res, err := execOnce(ctx, conn, stmt, sql, args)
	if err != nil && replan(ctx, ic.pgx, err, ev.Statement, stmt != nil, ic.c.cfg.rewriter != nil, query) {
		ev.Retried = true
		res, err = execOnce(ctx, conn, stmt, sql, args)
	}
	ev.Duration = time.Since(ev.Start)
	if err != nil {
		ev.Err, ev.SQLState = err, pgerr.SQLState(err)
	} else {
		if n, rerr := res.RowsAffected(); rerr == nil {
			ev.Rows = n
		}
		afterDDL(ctx, ic.pgx, ev.Statement)
	}
	ic.cs.AfterStatement(ctx, ev.Statement, ev.SQLState)
	ic.c.end(ctx, ev)
	return res, err
}

func execOnce(ctx context.Context, conn driver.ExecerContext, stmt driver.StmtExecContext, sql string, args []driver.NamedValue) (driver.Result, error) {
	if stmt != nil {
		return stmt.ExecContext(ctx, args)
	}
	return conn.ExecContext(ctx, sql, args)
}

func (ic *interceptor) ConnQueryContext(ctx context.Context, conn driver.QueryerContext, query string, args []driver.NamedValue) (context.Context, driver.Rows, error) {
	return ic.query(ctx, conn, nil, query, args)
}

func (ic *interceptor) StmtQueryContext(ctx context.Context, stmt driver.StmtQueryContext, query string, args []driver.NamedValue) (context.Context, driver.Rows, error) {
	return ic.query(ctx, nil, stmt, query, args)
}

// query starts a query's event; it ends when its rows are closed, so that
// the time spent reading them counts. A read the cache can answer never
// reaches the server; a miss it may keep is captured as it is read.
func (ic *interceptor) query(ctx context.Context, conn driver.QueryerContext, stmt driver.StmtQueryContext, query string, args []driver.NamedValue) (context.Context, driver.Rows, error) {
	r := rowsPool.Get().(*rows)
	r.ev = Event{Op: OpQuery, Query: query, Statement: ic.c.classifier.Classify(query), Args: args,
		Prepared: stmt != nil, InTx: ic.inTx, Start: time.Now(), Target: ic.target}
	var err error
	if ic.c.cache != nil && r.ev.Statement.Kind == KindSelect {
		ev := &r.ev
		if ev.Cache, ev.CacheReason, r.fill, err = ic.cs.Lookup(ctx, ev.Statement, query, args, ev.Start, &r.replay); ev.Cache == CacheHit {
			r.Rows = &r.replay
			r.ctx = ic.c.start(ctx, &r.ev)
			return r.ctx, r, nil
		}
	}
	ctx = ic.c.start(ctx, &r.ev)
	r.ctx = ctx
	if err == nil {
		sql := query
		if stmt == nil {
			sql = ic.c.rewrite(ctx, query)
		}
		r.Rows, err = queryOnce(ctx, conn, stmt, sql, args)
		if err != nil && replan(ctx, ic.pgx, err, r.ev.Statement, stmt != nil, ic.c.cfg.rewriter != nil, query) {
			r.ev.Retried = true
			if r.fill != nil {
				// Taken before the DDL that staled the plan was known:
				// this read keeps nothing.
				r.fill.Finish(false)
				r.fill = nil
			}
			r.Rows, err = queryOnce(ctx, conn, stmt, sql, args)
		}
	}
	if err != nil {
		r.ev.Duration = time.Since(r.ev.Start)
		r.ev.Err, r.ev.SQLState = err, pgerr.SQLState(err)
		if r.fill != nil {
			r.fill.Finish(false)
		}
		ic.cs.AfterStatement(ctx, r.ev.Statement, r.ev.SQLState)
		ic.c.end(ctx, &r.ev)
		r.release()
		return ctx, nil, err
	}
	if r.fill != nil {
		r.fill.Start(r.Rows)
	}
	return ctx, r, nil
}

func (ic *interceptor) RowsNext(_ context.Context, dr driver.Rows, dest []driver.Value) error {
	r, ok := dr.(*rows)
	if !ok {
		return dr.Next(dest)
	}
	err := r.Rows.Next(dest)
	switch err {
	case nil:
		r.ev.Rows++
		if r.fill != nil && !r.fill.Row(dest) {
			r.fill.Finish(false) // too large: the reader goes on uncached
			r.fill = nil
		}
	case io.EOF:
		if r.fill != nil {
			r.fill.Complete = true
		}
	default:
		r.ev.Err, r.ev.SQLState = err, pgerr.SQLState(err)
	}
	return err
}

func (ic *interceptor) RowsClose(_ context.Context, dr driver.Rows) error {
	r, ok := dr.(*rows)
	if !ok {
		return dr.Close()
	}
	if r.fill != nil && !r.fill.Complete && !r.closed && r.ev.Err == nil {
		ic.drain(r)
	}
	err := r.Rows.Close()
	if r.closed {
		return err
	}
	r.closed = true
	r.ev.Duration = time.Since(r.ev.Start)
	if err != nil && r.ev.Err == nil {
		r.ev.Err, r.ev.SQLState = err, pgerr.SQLState(err)
	}
	if r.fill != nil {
		r.fill.Finish(r.ev.Err == nil)
		r.fill = nil
	}
	if r.ev.Cache != CacheHit {
		if r.ev.Err == nil {
			afterDDL(r.ctx, ic.pgx, r.ev.Statement)
		}
		ic.cs.AfterStatement(r.ctx, r.ev.Statement, r.ev.SQLState)
	}
	ic.c.end(r.ctx, &r.ev)
	r.release()
	return err
}

func queryOnce(ctx context.Context, conn driver.QueryerContext, stmt driver.StmtQueryContext, sql string, args []driver.NamedValue) (driver.Rows, error) {
	if stmt != nil {
		return stmt.QueryContext(ctx, args)
	}
	return conn.QueryContext(ctx, sql, args)
}

// drain reads the rest of a result being captured, as QueryRow leaves it:
// pgx would read it from the network at Close anyway, so keeping it costs
// only its decoding, and the entry is complete.
func (ic *interceptor) drain(r *rows) {
	dest := make([]driver.Value, len(r.Rows.Columns()))
	for r.fill != nil {
		switch err := r.Rows.Next(dest); err {
		case nil:
			if !r.fill.Row(dest) {
				r.fill.Finish(false)
				r.fill = nil
			}
		case io.EOF:
			r.fill.Complete = true
			return
		default:
			return
		}
	}
}
