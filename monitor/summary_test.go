package monitor

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestConfigAdvice(t *testing.T) {
	ctx := context.Background()
	m := newMonitor(t, openDB(t), WithMemory(8<<30))
	r, err := m.ConfigAdvice(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if r.Memory != 8<<30 || r.MemorySource != "given" || r.DatabaseBytes <= 0 {
		t.Fatalf("report = %+v", r)
	}
	byName := map[string]Advice{}
	for _, a := range r.Advice {
		byName[a.Name] = a
	}
	// The temp cluster runs with the defaults: shared_buffers 128MB (16384
	// units of 8kB), work_mem 4MB (4096 kB).
	sb := byName["shared_buffers"]
	if sb.Current != "128MB" || !sb.Restart || !strings.Contains(sb.SQL, "ALTER SYSTEM SET shared_buffers") {
		t.Errorf("shared_buffers = %+v, want current 128MB read with its 8kB unit, restart", sb)
	}
	// A small database: no more shared_buffers than twice its size (at
	// least 128MB), not 25% of 8GB.
	if sb.Suggested != "128MB" || sb.Change {
		t.Errorf("shared_buffers suggestion = %+v, want 128MB for a small database, unchanged", sb)
	}
	if a := byName["effective_cache_size"]; a.Suggested != "6GB" || a.Current != "4GB" || a.Restart {
		t.Errorf("effective_cache_size = %+v, want 4GB -> 6GB (75%% of 8GB)", a)
	}
	if a := byName["work_mem"]; a.Current != "4MB" || a.Suggested == "" {
		t.Errorf("work_mem = %+v, want current 4MB (kB unit)", a)
	}
	if a := byName["maintenance_work_mem"]; a.Suggested != "512MB" {
		t.Errorf("maintenance_work_mem = %+v, want 512MB (8GB/16)", a)
	}
	// Nothing was applied.
	var cur string
	if err := m.db.QueryRowContext(ctx, `SELECT current_setting('effective_cache_size')`).Scan(&cur); err != nil || cur != "4GB" {
		t.Errorf("effective_cache_size now %q (%v): advice must not be applied", cur, err)
	}
}

func TestUnitsAndMemInfo(t *testing.T) {
	for unit, want := range map[string]float64{"8kB": 8192, "kB": 1024, "MB": 1 << 20, "16MB": 16 << 20, "B": 1, "ms": 1, "s": 1000, "min": 60000, "": 1} {
		if got, err := unitMultiplier(unit); err != nil || got != want {
			t.Errorf("unitMultiplier(%q) = %v, %v; want %v", unit, got, err, want)
		}
	}
	if _, err := unitMultiplier("parsecs"); err == nil {
		t.Error("unknown unit accepted")
	}
	for v, want := range map[float64]string{128 << 20: "128MB", 6 << 30: "6GB", 1536 << 10: "1536kB", 100: "100B"} {
		if got := formatBytes(v); got != want {
			t.Errorf("formatBytes(%v) = %s, want %s", v, got, want)
		}
	}
	path := filepath.Join(t.TempDir(), "meminfo")
	if err := os.WriteFile(path, []byte("MemFree:  1 kB\nMemTotal:       16384 kB\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := readMemTotal(path); err != nil || got != 16384<<10 {
		t.Errorf("readMemTotal = %d, %v", got, err)
	}
}

func TestSummaryPartitions(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	f := newFixture(t, db)
	f.exec(`CREATE TABLE mon_sum_log (at timestamptz NOT NULL, v int) PARTITION BY RANGE (at)`)
	f.exec(`CREATE TABLE mon_sum_log_2026 PARTITION OF mon_sum_log FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')`)
	f.exec(`CREATE TABLE mon_sum_log_default PARTITION OF mon_sum_log DEFAULT`)
	f.exec(`INSERT INTO mon_sum_log VALUES ('2026-05-01', 1), ('2030-01-01', 2)`)

	s, err := newMonitor(t, db).Summary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var p *PartitionedTable
	for i := range s.Partitions {
		if s.Partitions[i].Table.Name == "mon_sum_log" {
			p = &s.Partitions[i]
		}
	}
	if p == nil || p.Partitions != 2 || p.Strategy != "range" || p.Default == nil || *p.Default != (Table{Schema: "public", Name: "mon_sum_log_default"}) || p.DefaultRows != 1 {
		t.Fatalf("partitions = %+v, want mon_sum_log: 2 range partitions, 1 row in the default", s.Partitions)
	}
	if c := component(s.Health, "partitions"); c.Status != Warning {
		t.Errorf("partitions health = %+v, want a warning for the row in the default partition", c)
	}
	if s.Driver != nil {
		t.Error("a summary without WithDriverStats got driver statistics")
	}
	if s.Server.VersionNum < 130000 || s.Server.Database == "" || s.Activity.MaxConnections == 0 || s.Wraparound.Age <= 0 || s.Health.Overall == "" {
		t.Errorf("summary incomplete: %+v", s.Server)
	}
	f.exec(`DELETE FROM mon_sum_log WHERE at >= '2027-01-01'`)
	if s, err = newMonitor(t, db).Summary(ctx); err != nil {
		t.Fatal(err)
	}
	if c := component(s.Health, "partitions"); !strings.Contains(strings.Join(c.Reasons, "\n"), "public.mon_sum_log: 2 partitions") {
		t.Errorf("partitions health after emptying the default = %+v, want mon_sum_log healthy", c)
	}
}

func TestHealthThresholds(t *testing.T) {
	th := DefaultThresholds()
	th.SlowQueriesWarning = 1
	m := newMonitor(t, nil, WithThresholds(th))
	s := &Summary{
		Statements:  StatementsStatus{Ready: true},
		SlowQueries: []SlowQuery{{Query: "SELECT 1"}},
		Indexes:     &IndexReport{},
		CacheHit:    CacheHit{Table: 0.5, TableBlocks: 5000, Index: 0.995, IndexBlocks: 5000},
		Activity:    Activity{MaxConnections: 100, Total: 95, Connections: map[string]int{"idle": 95}},
		Wraparound:  Wraparound{Age: 1_200_000_000},
	}
	h := m.health(s)
	want := map[string]Status{"statements": Warning, "cache": Critical, "connections": Critical, "wraparound": Warning,
		"indexes": Healthy, "tables": Healthy, "sequences": Healthy, "queries": Healthy}
	for name, st := range want {
		if c := component(h, name); c.Status != st {
			t.Errorf("%s = %+v, want %s", name, c, st)
		}
	}
	if h.Overall != Critical {
		t.Errorf("overall = %s, want critical", h.Overall)
	}
}

// BenchmarkSummary measures one full summary report (some 25 catalog and
// statistics queries) on the test database, through pgx's database/sql
// driver. (monitor/driverstats has it through auditpg, beside it.)
func BenchmarkSummary(b *testing.B) {
	ctx := context.Background()
	m := newMonitor(b, openDB(b))
	b.Run("driver=pgx", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := m.Summary(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
}
