package changefeed

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/auditpg/auditpg/internal/pgerr"
	"github.com/auditpg/auditpg/internal/pgident"
	"github.com/jackc/pgx/v5"
)

// DDLTrigger is the event trigger that publishes All after DDL, so that
// what the caches remember of the catalog (row-level security, column
// types, functions' volatility) is forgotten everywhere. Event triggers
// need a superuser.
const DDLTrigger = "auditpg_notify_ddl"

// ddlFunctionSQL creates the event trigger's function in schema.
func ddlFunctionSQL(schema string) string {
	return `CREATE OR REPLACE FUNCTION ` + pgx.Identifier{schema, DDLTrigger}.Sanitize() + `() RETURNS event_trigger
LANGUAGE plpgsql AS $fn$
BEGIN
  PERFORM pg_notify(` + quoteLiteral(Channel) + `, ` + quoteLiteral(All) + `);
END
$fn$`
}

// Plan is what installing or uninstalling the triggers runs, in one
// transaction.
type Plan struct {
	Tables     []pgident.Table `json:"tables"`
	DDLTrigger bool            `json:"ddl_trigger"` // the event trigger too (a superuser's)
	Statements []string        `json:"statements"`
}

// PlanInstall plans the statement triggers of tables (every table of the
// database's own schemas when tables is empty) and, when the current user
// is a superuser, the event trigger that publishes DDL. The functions go in
// fnSchema. Each statement is idempotent.
func PlanInstall(ctx context.Context, db *sql.DB, fnSchema string, tables []string) (*Plan, error) {
	p, err := plan(ctx, db, tables)
	if err != nil {
		return nil, err
	}
	p.Statements = append(p.Statements, InstallFunctionSQL(fnSchema))
	for _, t := range p.Tables {
		p.Statements = append(p.Statements, InstallTriggerSQL(t.Ident(), fnSchema))
	}
	if p.DDLTrigger {
		p.Statements = append(p.Statements, ddlFunctionSQL(fnSchema),
			`DROP EVENT TRIGGER IF EXISTS `+pgx.Identifier{DDLTrigger}.Sanitize(),
			`CREATE EVENT TRIGGER `+pgx.Identifier{DDLTrigger}.Sanitize()+` ON ddl_command_end EXECUTE FUNCTION `+
				pgx.Identifier{fnSchema, DDLTrigger}.Sanitize()+`()`)
	}
	return p, nil
}

// PlanUninstall plans the removal of the statement triggers of tables
// (every table when empty), of the event trigger when the current user may
// drop it, and of the functions when no table is named.
func PlanUninstall(ctx context.Context, db *sql.DB, fnSchema string, tables []string) (*Plan, error) {
	p, err := plan(ctx, db, tables)
	if err != nil {
		return nil, err
	}
	for _, t := range p.Tables {
		p.Statements = append(p.Statements, UninstallTriggerSQL(t.Ident()))
	}
	if len(tables) == 0 {
		if p.DDLTrigger {
			p.Statements = append(p.Statements, `DROP EVENT TRIGGER IF EXISTS `+pgx.Identifier{DDLTrigger}.Sanitize(),
				`DROP FUNCTION IF EXISTS `+pgx.Identifier{fnSchema, DDLTrigger}.Sanitize()+`()`)
		}
		p.Statements = append(p.Statements, UninstallFunctionSQL(fnSchema))
	}
	return p, nil
}

// plan resolves the tables (every ordinary or partitioned table outside
// the system schemas when none is named) and asks whether the user is a
// superuser.
func plan(ctx context.Context, db *sql.DB, names []string) (*Plan, error) {
	p := &Plan{Tables: []pgident.Table{}, Statements: []string{}}
	if err := db.QueryRowContext(ctx, `SELECT rolsuper FROM pg_roles WHERE rolname = current_user`).Scan(&p.DDLTrigger); err != nil {
		return nil, fmt.Errorf("changefeed: ask whether the user is a superuser: %w", err)
	}
	var rows *sql.Rows
	var err error
	if len(names) == 0 {
		rows, err = db.QueryContext(ctx, `
SELECT n.nspname, c.relname
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p')
   AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%'
 ORDER BY 1, 2`)
	} else {
		// to_regclass resolves each name as the SQL would, through the
		// search_path, and is NULL for a name that is no table.
		rows, err = db.QueryContext(ctx, `
SELECT n.nspname, c.relname, c.relkind::text, a.name
  FROM unnest($1::text[]) WITH ORDINALITY AS a(name, i)
  LEFT JOIN pg_class c ON c.oid = to_regclass(a.name)
  LEFT JOIN pg_namespace n ON n.oid = c.relnamespace
 ORDER BY a.i`, names)
	}
	if err != nil {
		return nil, fmt.Errorf("changefeed: list the tables: %w", err)
	}
	defer rows.Close()
	var missing []string
	for rows.Next() {
		var schema, name, kind, asked sql.NullString
		dest := []any{&schema, &name}
		if len(names) > 0 {
			dest = append(dest, &kind, &asked)
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		if len(names) > 0 && (!name.Valid || (kind.String != "r" && kind.String != "p")) {
			missing = append(missing, asked.String)
			continue
		}
		p.Tables = append(p.Tables, pgident.Table{Schema: schema.String, Name: name.String})
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("changefeed: %q: no such table (or not an ordinary or partitioned table) in the search_path", missing)
	}
	return p, nil
}

// Apply runs the plan's statements in one transaction.
func (p *Plan) Apply(ctx context.Context, db *sql.DB) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	for _, stmt := range p.Statements {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return errors.Join(fmt.Errorf("changefeed: %w (in: %.80s...)", err, stmt), tx.Rollback())
		}
	}
	return tx.Commit()
}

// Status is what an operator checks of the change feed on a database.
type Status struct {
	// Tables are the ordinary and partitioned tables, each with whether
	// its statement trigger is installed.
	Tables []TableStatus `json:"tables"`
	// DDLTrigger says whether the event trigger that publishes DDL is
	// installed and enabled.
	DDLTrigger bool `json:"ddl_trigger"`
	// Listeners counts the connections listening now: one a connector of
	// a process with the cache on, once it has read through the cache.
	Listeners int `json:"listeners"`
	// QueueUsage is the fraction of the server's notification queue in
	// use (pg_notification_queue_usage): near 1, a listener that does not
	// read holds every notifier back.
	QueueUsage float64 `json:"queue_usage"`
	// Slots are the replication slots of auditpg_invalidate=wal (named
	// SlotPrefix...), in every database of the server.
	Slots []SlotStatus `json:"slots"`
}

// SlotStatus is one replication slot and the WAL it holds back.
type SlotStatus struct {
	Name      string `json:"name"`
	Database  string `json:"database"`
	Temporary bool   `json:"temporary"`
	// Active says whether a connection streams from it now; ActivePID is
	// its backend (0 when inactive).
	Active    bool `json:"active"`
	ActivePID int  `json:"active_pid"`
	// RetainedBytes is the WAL the server keeps for it:
	// pg_current_wal_lsn() - restart_lsn.
	RetainedBytes int64 `json:"retained_bytes"`
}

// slotsSQL lists the slots whose name begins with $1; the WAL position is
// the last one received on a standby.
const slotsSQL = `
SELECT slot_name::text, coalesce(database::text, ''), temporary, active, coalesce(active_pid, 0),
       coalesce(pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn() ELSE pg_current_wal_lsn() END,
                                restart_lsn), 0)::bigint
  FROM pg_replication_slots
 WHERE starts_with(slot_name::text, $1)
 ORDER BY 1`

// ReadSlots lists the replication slots whose name begins with prefix
// (every slot for "").
func ReadSlots(ctx context.Context, db *sql.DB, prefix string) ([]SlotStatus, error) {
	slots := []SlotStatus{}
	rows, err := db.QueryContext(ctx, slotsSQL, prefix)
	if err != nil {
		return nil, fmt.Errorf("changefeed: list the replication slots: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var s SlotStatus
		if err := rows.Scan(&s.Name, &s.Database, &s.Temporary, &s.Active, &s.ActivePID, &s.RetainedBytes); err != nil {
			return nil, err
		}
		slots = append(slots, s)
	}
	return slots, rows.Err()
}

// DropSlot drops the replication slot name, one of auditpg's (named
// SlotPrefix...), if no connection streams from it.
func DropSlot(ctx context.Context, db *sql.DB, name string) error {
	if !strings.HasPrefix(name, SlotPrefix) {
		return fmt.Errorf("changefeed: %q is not a slot of auditpg's (their names begin with %s); drop another slot with SELECT pg_drop_replication_slot('name') if you mean it", name, SlotPrefix)
	}
	var active bool
	var pid int
	err := db.QueryRowContext(ctx, `SELECT active, coalesce(active_pid, 0) FROM pg_replication_slots WHERE slot_name = $1`, name).Scan(&active, &pid)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("changefeed: there is no replication slot %q (auditpg cache status lists them)", name)
	}
	if err != nil {
		return fmt.Errorf("changefeed: read the slot %q: %w", name, err)
	}
	activeErr := func() error {
		return fmt.Errorf("changefeed: the slot %q is active: backend %d streams from it (a leader's decoder); it is temporary and goes when that "+
			"connection ends: stop that process, or SELECT pg_terminate_backend(%d), which lets another leader take over", name, pid, pid)
	}
	if active {
		return activeErr()
	}
	if _, err := db.ExecContext(ctx, `SELECT pg_drop_replication_slot($1)`, name); err != nil {
		if pgerr.SQLState(err) == "55006" { // it became active meanwhile
			return activeErr()
		}
		return fmt.Errorf("changefeed: drop the slot %q: %w", name, err)
	}
	return nil
}

// TableStatus is one table and its trigger.
type TableStatus struct {
	Table   pgident.Table `json:"table"`
	Trigger bool          `json:"trigger"`
}

// ReadStatus reads the change feed's status on db's database.
func ReadStatus(ctx context.Context, db *sql.DB) (*Status, error) {
	s := &Status{Tables: []TableStatus{}}
	var err error
	if s.Slots, err = ReadSlots(ctx, db, SlotPrefix); err != nil {
		return nil, err
	}
	rows, err := db.QueryContext(ctx, `
SELECT n.nspname, c.relname,
       EXISTS (SELECT FROM pg_trigger t WHERE t.tgrelid = c.oid AND t.tgname = $1 AND t.tgenabled <> 'D')
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p')
   AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%'
 ORDER BY 1, 2`, TriggerName)
	if err != nil {
		return nil, fmt.Errorf("changefeed: list the tables and their triggers: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var ts TableStatus
		if err := rows.Scan(&ts.Table.Schema, &ts.Table.Name, &ts.Trigger); err != nil {
			return nil, err
		}
		s.Tables = append(s.Tables, ts)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	err = db.QueryRowContext(ctx, `
SELECT EXISTS (SELECT FROM pg_event_trigger WHERE evtname = $1 AND evtenabled <> 'D'),
       (SELECT count(*) FROM pg_stat_activity WHERE application_name = $2 AND datname = current_database())::int,
       pg_notification_queue_usage()`, DDLTrigger, ListenerName).Scan(&s.DDLTrigger, &s.Listeners, &s.QueueUsage)
	if err != nil {
		return nil, fmt.Errorf("changefeed: read the event trigger and the listeners: %w", err)
	}
	return s, nil
}
