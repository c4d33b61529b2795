// Package pgerr reads what a PostgreSQL server said about an error, for any
// driver whose errors carry it.
package pgerr

import "errors"

// SQLState returns the SQLSTATE code of the first error in err's chain that
// has a SQLState method (pgx's *pgconn.PgError, lib/pq's *pq.Error), or ""
// when there is none: err is nil, or did not come from the server (a
// network failure, a canceled context).
func SQLState(err error) string {
	var s interface{ SQLState() string }
	if errors.As(err, &s) {
		return s.SQLState()
	}
	return ""
}
