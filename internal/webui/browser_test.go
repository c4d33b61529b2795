package webui_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/auditpg/auditpg"
	"github.com/auditpg/auditpg/internal/sysdeps"
	"github.com/auditpg/auditpg/internal/testdb"
	"github.com/auditpg/auditpg/internal/webui"
	"github.com/auditpg/auditpg/monitor"
	"github.com/auditpg/auditpg/monitor/driverstats"
	"github.com/auditpg/auditpg/partition"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/jackc/pgx/v5"
)

// fixture is a database with something for every page to show: a
// statement called a known number of times, unused, duplicate and invalid
// indexes, a statement an index would serve, a table past autovacuum's
// threshold with autovacuum off, a daily-partitioned table with a gap, a
// partition past the retention and a row in its default partition, and
// reads through the application's result cache.
type fixture struct {
	schema    string
	admin     *sql.DB // pgx: set-up, outside the application's statistics
	app       *sql.DB // auditpg: the application's pool, cache on
	query     string  // the statement run calls times through app
	calls     int
	retention time.Duration
}

func newFixture(t *testing.T) *fixture {
	ctx := context.Background()
	admin := testdb.Open(t, "pgx", testDSN)
	f := &fixture{admin: admin, calls: 37, retention: 3 * 24 * time.Hour}
	f.schema = testdb.Schema(t, admin)
	sch := pgx.Identifier{f.schema}.Sanitize()
	var major int
	if err := admin.QueryRow(`SELECT current_setting('server_version_num')::int / 10000`).Scan(&major); err != nil {
		t.Fatal(err)
	}
	testdb.Need(t, sysdeps.HypoPG(major))

	exec := func(q string, args ...any) {
		t.Helper()
		testdb.Exec(t, admin, strings.ReplaceAll(q, "S.", sch+"."), args...)
	}
	exec(`CREATE TABLE S.items (id int PRIMARY KEY, org text NOT NULL, v int NOT NULL, w int NOT NULL) WITH (autovacuum_enabled = false)`)
	exec(`INSERT INTO S.items SELECT i, 'org' || (i % 50), i, i % 997 FROM generate_series(1, 60000) i`)
	exec(`CREATE INDEX items_org_a ON S.items (org)`)
	exec(`CREATE INDEX items_org_b ON S.items (org)`) // a duplicate
	exec(`CREATE INDEX items_v ON S.items (v)`)       // never scanned: unused (over 1 MB)
	// A failed CREATE INDEX CONCURRENTLY leaves an invalid index.
	if _, err := admin.Exec(`CREATE UNIQUE INDEX CONCURRENTLY items_org_unique ON ` + sch + `.items (org)`); err == nil {
		t.Fatal("the unique index on duplicate values was built")
	}
	exec(`CREATE TABLE S.orgs (id int PRIMARY KEY, name text NOT NULL) WITH (autovacuum_enabled = false)`)
	exec(`INSERT INTO S.orgs SELECT i, 'org' || i FROM generate_series(0, 49) i`)
	exec(`VACUUM ANALYZE S.items, S.orgs`)
	// Dead tuples past the threshold, autovacuum off: VACUUM is due.
	exec(`CREATE TABLE S.churn (id int, v int) WITH (autovacuum_enabled = false)`)
	exec(`INSERT INTO S.churn SELECT i, i FROM generate_series(1, 2000) i`)
	exec(`DELETE FROM S.churn WHERE id > 200`)

	// Daily partitions: now and four ahead, one of them dropped (a gap),
	// one ten days old (past the retention), a row in the default.
	log := partition.Table{Schema: f.schema, Name: "weblog"}
	m, err := partition.New(admin, partition.WithTable(log), partition.WithCreateTable(true), partition.WithInterval(partition.Daily))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Create(ctx); err != nil {
		t.Fatal(err)
	}
	day := time.Now().UTC().Truncate(24 * time.Hour)
	exec(fmt.Sprintf(`DROP TABLE S.%s`, partition.PartitionName("weblog", day.AddDate(0, 0, 2))))
	old := day.AddDate(0, 0, -10)
	exec(fmt.Sprintf(`CREATE TABLE S.%s PARTITION OF S.weblog FOR VALUES FROM ('%s') TO ('%s')`,
		partition.PartitionName("weblog", old), old.Format(time.RFC3339), old.AddDate(0, 0, 1).Format(time.RFC3339)))
	cols := `(organization_id, "timestamp", action, status, principal_id, target_resource_type, target_resource_id)`
	exec(`INSERT INTO S.weblog `+cols+` SELECT 'org1', $1::timestamptz + i * interval '1 second', 'read', 'success', 'u1', 'doc', 'd' || i FROM generate_series(1, 3000) i`, day.Add(time.Hour))
	exec(`INSERT INTO S.weblog ` + cols + ` VALUES ('org1', '2000-01-01', 'read', 'success', 'u1', 'doc', 'd0')`)
	// Vacuumed now, so that autovacuum, on for these partitions, has
	// nothing to change in their sizes while the test compares them.
	exec(`VACUUM ANALYZE S.weblog`)
	// A single-table statement no index serves: an index suggestion.
	for i := range 10 {
		exec(`SELECT id FROM S.items WHERE w = $1`, i)
	}
	exec(`SELECT pg_stat_force_next_flush()`)

	// The application: calls of one statement, cached reads, a write.
	app, err := auditpg.Open(testDSN, auditpg.WithCacheMode(auditpg.CacheExplicit))
	f.app = testdb.Opened(t, app, err)
	f.query = `SELECT i.id, o.id FROM ` + sch + `.items i JOIN ` + sch + `.orgs o ON o.name = i.org WHERE i.w = $1`
	for i := range f.calls {
		rows, err := f.app.QueryContext(ctx, f.query, i)
		if err != nil {
			t.Fatal(err)
		}
		rows.Close()
	}
	cached := `SELECT count(*) FROM ` + sch + `.items WHERE org = $1`
	for i := range 30 {
		var n int
		if err := f.app.QueryRowContext(auditpg.WithCache(ctx, time.Minute), cached, fmt.Sprint("org", i%3)).Scan(&n); err != nil {
			t.Fatal(err)
		}
	}
	var now time.Time
	if err := f.app.QueryRowContext(auditpg.WithCache(ctx, time.Minute), `SELECT now()`).Scan(&now); err != nil {
		t.Fatal(err) // a bypass: now() is volatile
	}
	if _, err := f.app.ExecContext(ctx, `UPDATE `+sch+`.churn SET v = v WHERE id = 1`); err != nil {
		t.Fatal(err)
	}
	return f
}

// fixtureMarker is in the text of the fixture's statement, as
// pg_stat_statements and the driver's fingerprint write it.
const fixtureMarker = "o.name = i.org WHERE i.w = $1"

// browser starts one headless Chromium for the test, with a fresh profile
// and none of the background connections a closed network makes fail.
func browser(t *testing.T) context.Context {
	exe := testdb.Need(t, sysdeps.Chromium())
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-features", "Translate,OptimizationHints,MediaRouter"),
		chromedp.Flag("metrics-recording-only", true),
		chromedp.Flag("safebrowsing-disable-auto-update", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.Flag("use-mock-keychain", true),
		chromedp.Flag("hide-scrollbars", true),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithListener(pageProblems.listen))
	t.Cleanup(cancel)
	ctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(cancelTimeout)
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatal(err)
	}
	return ctx
}

// problems collects what a page must not have: console errors, uncaught
// exceptions, failed requests and error responses.
type problems struct {
	mu   sync.Mutex
	list []string
}

var pageProblems problems

func (p *problems) listen(ev any) {
	var msg string
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeWarning {
			var args []string
			for _, a := range ev.Args {
				args = append(args, string(a.Value)+a.Description)
			}
			msg = fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(args, " "))
		}
	case *runtime.EventExceptionThrown:
		msg = "exception: " + ev.ExceptionDetails.Text
	case *log.EventEntryAdded:
		if ev.Entry.Level == log.EntryLevelError || ev.Entry.Level == log.EntryLevelWarning {
			msg = fmt.Sprintf("log %s (%s): %s %s", ev.Entry.Level, ev.Entry.Source, ev.Entry.Text, ev.Entry.URL)
		}
	case *network.EventLoadingFailed:
		msg = fmt.Sprintf("request failed: %s (%s)", ev.ErrorText, ev.BlockedReason)
	case *network.EventResponseReceived:
		if ev.Response.Status >= 400 {
			msg = fmt.Sprintf("%d for %s", ev.Response.Status, ev.Response.URL)
		}
	}
	if msg != "" {
		p.mu.Lock()
		p.list = append(p.list, msg)
		p.mu.Unlock()
	}
}

func (p *problems) take() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := p.list
	p.list = nil
	return l
}

// visit loads a page, checks it answered 200 with no problem, and writes
// its screenshot.
func visit(t *testing.T, ctx context.Context, shots, base, path, name string) {
	t.Helper()
	pageProblems.take()
	resp, err := chromedp.RunResponse(ctx, chromedp.Navigate(base+path))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if resp.Status != http.StatusOK {
		t.Errorf("%s: status %d", path, resp.Status)
	}
	settle(t, ctx, path)
	shot(t, ctx, shots, name)
}

// settle waits for the page's script to have run, then reports what went
// wrong while it loaded.
func settle(t *testing.T, ctx context.Context, path string) {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`new Promise(r => { if (document.readyState === "complete") r(true); else addEventListener("load", () => r(true)); })`, chromedp.EvalAwaitPromise)); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if p := pageProblems.take(); len(p) > 0 {
		t.Errorf("%s: %d problems:\n%s", path, len(p), strings.Join(p, "\n"))
	}
}

func shot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// eval runs a script and decodes its result.
func eval[T any](t *testing.T, ctx context.Context, script string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](script))
	if err != nil {
		t.Fatalf("%s: %v", script, err)
	}
	return v
}

// attrs returns, for every element with attribute key, its value of key
// mapped to its value of val ("" for none).
func attrs(t *testing.T, ctx context.Context, key, val string) map[string]string {
	t.Helper()
	return eval[map[string]string](t, ctx, fmt.Sprintf(`Object.fromEntries([...document.querySelectorAll("[%[1]s]")].map(e => [e.getAttribute("%[1]s"), e.getAttribute("%[2]s") || ""]))`, key, val))
}

// asJSON round-trips v through JSON, as the CLI's --json prints it.
func asJSON[T any](t *testing.T, v T) T {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out T
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// jsString writes s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func keys(m map[string]string) []string {
	k := make([]string, 0, len(m))
	for s := range m {
		k = append(k, s)
	}
	slices.Sort(k)
	return k
}

// TestDashboardInBrowser loads every page of the dashboard, mounted as an
// application mounts auditpg.Handler and as auditpg serve runs it, in a
// real Chromium, and checks the figures against the monitor's.
func TestDashboardInBrowser(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	shots := os.Getenv("AUDITPG_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	} else if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	app := httptest.NewServer(http.StripPrefix("/debug/auditpg", auditpg.Handler(f.app,
		auditpg.HandlerAllowActions(), auditpg.HandlerRetention(f.retention), auditpg.HandlerSampleEvery(time.Second))))
	defer app.Close()
	base := app.URL + "/debug/auditpg/"
	// The monitor whose JSON the pages must equal reads the server apart
	// from the application's pool, and the application's statistics.
	mon, err := monitor.New(f.admin, monitor.WithDriverStats(func(*sql.DB) (monitor.DriverStats, error) { return driverstats.Read(f.app) }))
	if err != nil {
		t.Fatal(err)
	}

	// The application keeps reading while the first pages load, so that
	// the charts have something to draw.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		q := `SELECT count(*) FROM ` + pgx.Identifier{f.schema}.Sanitize() + `.items WHERE org = $1`
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			var n int
			f.app.QueryRowContext(auditpg.WithCache(ctx, time.Minute), q, fmt.Sprint("org", i%7)).Scan(&n)
		}
	}()
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}()

	b := browser(t)

	t.Run("queries", func(t *testing.T) {
		visit(t, b, shots, base, "queries", "queries")
		qs, err := mon.SlowQueries(ctx, monitor.SlowQueryOptions{Limit: 10000})
		if err != nil {
			t.Fatal(err)
		}
		qs = asJSON(t, qs)
		calls := attrs(t, b, "data-queryid", "data-queryid")
		var fixtureID int64
		for _, q := range qs {
			if strings.Contains(q.Query, fixtureMarker) {
				fixtureID = q.QueryID
				if q.Calls != int64(f.calls) {
					t.Errorf("pg_stat_statements counts %d calls of the fixture's statement, want %d", q.Calls, f.calls)
				}
			}
		}
		if _, ok := calls[strconv.FormatInt(fixtureID, 10)]; fixtureID == 0 || !ok {
			t.Fatalf("the fixture's statement (query id %d) is not on the page", fixtureID)
		}
		row := fmt.Sprintf(`document.querySelector('#statements tr[data-queryid="%d"] [data-k=%%q]').getAttribute("data-sort")`, fixtureID)
		if got := eval[string](t, b, fmt.Sprintf(row, "calls")); got != strconv.Itoa(f.calls) {
			t.Errorf("calls on the page = %s, want %d", got, f.calls)
		}
		snap, err := auditpg.Stats(f.app)
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(snap.Statements, func(s auditpg.StatementStats) bool { return strings.Contains(s.Fingerprint, fixtureMarker) })
		if i < 0 {
			t.Fatal("the driver has no statistics of the fixture's statement")
		}
		if got, want := eval[string](t, b, fmt.Sprintf(row, "driver-p99")), strconv.FormatInt(int64(snap.Statements[i].P99), 10); got != want {
			t.Errorf("driver p99 on the page = %s ns, want the driver's %s", got, want)
		}
		if got := eval[string](t, b, fmt.Sprintf(`[...document.querySelectorAll("#driver-statements tr")].find(tr => tr.getAttribute("data-fingerprint") === %s).querySelector("[data-k=calls]").getAttribute("data-sort")`, jsString(snap.Statements[i].Fingerprint))); got != strconv.Itoa(f.calls) {
			t.Errorf("driver calls on the page = %s, want %d", got, f.calls)
		}
		// Sorting: a click on Calls orders the rows by calls, descending.
		got := eval[[]float64](t, b, `(() => { document.querySelectorAll("#statements th")[1].click(); return [...document.querySelectorAll("#statements tbody tr [data-k=calls]")].map(td => Number(td.getAttribute("data-sort"))); })()`)
		if !slices.IsSortedFunc(got, func(a, b float64) int { return int(b - a) }) || len(got) < 2 {
			t.Errorf("after a click on Calls the rows' calls are %v, want them descending", got)
		}

		// The plan: a click on the statement shows its generic plan's tree.
		pageProblems.take()
		if _, err := chromedp.RunResponse(b, chromedp.Click(chromedp.CSS(fmt.Sprintf(`#statements tr[data-queryid="%d"] a`, fixtureID)))); err != nil {
			t.Fatal(err)
		}
		settle(t, b, "plan")
		shot(t, b, shots, "plan")
		p, err := mon.Explain(ctx, qs[slices.IndexFunc(qs, func(q monitor.SlowQuery) bool { return q.QueryID == fixtureID })].Query, monitor.ExplainOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		p.Root.Walk(func(n, _ *monitor.PlanNode) { want = append(want, n.NodeType) })
		nodes := eval[[]string](t, b, `[...document.querySelectorAll("#plan-tree li")].map(li => li.getAttribute("data-node"))`)
		if !slices.Equal(nodes, want) || len(nodes) < 3 {
			t.Errorf("plan tree on the page = %v, want %v", nodes, want)
		}
		if g := eval[string](t, b, `document.querySelector("#plan-kind").getAttribute("data-generic")`); g != "true" || !p.Generic {
			t.Errorf("plan generic = %s (monitor: %v), want the generic plan of a statement with $1", g, p.Generic)
		}
	})

	t.Run("indexes", func(t *testing.T) {
		visit(t, b, shots, base, "indexes", "indexes")
		r, err := mon.Indexes(ctx, true, true)
		if err != nil {
			t.Fatal(err)
		}
		r = asJSON(t, r)
		var unused, redundant, invalid, suggested []string
		for _, u := range r.Unused {
			unused = append(unused, u.Index)
		}
		for _, u := range r.Redundant {
			redundant = append(redundant, u.Index)
		}
		for _, u := range r.Invalid {
			invalid = append(invalid, u.Index)
		}
		for _, s := range r.Suggestions.Suggestions {
			suggested = append(suggested, s.CreateSQL)
		}
		for _, c := range []struct {
			attr string
			want []string
			must string
		}{
			{"data-unused", unused, "items_v"},
			{"data-redundant", redundant, ""},
			{"data-invalid", invalid, "items_org_unique"},
			{"data-suggestion", suggested, ""},
		} {
			slices.Sort(c.want)
			got := keys(attrs(t, b, c.attr, c.attr))
			if !slices.Equal(got, c.want) || (c.must != "" && !slices.Contains(got, c.must)) || len(got) == 0 {
				t.Errorf("%s on the page = %q, want %q (with %q)", c.attr, got, c.want, c.must)
			}
		}
		if got := eval[string](t, b, `document.querySelector("#hypopg").getAttribute("data-checked")`); got != "true" || !r.Suggestions.Checked {
			t.Errorf("suggestions checked with HypoPG: page %s, monitor %v (%s)", got, r.Suggestions.Checked, r.Suggestions.HypoPG)
		}
	})

	t.Run("tables", func(t *testing.T) {
		visit(t, b, shots, base, "tables", "tables")
		ts, err := mon.Tables(ctx)
		if err != nil {
			t.Fatal(err)
		}
		items := partition.Table{Schema: f.schema, Name: "items"}.String()
		for _, tb := range asJSON(t, ts) {
			if tb.Table.String() != items {
				continue
			}
			got := attrs(t, b, "data-table", "data-table")
			if _, ok := got[items]; !ok {
				t.Fatalf("%s is not on the page: %v", items, keys(got))
			}
			for k, want := range map[string]int64{"bytes": tb.Bytes, "live": tb.LiveRows, "dead": tb.DeadRows} {
				if v := eval[string](t, b, fmt.Sprintf(`[...document.querySelectorAll("tr[data-table]")].find(tr => tr.getAttribute("data-table") === %s).querySelector("[data-k=%s]").getAttribute("data-sort")`, jsString(items), k)); v != strconv.FormatInt(want, 10) {
					t.Errorf("%s %s on the page = %s, want %d", items, k, v, want)
				}
			}
		}
		ps, err := mon.Partitions(ctx)
		if err != nil {
			t.Fatal(err)
		}
		weblog := partition.Table{Schema: f.schema, Name: "weblog"}.String()
		i := slices.IndexFunc(ps, func(p monitor.PartitionedTable) bool { return p.Table.String() == weblog })
		if i < 0 {
			t.Fatal("the monitor lists no weblog")
		}
		m, err := partition.New(f.admin, partition.WithTable(ps[i].Table), partition.WithRetention(f.retention))
		if err != nil {
			t.Fatal(err)
		}
		l, err := m.List(ctx, false)
		if err != nil {
			t.Fatal(err)
		}
		a, err := m.Analyze(ctx)
		if err != nil {
			t.Fatal(err)
		}
		l, a = asJSON(t, l), asJSON(t, a)
		sec := func(attr string) string {
			return eval[string](t, b, fmt.Sprintf(`[...document.querySelectorAll("[data-partitioned]")].find(e => e.getAttribute("data-partitioned") === %s).getAttribute(%q)`, jsString(weblog), attr))
		}
		for attr, want := range map[string]int{"data-partitions": ps[i].Partitions, "data-default-rows": int(ps[i].DefaultRows),
			"data-gaps": len(l.Gaps), "data-expired": len(a.Expired)} {
			if got := sec(attr); got != strconv.Itoa(want) {
				t.Errorf("weblog %s = %s, want %d", attr, got, want)
			}
		}
		if len(l.Gaps) != 2 || len(a.Expired) != 1 || ps[i].DefaultRows != 1 {
			t.Errorf("the fixture's weblog: %d gaps, %d expired, %d rows in the default; want 2, 1, 1", len(l.Gaps), len(a.Expired), ps[i].DefaultRows)
		}
		bars := attrs(t, b, "data-partition", "data-bytes")
		for _, p := range l.Partitions {
			if bars[p.Name] != strconv.FormatInt(p.SizeBytes, 10) {
				t.Errorf("bar of %s = %q bytes, want %d", p.Name, bars[p.Name], p.SizeBytes)
			}
		}
		if len(bars) != len(l.Partitions) {
			t.Errorf("%d bars, want one a partition: %d", len(bars), len(l.Partitions))
		}
	})

	// The application stops: the figures compared next hold still.
	time.Sleep(1500 * time.Millisecond) // a sample or two more for the charts
	close(stop)
	wg.Wait()

	t.Run("overview", func(t *testing.T) {
		visit(t, b, shots, base, "", "overview")
		h, err := mon.Health(ctx)
		if err != nil {
			t.Fatal(err)
		}
		h = asJSON(t, h)
		got := attrs(t, b, "data-component", "data-status")
		want := map[string]string{}
		for _, c := range h.Components {
			want[c.Name] = string(c.Status)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) || want["driver"] == "" {
			t.Errorf("components on the page = %v, want the monitor's %v (with the driver's)", got, want)
		}
		if o := eval[string](t, b, `document.querySelector("#overall").getAttribute("data-status")`); o != string(h.Overall) {
			t.Errorf("overall = %s, want %s", o, h.Overall)
		}
		series := attrs(t, b, "data-series", "data-points")
		for _, s := range []string{"server mean", "driver p99", "result cache"} {
			if n, _ := strconv.Atoi(series[s]); n < 1 {
				t.Errorf("chart series %q has %q points, want some: %v", s, series[s], series)
			}
		}
	})

	t.Run("cache", func(t *testing.T) {
		visit(t, b, shots, base, "cache", "cache")
		s, err := auditpg.Stats(f.app)
		if err != nil {
			t.Fatal(err)
		}
		c := asJSON(t, s).Cache
		for id, want := range map[string]string{"cache-hits": fmt.Sprint(c.Hits), "cache-misses": fmt.Sprint(c.Misses),
			"cache-entries": fmt.Sprint(c.Entries), "cache-invalidations": fmt.Sprint(c.Invalidations), "cache-feed": string(c.Feed)} {
			if got := eval[string](t, b, fmt.Sprintf(`document.getElementById(%q).getAttribute("data-v")`, id)); got != want {
				t.Errorf("#%s = %s, want %s", id, got, want)
			}
		}
		if c.Hits == 0 || len(c.Bypasses) == 0 {
			t.Errorf("the fixture made no hit or no bypass: %+v", c)
		}
		// The dashboard reads through a pool of its own: the application's
		// statistics hold none of its statements, and its connections'
		// sessions are untouched (no "session state changed" bypass).
		if _, ok := c.Bypasses["session state changed"]; ok {
			t.Errorf("the application's cache bypasses for a changed session: the dashboard used its pool (%v)", c.Bypasses)
		}
		for _, st := range s.Statements {
			if strings.Contains(st.Fingerprint, "pg_stat") || strings.Contains(st.Fingerprint, "pg_class") {
				t.Errorf("the application's statistics hold the dashboard's statement %q", st.Fingerprint)
			}
		}
		reasons := attrs(t, b, "data-reason", "data-v")
		for r, n := range c.Bypasses {
			if reasons[r] != fmt.Sprint(n) {
				t.Errorf("bypass %q = %q on the page, want %d", r, reasons[r], n)
			}
		}
	})

	t.Run("maintenance", func(t *testing.T) {
		visit(t, b, shots, base, "maintenance", "maintenance")
		plan, err := mon.PlanMaintenance(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		var vacuum string // the fixture's VACUUM of churn
		for _, a := range asJSON(t, plan) {
			want = append(want, a.SQL)
			if a.Kind == monitor.ActionVacuum && a.Table.Name == "churn" {
				vacuum = a.SQL
			}
		}
		slices.Sort(want)
		if got := keys(attrs(t, b, "data-statement", "data-kind")); !slices.Equal(got, want) || vacuum == "" {
			t.Fatalf("actions on the page = %q, want the plan's %q (with %s)", got, want, vacuum)
		}

		// Without the token: refused, and nothing runs.
		form := url.Values{"sql": want}
		resp, err := http.PostForm(base+"maintenance", form)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("a POST without the token got %s, want 403", resp.Status)
		}
		if again, _ := mon.PlanMaintenance(ctx); len(again) != len(plan) {
			t.Errorf("after the refused POST the plan has %d actions, want %d still", len(again), len(plan))
		}

		// With it, from the page: it runs and says what it ran.
		pageProblems.take()
		if _, err := chromedp.RunResponse(b, chromedp.Click(chromedp.CSS("#apply-button"))); err != nil {
			t.Fatal(err)
		}
		settle(t, b, "maintenance (ran)")
		shot(t, b, shots, "maintenance-ran")
		ran := attrs(t, b, "data-ran", "data-error")
		if !slices.Equal(keys(ran), want) {
			t.Errorf("ran %q, want %q", keys(ran), want)
		}
		if e, ok := ran[vacuum]; !ok || e != "" {
			t.Errorf("%s: ran %v, error %q; want it done", vacuum, ok, e)
		}
		after, err := mon.PlanMaintenance(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if slices.ContainsFunc(after, func(a monitor.MaintenanceAction) bool { return a.SQL == vacuum }) {
			t.Errorf("after the run the plan still calls for %s", vacuum)
		}
	})

	t.Run("serve", func(t *testing.T) {
		// As auditpg serve runs it: no application, and read-only.
		h, err := webui.New(webui.Config{DB: f.admin, Source: "user@host:5432/db", AllowedHosts: []string{"127.0.0.1"}})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(h)
		defer srv.Close()
		visit(t, b, shots, srv.URL+"/", "cache", "serve-cache")
		if n := eval[int](t, b, `document.querySelectorAll("#no-application").length`); n != 1 {
			t.Errorf("the Cache page of serve does not say there is no application cache")
		}
		visit(t, b, shots, srv.URL+"/", "", "serve-overview")
		if got := keys(attrs(t, b, "data-component", "data-component")); slices.Contains(got, "driver") || len(got) == 0 {
			t.Errorf("serve's health components = %v, want the server's only", got)
		}
		visit(t, b, shots, srv.URL+"/", "maintenance", "serve-maintenance")
		if n := eval[int](t, b, `document.querySelectorAll("#apply").length`); n != 0 {
			t.Errorf("a read-only dashboard shows the form that runs maintenance")
		}
		resp, err := http.PostForm(srv.URL+"/maintenance", url.Values{})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("a POST to a read-only dashboard got %s, want 403", resp.Status)
		}
	})
	t.Logf("screenshots in %s", shots)
}
