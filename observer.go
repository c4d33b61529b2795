package auditpg

import (
	"github.com/auditpg/auditpg/internal/event"
	"github.com/auditpg/auditpg/internal/sqlclass"
)

// Op is the kind of database/sql call an Event describes.
type Op = event.Op

const (
	OpConnect  = event.OpConnect
	OpPing     = event.OpPing
	OpPrepare  = event.OpPrepare
	OpExec     = event.OpExec
	OpQuery    = event.OpQuery // from the query to Rows.Close, iteration included
	OpBegin    = event.OpBegin
	OpCommit   = event.OpCommit
	OpRollback = event.OpRollback
)

// Event is one timed database call, handed to every Observer: the call,
// its SQL and classification, its arguments (sensitive: never log them by
// default), its timing, rows, error and SQLSTATE, whether it was slow, how
// the result cache answered it, and the connection's Target. The
// interceptor owns it; observers must not keep it after End returns.
type Event = event.Event

// Observer is the seam through which statistics, the result cache and
// OpenTelemetry see every call. Start runs before the call and may return a
// derived context (a span); End runs once the call is over (for a query,
// when its rows are closed) with the context Start returned. The Event is
// valid only until End returns (it is recycled for a later call): copy what
// you keep.
type Observer = event.Observer

// InvalidationObserver is an optional interface of an Observer: the result
// cache calls Invalidated once for each write that invalidates cached
// results, with the tables it wrote, or with none when the write could not
// name them and everything was invalidated.
type InvalidationObserver = event.InvalidationObserver

// Target names the server and database of a connection, for spans
// (server.address, server.port, db.namespace) and reports. For a config
// registered with pgx it is read from each connection's config; see
// Event.Target and Connector.Target.
type Target = event.Target

// CacheOutcome is how the result cache answered one query.
type CacheOutcome = event.CacheOutcome

const (
	CacheHit    = event.CacheHit
	CacheMiss   = event.CacheMiss
	CacheBypass = event.CacheBypass
)

// Statement is the classification of one SQL text (internal/sqlclass): its
// kind, the tables it reads and writes, what makes it unsafe to cache, its
// fingerprint and summary. It is immutable once made and shared between
// every query with the same text.
type Statement = sqlclass.Statement

// Kind is what a statement does, as far as caching and invalidation care.
type Kind = sqlclass.Kind

const (
	KindUnknown  = sqlclass.KindUnknown  // not recognized: treated as "may write anything"
	KindSelect   = sqlclass.KindSelect   // SELECT, VALUES, TABLE, WITH ... SELECT (read-only CTEs)
	KindInsert   = sqlclass.KindInsert   // INSERT
	KindUpdate   = sqlclass.KindUpdate   // UPDATE
	KindDelete   = sqlclass.KindDelete   // DELETE
	KindMerge    = sqlclass.KindMerge    // MERGE
	KindCopy     = sqlclass.KindCopy     // COPY (FROM writes its table; TO reads it)
	KindTruncate = sqlclass.KindTruncate // TRUNCATE
	KindDDL      = sqlclass.KindDDL      // CREATE, ALTER, DROP, COMMENT, GRANT, REVOKE, REINDEX, CLUSTER, REFRESH ...
	KindCall     = sqlclass.KindCall     // CALL
	KindDo       = sqlclass.KindDo       // DO
	KindTx       = sqlclass.KindTx       // BEGIN, START TRANSACTION, COMMIT, END, ROLLBACK, SAVEPOINT, RELEASE, PREPARE TRANSACTION
	KindSession  = sqlclass.KindSession  // SET, RESET, SET ROLE, SET SESSION AUTHORIZATION, DISCARD
	KindUtility  = sqlclass.KindUtility  // SHOW, EXPLAIN (without ANALYZE), LISTEN, NOTIFY, VACUUM, ANALYZE, LOCK, ...
)

// Classify lexes sql and reports what it does. It never panics: text the
// classifier fails on is reported as an unknown statement that may write
// anything.
func Classify(sql string) *Statement { return sqlclass.Classify(sql) }
