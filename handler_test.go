package auditpg

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestStatsHandler: a GET gets the snapshot as JSON, which decodes into a
// Snapshot equal to the one encoded; other methods get 405; a *sql.DB of
// another driver gets an error status that says why.
func TestStatsHandler(t *testing.T) {
	ctx := context.Background()
	db := cacheDB(t, "handler_stats", WithSlowQueryThreshold(time.Nanosecond), WithLogArgs(true))
	readV(t, db, ctx, "handler_stats", 1)
	readV(t, db, ctx, "handler_stats", 1)
	srv := httptest.NewServer(StatsHandler(db))
	defer srv.Close()

	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var served Snapshot
	if err := json.NewDecoder(resp.Body).Decode(&served); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" ||
		served.Totals.Queries < 2 || served.Cache == nil || served.Cache.Hits != 1 || len(served.SlowQueries) == 0 {
		t.Fatalf("GET: %s %q, %+v", resp.Status, resp.Header.Get("Content-Type"), served)
	}
	// The snapshot of a real connector survives the round trip.
	s, err := Stats(db)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var back Snapshot
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(s, back) {
		t.Fatalf("round trip (%v):\n%+v\n%+v", err, s, back)
	}

	for _, m := range []string{http.MethodPost, http.MethodDelete, http.MethodPut} {
		req, _ := http.NewRequest(m, srv.URL, strings.NewReader("{}"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" {
			t.Errorf("%s: %s, Allow %q; want 405 and GET, HEAD", m, resp.Status, resp.Header.Get("Allow"))
		}
	}

	rec := httptest.NewRecorder()
	StatsHandler(openDB(t, "pgx")).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if rec.Code != http.StatusInternalServerError || !strings.Contains(rec.Body.String(), "not opened with the auditpg driver") {
		t.Errorf("pgx db: %d %q; want 500 saying it is not auditpg's", rec.Code, rec.Body.String())
	}
}
