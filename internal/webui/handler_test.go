package webui_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/auditpg/auditpg"
	"github.com/auditpg/auditpg/internal/testdb"
	"github.com/auditpg/auditpg/internal/webui"
	"github.com/jackc/pgx/v5"
)

func newHandler(t *testing.T, cfg webui.Config) http.Handler {
	t.Helper()
	if cfg.DB == nil {
		cfg.DB = testdb.Open(t, "pgx", testDSN)
	}
	h, err := webui.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func do(h http.Handler, method, target, host string, form url.Values) *httptest.ResponseRecorder {
	var r *http.Request
	if form != nil {
		r = httptest.NewRequest(method, target, strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		r = httptest.NewRequest(method, target, nil)
	}
	if host != "" {
		r.Host = host
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// TestHeaders: every page forbids inline scripts and styles, framing and
// caching; the assets may be cached.
func TestHeaders(t *testing.T) {
	h := newHandler(t, webui.Config{})
	for _, path := range []string{"/", "/queries", "/indexes", "/tables", "/maintenance", "/cache"} {
		w := do(h, http.MethodGet, path, "", nil)
		if w.Code != http.StatusOK {
			t.Errorf("%s: %d %s", path, w.Code, w.Body.String())
		}
		hd := w.Header()
		csp := hd.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'"} {
			if !strings.Contains(csp, want) || strings.Contains(csp, "unsafe-inline") {
				t.Errorf("%s: CSP %q, want %q and no unsafe-inline", path, csp, want)
			}
		}
		if hd.Get("X-Frame-Options") != "DENY" || hd.Get("Cache-Control") != "no-store" || hd.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: headers %v", path, hd)
		}
		body := w.Body.String()
		if strings.Contains(body, "<script>") || strings.Contains(body, " style=") || strings.Contains(body, "<style") {
			t.Errorf("%s: an inline script or style, which the CSP blocks", path)
		}
	}
	for _, path := range []string{"/static/app.css", "/static/app.js", "/static/favicon.svg"} {
		w := do(h, http.MethodGet, path, "", nil)
		if w.Code != http.StatusOK || !strings.HasPrefix(w.Header().Get("Cache-Control"), "public") {
			t.Errorf("%s: %d, Cache-Control %q", path, w.Code, w.Header().Get("Cache-Control"))
		}
	}
}

func TestAllowedHosts(t *testing.T) {
	h := newHandler(t, webui.Config{AllowedHosts: []string{"localhost", "127.0.0.1"}})
	if w := do(h, http.MethodGet, "/cache", "127.0.0.1:8080", nil); w.Code != http.StatusOK {
		t.Errorf("an allowed host: %d", w.Code)
	}
	if w := do(h, http.MethodGet, "/cache", "rebound.example:8080", nil); w.Code != http.StatusMisdirectedRequest {
		t.Errorf("another host: %d, want 421", w.Code)
	}
}

// TestActionsGuarded: maintenance runs only with AllowActions and the
// page's token.
func TestActionsGuarded(t *testing.T) {
	ro := newHandler(t, webui.Config{})
	if w := do(ro, http.MethodPost, "/maintenance", "", url.Values{}); w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "--allow-actions") {
		t.Errorf("POST to a read-only dashboard: %d, want 403 naming --allow-actions", w.Code)
	}
	rw := newHandler(t, webui.Config{AllowActions: true})
	for _, form := range []url.Values{{}, {"token": {"0123"}}, {"token": {strings.Repeat("0", 64)}}} {
		if w := do(rw, http.MethodPost, "/maintenance", "", form); w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "token") {
			t.Errorf("POST with token %q: %d, want 403 about the token", form.Get("token"), w.Code)
		}
	}
	page := do(rw, http.MethodGet, "/maintenance", "", nil).Body.String()
	tok := strings.SplitN(strings.SplitN(page+`name="token" value="`, `name="token" value="`, 2)[1], `"`, 2)[0]
	if w := do(rw, http.MethodPost, "/maintenance", "", url.Values{"token": {tok}}); tok != "" && w.Code != http.StatusOK {
		t.Errorf("POST with the page's token: %d", w.Code)
	}
}

func TestPlanRequests(t *testing.T) {
	h := newHandler(t, webui.Config{})
	if w := do(h, http.MethodGet, "/plan?id=abc", "", nil); w.Code != http.StatusBadRequest {
		t.Errorf("plan?id=abc: %d, want 400", w.Code)
	}
	if w := do(h, http.MethodGet, "/plan?id=1", "", nil); w.Code != http.StatusNotFound || !strings.Contains(w.Body.String(), "Queries page") {
		t.Errorf("plan of an unknown id: %d, want 404 saying where to pick one", w.Code)
	}
}

func TestConfigRefused(t *testing.T) {
	db := testdb.Open(t, "pgx", testDSN)
	for _, c := range []webui.Config{{}, {DB: db, SampleEvery: time.Millisecond}, {DB: db, Retention: -time.Hour}} {
		if _, err := webui.New(c); err == nil {
			t.Errorf("%+v: accepted", c)
		}
	}
	for _, o := range []auditpg.HandlerOption{auditpg.HandlerSampleEvery(time.Hour), auditpg.HandlerRetention(-1)} {
		w := do(auditpg.Handler(db, o), http.MethodGet, "/", "", nil)
		if w.Code != http.StatusInternalServerError || !strings.Contains(w.Body.String(), "want") {
			t.Errorf("a bad option: %d %q, want 500 saying what to give", w.Code, w.Body.String())
		}
	}
}

// TestNoLiteralShown: pg_stat_statements keeps a utility statement as it
// was sent, literals and all; the pages show statements with $n instead.
func TestNoLiteralShown(t *testing.T) {
	db := testdb.Open(t, "pgx", testDSN)
	schema := testdb.Schema(t, db)
	const secret = "hunter2-literal"
	testdb.Exec(t, db, `CREATE TABLE `+pgx.Identifier{schema, "lit"}.Sanitize()+` (x text DEFAULT '`+secret+`')`)
	var kept bool
	if err := db.QueryRow(`SELECT EXISTS (SELECT 1 FROM pg_stat_statements WHERE query LIKE '%' || $1 || '%')`, secret).Scan(&kept); err != nil || !kept {
		t.Fatalf("pg_stat_statements does not keep the utility statement's literal (%v): the test shows nothing", err)
	}
	h := newHandler(t, webui.Config{DB: db})
	w := do(h, http.MethodGet, "/queries", "", nil)
	if w.Code != http.StatusOK || strings.Contains(w.Body.String(), secret) || !strings.Contains(w.Body.String(), schema) {
		t.Errorf("/queries: %d, shows the literal %v; want the statement shown with $n", w.Code, strings.Contains(w.Body.String(), secret))
	}
}

// TestPlanOfAWriteRefused: the plan page explains read-only statements
// only; a write in pg_stat_statements gets the guard's refusal, and runs
// nothing.
func TestPlanOfAWriteRefused(t *testing.T) {
	db := testdb.Open(t, "pgx", testDSN)
	tbl := pgx.Identifier{testdb.Schema(t, db), "w"}.Sanitize()
	testdb.Exec(t, db, `CREATE TABLE `+tbl+` (id int, v int)`)
	testdb.Exec(t, db, `INSERT INTO `+tbl+` VALUES (1, 1)`)
	testdb.Exec(t, db, `UPDATE `+tbl+` SET v = v + 1 WHERE id = 1`)
	var id int64
	if err := db.QueryRow(`SELECT queryid FROM pg_stat_statements WHERE query LIKE 'UPDATE ' || $1 || '%' LIMIT 1`, tbl).Scan(&id); err != nil {
		t.Fatal(err)
	}
	w := do(newHandler(t, webui.Config{DB: db}), http.MethodGet, "/plan?id="+strconv.FormatInt(id, 10), "", nil)
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `id="plan-refused"`) || !strings.Contains(w.Body.String(), "--allow-writes") {
		t.Errorf("plan of an UPDATE: %d, want the refusal naming --allow-writes", w.Code)
	}
	var v int
	if err := db.QueryRow(`SELECT v FROM ` + tbl).Scan(&v); err != nil || v != 2 {
		t.Errorf("v = %d (%v) after the plan page, want 2: the UPDATE ran", v, err)
	}
}

// TestHandlerOtherDriver: a *sql.DB not opened with auditpg gets the
// server's pages, and the Cache page says there is no application cache.
func TestHandlerOtherDriver(t *testing.T) {
	h := auditpg.Handler(testdb.Open(t, "pgx", testDSN))
	w := do(h, http.MethodGet, "/cache", "", nil)
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `id="no-application"`) {
		t.Errorf("/cache for a pgx *sql.DB: %d, want the page saying there is no application cache", w.Code)
	}
}

// TestMetricsMounted: the caller's metrics handler answers /metrics.
func TestMetricsMounted(t *testing.T) {
	m := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("auditpg_up 1\n")) })
	if w := do(newHandler(t, webui.Config{Metrics: m}), http.MethodGet, "/metrics", "", nil); w.Code != http.StatusOK || w.Body.String() != "auditpg_up 1\n" {
		t.Errorf("/metrics: %d %q", w.Code, w.Body.String())
	}
	if w := do(newHandler(t, webui.Config{}), http.MethodGet, "/metrics", "", nil); w.Code != http.StatusNotFound {
		t.Errorf("/metrics without a handler: %d, want 404", w.Code)
	}
}
