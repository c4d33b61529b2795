package monitor

import (
	"database/sql"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// newMonitor returns New(db, opts...), failing the test if an option fails.
func newMonitor(tb testing.TB, db *sql.DB, opts ...Option) *Monitor {
	tb.Helper()
	m, err := New(db, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

func TestOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  Option
		want string // in the error; "" for none
	}{
		{"WithLogger(nil)", WithLogger(nil), ""},
		{"WithMemory(0)", WithMemory(0), ""},
		{"WithMemory(-1)", WithMemory(-1), "WithMemory(-1)"},
		{"WithLockTimeout(0)", WithLockTimeout(0), ""},
		{"WithLockTimeout(-1s)", WithLockTimeout(-time.Second), "WithLockTimeout(-1s)"},
		{"WithDriverStats(nil)", WithDriverStats(nil), "WithDriverStats(nil)"},
	} {
		m, err := New(nil, tc.opt)
		switch {
		case tc.want == "" && (err != nil || m == nil):
			t.Errorf("%s: %v, want a Monitor", tc.name, err)
		case tc.want != "" && (err == nil || m != nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %v, %v; want no Monitor and an error naming %s", tc.name, m, err, tc.want)
		}
	}
}

// fakeDriverStats stands for a driver's statistics.
type fakeDriverStats struct {
	Queries int64 `json:"queries"`
	h       DriverHealth
}

func (f *fakeDriverStats) DriverHealth() DriverHealth { return f.h }

func TestDriverHealth(t *testing.T) {
	m := newMonitor(t, nil)
	base := func(d DriverStats) *Summary {
		return &Summary{Indexes: &IndexReport{}, Activity: Activity{MaxConnections: 100}, Driver: d}
	}
	if h := m.health(base(nil)); component(h, "driver").Name != "" {
		t.Errorf("no driver statistics: driver component %+v, want none", component(h, "driver"))
	}
	quiet := &fakeDriverStats{h: DriverHealth{Calls: 10, Slow: 2, CacheHits: 10, CacheMisses: 80, CacheHitRatio: 0.1}}
	if c := component(m.health(base(quiet)), "driver"); c.Status != Healthy || !strings.Contains(strings.Join(c.Reasons, "\n"), "2 slow calls") {
		t.Errorf("quiet driver = %+v, want healthy with its slow calls (90 cacheable reads are too few to judge)", c)
	}
	bad := &fakeDriverStats{h: DriverHealth{Calls: 500, Errors: 3, ConnectFailures: 1, PoolWaits: 4, PoolWaitDuration: time.Second,
		CacheHits: 10, CacheMisses: 190, CacheHitRatio: 0.05}}
	c := component(m.health(base(bad)), "driver")
	reasons := strings.Join(c.Reasons, "\n")
	for _, want := range []string{"3 of 500 calls failed", "1 failed connection attempts", "4 waits for a free connection (1s in all)", "result cache hit ratio 5.0% over 200"} {
		if !strings.Contains(reasons, want) {
			t.Errorf("driver reasons lack %q: %s", want, reasons)
		}
	}
	if c.Status != Warning {
		t.Errorf("driver status = %s, want warning", c.Status)
	}

	// The summary's JSON carries the statistics as they marshal.
	b, err := json.Marshal(base(&fakeDriverStats{Queries: 7}))
	if err != nil || !strings.Contains(string(b), `"driver":{"queries":7}`) {
		t.Errorf("summary JSON = %s, %v; want the driver member as the statistics marshal", b, err)
	}
	if b, _ = json.Marshal(base(nil)); strings.Contains(string(b), `"driver"`) {
		t.Errorf("summary JSON without driver statistics has a driver member: %s", b)
	}
}

func TestDriverStatsError(t *testing.T) {
	boom := errors.New("boom")
	m := newMonitor(t, openDB(t), WithDriverStats(func(*sql.DB) (DriverStats, error) { return nil, boom }))
	if _, err := m.Summary(t.Context()); !errors.Is(err, boom) || !strings.Contains(err.Error(), "driver statistics") {
		t.Errorf("Summary with failing driver statistics: %v, want it wrapped", err)
	}
}

func TestParseSize(t *testing.T) {
	if n, err := ParseSize("1.5GB"); err != nil || n != 3<<29 {
		t.Errorf("ParseSize(1.5GB) = %d, %v", n, err)
	}
	if _, err := ParseSize("8gb"); err == nil || !strings.HasPrefix(err.Error(), "monitor: ") || !strings.Contains(err.Error(), "GB") {
		t.Errorf("ParseSize(8gb) error = %v, want the monitor's, naming the unit GB", err)
	}
}
