package main

import (
	"encoding/json"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/auditpg/auditpg/internal/testdb"
	"github.com/auditpg/auditpg/partition"
)

func TestPartitionCommands(t *testing.T) {
	db := testdb.Open(t, "pgx", testDSN)
	// A name that needs quoting, fixed so that the printed DDL can be checked.
	const schema = "cli partition"
	testdb.Exec(t, db, `CREATE SCHEMA "cli partition"`)
	t.Cleanup(func() { db.Exec(`DROP SCHEMA "cli partition" CASCADE`) })
	base := []string{"partition", "--schema", schema, "--table", "audit_log", "--interval", "monthly"}
	run := func(args ...string) string {
		t.Helper()
		out, err := runCLI(t, append(append([]string{}, base...), args...)...)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		return out
	}

	ddl := run("schema")
	if !strings.Contains(ddl, `CREATE TABLE IF NOT EXISTS "cli partition"."audit_log"`) || !strings.Contains(ddl, `PARTITION BY RANGE ("timestamp")`) {
		t.Errorf("schema printed:\n%s", ddl)
	}

	var r partition.Report
	if err := json.Unmarshal([]byte(run("create", "--premake", "2", "--json")), &r); err != nil {
		t.Fatal(err)
	}
	if len(r.Created) != 4 { // default, current, 2 premade
		t.Errorf("create made %v", r.Created)
	}
	testdb.Exec(t, db, `INSERT INTO "cli partition".audit_log ("timestamp", action, status) VALUES ('2001-01-15', 'a', 's')`)
	if out := run("create", "--premake", "2"); !strings.Contains(out, "moved 1 rows out of the default partition") || !strings.Contains(out, "audit_log_p20010101") {
		t.Errorf("second create printed:\n%s", out)
	}
	out := run("list", "--exact")
	if !strings.Contains(out, "audit_log_p20010101  2001-01-01 00:00") || !strings.Contains(out, "never analyzed") {
		t.Errorf("list printed:\n%s", out)
	}
	if out := run("analyze"); !strings.Contains(out, "gaps between partitions") {
		t.Errorf("analyze printed:\n%s", out)
	}
	if out := run("cleanup", "--retention", "365", "--dry-run"); !strings.Contains(out, "audit_log_p20010101 [2001-01-01T00:00:00Z, 2001-02-01T00:00:00Z) would be dropped") {
		t.Errorf("cleanup --dry-run printed:\n%s", out)
	}
	if out := run("cleanup", "--retention", "365", "--mode", "detach"); !strings.Contains(out, "audit_log_p20010101 [2001-01-01T00:00:00Z, 2001-02-01T00:00:00Z) detached") {
		t.Errorf("cleanup printed:\n%s", out)
	}
	if _, err := runCLI(t, append(base, "cleanup")...); err == nil {
		t.Error("cleanup without --retention: want an error")
	}

	// convert: the detached partition is an unpartitioned table of its own.
	testdb.Exec(t, db, `ALTER TABLE "cli partition".audit_log_p20010101 RENAME TO old_log`)
	var res partition.ConvertResult
	out, err := runCLI(t, "partition", "--schema", schema, "--table", "old_log", "--json", "convert")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.Rows != 1 {
		t.Errorf("convert: %+v, %v", res, err)
	}
}
