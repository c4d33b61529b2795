package changefeed

import (
	"errors"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Channel is the channel every auditpg process listens on and every
// publisher (the triggers, the driver's own writes) notifies.
const Channel = "auditpg_invalidate"

// All is the payload that invalidates everything: a change whose tables
// cannot be named, or DDL, after which what the catalog said is forgotten.
const All = "*"

// TriggerFunction is the trigger function that publishes a statement's
// table and, for a partition, every partitioned table above it: a read of
// the parent sees the partition's rows.
const TriggerFunction = "auditpg_notify_change"

// TriggerName is the name of the statement trigger on each table.
const TriggerName = "auditpg_notify_change"

// Payload is the payload that names table: its schema and name, each
// quoted as an identifier, joined by a dot. The triggers write the same
// with format('%I.%I'), which leaves a lower-case name unquoted.
func Payload(schema, table string) string {
	return pgx.Identifier{schema, table}.Sanitize()
}

// ParsePayload returns the schema and name of the table a payload names, or
// all when it is All.
func ParsePayload(payload string) (schema, table string, all bool, err error) {
	if payload == All {
		return "", "", true, nil
	}
	parts, err := splitIdentifier(payload)
	if err != nil || len(parts) != 2 {
		return "", "", false, errors.New("changefeed: payload " + quoteForError(payload) + " is not a schema-qualified quoted table name")
	}
	return parts[0], parts[1], false, nil
}

// splitIdentifier splits "a"."b" into a and b. A part is quoted, or
// written as is (format's %I leaves names that need no quotes unquoted).
func splitIdentifier(s string) ([]string, error) {
	var parts []string
	for len(s) > 0 {
		if s[0] != '"' {
			end := strings.IndexByte(s, '.')
			if end < 0 {
				end = len(s)
			}
			if end == 0 || strings.ContainsRune(s[:end], '"') {
				return nil, errors.New("empty part or stray quote")
			}
			parts = append(parts, s[:end])
			s = s[end:]
			if len(s) > 0 {
				if len(s) == 1 {
					return nil, errors.New("nothing after the dot")
				}
				s = s[1:]
			}
			continue
		}
		var b strings.Builder
		i := 1
		for {
			j := strings.IndexByte(s[i:], '"')
			if j < 0 {
				return nil, errors.New("unterminated quote")
			}
			b.WriteString(s[i : i+j])
			i += j + 1
			if i < len(s) && s[i] == '"' { // a doubled quote is one quote
				b.WriteByte('"')
				i++
				continue
			}
			break
		}
		parts = append(parts, b.String())
		s = s[i:]
		if len(s) > 0 {
			if s[0] != '.' || len(s) == 1 {
				return nil, errors.New("want a dot between parts")
			}
			s = s[1:]
		}
	}
	return parts, nil
}

func quoteForError(s string) string {
	if len(s) > 80 {
		s = s[:80] + "..."
	}
	return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"`
}

// InstallFunctionSQL creates (or replaces) the trigger function in schema.
// It notifies the statement's table and its partition ancestors; NOTIFY
// is delivered at commit and PostgreSQL folds the repeats of a
// transaction, so a bulk load costs one notification a table.
func InstallFunctionSQL(schema string) string {
	return `CREATE OR REPLACE FUNCTION ` + pgx.Identifier{schema, TriggerFunction}.Sanitize() + `() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
  PERFORM pg_notify(` + quoteLiteral(Channel) + `, format('%I.%I', TG_TABLE_SCHEMA, TG_TABLE_NAME));
  -- pg_partition_ancestors lists a partition and the tables above it, and
  -- nothing for a table that is not a partition.
  PERFORM pg_notify(` + quoteLiteral(Channel) + `, format('%I.%I', n.nspname, c.relname))
     FROM pg_partition_ancestors(TG_RELID) AS a(relid)
     JOIN pg_class c ON c.oid = a.relid
     JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE a.relid <> TG_RELID;
  RETURN NULL;
END
$fn$`
}

// InstallTriggerSQL creates (or replaces) the statement trigger of table,
// calling the function installed in fnSchema.
func InstallTriggerSQL(table pgx.Identifier, fnSchema string) string {
	return `CREATE OR REPLACE TRIGGER ` + pgx.Identifier{TriggerName}.Sanitize() +
		` AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON ` + table.Sanitize() +
		` FOR EACH STATEMENT EXECUTE FUNCTION ` + pgx.Identifier{fnSchema, TriggerFunction}.Sanitize() + `()`
}

// UninstallTriggerSQL drops the statement trigger of table, if it is there.
func UninstallTriggerSQL(table pgx.Identifier) string {
	return `DROP TRIGGER IF EXISTS ` + pgx.Identifier{TriggerName}.Sanitize() + ` ON ` + table.Sanitize()
}

// UninstallFunctionSQL drops the trigger function, if no trigger uses it.
func UninstallFunctionSQL(schema string) string {
	return `DROP FUNCTION IF EXISTS ` + pgx.Identifier{schema, TriggerFunction}.Sanitize() + `()`
}

func quoteLiteral(s string) string { return `'` + strings.ReplaceAll(s, `'`, `''`) + `'` }
