// Package event is the observer seam of the driver: the Event every call
// makes and the Observer interface that sees it. The root package gives
// these types their public names; internal observers (OpenTelemetry's)
// use them from here without importing the driver.
package event

import (
	"context"
	"database/sql/driver"
	"strconv"
	"time"

	"github.com/auditpg/auditpg/internal/resultcache"
	"github.com/auditpg/auditpg/internal/sqlclass"
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

var opNames = [...]string{
	OpConnect:  "connect",
	OpPing:     "ping",
	OpPrepare:  "prepare",
	OpExec:     "exec",
	OpQuery:    "query",
	OpBegin:    "begin",
	OpCommit:   "commit",
	OpRollback: "rollback",
}

// String returns the lower-case name of the call: "query", "exec", ...
func (o Op) String() string {
	if int(o) < len(opNames) {
		return opNames[o]
	}
	return "Op(" + strconv.Itoa(int(o)) + ")"
}

// Event is one timed database call, handed to every Observer. The
// interceptor owns it; observers must not keep it after End returns.
type Event struct {
	Op        Op
	Query     string              // SQL text as sent (empty for connect, ping, begin, commit, rollback)
	Statement *sqlclass.Statement // classification of Query (nil when Query is empty)
	Args      []driver.NamedValue // argument values: sensitive, never log them by default
	Prepared  bool                // executed through a prepared statement
	InTx      bool                // executed inside a transaction
	// Slow is set before End when the call lasted at least the connector's
	// slow-query threshold (WithSlowQueryThreshold): every observer judges
	// slowness by the one threshold.
	Slow bool
	// Retried is set when the call was made twice: outside a transaction,
	// the server refused the first attempt before executing it, because
	// DDL had changed the result of a statement pgx kept prepared or
	// described (SQLSTATE 0A000, or 08P01 at bind). The Event describes
	// the second.
	Retried  bool
	Start    time.Time
	Duration time.Duration
	Rows     int64  // rows returned (query) or affected (exec)
	Err      error  // nil on success; io.EOF at the end of rows is not an error
	SQLState string // the SQLSTATE of Err, when the server sent one
	// Cache is how the result cache answered a query: CacheHit (no
	// network call was made), CacheMiss (it ran, and may fill the cache),
	// CacheBypass (not eligible; CacheReason says why), or "" when the cache
	// had no part in the call.
	Cache       CacheOutcome
	CacheReason string
	// Target is the server and database of the call's connection; nil for
	// a connector built around a driver other than pgx's. Observers may key
	// on the pointer: a connector's connections share one while their Target
	// stays the same. A connector of a config registered with pgx
	// (stdlib.RegisterConnConfig) learns its Target from each connection: a
	// connect's Event has the Target of the connector's latest connection at
	// Start (nil before the first) and that of the new connection at End.
	Target *Target
}

// InvalidationObserver is an optional interface of an Observer: the result
// cache calls Invalidated once for each write that invalidates cached
// results, with the tables it wrote, or with none when the write could not
// name them and everything was invalidated.
type InvalidationObserver interface {
	Invalidated(ctx context.Context, tables []string)
}

// Target names the server and database of a connection, for spans
// (server.address, server.port, db.namespace) and reports.
type Target struct {
	Host     string // host name, IP address or Unix socket directory
	Port     uint16
	Database string
	User     string
}

// CacheOutcome is how the result cache answered one query.
type CacheOutcome = resultcache.Outcome

const (
	CacheHit    = resultcache.Hit
	CacheMiss   = resultcache.Miss
	CacheBypass = resultcache.Bypass
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
