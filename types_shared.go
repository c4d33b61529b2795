package auditpg

import (
	"context"
	"database/sql/driver"
	"time"
)

// ---- shared contract between interceptor.go, cachekey.go and stats.go ----

// Kind is what a statement does, as far as caching and invalidation care.
type Kind uint8

const (
	KindUnknown  Kind = iota // not recognized: treated as "may write anything"
	KindSelect               // SELECT, VALUES, TABLE, WITH ... SELECT (read-only CTEs)
	KindInsert               // INSERT
	KindUpdate               // UPDATE
	KindDelete               // DELETE
	KindMerge                // MERGE
	KindCopy                 // COPY (FROM writes its table; TO reads it)
	KindTruncate             // TRUNCATE
	KindDDL                  // CREATE, ALTER, DROP, COMMENT, GRANT, REVOKE, REINDEX, CLUSTER, REFRESH ...
	KindCall                 // CALL
	KindDo                   // DO
	KindTx                   // BEGIN, START TRANSACTION, COMMIT, END, ROLLBACK, SAVEPOINT, RELEASE, PREPARE TRANSACTION
	KindSession              // SET, RESET, SET ROLE, SET SESSION AUTHORIZATION, DISCARD
	KindUtility              // SHOW, EXPLAIN (without ANALYZE), LISTEN, NOTIFY, VACUUM, ANALYZE, LOCK, ...
)

// Statement is the classification of one SQL text. It is immutable once made
// and shared between every query with the same text.
type Statement struct {
	Kind Kind
	// Operation is the upper-case leading keyword(s): "SELECT", "INSERT",
	// "CREATE TABLE", ...; db.operation.name in OpenTelemetry terms. For a
	// WITH query it is the operation of the main statement.
	Operation string
	// Summary is a short low-cardinality description in the style of
	// OpenTelemetry's db.query.summary: "SELECT audit_log".
	Summary string
	// Fingerprint is the normalized text: literals replaced by $n
	// placeholders, IN and VALUES lists collapsed, comments dropped,
	// whitespace collapsed, keywords upper-cased.
	Fingerprint string
	// FingerprintID is a 64-bit hash of Fingerprint (for maps).
	FingerprintID uint64
	// Reads and Writes name the tables read and written, schema-qualified
	// where the SQL qualifies them; unquoted identifiers are folded to lower
	// case, quoted ones kept as written. CTE names are not tables.
	Reads  []string
	Writes []string
	// WritesUnknown is true when the statement may write tables it cannot
	// name (DO, CALL, unknown statements, volatile user functions...): a
	// cache must then invalidate everything.
	WritesUnknown bool
	// ReadOnly is true only when the statement certainly writes nothing.
	ReadOnly bool
	// Cacheable is true for a single read-only statement with nothing
	// volatile in it; Uncacheable says why not when it is false.
	Cacheable   bool
	Uncacheable string
	// Functions are the function names called (lower case, qualified as
	// written), for a later volatility lookup in pg_proc.
	Functions []string
	// MultiStatement is true when the text holds more than one statement.
	MultiStatement bool
	// ChangesSession is true for statements that change session state
	// (SET, RESET, SET ROLE, SET SESSION AUTHORIZATION, DISCARD, a call of
	// set_config).
	ChangesSession bool
}

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
}

// Observer is the seam through which statistics, the result cache and
// OpenTelemetry see every call. Start runs before the call and may return a
// derived context (a span); End runs once the call is over (for a query,
// when its rows are closed) with the context Start returned.
type Observer interface {
	Start(ctx context.Context, ev *Event) context.Context
	End(ctx context.Context, ev *Event)
}
