package auditpg

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"reflect"
	"sync"
	"syscall"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/ngrok/sqlmw"
)

// Op is the kind of database/sql call an Event describes.
type Op uint8

const (
	OpConnect Op = iota
	OpPing
	OpPrepare
	OpExec
	OpQuery // from the query to Rows.Close, iteration included
	OpBegin
	OpCommit
	OpRollback
)

// Event is one timed database call, handed to every Observer. The
// interceptor owns it; observers must not keep it after End returns.
type Event struct {
	Op        Op
	Query     string              // SQL text as sent (empty for connect, ping, begin, commit, rollback)
	Statement *Statement          // classification of Query (nil when Query is empty)
	Args      []driver.NamedValue // argument values: sensitive, never log them by default
	Prepared  bool                // executed through a prepared statement
	InTx      bool                // executed inside a transaction
	Start     time.Time
	Duration  time.Duration
	Rows      int64  // rows returned (query) or affected (exec)
	Err       error  // nil on success; io.EOF at the end of rows is not an error
	SQLState  string // the SQLSTATE of Err, when the server sent one
	// Slow is set before End when the call lasted at least the connector's
	// slow-query threshold (WithSlowQueryThreshold): every observer judges
	// slowness by the one threshold.
	Slow bool
	// Cache is how the result cache answered a query: CacheHit (no
	// network call was made), CacheMiss (it ran, and may fill the cache),
	// CacheBypass (not eligible; CacheReason says why), or "" when the cache
	// had no part in the call.
	Cache       CacheOutcome
	CacheReason string
	// Target is the server and database the connector connects to; nil for
	// a connector built around a driver other than pgx's.
	Target *Target
}

// InvalidationObserver is an optional interface of an Observer: the result
// cache calls Invalidated once for each write that invalidates cached
// results, with the tables it wrote, or with none when the write could not
// name them and everything was invalidated.
type InvalidationObserver interface {
	Invalidated(ctx context.Context, tables []string)
}

// Target names the server and database of a connector, for spans
// (server.address, server.port, db.namespace) and reports.
type Target struct {
	Host     string // host name, IP address or Unix socket directory
	Port     uint16
	Database string
	User     string
}

// CacheOutcome is how the result cache answered one query.
type CacheOutcome string

const (
	CacheHit    CacheOutcome = "hit"
	CacheMiss   CacheOutcome = "miss"
	CacheBypass CacheOutcome = "bypass"
)

// Observer is the seam through which statistics, the result cache and
// OpenTelemetry see every call. Start runs before the call and may return a
// derived context (a span); End runs once the call is over (for a query,
// when its rows are closed) with the context Start returned. The Event is
// valid only until End returns (it is recycled for a later call): copy what
// you keep.
type Observer interface {
	Start(ctx context.Context, ev *Event) context.Context
	End(ctx context.Context, ev *Event)
}

// Connect opens one connection: pgx stdlib's, wrapped by sqlmw with an
// interceptor of its own, so that per-connection state (the open
// transaction) needs no lookup and no lock on the query path.
func (c *Connector) Connect(ctx context.Context) (driver.Conn, error) {
	ic := &interceptor{c: c}
	wrapped, err := sqlmw.Driver(connectorDriver{c.inner}, ic).(driver.DriverContext).OpenConnector("")
	if err != nil {
		return nil, err
	}
	inner, err := wrapped.Connect(ctx) // runs ic.ConnectorConnect
	if err != nil {
		return nil, err
	}
	full, ok := inner.(fullConn)
	if !ok { // sqlmw's connection implements all of fullConn: this guards an upgrade of it
		_ = inner.Close()
		return nil, fmt.Errorf("auditpg: sqlmw connection %T lacks a database/sql interface auditpg needs", inner)
	}
	return &conn{fullConn: full, ic: ic, opened: time.Now()}, nil
}

// connectorDriver lets sqlmw wrap a connector that was built from a parsed
// config rather than a DSN string.
type connectorDriver struct{ connector driver.Connector }

func (d connectorDriver) Open(string) (driver.Conn, error) {
	return d.connector.Connect(context.Background())
}

func (d connectorDriver) OpenConnector(string) (driver.Connector, error) { return d.connector, nil }

// fullConn is every interface database/sql looks for on a connection; sqlmw's
// connection implements them all and forwards them to pgx.
type fullConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.ExecerContext
	driver.QueryerContext
	driver.Pinger
	driver.SessionResetter
	driver.Validator
	driver.NamedValueChecker
}

// conn is the connection database/sql holds. It adds what sqlmw does not
// intercept: Close (for connection lifetimes) and access to the pgx
// connection for (*sql.Conn).Raw users (see PgxConn).
type conn struct {
	fullConn
	ic     *interceptor
	opened time.Time
}

func (c *conn) Close() error {
	c.ic.c.stats.closed(time.Since(c.opened))
	return c.fullConn.Close()
}

// PgxConn returns the *pgx.Conn under a connection that (*sql.Conn).Raw hands
// to its callback, so pgx-only features (CopyFrom, SendBatch, LISTEN) work on
// a *sql.DB opened with auditpg:
//
//	err := sqlConn.Raw(func(driverConn any) error {
//		pc, err := auditpg.PgxConn(driverConn)
//		if err != nil {
//			return err
//		}
//		_, err = pc.CopyFrom(ctx, pgx.Identifier{"audit_log"}, cols, src)
//		return err
//	})
//
// The *pgx.Conn must not be used after the callback returns. Work done on it
// directly bypasses auditpg's timing and statistics.
func PgxConn(driverConn any) (*pgx.Conn, error) {
	switch c := driverConn.(type) {
	case *conn:
		if c.ic.pgx != nil {
			return c.ic.pgx.Conn(), nil
		}
	case *stdlib.Conn:
		return c.Conn(), nil
	}
	return nil, fmt.Errorf("auditpg: PgxConn: %T is not an auditpg or pgx connection; pass the value that (*sql.Conn).Raw gives its callback, on a *sql.DB opened with auditpg", driverConn)
}

// interceptor is the sqlmw.Interceptor of one connection: every call is
// timed, classified and handed to the observers here.
type interceptor struct {
	sqlmw.NullInterceptor // StmtClose and Result calls pass through untimed
	c                     *Connector
	pgx                   *stdlib.Conn
	inTx                  bool
	cc                    connCache
}

// ConnectorConnect connects, retrying transient failures with backoff
// within the context's deadline.
func (ic *interceptor) ConnectorConnect(ctx context.Context, connector driver.Connector) (driver.Conn, error) {
	c := ic.c
	ev := &Event{Op: OpConnect, Start: time.Now(), Target: ic.c.target}
	ctx = c.start(ctx, ev)
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = c.cfg.retryDelay
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
		ev.Err, ev.SQLState = err, sqlState(err)
		c.end(ctx, ev)
		return nil, err
	}
	ic.pgx, _ = dc.(*stdlib.Conn)
	c.end(ctx, ev)
	return dc, nil
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
func (c *Connector) start(ctx context.Context, ev *Event) context.Context {
	for _, o := range c.observers {
		ctx = o.Start(ctx, ev)
	}
	return ctx
}

// rewrite applies WithQueryRewriter's function, if any, to the text about
// to be sent; classification, statistics and cache keys keep the original.
func (c *Connector) rewrite(ctx context.Context, query string) string {
	if c.cfg.rewriter == nil {
		return query
	}
	return c.cfg.rewriter(ctx, query)
}

func (c *Connector) end(ctx context.Context, ev *Event) {
	ev.Slow = c.cfg.stats.isSlow(ev.Duration)
	for i := len(c.observers) - 1; i >= 0; i-- {
		c.observers[i].End(ctx, ev)
	}
}

// sqlState returns the SQLSTATE of a server error, or "".
func sqlState(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

// call times one call that returns no rows.
func (ic *interceptor) call(ctx context.Context, op Op, query string, fn func(context.Context) error) error {
	ev := &Event{Op: op, Query: query, InTx: ic.inTx, Start: time.Now(), Target: ic.c.target}
	if query != "" {
		ev.Statement = ic.c.classifier.Classify(query)
	}
	ctx = ic.c.start(ctx, ev)
	err := fn(ctx)
	ev.Duration = time.Since(ev.Start)
	if err != nil {
		ev.Err, ev.SQLState = err, sqlState(err)
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
		ic.endTransaction(ctx, err == nil || sqlState(err) == "")
	}
	return err
}

func (ic *interceptor) TxRollback(ctx context.Context, tx driver.Tx) error {
	ic.inTx = false
	err := ic.call(ctx, OpRollback, "", func(context.Context) error { return tx.Rollback() })
	if ic.c.cache != nil {
		ic.endTransaction(ctx, false)
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
		Prepared: stmt != nil, InTx: ic.inTx, Start: time.Now(), Target: ic.c.target}
	ctx = ic.c.start(ctx, ev)
	var res driver.Result
	var err error
	if stmt != nil {
		res, err = stmt.ExecContext(ctx, args)
	} else {
		res, err = conn.ExecContext(ctx, ic.c.rewrite(ctx, query), args)
	}
	ev.Duration = time.Since(ev.Start)
	if err != nil {
		ev.Err, ev.SQLState = err, sqlState(err)
	} else if n, rerr := res.RowsAffected(); rerr == nil {
		ev.Rows = n
	}
	ic.afterStatement(ctx, ev.Statement, err)
	ic.c.end(ctx, ev)
	return res, err
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
	r.ic = ic
	r.ev = Event{Op: OpQuery, Query: query, Statement: ic.c.classifier.Classify(query), Args: args,
		Prepared: stmt != nil, InTx: ic.inTx, Start: time.Now(), Target: ic.c.target}
	var err error
	if ic.c.cache != nil && r.ev.Statement.Kind == KindSelect {
		var hit bool
		if hit, r.fill, err = ic.lookup(ctx, r); hit {
			r.Rows = &r.replay
			r.ctx = ic.c.start(ctx, &r.ev)
			return r.ctx, r, nil
		}
	}
	ctx = ic.c.start(ctx, &r.ev)
	r.ctx = ctx
	if err == nil {
		if stmt != nil {
			r.Rows, err = stmt.QueryContext(ctx, args)
		} else {
			r.Rows, err = conn.QueryContext(ctx, ic.c.rewrite(ctx, query), args)
		}
	}
	if err != nil {
		r.ev.Duration = time.Since(r.ev.Start)
		r.ev.Err, r.ev.SQLState = err, sqlState(err)
		if r.fill != nil {
			ic.c.cache.finish(r.fill, false)
		}
		ic.afterStatement(ctx, r.ev.Statement, err)
		ic.c.end(ctx, &r.ev)
		r.release()
		return ctx, nil, err
	}
	if r.fill != nil {
		r.fill.started(ic.c.cache, &ic.cc.columns, r.Rows)
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
		if r.fill != nil && !r.fill.row(ic.c.cache, dest) {
			ic.c.cache.finish(r.fill, false) // too large: the reader goes on uncached
			r.fill = nil
		}
	case io.EOF:
		if r.fill != nil {
			r.fill.complete = true
		}
	default:
		r.ev.Err, r.ev.SQLState = err, sqlState(err)
	}
	return err
}

func (ic *interceptor) RowsClose(_ context.Context, dr driver.Rows) error {
	r, ok := dr.(*rows)
	if !ok {
		return dr.Close()
	}
	if r.fill != nil && !r.fill.complete && !r.closed && r.ev.Err == nil {
		ic.drain(r)
	}
	err := r.Rows.Close()
	if r.closed {
		return err
	}
	r.closed = true
	r.ev.Duration = time.Since(r.ev.Start)
	if err != nil && r.ev.Err == nil {
		r.ev.Err, r.ev.SQLState = err, sqlState(err)
	}
	if r.fill != nil {
		ic.c.cache.finish(r.fill, r.ev.Err == nil)
		r.fill = nil
	}
	if r.ev.Cache != CacheHit {
		ic.afterStatement(r.ctx, r.ev.Statement, r.ev.Err)
	}
	ic.c.end(r.ctx, &r.ev)
	r.release()
	return err
}

// drain reads the rest of a result being captured, as QueryRow leaves it:
// pgx would read it from the network at Close anyway, so keeping it costs
// only its decoding, and the entry is complete.
func (ic *interceptor) drain(r *rows) {
	dest := make([]driver.Value, len(r.Rows.Columns()))
	for r.fill != nil {
		switch err := r.Rows.Next(dest); err {
		case nil:
			if !r.fill.row(ic.c.cache, dest) {
				ic.c.cache.finish(r.fill, false)
				r.fill = nil
			}
		case io.EOF:
			r.fill.complete = true
			return
		default:
			return
		}
	}
}

// rows carries one query's event from the query to Close. sqlmw picks the
// optional interfaces to expose from the rows that Unwrap returns and calls
// them on this value, which forwards them.
type rows struct {
	driver.Rows
	ic     *interceptor
	fill   *fill      // a miss being captured for the cache
	replay cachedRows // a hit: the cached result, which Rows then points to
	ctx    context.Context
	ev     Event
	closed bool
}

// rowsPool recycles rows objects: one is taken by every query, and
// database/sql closes each exactly once, after which neither it nor sqlmw
// touches it again. (Why observers must not keep an Event past End.)
var rowsPool = sync.Pool{New: func() any { return new(rows) }}

// release returns r to the pool, cleared so that it holds on to nothing.
func (r *rows) release() {
	*r = rows{}
	rowsPool.Put(r)
}

func (r *rows) Unwrap() driver.Rows { return r.Rows }

func (r *rows) HasNextResultSet() bool {
	return r.Rows.(driver.RowsNextResultSet).HasNextResultSet()
}

func (r *rows) NextResultSet() error {
	return r.Rows.(driver.RowsNextResultSet).NextResultSet()
}

func (r *rows) ColumnTypeDatabaseTypeName(i int) string {
	return r.Rows.(driver.RowsColumnTypeDatabaseTypeName).ColumnTypeDatabaseTypeName(i)
}

func (r *rows) ColumnTypeLength(i int) (int64, bool) {
	return r.Rows.(driver.RowsColumnTypeLength).ColumnTypeLength(i)
}

func (r *rows) ColumnTypeNullable(i int) (nullable, ok bool) {
	return r.Rows.(driver.RowsColumnTypeNullable).ColumnTypeNullable(i)
}

func (r *rows) ColumnTypePrecisionScale(i int) (precision, scale int64, ok bool) {
	return r.Rows.(driver.RowsColumnTypePrecisionScale).ColumnTypePrecisionScale(i)
}

func (r *rows) ColumnTypeScanType(i int) reflect.Type {
	return r.Rows.(driver.RowsColumnTypeScanType).ColumnTypeScanType(i)
}
