package metrics

import "github.com/prometheus/client_golang/prometheus"

// Family is one metric this package exports: its name, type, help and
// labels. Every label's values are bounded: by the catalog (schemas,
// tables, indexes, slots, each list cut at its maximum), by a fixed set
// (state, op, kind, section) or by the top N of pg_stat_statements.
type Family struct {
	Name   string
	Type   prometheus.ValueType
	Help   string
	Labels []string
}

var (
	tableLabels = []string{"schema", "table"}
	indexLabels = []string{"schema", "table", "index"}
)

// The families of the server side (prefix auditpg_pg_) and of the driver's
// own statistics (prefix auditpg_driver_). The OpenTelemetry metrics of
// the driver (db_client_*, auditpg_cache_*) come from NewMeterProvider.
var (
	famUp             = &Family{"auditpg_pg_up", prometheus.GaugeValue, "1 when the last collection reached the server, 0 when it could not.", nil}
	famScrapeError    = &Family{"auditpg_pg_scrape_error", prometheus.GaugeValue, "1 when a section of the last collection failed or ran out of time (its metrics are then missing), else 0.", []string{"section"}}
	famScrapeDuration = &Family{"auditpg_pg_scrape_duration_seconds", prometheus.GaugeValue, "How long the last collection took.", nil}
	famCollections    = &Family{"auditpg_pg_collections_total", prometheus.CounterValue, "Collections run; scrapes within the memo window reuse the last one.", nil}
	famCollectedAt    = &Family{"auditpg_pg_collection_timestamp_seconds", prometheus.GaugeValue, "When the metrics served were collected (Unix time).", nil}

	famConnections    = &Family{"auditpg_pg_connections", prometheus.GaugeValue, "Client backends of every database by state (pg_stat_activity).", []string{"state"}}
	famMaxConnections = &Family{"auditpg_pg_max_connections", prometheus.GaugeValue, "The server's max_connections.", nil}
	famCacheHitRatio  = &Family{"auditpg_pg_cache_hit_ratio", prometheus.GaugeValue, "Buffer cache hit ratio of this database's user tables (kind=table) and indexes (kind=index) since the statistics were reset.", []string{"kind"}}
	famBlocksHit      = &Family{"auditpg_pg_blocks_hit_total", prometheus.CounterValue, "Blocks of this database's user tables (kind=table) and indexes (kind=index) found in the buffer cache.", []string{"kind"}}
	famBlocksRead     = &Family{"auditpg_pg_blocks_read_total", prometheus.CounterValue, "Blocks of this database's user tables (kind=table) and indexes (kind=index) read from disk (or the OS cache).", []string{"kind"}}

	famStatementsReady = &Family{"auditpg_pg_stat_statements_ready", prometheus.GaugeValue, "1 when pg_stat_statements can be read (preloaded, installed, compute_query_id on).", nil}
	famStmtCalls       = &Family{"auditpg_pg_statement_calls_total", prometheus.CounterValue, "Calls of a statement (pg_stat_statements), for the top statements by total time.", []string{"queryid", "summary"}}
	famStmtSeconds     = &Family{"auditpg_pg_statement_seconds_total", prometheus.CounterValue, "Planning and execution time of a statement (pg_stat_statements), for the top statements by total time.", []string{"queryid", "summary"}}
	famStmtRows        = &Family{"auditpg_pg_statement_rows_total", prometheus.CounterValue, "Rows returned or affected by a statement (pg_stat_statements), for the top statements by total time.", []string{"queryid", "summary"}}

	famSlotRetained = &Family{"auditpg_pg_replication_slot_retained_wal_bytes", prometheus.GaugeValue, "WAL a replication slot keeps on the server (from its restart_lsn to the current position).", []string{"slot", "type"}}
	famSlotActive   = &Family{"auditpg_pg_replication_slot_active", prometheus.GaugeValue, "1 when a consumer is connected to the replication slot.", []string{"slot", "type"}}

	famTableSize      = &Family{"auditpg_pg_table_size_bytes", prometheus.GaugeValue, "Total size of a table (heap, indexes, TOAST); partitions one by one. The largest tables only.", tableLabels}
	famTableIdxSize   = &Family{"auditpg_pg_table_index_size_bytes", prometheus.GaugeValue, "Size of a table's indexes.", tableLabels}
	famTableLive      = &Family{"auditpg_pg_table_live_rows", prometheus.GaugeValue, "Live rows of a table (the statistics' estimate).", tableLabels}
	famTableDead      = &Family{"auditpg_pg_table_dead_rows", prometheus.GaugeValue, "Dead rows of a table, which VACUUM reclaims.", tableLabels}
	famTableVacuumAt  = &Family{"auditpg_pg_table_last_vacuum_timestamp_seconds", prometheus.GaugeValue, "Last VACUUM of a table, manual or automatic (Unix time; absent when never).", tableLabels}
	famTableAnalyzeAt = &Family{"auditpg_pg_table_last_analyze_timestamp_seconds", prometheus.GaugeValue, "Last ANALYZE of a table, manual or automatic (Unix time; absent when never).", tableLabels}
	famTableSeqScans  = &Family{"auditpg_pg_table_seq_scans_total", prometheus.CounterValue, "Sequential scans of a table.", tableLabels}
	famTableIdxScans  = &Family{"auditpg_pg_table_index_scans_total", prometheus.CounterValue, "Index scans of a table.", tableLabels}

	famIndexScans   = &Family{"auditpg_pg_index_scans_total", prometheus.CounterValue, "Scans of an index, summed over the partitions of a partitioned index. The largest indexes only.", indexLabels}
	famIndexSize    = &Family{"auditpg_pg_index_size_bytes", prometheus.GaugeValue, "Size of an index, summed over the partitions of a partitioned index.", indexLabels}
	famIndexInvalid = &Family{"auditpg_pg_index_invalid", prometheus.GaugeValue, "1 for an index left invalid by a failed CREATE INDEX or REINDEX CONCURRENTLY.", indexLabels}
	famInvalidCount = &Family{"auditpg_pg_invalid_indexes", prometheus.GaugeValue, "Invalid indexes in this database.", nil}

	famPartitions      = &Family{"auditpg_pg_partitions", prometheus.GaugeValue, "Leaf partitions of a partitioned table.", tableLabels}
	famPartitionsBytes = &Family{"auditpg_pg_partitioned_table_size_bytes", prometheus.GaugeValue, "Total size of a partitioned table's leaf partitions.", tableLabels}
	famDefaultRows     = &Family{"auditpg_pg_partition_default_rows", prometheus.GaugeValue, "Rows in a partitioned table's default partition (counted up to a million): they have no partition of their own.", tableLabels}
	famAheadSeconds    = &Family{"auditpg_pg_partition_ahead_seconds", prometheus.GaugeValue, "How far past now the time-range partitions cover without a gap (0: rows for now land in the default partition).", tableLabels}
	famFuture          = &Family{"auditpg_pg_partitions_future", prometheus.GaugeValue, "Time-range partitions starting after now.", tableLabels}
	famExpired         = &Family{"auditpg_pg_partitions_expired", prometheus.GaugeValue, "Time-range partitions past the retention that cleanup has not removed (0 without a retention).", tableLabels}

	famCalls           = &Family{"auditpg_driver_calls_total", prometheus.CounterValue, "Calls through the auditpg driver, by kind of call.", []string{"op"}}
	famErrors          = &Family{"auditpg_driver_errors_total", prometheus.CounterValue, "Calls through the driver that failed.", nil}
	famSlow            = &Family{"auditpg_driver_slow_calls_total", prometheus.CounterValue, "Calls at or above the driver's slow-query threshold.", nil}
	famRetries         = &Family{"auditpg_driver_retries_total", prometheus.CounterValue, "Calls made again after the server refused a statement planned before DDL.", nil}
	famPoolConns       = &Family{"auditpg_driver_pool_connections", prometheus.GaugeValue, "Connections of the pool by state (idle, in_use).", []string{"state"}}
	famPoolMax         = &Family{"auditpg_driver_pool_max_open_connections", prometheus.GaugeValue, "The pool's maximum of open connections (0: unlimited).", nil}
	famPoolWaits       = &Family{"auditpg_driver_pool_waits_total", prometheus.CounterValue, "Waits for a free connection of the pool.", nil}
	famPoolWaitSeconds = &Family{"auditpg_driver_pool_wait_seconds_total", prometheus.CounterValue, "Time spent waiting for a free connection of the pool.", nil}
	famConnects        = &Family{"auditpg_driver_connects_total", prometheus.CounterValue, "Connections opened.", nil}
	famConnectFailures = &Family{"auditpg_driver_connect_failures_total", prometheus.CounterValue, "Connection attempts that failed.", nil}

	famCacheHits      = &Family{"auditpg_driver_cache_hits_total", prometheus.CounterValue, "Reads answered from the result cache.", nil}
	famCacheMisses    = &Family{"auditpg_driver_cache_misses_total", prometheus.CounterValue, "Cacheable reads the result cache could not answer.", nil}
	famCacheBypasses  = &Family{"auditpg_driver_cache_bypasses_total", prometheus.CounterValue, "Reads the policy selected that ran without the cache, by reason (a bounded set).", []string{"reason"}}
	famCacheFills     = &Family{"auditpg_driver_cache_fills_total", prometheus.CounterValue, "Results stored in the cache.", nil}
	famCacheRejected  = &Family{"auditpg_driver_cache_rejected_fills_total", prometheus.CounterValue, "Misses whose result was not stored.", nil}
	famCacheEvictions = &Family{"auditpg_driver_cache_evictions_total", prometheus.CounterValue, "Entries the store dropped for room or age.", nil}
	famCacheInval     = &Family{"auditpg_driver_cache_invalidations_total", prometheus.CounterValue, "Writes that made at least one cached entry stale.", nil}
	famCacheEntries   = &Family{"auditpg_driver_cache_entries", prometheus.GaugeValue, "Entries in the cache, stale ones included until their space is needed.", nil}
	famCacheHeld      = &Family{"auditpg_driver_cache_held_bytes", prometheus.GaugeValue, "Bytes of the entries in the cache.", nil}
	famCacheMax       = &Family{"auditpg_driver_cache_max_bytes", prometheus.GaugeValue, "The configured size of the cache.", nil}
	famFeedState      = &Family{"auditpg_driver_cache_feed_state", prometheus.GaugeValue, "The feed of other processes' changes: 1 for its state (off, up, down), 0 for the others; down means reads bypass the cache.", []string{"state"}}
	famFeedReceived   = &Family{"auditpg_driver_cache_feed_received_total", prometheus.CounterValue, "Changes of other processes the feed delivered.", nil}
	famFeedPublished  = &Family{"auditpg_driver_cache_feed_published_total", prometheus.CounterValue, "This process's invalidations handed to the others.", nil}
	famFeedPending    = &Family{"auditpg_driver_cache_feed_pending", prometheus.GaugeValue, "Invalidations of this process not yet sent to the others.", nil}
	famFeedResyncs    = &Family{"auditpg_driver_cache_feed_resyncs_total", prometheus.CounterValue, "Times the feed came up (each drops every entry).", nil}
	famFeedDowns      = &Family{"auditpg_driver_cache_feed_downs_total", prometheus.CounterValue, "Times the feed was lost.", nil}
)

// Families lists every metric the Collector may export, for documentation
// and for tests that check a dashboard or a rule names only these.
func Families() []Family {
	all := []*Family{famUp, famScrapeError, famScrapeDuration, famCollections, famCollectedAt,
		famConnections, famMaxConnections, famCacheHitRatio, famBlocksHit, famBlocksRead,
		famStatementsReady, famStmtCalls, famStmtSeconds, famStmtRows,
		famSlotRetained, famSlotActive,
		famTableSize, famTableIdxSize, famTableLive, famTableDead, famTableVacuumAt, famTableAnalyzeAt, famTableSeqScans, famTableIdxScans,
		famIndexScans, famIndexSize, famIndexInvalid, famInvalidCount,
		famPartitions, famPartitionsBytes, famDefaultRows, famAheadSeconds, famFuture, famExpired,
		famCalls, famErrors, famSlow, famRetries, famPoolConns, famPoolMax, famPoolWaits, famPoolWaitSeconds, famConnects, famConnectFailures,
		famCacheHits, famCacheMisses, famCacheBypasses, famCacheFills, famCacheRejected, famCacheEvictions, famCacheInval,
		famCacheEntries, famCacheHeld, famCacheMax, famFeedState, famFeedReceived, famFeedPublished, famFeedPending, famFeedResyncs, famFeedDowns}
	out := make([]Family, len(all))
	for i, f := range all {
		out[i] = *f
	}
	return out
}
