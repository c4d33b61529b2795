// Package webui is the dashboard that `auditpg serve` runs and that
// auditpg.Handler mounts in an application: server-rendered pages
// (html/template) over the monitor and partition packages, with the
// driver's own statistics when the application hands them over (Config.Driver).
//
// Pages: Overview (health with its reasons, the figures behind it, charts of
// the last hour), Queries (pg_stat_statements, and the driver's fingerprints
// when present), Plan (EXPLAIN through monitor.Explain and its guard: read-only,
// a statement with $n explained as its generic plan), Indexes, Tables (and
// partitions: sizes, coverage ahead of now, gaps, retention), Maintenance (the
// dry run; running it needs Config.AllowActions, a POST and the page's token),
// Cache (the application's result cache, or how to see one).
//
// What the pages hold is the database's: the handler is read-only unless
// AllowActions, sends a Content-Security-Policy that allows no inline script
// or style, forbids framing and caching of its pages, and shows no argument
// value or password (statement texts are pg_stat_statements' normalized ones;
// the source label is the caller's, the CLI's holding no password). Mount it
// behind authentication: it names the application's statements and tables.
//
// Assets (CSS, one small script for sorting tables, an icon) are embedded:
// no CDN, no network, no build step. Charts are SVG drawn on the server.
package webui
