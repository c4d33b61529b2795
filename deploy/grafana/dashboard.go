// Package grafana builds auditpg's Grafana dashboard with the Grafana
// Foundation SDK. auditpg.json, beside this file, is its output: run
// `go generate ./deploy/grafana` after changing it (a test checks that the
// file is what the code makes).
package grafana

//lint:file-ignore SA1019 the v1 dashboard model, not dashboardv2: it is the JSON every Grafana from 8 to 12 imports, where v2 needs Grafana 12's dynamic dashboards.

//go:generate go run ./gen -o auditpg.json

import (
	"encoding/json"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// UID is the dashboard's uid, stable across versions so that an import
// replaces the previous one.
const UID = "auditpg-overview"

// sel is the label selector every query carries: the job variable.
const sel = `job=~"$job"`

var ds = common.DataSourceRef{Type: cog.ToPtr("prometheus"), Uid: cog.ToPtr("${datasource}")}

// query is one PromQL target with its legend.
type query struct{ expr, legend string }

func q(expr, legend string) query { return query{expr, legend} }

func targets(qs []query) []cog.Builder[variants.Dataquery] {
	out := make([]cog.Builder[variants.Dataquery], len(qs))
	for i, x := range qs {
		out[i] = prometheus.NewDataqueryBuilder().Expr(x.expr).LegendFormat(x.legend).Datasource(ds)
	}
	return out
}

// series is a time series panel.
func series(title, desc, unit string, qs ...query) *timeseries.PanelBuilder {
	return timeseries.NewPanelBuilder().Title(title).Description(desc).Unit(unit).Datasource(ds).
		Height(8).Span(12).Targets(targets(qs)).FillOpacity(10)
}

// single is a stat panel showing the last value.
func single(title, desc, unit string, warn, crit float64, qs ...query) *stat.PanelBuilder {
	return stat.NewPanelBuilder().Title(title).Description(desc).Unit(unit).Datasource(ds).
		Height(4).Span(6).Targets(targets(qs)).
		Thresholds(dashboard.NewThresholdsConfigBuilder().Mode(dashboard.ThresholdsModeAbsolute).Steps([]dashboard.Threshold{
			{Color: "green"}, {Value: cog.ToPtr(warn), Color: "orange"}, {Value: cog.ToPtr(crit), Color: "red"}}))
}

// Dashboard returns the dashboard: the driver's queries, result cache and
// pool, then the server's statements, activity, tables and partitions.
func Dashboard() (dashboard.Dashboard, error) {
	rate := func(m string) string { return `rate(` + m + `{` + sel + `}[$__rate_interval])` }
	dur := `db_client_operation_duration_seconds_bucket`
	b := dashboard.NewDashboardBuilder("auditpg").
		Uid(UID).
		Tags([]string{"auditpg", "postgresql"}).
		Description("The auditpg driver inside the application (OpenTelemetry db.client.* metrics, the result cache, the pool) and the PostgreSQL server it uses (package metrics' collector).").
		Refresh("1m").
		Time("now-1h", "now").
		Timezone(common.TimeZoneBrowser).
		Tooltip(dashboard.DashboardCursorSyncCrosshair).
		WithVariable(dashboard.NewDatasourceVariableBuilder("datasource").Label("Data source").Type("prometheus")).
		WithVariable(dashboard.NewQueryVariableBuilder("job").Label("Job").Datasource(ds).
			Query(dashboard.StringOrMap{String: cog.ToPtr(`label_values(auditpg_pg_up, job)`)}).
			Refresh(dashboard.VariableRefreshOnTimeRangeChanged).Multi(true).IncludeAll(true).AllValue(".*")).
		WithRow(dashboard.NewRowBuilder("Queries (driver)")).
		WithPanel(series("Latency percentiles", "Every call through the driver, cache hits included.", "s",
			q(`histogram_quantile(0.5, sum by (le) (`+rate(dur)+`))`, "p50"),
			q(`histogram_quantile(0.95, sum by (le) (`+rate(dur)+`))`, "p95"),
			q(`histogram_quantile(0.99, sum by (le) (`+rate(dur)+`))`, "p99"))).
		WithPanel(series("p99 by statement (top 10)", "The classifier's summary of each statement: never its literals.", "s",
			q(`topk(10, histogram_quantile(0.99, sum by (le, db_query_summary) (`+rate(dur)+`)))`, "{{db_query_summary}}"))).
		WithPanel(series("Calls by operation", "", "reqps",
			q(`sum by (db_operation_name) (`+rate(`db_client_operation_duration_seconds_count`)+`)`, "{{db_operation_name}}"))).
		WithPanel(series("Errors by SQLSTATE class", "Failed calls; class is the SQLSTATE's first two characters (23: integrity, 40: rollback, 57: operator intervention...); timeout and canceled have none.", "reqps",
			q(`sum by (class, error_type) (label_replace(rate(db_client_operation_duration_seconds_count{`+sel+`, error_type!=""}[$__rate_interval]), "class", "$1", "db_response_status_code", "(..).*"))`, "{{class}} {{error_type}}"))).
		WithPanel(series("Slow calls", "Calls at or above the driver's slow-query threshold.", "reqps",
			q(`sum(`+rate(`auditpg_driver_slow_calls_total`)+`)`, "slow"))).
		WithPanel(series("Rows returned (p95)", "", "short",
			q(`histogram_quantile(0.95, sum by (le) (`+rate(`db_client_response_returned_rows_bucket`)+`))`, "p95"))).
		WithRow(dashboard.NewRowBuilder("Result cache")).
		WithPanel(series("Hit ratio", "Hits over hits and misses of cacheable reads.", "percentunit",
			q(`sum(`+rate(`auditpg_driver_cache_hits_total`)+`) / (sum(`+rate(`auditpg_driver_cache_hits_total`)+`) + sum(`+rate(`auditpg_driver_cache_misses_total`)+`))`, "hit ratio"))).
		WithPanel(series("Bypasses by reason", "", "reqps",
			q(`sum by (reason) (`+rate(`auditpg_driver_cache_bypasses_total`)+`)`, "{{reason}}"))).
		WithPanel(series("Memory", "", "bytes",
			q(`sum by (instance) (auditpg_driver_cache_held_bytes{`+sel+`})`, "held {{instance}}"),
			q(`sum by (instance) (auditpg_driver_cache_max_bytes{`+sel+`})`, "max {{instance}}"))).
		WithPanel(series("Change feed", "Changes of other processes received, this process's published; downs drop every entry.", "short",
			q(`sum(`+rate(`auditpg_driver_cache_feed_received_total`)+`)`, "received/s"),
			q(`sum(`+rate(`auditpg_driver_cache_feed_published_total`)+`)`, "published/s"),
			q(`sum(auditpg_driver_cache_feed_state{`+sel+`, state="down"})`, "processes with the feed down"))).
		WithRow(dashboard.NewRowBuilder("Pool (driver)")).
		WithPanel(series("Connections", "", "short",
			q(`sum by (instance, state) (auditpg_driver_pool_connections{`+sel+`})`, "{{state}} {{instance}}"),
			q(`sum by (instance) (auditpg_driver_pool_max_open_connections{`+sel+`})`, "max {{instance}}"))).
		WithPanel(series("Waits and connect failures", "Waits for a free connection: the pool is too small; connect failures: the server refused or could not be reached.", "short",
			q(`sum(`+rate(`auditpg_driver_pool_waits_total`)+`)`, "waits/s"),
			q(`sum(increase(auditpg_driver_connect_failures_total{`+sel+`}[$__rate_interval]))`, "connect failures"))).
		WithRow(dashboard.NewRowBuilder("Server")).
		WithPanel(single("Collector up", "1: the last collection reached the server.", "short", 0.5, 1, q(`min(auditpg_pg_up{`+sel+`})`, "")).
			Thresholds(dashboard.NewThresholdsConfigBuilder().Mode(dashboard.ThresholdsModeAbsolute).Steps([]dashboard.Threshold{{Color: "red"}, {Value: cog.ToPtr(1.0), Color: "green"}}))).
		WithPanel(single("Sections failing", "Sections of the collection that failed or ran out of time.", "short", 1, 2, q(`sum(auditpg_pg_scrape_error{`+sel+`})`, ""))).
		WithPanel(single("Invalid indexes", "Left by a failed CREATE INDEX or REINDEX CONCURRENTLY.", "short", 1, 5, q(`max(auditpg_pg_invalid_indexes{`+sel+`})`, ""))).
		WithPanel(single("Collection time", "How long the last collection took.", "s", 1, 5, q(`max(auditpg_pg_scrape_duration_seconds{`+sel+`})`, ""))).
		WithPanel(series("Buffer cache hit ratio", "Blocks found in shared buffers over blocks read.", "percentunit",
			q(`sum by (kind) (`+rate(`auditpg_pg_blocks_hit_total`)+`) / (sum by (kind) (`+rate(`auditpg_pg_blocks_hit_total`)+`) + sum by (kind) (`+rate(`auditpg_pg_blocks_read_total`)+`))`, "{{kind}}"))).
		WithPanel(series("Connections by state", "", "short",
			q(`max by (state) (auditpg_pg_connections{`+sel+`})`, "{{state}}"),
			q(`max(auditpg_pg_max_connections{`+sel+`})`, "max_connections"))).
		WithPanel(series("Top statements by time", "pg_stat_statements: seconds of server time each statement takes per second (1: one backend busy all the time).", "short",
			q(`topk(10, max by (queryid, summary) (`+rate(`auditpg_pg_statement_seconds_total`)+`))`, "{{summary}} ({{queryid}})"))).
		WithPanel(series("Replication slots: WAL retained", "WAL the server keeps for each slot; an abandoned slot fills the disk.", "bytes",
			q(`max by (slot) (auditpg_pg_replication_slot_retained_wal_bytes{`+sel+`})`, "{{slot}}"))).
		WithRow(dashboard.NewRowBuilder("Tables and partitions")).
		WithPanel(series("Largest tables", "", "bytes",
			q(`topk(10, max by (schema, table) (auditpg_pg_table_size_bytes{`+sel+`}))`, "{{schema}}.{{table}}"))).
		WithPanel(series("Dead rows", "", "short",
			q(`topk(10, max by (schema, table) (auditpg_pg_table_dead_rows{`+sel+`}))`, "{{schema}}.{{table}}"))).
		WithPanel(series("Since the last vacuum (oldest 10)", "", "s",
			q(`topk(10, time() - max by (schema, table) (auditpg_pg_table_last_vacuum_timestamp_seconds{`+sel+`}))`, "{{schema}}.{{table}}"))).
		WithPanel(series("Since the last analyze (oldest 10)", "", "s",
			q(`topk(10, time() - max by (schema, table) (auditpg_pg_table_last_analyze_timestamp_seconds{`+sel+`}))`, "{{schema}}.{{table}}"))).
		WithPanel(series("Partitions ahead of now", "How far the time-range partitions cover past now: below the premake, inserts will soon land in the default partition.", "s",
			q(`min by (schema, table) (auditpg_pg_partition_ahead_seconds{`+sel+`})`, "{{schema}}.{{table}}"))).
		WithPanel(series("Default partition rows, partitions past retention", "", "short",
			q(`max by (schema, table) (auditpg_pg_partition_default_rows{`+sel+`})`, "default rows {{schema}}.{{table}}"),
			q(`max by (schema, table) (auditpg_pg_partitions_expired{`+sel+`})`, "expired {{schema}}.{{table}}"))).
		WithPanel(series("Partition sizes", "", "bytes",
			q(`max by (schema, table) (auditpg_pg_partitioned_table_size_bytes{`+sel+`})`, "{{schema}}.{{table}}"))).
		WithPanel(series("Unused indexes (largest 10)", "Indexes never scanned since the statistics were reset.", "bytes",
			q(`topk(10, max by (schema, table, index) (auditpg_pg_index_size_bytes{`+sel+`}) and on (schema, table, index) max by (schema, table, index) (auditpg_pg_index_scans_total{`+sel+`}) == 0)`, "{{schema}}.{{index}}")))
	d, err := b.Build()
	if err != nil {
		return d, err
	}
	// Ids unique within the dashboard, in order, so that links to a panel
	// (viewPanel=N) stay the same from one generation to the next.
	for i, p := range d.Panels {
		id := uint32(i + 1)
		switch {
		case p.Panel != nil:
			p.Panel.Id = &id
		case p.RowPanel != nil:
			p.RowPanel.Id = id
		}
	}
	return d, nil
}

// JSON returns the dashboard as Grafana imports it, indented, with a final
// newline.
func JSON() ([]byte, error) {
	d, err := Dashboard()
	if err != nil {
		return nil, err
	}
	out, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}
