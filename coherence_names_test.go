package auditpg

import (
	"context"
	"testing"
	"time"

	"github.com/auditpg/auditpg/internal/changefeed"
	"github.com/auditpg/auditpg/internal/testdb"
	"github.com/jackc/pgx/v5"
)

// TestCoherenceQuotedNames: a table whose name needs quotes (upper case, a
// space, a quote) is named alike by the trigger that publishes it
// and by the cache that reads it, whichever schema holds it.
func TestCoherenceQuotedNames(t *testing.T) {
	ctx := context.Background()
	admin := testdb.Open(t, "pgx", testDSN)
	schema := testdb.Schema(t, admin)
	testdb.Exec(t, admin, changefeed.InstallFunctionSQL(schema))
	a := openCohInstance(t, "A")
	for _, name := range []string{"Coh Mixed", `coh "q"`, "CohUpper"} {
		table := pgx.Identifier{schema, name}
		testdb.Exec(t, admin, `CREATE TABLE `+table.Sanitize()+` (id int PRIMARY KEY, v int NOT NULL)`)
		testdb.Exec(t, admin, `INSERT INTO `+table.Sanitize()+` VALUES (1, 1)`)
		testdb.Exec(t, admin, changefeed.InstallTriggerSQL(table, schema))
		read := `SELECT v FROM ` + table.Sanitize() + ` WHERE id = 1`
		for i, want := range []string{"miss", "hit"} {
			if _, outcome, reason := ciDo(t, a.db, a.db, ctx, read); outcome != want {
				t.Fatalf("%s, read %d: %s (%s); want %s", name, i+1, outcome, reason, want)
			}
		}
		sent := time.Now()
		testdb.Exec(t, admin, `UPDATE `+table.Sanitize()+` SET v = 2`)
		if _, ok := a.rec.awaitNamed(name, sent); !ok {
			t.Fatalf("%s: the trigger's notification did not name the table as the cache does", name)
		}
		var v int
		if err := a.db.QueryRowContext(ctx, read).Scan(&v); err != nil || v != 2 {
			t.Errorf("%s: read %d, %v after the write was received; want 2", name, v, err)
		}
	}
}
