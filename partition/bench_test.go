package partition

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/auditpg/auditpg/internal/testdb"
)

// eventsSQL selects synthetic audit events i = $1..$2, spread evenly over
// [$3, $3 + $4 seconds): 1000 organizations, 50000 principals, realistic
// sizes (md5 hashes and correlation ids, a small jsonb).
const eventsSQL = `SELECT ($3::timestamptz + (i - $1) * ($4::float8 / ($2 - $1 + 1)) * interval '1 second'),
	'user-' || (i % 50000), 'org-' || (i % 1000),
	(ARRAY['login','logout','read','update','delete'])[1 + i % 5], 'document', 'doc-' || (i % 100000),
	(ARRAY['success','failure','attempt'])[1 + i % 3], md5(i::text), md5((i * 7)::text),
	jsonb_build_object('ip', '10.0.' || (i % 250) || '.' || (i % 200), 'agent', 'bench')
FROM generate_series($1::bigint, $2::bigint) i`

const eventColumns = `("timestamp", principal_id, organization_id, action, target_resource_type, target_resource_id, status, hash, correlation_id, details)`

func insertEvents(tb testing.TB, db *sql.DB, table Table, from, to int64, start time.Time, span time.Duration) {
	tb.Helper()
	if _, err := db.Exec(`INSERT INTO `+table.String()+` `+eventColumns+` `+eventsSQL, from, to, start, span.Seconds()); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkInsertIndexes measures the write cost of the indexes: 1000
// events per op into the current partition of audit_log with the primary
// key only, with the kept indexes, and with all fourteen (WithSeedIndexes;
// the sub-benchmark is named after the option).
func BenchmarkInsertIndexes(b *testing.B) {
	db := openDB(b, "")
	for _, set := range []struct {
		name string
		opts []SchemaOption
	}{{"pk-only", nil}, {"kept", nil}, {"seed", []SchemaOption{WithSeedIndexes()}}} {
		b.Run("indexes="+set.name, func(b *testing.B) {
			table := Table{Schema: testdb.Schema(b, db), Name: "audit_log"}
			for stmt := range strings.SplitSeq(strings.TrimSpace(AuditLogSchema(table, set.opts...)), ";\n") {
				if set.name == "pk-only" && strings.HasPrefix(stmt, "CREATE INDEX") {
					continue
				}
				testdb.Exec(b, db, stmt)
			}
			now := date(2024, 6, 15)
			if _, err := newManager(b, db, WithTable(table), WithClock(fixedClock(now))).Create(context.Background()); err != nil {
				b.Fatal(err)
			}
			const batch = 1000
			b.ReportAllocs()
			b.ResetTimer()
			for i := range int64(b.N) {
				insertEvents(b, db, table, i*batch, i*batch+batch-1, now, time.Hour)
			}
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

// BenchmarkPartitioned sets twelve monthly partitions
// of 2024 against one unpartitioned table holding the same rows with the
// same indexes (AUDITPG_BENCH_ROWS rows, default 5,000,000): a one-day
// query by organization, insert throughput, and a full maintenance run.
func BenchmarkPartitioned(b *testing.B) {
	rows := int64(5_000_000)
	if s := os.Getenv("AUDITPG_BENCH_ROWS"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			b.Fatal(err)
		}
		rows = n
	}
	ctx := context.Background()
	db := openDB(b, "")
	db.SetMaxOpenConns(4)
	schema := testdb.Schema(b, db)
	part, flat := Table{Schema: schema, Name: "audit_log"}, Table{Schema: schema, Name: "audit_log_flat"}
	year := date(2024, 1, 1)
	span := date(2025, 1, 1).Sub(year)

	t0 := time.Now()
	// Load first and index after: much faster than maintaining the
	// indexes row by row.
	ddl := AuditLogSchema(part)
	var indexes []string
	for stmt := range strings.SplitSeq(strings.TrimSpace(ddl), ";\n") {
		if strings.HasPrefix(stmt, "CREATE INDEX") {
			indexes = append(indexes, stmt)
			continue
		}
		testdb.Exec(b, db, stmt)
	}
	testdb.Exec(b, db, `CREATE TABLE `+flat.String()+` (LIKE `+part.String()+` INCLUDING DEFAULTS INCLUDING IDENTITY)`)
	m := newManager(b, db, WithTable(part), WithPremake(11), WithClock(fixedClock(year)))
	if _, err := m.Create(ctx); err != nil {
		b.Fatal(err)
	}
	const chunk = 500_000
	for i := int64(0); i < rows; i += chunk {
		hi := min(i+chunk, rows) - 1
		from := year.Add(time.Duration(float64(span) * float64(i) / float64(rows)))
		to := year.Add(time.Duration(float64(span) * float64(hi+1) / float64(rows)))
		insertEvents(b, db, part, i, hi, from, to.Sub(from))
	}
	testdb.Exec(b, db, `INSERT INTO `+flat.String()+` SELECT * FROM `+part.String())
	for _, ix := range indexes {
		testdb.Exec(b, db, ix)
		testdb.Exec(b, db, strings.NewReplacer(part.String(), flat.String(), `"audit_log_`, `"audit_log_flat_`).Replace(ix))
	}
	testdb.Exec(b, db, `ALTER TABLE `+flat.String()+` ADD PRIMARY KEY (id, "timestamp")`)
	testdb.Exec(b, db, `VACUUM ANALYZE `+part.String())
	testdb.Exec(b, db, `VACUUM ANALYZE `+flat.String())
	b.Logf("loaded %d rows into both tables and indexed them in %v", rows, time.Since(t0).Round(time.Second))
	for _, t := range []Table{part, flat} {
		var size int64
		db.QueryRow(`SELECT coalesce(sum(pg_total_relation_size(relid)), pg_total_relation_size($1::regclass)) FROM pg_partition_tree($1)`, t.String()).Scan(&size)
		b.Logf("%s: %d MiB with indexes", t, size>>20)
	}

	const dayQuery = `SELECT id, "timestamp", principal_id, action, status FROM %s
		WHERE organization_id = $1 AND "timestamp" >= $2 AND "timestamp" < $3`
	for _, t := range []Table{part, flat} {
		var plan []string
		rs, err := db.Query(`EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) `+fmt.Sprintf(dayQuery, t), "org-42", date(2024, 6, 10), date(2024, 6, 11))
		if err != nil {
			b.Fatal(err)
		}
		for rs.Next() {
			var line string
			rs.Scan(&line)
			plan = append(plan, line)
		}
		rs.Close()
		text := strings.Join(plan, "\n")
		b.Logf("EXPLAIN %s:\n%s", t, text)
		if t == part && (!strings.Contains(text, "audit_log_p20240601") || strings.Contains(text, "audit_log_p20240501") || strings.Contains(text, "audit_log_default")) {
			b.Fatalf("the one-day query on %s is not pruned to June's partition:\n%s", t, text)
		}
	}
	for _, t := range []Table{part, flat} {
		b.Run("query=one-day-by-org/table="+t.Name, func(b *testing.B) {
			q := fmt.Sprintf(dayQuery, t)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				day := year.AddDate(0, 0, i%366)
				rs, err := db.Query(q, fmt.Sprintf("org-%d", i%1000), day, day.AddDate(0, 0, 1))
				if err != nil {
					b.Fatal(err)
				}
				for rs.Next() {
				}
				if err := rs.Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	next := rows
	for _, t := range []Table{part, flat} {
		b.Run("insert/table="+t.Name, func(b *testing.B) {
			const batch = 1000
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				insertEvents(b, db, t, next, next+batch-1, date(2024, 12, 20), time.Hour)
				next += batch
				n += batch
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "rows/s")
		})
	}
	b.Run("maintenance/table="+part.Name, func(b *testing.B) {
		// Steady state of the daily run at year end: four premade
		// partitions to check (made on the first run), retention checked.
		m := newManager(b, db, WithTable(part), WithClock(fixedClock(date(2024, 12, 15))), WithRetention(400*24*time.Hour))
		first, err := m.Maintain(ctx)
		if err != nil {
			b.Fatal(err)
		}
		b.Logf("first run: created %v in %v", first.Created, first.Duration.Round(time.Millisecond))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := m.Maintain(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkCreateDaily makes 500 daily partitions (the current one and 499
// premade) of a new table in one Create: the cost of a large premake.
// Create lists the partitions once, so the cost of each new partition does
// not grow with the partitions already there.
func BenchmarkCreateDaily(b *testing.B) {
	db := openDB(b, "")
	for b.Loop() {
		b.StopTimer()
		table := Table{Schema: testdb.Schema(b, db), Name: "audit_log"}
		if err := CreateAuditLog(context.Background(), db, table); err != nil {
			b.Fatal(err)
		}
		m := newManager(b, db, WithTable(table), WithInterval(Daily), WithPremake(499), WithClock(fixedClock(date(2024, 6, 15))))
		b.StartTimer()
		r, err := m.Create(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		if len(r.Created) != 500 {
			b.Fatalf("created %d partitions, want 500", len(r.Created))
		}
	}
}
