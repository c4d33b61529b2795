// Package preset stores audit presets: named templates for audit events (an
// action, a data classification, the fields an event must carry, default
// values and validation rules), kept in the audit_preset table.
//
// A preset belongs to an organization, or to every organization when its
// organization id is [DefaultOrg] ("*"): a default. An organization sees its
// own presets merged over the defaults, its own winning on a shared name;
// [Store.List] and [Store.Get] compute that merge in one query.
//
// The store works on a plain *sql.DB of any driver. Its reads are single,
// read-only statements outside any transaction, prefixed with the hint
// comment
//
//	/* auditpg:cache ttl=5m0s */
//
// which the auditpg driver reads as "cache this result": opened with
// auditpg.Open, reads are served from the driver's cache, and every write the
// store makes goes through the same *sql.DB, so the driver drops the cached
// results of audit_preset as soon as the write succeeds. After Create,
// Upsert, Update or Delete returns, the next Get or List returns the new
// state. The store keeps no cache of its own. On another driver the hint is
// an ordinary comment. [WithCacheHint] turns it off, [WithCacheTTL] bounds how
// long a cached result may live (what matters for other processes until they
// hear of writes).
//
// Defaults are written only through [Store.UpsertDefault],
// [Store.DeleteDefault] and [Store.SeedDefaults]; Create, Upsert, Update and
// Delete refuse the organization "*", so that an organization's write can
// never change what every other organization sees.
package preset
