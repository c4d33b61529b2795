package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/auditpg/auditpg"
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
