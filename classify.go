package auditpg

import "github.com/auditpg/auditpg/internal/sqlclass"

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
