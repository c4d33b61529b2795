package metrics_test

import (
	"testing"
	"time"

	"github.com/auditpg/auditpg"
	"github.com/auditpg/auditpg/internal/testdb"
	"github.com/auditpg/auditpg/metrics"
	"github.com/prometheus/client_golang/prometheus"
)

// BenchmarkScrape is one scrape of the collector through a registry
// (Gather), on the fixture's database: a collection (memo 0), and a scrape
// within the memo window.
func BenchmarkScrape(b *testing.B) {
	setup := testdb.Open(b, "pgx", testDSN)
	newFixture(b, setup)
	db, err := auditpg.Open(testDSN)
	db = testdb.Opened(b, db, err)
	for _, bc := range []struct {
		name string
		memo time.Duration
	}{{"collection", 0}, {"memo", time.Hour}} {
		b.Run(bc.name, func(b *testing.B) {
			c, err := metrics.NewCollector(db, metrics.WithMemo(bc.memo))
			if err != nil {
				b.Fatal(err)
			}
			reg := prometheus.NewRegistry()
			reg.MustRegister(c)
			mfs, err := reg.Gather()
			if err != nil {
				b.Fatal(err)
			}
			series := 0
			for _, mf := range mfs {
				series += len(mf.Metric)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := reg.Gather(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(series), "series") // after the loop: ResetTimer drops it
		})
	}
}
