package sqlclass

import (
	"time"
)

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
	// CreatesTemp is true for statements that create a temporary table or
	// view: the same names may then mean other tables in this session.
	CreatesTemp bool
	// UserFunctionsOnly is true for a single read whose only doubt is that
	// it calls functions the classifier does not know: their volatility in
	// pg_proc decides whether it may write, and whether it may be cached.
	UserFunctionsOnly bool
	// CacheHint is true when the text carries a /* auditpg:cache */
	// comment; CacheTTL is its ttl=, or 0 for the configured default.
	CacheHint bool
	CacheTTL  time.Duration

	// bypass is the cache's bypass reason for a statement that is not
	// Cacheable, made once here rather than on every query.
	bypass string
}

// NotCacheable is the cache's bypass reason for every statement that is not
// Cacheable; BypassReason adds the classifier's own reason to it.
const NotCacheable = "not cacheable"

// BypassReason is "not cacheable: " and Uncacheable, made once per
// statement rather than on every query that bypasses the cache.
func (s *Statement) BypassReason() string { return s.bypass }
