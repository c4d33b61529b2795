package monitor

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// TestUnusedMeansNeverScanned: with the default thresholds an index scanned
// 27 times is used, however rarely; one never scanned since the statistics
// were reset is unused.
func TestUnusedMeansNeverScanned(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	th := DefaultThresholds()
	th.UnusedIndexMinBytes = 0 // the scan rule alone
	m := newMonitor(t, db, WithThresholds(th))
	f := newFixture(t, db)
	f.exec(`CREATE TABLE mon_rare (id int, v int)`)
	f.exec(`INSERT INTO mon_rare SELECT g, g FROM generate_series(1, 5000) g`)
	f.exec(`CREATE INDEX mon_rare_v ON mon_rare (v)`)
	f.flush()
	unused := func() (bool, error) {
		u, err := m.UnusedIndexes(ctx)
		return has(u, func(x UnusedIndex) bool { return x.Index == "mon_rare_v" }), err
	}
	if ok, err := unused(); err != nil || !ok {
		t.Fatalf("mon_rare_v, never scanned, not reported unused (%v)", err)
	}
	f.exec(`SET enable_seqscan = off`)
	for i := range 27 {
		f.exec(`SELECT * FROM mon_rare WHERE v = $1`, i)
	}
	f.exec(`RESET enable_seqscan`)
	f.flush()
	eventually(t, "mon_rare_v, scanned 27 times, is not unused", func() (bool, error) { ok, err := unused(); return !ok, err })
	usage, err := m.IndexUsage(ctx)
	if err != nil || !has(usage, func(u IndexUsage) bool { return u.Index == "mon_rare_v" && u.Scans == 27 }) {
		t.Errorf("usage of mon_rare_v: want 27 scans (%v)", err)
	}
}

// TestMaintenanceScalesWithTableSize: VACUUM and ANALYZE are called for by
// autovacuum's thresholds for each table (the server's settings, overridden
// by the table's storage parameters), so that 7-row partitions never
// analyzed make no noise and a large table's few changes neither.
func TestMaintenanceScalesWithTableSize(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	m := newMonitor(t, db)
	f := newFixture(t, db)
	// Thirty partitions of 7 rows, never analyzed; autovacuum off for them,
	// so that nothing but the thresholds keeps them out of the plan.
	f.exec(`CREATE TABLE mon_small (at date NOT NULL, v int) PARTITION BY RANGE (at)`)
	for i := range 30 {
		f.exec(fmt.Sprintf(`CREATE TABLE mon_small_%02d PARTITION OF mon_small FOR VALUES FROM ('2026-01-01'::date + %d) TO ('2026-01-01'::date + %d) WITH (autovacuum_enabled = false)`, i, i, i+1))
	}
	f.exec(`INSERT INTO mon_small SELECT '2026-01-01'::date + p, g FROM generate_series(0, 29) p, generate_series(1, 7) g`)
	// Large tables: 10000 rows, analyzed; autovacuum off.
	for _, name := range []string{"mon_big", "mon_big_tuned"} {
		f.exec(`CREATE TABLE ` + name + ` (id int, v int) WITH (autovacuum_enabled = false)`)
		f.exec(`INSERT INTO ` + name + ` SELECT g, g FROM generate_series(1, 10000) g`)
		f.flush() // counted before the ANALYZE that resets the count
		f.exec(`VACUUM ANALYZE ` + name)
	}
	// Tuned: ANALYZE past 50 + 1% of the rows, VACUUM past 50 + 5%.
	f.exec(`ALTER TABLE mon_big_tuned SET (autovacuum_analyze_scale_factor = 0.01, autovacuum_vacuum_scale_factor = 0.05)`)
	// 600 rows updated: 600 changes, below the default analyze threshold
	// (50 + 10% = 1050), past the tuned one (150); 600 dead tuples, below
	// the default vacuum threshold (50 + 20% = 2050), past the tuned one
	// (550), and VACUUM (ANALYZE) is the one action planned.
	for _, name := range []string{"mon_big", "mon_big_tuned"} {
		f.exec(`UPDATE ` + name + ` SET v = v + 1 WHERE id <= 600`)
	}
	f.flush()

	plan := func() (map[string]MaintenanceAction, map[string]TableStats) {
		actions, err := m.PlanMaintenance(ctx)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]MaintenanceAction{}
		for _, a := range actions {
			if strings.HasPrefix(a.Table.Name, "mon_small") || strings.HasPrefix(a.Table.Name, "mon_big") {
				out[a.Table.Name] = a
			}
		}
		tables, err := m.Tables(ctx)
		if err != nil {
			t.Fatal(err)
		}
		stats := map[string]TableStats{}
		for _, s := range tables {
			stats[s.Table.Name] = s
		}
		return out, stats
	}
	var got map[string]MaintenanceAction
	var stats map[string]TableStats
	eventually(t, "the statistics show the updates", func() (bool, error) {
		got, stats = plan()
		return stats["mon_big"].DeadRows == 600 && stats["mon_big_tuned"].DeadRows == 600 && stats["mon_small_00"].ModifiedSinceAnal == 7, nil
	})
	if s := stats["mon_big"]; s.Autovacuum || s.VacuumThreshold != 2050 || s.AnalyzeThreshold != 1050 {
		t.Errorf("mon_big thresholds = %+v, want autovacuum off, vacuum 2050, analyze 1050", s)
	}
	if s := stats["mon_big_tuned"]; s.VacuumThreshold != 550 || s.AnalyzeThreshold != 150 {
		t.Errorf("mon_big_tuned thresholds = vacuum %d, analyze %d; want 550 and 150 from its storage parameters", s.VacuumThreshold, s.AnalyzeThreshold)
	}
	if s := stats["mon_small_00"]; s.AnalyzeThreshold != 50 || s.LastAnalyzed() != nil {
		t.Errorf("mon_small_00 = %+v, want never analyzed, threshold 50", s)
	}
	if a, ok := got["mon_big"]; ok {
		t.Errorf("mon_big planned (%+v): 600 changes of 10000 rows are below autovacuum's thresholds", a)
	}
	if a := got["mon_big_tuned"]; a.Kind != ActionVacuum || !strings.Contains(a.Reason, "550") || !strings.Contains(a.Reason, "autovacuum is off") {
		t.Errorf("mon_big_tuned = %+v, want VACUUM past its own threshold of 550", a)
	}
	for name, a := range got {
		if strings.HasPrefix(name, "mon_small") {
			t.Errorf("%s planned (%+v): 7 rows are below autovacuum's analyze threshold", name, a)
		}
	}
	s, err := m.Summary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if reasons := strings.Join(component(s.Health, "tables").Reasons, "\n"); strings.Contains(reasons, "mon_small") || !strings.Contains(reasons, "mon_big_tuned") {
		t.Errorf("tables health reasons:\n%s\nwant mon_big_tuned and no 7-row partition", reasons)
	}

	// Past the default threshold: 1100 more rows changed (1700 of 10000).
	f.exec(`UPDATE mon_big SET v = v + 1 WHERE id > 8900`)
	f.flush()
	eventually(t, "mon_big analyzed past 1050 changes", func() (bool, error) {
		got, _ = plan()
		return got["mon_big"].Kind == ActionAnalyze, nil
	})
	if a := got["mon_big"]; a.SQL != `ANALYZE "public"."mon_big";` || !strings.Contains(a.Reason, "1050") {
		t.Errorf("mon_big = %+v", a)
	}
}

// TestDueWithAutovacuum: where autovacuum processes a table, the report
// waits for it to fall behind (AutovacuumLag times its threshold).
func TestDueWithAutovacuum(t *testing.T) {
	m := newMonitor(t, nil)
	on := TableStats{Table: Table{Schema: "s", Name: "t"}, Autovacuum: true, AnalyzeThreshold: 100, VacuumThreshold: 100, DeadRows: 150, ModifiedSinceAnal: 201}
	plan := m.planMaintenance([]TableStats{on}, nil)
	if len(plan) != 1 || plan[0].Kind != ActionAnalyze || !strings.Contains(plan[0].Reason, "autovacuum is behind") {
		t.Errorf("plan = %+v, want ANALYZE only (201 > 2 x 100; 150 dead tuples are autovacuum's to clear)", plan)
	}
	off := on
	off.Autovacuum = false
	if plan := m.planMaintenance([]TableStats{off}, nil); len(plan) != 1 || plan[0].Kind != ActionVacuum {
		t.Errorf("autovacuum off: plan = %+v, want VACUUM past the threshold itself", plan)
	}
}

// TestManyPartitions: a partitioned table of more than 1000 leaf partitions
// makes the partitions component a warning, as partition analyze says.
func TestManyPartitions(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	f := newFixture(t, db)
	f.exec(`CREATE TABLE mon_many (id int NOT NULL) PARTITION BY HASH (id)`)
	t.Cleanup(func() { _, _ = db.ExecContext(context.Background(), `DROP TABLE mon_many`) })
	f.exec(`DO $$BEGIN FOR i IN 0..1000 LOOP
	  EXECUTE format('CREATE TABLE mon_many_%s PARTITION OF mon_many FOR VALUES WITH (MODULUS 1001, REMAINDER %s)', i, i);
	END LOOP; END$$`)
	s, err := newMonitor(t, db).Summary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c := component(s.Health, "partitions")
	if c.Status != Warning || !strings.Contains(strings.Join(c.Reasons, "\n"), "public.mon_many: 1001 partitions (more than 1000)") {
		t.Errorf("partitions health = %+v, want a warning for mon_many's 1001 partitions", c)
	}
	f.exec(`DROP TABLE mon_many_1000`)
	if s, err = newMonitor(t, db).Summary(ctx); err != nil {
		t.Fatal(err)
	}
	if c := component(s.Health, "partitions"); strings.Contains(strings.Join(c.Reasons, "\n"), "mon_many: 1000 partitions (more") {
		t.Errorf("1000 partitions flagged: %+v", c)
	}
}
