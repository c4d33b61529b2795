package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/auditpg/auditpg"
	"github.com/auditpg/auditpg/internal/pgtemp"
	"github.com/auditpg/auditpg/internal/testdb"
)

// TestCacheTriggerCommands: install-triggers and uninstall-triggers, dry
// run first, on named tables and on all of them, and what status says.
func TestCacheTriggerCommands(t *testing.T) {
	db, err := auditpg.Open(testDSN)
	db = testdb.Opened(t, db, err)
	testdb.Exec(t, db, `DROP TABLE IF EXISTS cli_feed_a, "cli_feed_B"`)
	testdb.Exec(t, db, `CREATE TABLE cli_feed_a (id int)`)
	testdb.Exec(t, db, `CREATE TABLE "cli_feed_B" (id int)`)
	t.Cleanup(func() { testdb.Exec(t, db, `DROP TABLE IF EXISTS cli_feed_a, "cli_feed_B"`) })

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"cache", "install-triggers"}, "give either --tables a,b or --all"},
		{[]string{"cache", "install-triggers", "--all", "--tables", "cli_feed_a"}, "give either --tables a,b or --all"},
		{[]string{"cache", "install-triggers", "--tables", "cli_feed_nope"}, "cli_feed_nope"},
		{[]string{"cache", "install-triggers", "--all", "--function-schema", ""}, "--function-schema must not be empty"},
		{[]string{"cache", "status", "--all"}, "unknown flag: --all"},
	} {
		if _, err := runCLI(t, c.args...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v; want an error saying %q", strings.Join(c.args, " "), err, c.want)
		}
	}

	triggers := func() map[string]bool {
		t.Helper()
		out, err := runCLI(t, "cache", "status", "--json")
		if err != nil {
			t.Fatal(err)
		}
		var st struct {
			Tables []struct {
				Table   struct{ Name string }
				Trigger bool
			}
			DDLTrigger bool `json:"ddl_trigger"`
		}
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			t.Fatal(err)
		}
		got := map[string]bool{"ddl": st.DDLTrigger}
		for _, tb := range st.Tables {
			if strings.HasPrefix(strings.ToLower(tb.Table.Name), "cli_feed_") {
				got[tb.Table.Name] = tb.Trigger
			}
		}
		return got
	}

	out, err := runCLI(t, "cache", "install-triggers", "--tables", `cli_feed_a,"cli_feed_B"`, "--dry-run")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "nothing was changed") || !strings.Contains(out, `CREATE OR REPLACE TRIGGER "auditpg_notify_change" AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON "public"."cli_feed_B"`) {
		t.Errorf("install-triggers --dry-run printed\n%s\nwant the SQL", out)
	}
	if got := triggers(); got["cli_feed_a"] || got["cli_feed_B"] {
		t.Errorf("after a dry run: %v; want nothing installed", got)
	}

	out, err = runCLI(t, "cache", "install-triggers", "--tables", `cli_feed_a,"cli_feed_B"`, "--json")
	if err != nil {
		t.Fatal(err)
	}
	checkJSON(t, "cache-install-triggers", out)
	if got := triggers(); !got["cli_feed_a"] || !got["cli_feed_B"] || !got["ddl"] {
		t.Errorf("after install: %v; want both tables and the DDL trigger (the test user is a superuser)", got)
	}
	out, err = runCLI(t, "cache", "status", "--json")
	if err != nil {
		t.Fatal(err)
	}
	checkJSON(t, "cache-status", out)
	if out, err = runCLI(t, "cache", "status"); err != nil || !strings.Contains(out, "DDL trigger: true") {
		t.Errorf("status printed\n%s\n%v", out, err)
	}

	if _, err := runCLI(t, "cache", "uninstall-triggers", "--tables", "cli_feed_a"); err != nil {
		t.Fatal(err)
	}
	if got := triggers(); got["cli_feed_a"] || !got["cli_feed_B"] {
		t.Errorf("after uninstalling one table: %v; want only cli_feed_B's trigger", got)
	}
	if _, err := runCLI(t, "cache", "uninstall-triggers", "--all"); err != nil {
		t.Fatal(err)
	}
	if got := triggers(); got["cli_feed_B"] || got["ddl"] {
		t.Errorf("after uninstall --all: %v; want nothing left", got)
	}
}

// TestCacheSlots: status lists the slots of auditpg_invalidate=wal, an
// active leader's and one left behind, with their retained WAL; drop-slot
// drops the inactive one and refuses the active one and the others'.
func TestCacheSlots(t *testing.T) {
	c, err := pgtemp.Start(t.Context(), pgtemp.WithSetting("wal_level", "logical"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop() })
	dsn := c.DSN()
	admin := testdb.Open(t, "pgx", dsn)
	testdb.Exec(t, admin, `SELECT pg_create_logical_replication_slot('auditpg_left', 'pgoutput')`)
	testdb.Exec(t, admin, `SELECT pg_create_logical_replication_slot('other_slot', 'pgoutput')`)
	testdb.Exec(t, admin, `CREATE TABLE cli_slot (id int PRIMARY KEY)`)
	testdb.Exec(t, admin, `INSERT INTO cli_slot SELECT generate_series(1, 10000)`) // WAL the slots retain
	app, err := auditpg.Open(dsn, auditpg.WithCacheMode(auditpg.CacheAll), auditpg.WithInvalidation(auditpg.InvalidateWAL))
	app = testdb.Opened(t, app, err)
	var n int
	if err := app.QueryRow(`SELECT count(*) FROM cli_slot`).Scan(&n); err != nil { // starts the decoder
		t.Fatal(err)
	}
	cli := func(args ...string) (string, error) { return runCLI(t, append([]string{"--dsn", dsn}, args...)...) }
	var st struct {
		Slots []struct {
			Name          string
			Temporary     bool
			Active        bool
			ActivePID     int   `json:"active_pid"`
			RetainedBytes int64 `json:"retained_bytes"`
		}
	}
	var out string
	for deadline := time.Now().Add(10 * time.Second); len(st.Slots) < 2; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("status lists %d slots after 10s; want the leader's and auditpg_left:\n%s", len(st.Slots), out)
		}
		if out, err = cli("--json", "cache", "status"); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			t.Fatal(err)
		}
	}
	checkJSON(t, "cache-status", out)
	var active string
	for _, s := range st.Slots {
		switch {
		case s.Name == "auditpg_left":
			if s.Active || s.Temporary || s.RetainedBytes <= 0 {
				t.Errorf("auditpg_left: %+v; want inactive, permanent, retaining WAL", s)
			}
		case strings.HasPrefix(s.Name, "auditpg_"):
			active = s.Name
			if !s.Active || !s.Temporary || s.ActivePID == 0 {
				t.Errorf("the leader's slot: %+v; want active and temporary", s)
			}
		default:
			t.Errorf("status lists %s, which is not auditpg's", s.Name)
		}
	}
	if text, err := cli("cache", "status"); err != nil || !strings.Contains(text, "inactive (drop it: auditpg cache drop-slot auditpg_left)") {
		t.Errorf("status printed\n%s\n%v; want the inactive slot and what to do", text, err)
	}
	for _, c := range []struct{ name, want string }{
		{active, "is active"},
		{"other_slot", "not a slot of auditpg's"},
		{"auditpg_nope", "no replication slot"},
	} {
		if _, err := cli("cache", "drop-slot", c.name); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("drop-slot %s: %v; want an error saying %q", c.name, err, c.want)
		}
	}
	if out, err := cli("--json", "cache", "drop-slot", "auditpg_left"); err != nil || !strings.Contains(out, `"dropped": "auditpg_left"`) {
		t.Fatalf("drop-slot auditpg_left: %s %v", out, err)
	}
	var left int
	if err := admin.QueryRow(`SELECT count(*) FROM pg_replication_slots WHERE slot_name IN ('auditpg_left', $1)`, active).Scan(&left); err != nil || left != 1 {
		t.Errorf("%d of auditpg_left and the leader's slot are left, %v; want the leader's only", left, err)
	}
}
