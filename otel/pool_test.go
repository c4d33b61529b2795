package otel

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

func TestPoolMetrics(t *testing.T) {
	tel := newTelemetry(t)
	db := tel.open(t)
	db.SetMaxOpenConns(1)
	ctx := context.Background()
	unregister, err := RegisterPoolMetrics(db, "audit", tel.options(WithPoolMaxIdleConns(7))...)
	if err != nil {
		t.Fatal(err)
	}

	// Hold the only connection and make a query wait ~50ms for it.
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() {
		var one int
		waited <- db.QueryRowContext(ctx, `SELECT 1`).Scan(&one)
	}()
	for db.Stats().WaitCount == 0 {
		time.Sleep(time.Millisecond)
	}
	rm := tel.collect(t)
	gauge := func(rm metricdata.ResourceMetrics, name, state string) int64 {
		t.Helper()
		m, ok := findMetric(rm, name)
		if !ok {
			t.Fatalf("no metric %s", name)
		}
		for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
			a := attrMap(dp.Attributes.ToSlice())
			if a["db.client.connection.pool.name"] != "audit" {
				t.Errorf("%s: pool name %q, want audit", name, a["db.client.connection.pool.name"])
			}
			if a["db.client.connection.state"] == state {
				return dp.Value
			}
		}
		t.Fatalf("%s: no data point with state %q", name, state)
		return 0
	}
	if used, idle := gauge(rm, "db.client.connection.count", "used"), gauge(rm, "db.client.connection.count", "idle"); used != 1 || idle != 0 {
		t.Errorf("connections used %d idle %d while one is held, want 1 and 0", used, idle)
	}
	if n := gauge(rm, "db.client.connection.max", ""); n != 1 {
		t.Errorf("db.client.connection.max %d, want 1", n)
	}
	if n := gauge(rm, "db.client.connection.idle.max", ""); n != 7 {
		t.Errorf("db.client.connection.idle.max %d, want 7", n)
	}

	time.Sleep(50 * time.Millisecond)
	conn.Close()
	if err := <-waited; err != nil {
		t.Fatal(err)
	}
	rm = tel.collect(t)
	if used, idle := gauge(rm, "db.client.connection.count", "used"), gauge(rm, "db.client.connection.count", "idle"); used != 0 || idle != 1 {
		t.Errorf("connections used %d idle %d after release, want 0 and 1", used, idle)
	}
	m, ok := findMetric(rm, "db.client.connection.wait_time")
	if !ok {
		t.Fatal("no db.client.connection.wait_time")
	}
	dps := m.Data.(metricdata.Histogram[float64]).DataPoints
	if len(dps) != 1 || dps[0].Count != 1 || dps[0].Sum < 0.05 || dps[0].Sum > 5 {
		t.Fatalf("wait_time points %+v, want one wait of at least 50ms", dps)
	}
	if m.Unit != "s" {
		t.Errorf("wait_time unit %q, want s", m.Unit)
	}

	if err := unregister(); err != nil {
		t.Fatal(err)
	}
	if _, ok := findMetric(tel.collect(t), "db.client.connection.count"); ok {
		t.Error("db.client.connection.count still reported after unregister")
	}
}

func TestPoolMetricsNilDB(t *testing.T) {
	if _, err := RegisterPoolMetrics(nil, "x"); err == nil {
		t.Fatal("RegisterPoolMetrics(nil): want an error")
	}
}
