// Package monitor reads a PostgreSQL server's own statistics and turns them
// into findings, advice and a health status, in the manner of PgHero (and
// Dexter for index suggestions). It works on a plain *sql.DB of any driver;
// given WithDriverStats, the summary also carries the driver's own
// statistics (the auditpg command passes the auditpg driver's).
//
//	m, err := monitor.New(db)          // an option given a bad value fails here
//	s, err := m.Summary(ctx)           // everything, with s.Health
//	qs, err := m.SlowQueries(ctx, monitor.SlowQueryOptions{MinCalls: 10})
//	p, err := m.Explain(ctx, "SELECT ...", monitor.ExplainOptions{})
//	plan, err := m.PlanMaintenance(ctx) // dry run; RunMaintenance runs it
//
// # What it never does on its own
//
// It never resets pg_stat_statements (only ResetStatements does), never
// applies a setting (ConfigAdvice returns ALTER SYSTEM statements for the
// operator), never drops or reindexes an index that is merely unused
// (maintenance reindexes invalid indexes only, and drops only the _ccnew and
// _ccold leftovers of a failed REINDEX CONCURRENTLY), and runs nothing from
// a maintenance plan until RunMaintenance is called.
//
// # Statements
//
// StatementsStatus checks that pg_stat_statements is available, preloaded
// (shared_preload_libraries, read with current_setting) and installed
// (pg_extension), and says exactly what to change when it is not.
// SlowQueries reads the view's columns first, so that it works on
// PostgreSQL 13 to 17: total_exec_time + total_plan_time (total_time
// before 13), shared_blk_read_time on 17 (blk_read_time before).
//
// # Plans
//
// Explain runs EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) in a transaction
// that is always rolled back, under SET LOCAL statement_timeout, parses the
// JSON into a tree and recommends from its nodes. One statement only; a
// statement that may write (INSERT, UPDATE, DELETE, MERGE, data-modifying
// WITH, a volatile function) needs ExplainOptions.AllowWrites, and without
// it the transaction is READ ONLY as well. The server parses the text first
// (prepared: one statement, whatever protocol the DSN asks for), so that a
// text it cannot parse is ErrSyntax, with its message and position, rather
// than a refusal; auditpg's statement classifier then decides whether it
// may write, and the functions the plan of EXPLAIN (VERBOSE) and the text
// name are looked up in pg_proc, a volatile one refusing the statement.
//
// A statement with $n parameters, such as a fingerprint of
// pg_stat_statements, takes one value for each (ExplainOptions.Args, sent
// as text: the server converts them to the types it infers), or is
// explained as its generic plan, which is not executed (Plan.Generic): the
// statement is prepared with the parameter types the server infers, and
// EXPLAIN EXECUTE, without ANALYZE, plans it for NULLs under plan_cache_mode
// = force_generic_plan, which makes the plan the one for any values. That is
// what EXPLAIN (GENERIC_PLAN) of PostgreSQL 16 does, but it takes parameters
// only in a text sent without a Parse, and every text Explain sends is
// prepared, so that the server checks it is one statement.
//
// # Thresholds
//
// Findings and health statuses are decided by Thresholds
// (DefaultThresholds, WithThresholds). The defaults are: a slow query is
// 1 s or more on average; 5 slow statements make a warning; a result cache
// hit ratio below 50% is a warning; an index is unused when it was never
// scanned since the statistics were reset (any scan is a use: a count
// below some number says more about the age of the statistics than about
// the index); VACUUM and ANALYZE are due by autovacuum's own rule for each
// table, so that the thresholds scale with its size; the rest are PgHero's:
//
//	component    warning                                critical
//	statements   >= 5 statements with mean >= 1 s;      -
//	             pg_stat_statements not ready
//	cache        buffer hit ratio < 99%                 < 90%  (judged from 1000 blocks read)
//	connections  >= 70% of max_connections              >= 90%
//	queries      running / in a transaction >= 1 min;   >= 1 h
//	             a backend blocked by a lock
//	indexes      invalid, unused (0 scans, >= 1 MB,      -
//	             not unique), redundant, large tables
//	             (>= 10000 rows) < 95% read by index
//	tables       VACUUM or ANALYZE due (below)          -
//	sequences    >= 75% of the range used               >= 90%
//	wraparound   transaction ID age >= 1 billion        >= 1.6 billion
//	partitions   rows in a default partition,           -
//	             more than 1000 leaf partitions
//	driver       failed calls, failed connects, pool     -
//	             waits, result cache hit ratio < 50%
//
// A table needs VACUUM when its dead tuples exceed autovacuum_vacuum_threshold
// + autovacuum_vacuum_scale_factor x its rows (pg_class.reltuples), and
// ANALYZE when the rows modified since its last analyze exceed
// autovacuum_analyze_threshold + autovacuum_analyze_scale_factor x its rows:
// the server's settings, or the table's storage parameters where it has
// them (50 + 20% and 50 + 10% by default), as autovacuum decides. Where
// autovacuum processes the table it will do so on its next round, so the
// report calls for it only past Thresholds.AutovacuumLag (2) times the
// threshold; where autovacuum is off for the table, past the threshold. A
// 7-row partition never analyzed is therefore not reported, nor 600 rows
// changed in a table of 10000.
//
// Plan analysis: a sequential scan that reads 10000 rows or more and whose
// filter discards half of them or more; a sort or hash that spills to disk;
// an estimate 10x off or more (when either count reaches 100); the inner
// side of a nested loop run 1000 times or more; a lossy bitmap heap scan.
//
// # Locks
//
// Reading a relation's size takes a lock that ALTER TABLE, VACUUM FULL or
// REINDEX (not CONCURRENTLY) hold exclusively. The reports therefore run in
// one read-only transaction under SET LOCAL lock_timeout (WithLockTimeout,
// default 5 s): a locked table makes a report fail with a message saying
// so, never hang. The transaction also gives the report one consistent view
// of the statistics.
//
// Statistics views are updated asynchronously (a backend reports its counts
// when idle, at most once a second), so a report may lag the last second of
// activity.
package monitor
