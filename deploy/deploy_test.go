package deploy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/auditpg/auditpg"
	"github.com/auditpg/auditpg/internal/testdb"
	"github.com/auditpg/auditpg/metrics"
	"github.com/auditpg/auditpg/otel"
	"github.com/auditpg/auditpg/partition"
	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

var testDSN string

func TestMain(m *testing.M) { os.Exit(testdb.Run(m, &testDSN)) }

// exportedNames gathers, from a live registry, the series names the
// program exports: the Collector against a database with a partitioned
// table (default partition, premade partitions), an invalid index and a
// replication slot, and the driver with its cache, a failed call and the
// pool metrics, through NewMeterProvider. A histogram gives its _bucket,
// _sum and _count series.
func exportedNames(t *testing.T) map[string]bool {
	t.Helper()
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	mp, err := metrics.NewMeterProvider(reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mp.Shutdown(context.Background()) })
	db, err := auditpg.Open(testDSN, append(otel.Options(otel.WithMeterProvider(mp)), auditpg.WithCacheMode(auditpg.CacheAll))...)
	db = testdb.Opened(t, db, err)
	unregister, err := otel.RegisterPoolMetrics(db, "main", otel.WithMeterProvider(mp), otel.WithPoolMaxIdleConns(2))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unregister() })

	// The set-up through pgx: the partition manager's set_config would
	// make the driver's connections bypass the cache for good.
	setup := testdb.Open(t, "pgx", testDSN)
	schema := testdb.Schema(t, setup)
	table := partition.Table{Schema: schema, Name: "audit_log"}
	if err := partition.CreateAuditLog(ctx, setup, table); err != nil {
		t.Fatal(err)
	}
	m, err := partition.New(setup, partition.WithTable(table))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Create(ctx); err != nil {
		t.Fatal(err)
	}
	testdb.Exec(t, setup, `INSERT INTO `+table.String()+` ("timestamp", action, status) VALUES ('2001-01-01', 'a', 's')`)
	items := partition.Table{Schema: schema, Name: "items"}.String()
	testdb.Exec(t, setup, `CREATE TABLE `+items+` (id int PRIMARY KEY, code int)`)
	testdb.Exec(t, setup, `INSERT INTO `+items+` VALUES (1, 1), (2, 1)`)
	if _, err := setup.ExecContext(ctx, `CREATE UNIQUE INDEX CONCURRENTLY items_code_key ON `+items+` (code)`); err == nil {
		t.Fatal("a unique index on duplicates was built")
	}
	testdb.Exec(t, setup, `SELECT pg_create_physical_replication_slot($1, true)`, schema)
	t.Cleanup(func() { setup.Exec(`SELECT pg_drop_replication_slot($1)`, schema) })
	testdb.Exec(t, setup, `VACUUM ANALYZE `+items)
	// Until the change feed is up, cached reads bypass: read until one hits.
	for i := 0; ; i++ {
		var n int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM `+items).Scan(&n); err != nil {
			t.Fatal(err)
		}
		st, err := auditpg.Stats(db)
		if err != nil {
			t.Fatal(err)
		}
		if st.Cache.Hits > 0 {
			break
		}
		if i == 100 {
			t.Fatalf("no cache hit after 100 reads: %+v", st.Cache)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var now time.Time
	if err := db.QueryRowContext(ctx, `SELECT now()`).Scan(&now); err != nil { // a bypass: volatile
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `SELECT * FROM no_such_table_deploy`); err == nil {
		t.Fatal("a query of a missing table succeeded")
	}

	c, err := metrics.NewCollector(db)
	if err != nil {
		t.Fatal(err)
	}
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		n := mf.GetName()
		switch mf.GetType() {
		case dto.MetricType_HISTOGRAM:
			names[n+"_bucket"], names[n+"_sum"], names[n+"_count"] = true, true, true
		case dto.MetricType_SUMMARY:
			names[n], names[n+"_sum"], names[n+"_count"] = true, true, true
		default:
			names[n] = true
		}
	}
	// Every family the collector documents was seen, so that this list is
	// the program's whole vocabulary (the feed's states, the slot...).
	for _, f := range metrics.Families() {
		if !names[f.Name] {
			t.Errorf("metric %s documented by metrics.Families was not exported by the live registry", f.Name)
		}
	}
	return names
}

var (
	namesOnce sync.Once
	names     map[string]bool
)

// exported returns the names of a live registry, gathered once for the
// package's tests.
func exported(t *testing.T) map[string]bool {
	namesOnce.Do(func() { names = exportedNames(t) })
	if names == nil {
		t.Fatal("the exported names could not be gathered (see the first test that asked)")
	}
	return names
}

// grafanaVars replaces the dashboard's variables with values PromQL
// parses, as Grafana does before sending a query.
var grafanaVars = strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h", `"$job"`, `".*"`)

// metricNames returns the metric names expr selects; a selector with no
// name is an error: every query must say which metric it reads.
func metricNames(expr string) ([]string, error) {
	e, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		return nil, err
	}
	var out []string
	var bad error
	parser.Inspect(e, func(node parser.Node, _ []parser.Node) error {
		switch n := node.(type) {
		case *parser.VectorSelector:
			if n.Name == "" {
				bad = fmt.Errorf("selector %s names no metric", n)
			}
			out = append(out, n.Name)
		}
		return nil
	})
	return out, bad
}

// checkExpr fails t when expr does not parse or names a metric the program
// does not export.
func checkExpr(t *testing.T, where, expr string) {
	t.Helper()
	used, err := metricNames(expr)
	if err != nil {
		t.Errorf("%s: %q: %v", where, expr, err)
		return
	}
	if len(used) == 0 {
		t.Errorf("%s: %q names no metric", where, expr)
	}
	for _, n := range used {
		if !exported(t)[n] {
			t.Errorf("%s: %q reads %s, which the program does not export", where, expr, n)
		}
	}
}

// Every panel's PromQL parses and reads metrics the program exports, and
// so does the job variable's query.
func TestDashboardQueries(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("grafana", "auditpg.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Type    string `json:"type"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	exprs := 0
	for _, p := range d.Panels {
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			exprs++
			checkExpr(t, "panel "+p.Title, grafanaVars.Replace(tg.Expr))
		}
	}
	labelValues := regexp.MustCompile(`^label_values\((.+), *[a-z_]+\)$`)
	vars := 0
	for _, v := range d.Templating.List {
		q, ok := v.Query.(string)
		if !ok || v.Name == "datasource" {
			continue
		}
		m := labelValues.FindStringSubmatch(q)
		if m == nil {
			t.Errorf("variable %s: query %q is not label_values(metric, label)", v.Name, q)
			continue
		}
		vars++
		checkExpr(t, "variable "+v.Name, m[1])
	}
	if exprs < 20 || vars != 1 {
		t.Errorf("%d panel queries and %d variable queries read: want every panel's and the job variable's", exprs, vars)
	}
}

const (
	rulesFile = "prometheus/auditpg-alerts.yml"
	rulesTest = "prometheus/auditpg-alerts_test.yml"
)

// Every rule's expression parses and reads metrics the program exports;
// every alert has a unit test.
func TestRulesQueries(t *testing.T) {
	groups, errs := rulefmt.ParseFile(rulesFile, false, model.UTF8Validation, parser.NewParser(parser.Options{}), slog.New(slog.DiscardHandler))
	if len(errs) > 0 {
		t.Fatalf("%s: %v", rulesFile, errs)
	}
	tests, err := os.ReadFile(rulesTest)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			n++
			checkExpr(t, "rule "+r.Alert, r.Expr)
			if !strings.Contains(string(tests), "alertname: "+r.Alert+"\n") {
				t.Errorf("alert %s has no test in %s", r.Alert, rulesTest)
			}
		}
	}
	if n < 10 {
		t.Errorf("%d rules read, want the whole file's", n)
	}
}

// The rules pass promtool's check and their unit tests: promtool is the
// module's Go tool (go.mod's tool line), built on first use.
func TestPromtool(t *testing.T) {
	goCmd, err := exec.LookPath("go") // go test puts its GOROOT/bin first in PATH
	if err != nil {
		t.Fatalf("no go command in PATH to run promtool with: %v", err)
	}
	for _, args := range [][]string{
		{"tool", "promtool", "check", "rules", rulesFile},
		{"tool", "promtool", "test", "rules", rulesTest},
	} {
		start := time.Now()
		out, err := exec.Command(goCmd, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		t.Logf("go %s (%v):\n%s", strings.Join(args, " "), time.Since(start).Round(time.Millisecond), out)
	}
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestExportedNames(t *testing.T) {
	t.Logf("exported: %s", strings.Join(sortedKeys(exported(t)), " "))
}
