// Package partition manages the time-range partitions of an audit log in
// PostgreSQL (14 or later), in the manner of pg_partman, from a plain
// *sql.DB of any driver.
//
// # The table
//
// [AuditLogSchema] returns the audit_log DDL as plain SQL (`auditpg
// partition schema` prints it): one audit event a row, PARTITION BY RANGE
// ("timestamp"), the primary key (id, "timestamp") (a partitioned table's
// unique constraints must include the partition key), the indexes declared
// once on the parent so that every partition has them, and a default
// partition. [Manager.Create] creates the table from it when missing.
//
// # Indexes
//
// An audit log is written far more than it is read, and every index is
// paid on every insert. Of the fourteen indexes the table could have, five
// are kept:
//
//   - ("timestamp"): time-range scans and "latest events" (ORDER BY
//     "timestamp" DESC LIMIT n); appends land on the index's right edge,
//     so it is cheap to maintain;
//   - (organization_id, "timestamp"): the tenant's events in a range, the
//     main query; it also serves organization_id alone, which is dropped;
//   - (principal_id): "what did this user do";
//   - (correlation_id): follow one request across services;
//   - (target_resource_type, target_resource_id): "who touched this".
//
// Dropped: organization_id (a prefix of the composite above); action,
// status, data_classification, retention_policy and (data_classification,
// retention_policy) (a handful of values each: the planner prefers a scan
// of the partition, which pruning already narrowed to the range); (principal_id,
// action) (principal_id serves it, the filter on action is cheap on
// principal's few rows); hash on hash (integrity checks read events by id,
// not by hash); GIN on details (the costliest to maintain of all; add it
// only where ad-hoc jsonb search is a product feature). [WithSeedIndexes]
// declares all fourteen. The measurement is in BENCHMARKS.md
// (BenchmarkInsertIndexes, medians of 3 runs of 300 batches, 2 shared
// cores): a batch of 1000 events takes 12 ms with the primary key alone,
// 25 ms with the kept indexes, 55 ms with all fourteen: the kept set
// writes about 2.2 times as many events per second as the full list
// (40,000 against 18,000).
//
// # Partitions
//
// Intervals are daily, weekly (ISO weeks, from Monday), monthly, quarterly
// and yearly. Bounds are always computed and compared in UTC, whatever the
// session TimeZone or the process's time zone: a partition is [start, next
// start) in UTC, written to PostgreSQL as '2024-02-01 00:00:00+00', and
// read back through pg_get_expr in a transaction whose TimeZone is set to
// UTC. A partition is named <table>_pYYYYMMDD after the UTC date its range
// starts on (pg_partman's scheme; it sorts by time), the default one
// <table>_default; a table name too long for the suffix is shortened to
// fit PostgreSQL's 63 bytes.
//
// Creation is idempotent and gentle: the partition is built as a standalone
// table LIKE the parent, with a CHECK constraint matching its bounds, then
// attached. ATTACH PARTITION takes SHARE UPDATE EXCLUSIVE on the parent,
// which does not block inserts or reads, and the CHECK lets it skip its
// validation scan (the constraint is dropped once attached). The current
// partition and [WithPremake] future ones (4 by default) are kept, whether
// data arrives or not.
//
// Every DDL transaction runs with a lock_timeout ([WithLockTimeout],
// default 2s) and is retried with exponential backoff ([WithRetries],
// default 5) when it times out; a lock request waiting in the queue blocks
// the requests behind it, so this bound is also the longest an insert can
// wait on maintenance. When every retry fails the call returns
// [ErrLockTimeout], having changed nothing in that step. Locks are always
// taken in one order: parent, then default partition, then the partition
// being changed. All mutating calls of one table serialize on a session
// advisory lock held on a dedicated connection, across processes, and run
// on that connection: a Manager needs a single connection of the pool.
//
// # The default partition
//
// A default partition (on by default, [WithDefaultPartition]) takes rows no
// partition covers instead of failing the insert. pg_partman's users know
// the catch: a partition cannot be attached while the default holds rows of
// its range. Here creating such a partition moves those rows first: in
// committed batches ([WithBatchSize]) into the standalone table, then the
// stragglers inside the attach transaction. Between the first batch and the
// attach, the rows moved so far are not visible through the parent (never
// lost: each batch's DELETE and INSERT commit together). [Manager.MoveDefault]
// (and every maintenance run) does this for every range the default holds
// rows of; [Manager.Analyze] reports the rows waiting there.
//
// # Retention
//
// [Manager.Cleanup] removes only partitions whose whole range ended at or
// before now minus the retention, never the partition holding now, a future
// one or the default one; with a dry run it lists them. Modes: [Drop],
// [Detach] (kept as a plain table), [Archive] (detached into the archive
// schema). Detaching uses DETACH PARTITION CONCURRENTLY, which blocks no
// query, except when the table has a default partition: PostgreSQL forbids
// CONCURRENTLY then, and the plain DETACH takes a brief ACCESS EXCLUSIVE lock
// on the parent, bounded by the lock timeout. An interrupted CONCURRENTLY
// detach is finalized by the next run.
//
// [Manager.CleanupFuture] drops the empty partitions that start after the
// last one premake keeps ahead; each is checked empty in the transaction
// that drops it (a brief ACCESS EXCLUSIVE lock on the parent, bounded by the
// lock timeout), and one holding rows is kept with a warning naming it and
// its row count.
//
// # Analysis
//
// [Manager.Analyze] sums the planner's estimates and says when they are
// unknown (partitions holding rows never analyzed: run ANALYZE), and
// recommends, naming the command that does it: past [ManyPartitions]
// partitions (1000; monitor's summary warns at the same count), removing
// the surplus ahead of now when that is where it is, a coarser interval or a
// shorter retention when the partitions are in the past.
//
// # Converting an existing table
//
// [Manager.Convert] turns an unpartitioned table into a partitioned one on
// the column of [WithColumn]: new table, batched copy with progress, then
// one short transaction that blocks writes, copies the rest, verifies the
// counts and swaps the names, keeping the old table as
// <table>_unpartitioned. The new table's primary key, indexes and identity
// sequences take the old table's names (the backup's are renamed after it),
// and it is analyzed.
//
// # Scheduling
//
// A [Scheduler] runs maintenance (create, move, fill gaps, retention)
// every interval, default daily. Any number of application instances may
// run one: each run takes pg_try_advisory_lock on a connection it holds
// for the run (advisory locks belong to a session; through a
// transaction-mode pooler such as PgBouncer, point the scheduler at a
// direct connection), and the others record a skipped run. [Scheduler.Last] and [OnRun] give the last
// run's time, duration, what it created, moved and removed, and its error.
package partition
