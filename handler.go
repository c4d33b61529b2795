package auditpg

import (
	"database/sql"
	"encoding/json"
	"io"
	"net/http"
)

// StatsHandler serves the statistics of db, a *sql.DB opened with auditpg,
// as the JSON of a Snapshot (see Snapshot for its form) to a GET (or HEAD);
// other methods get 405 Method Not Allowed. When db was not opened with
// auditpg, every request gets 500 Internal Server Error with ErrNotAuditpg's
// message.
//
// The statistics name the application's statements (fingerprints, without
// literals) and its pool: mount the handler behind the application's own
// authentication. `auditpg client report --url` reads it.
func StatsHandler(db *sql.DB) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "auditpg statistics: only GET and HEAD are served, not "+r.Method, http.StatusMethodNotAllowed)
			return
		}
		s, err := Stats(db)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		s.WriteJSON(w) // a failed write is the client's gone
	})
}

// WriteJSON writes s as one JSON document (indented, without HTML escaping),
// the same that StatsHandler serves: an application may write it to a file
// for `auditpg client report --file`.
func (s Snapshot) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(s)
}
