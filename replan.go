package auditpg

import (
	"context"
	"errors"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// A statement pgx keeps prepared (its statement cache, in the default
// cache_statement mode, and every database/sql Stmt) was planned for its
// tables as they were. Once DDL changes the row type it returns, the server
// refuses to bind it: SQLSTATE 0A000, "cached plan must not change result
// type". In cache_describe mode pgx keeps the description instead, and
// asks for as many result formats as the old row had columns: the server
// refuses the bind when the count changed (08P01). pgx forgets a cached
// statement or description that failed (so the next call works) but not a
// Stmt's, and returns the error either way. auditpg makes such a call once
// more where that is safe (replan), and after DDL through a connection
// drops what pgx keeps on it (afterDDL).

// stalePlan reports whether err is the server's refusal to bind what pgx
// kept from before DDL changed a statement's result. Both errors are raised
// at bind, before the statement executes: by RevalidateCachedQuery (0A000,
// a prepared plan whose result type changed) and by PortalSetResultFormat
// (08P01, a count of result formats that no longer matches). The routine
// names them in any lc_messages, where the SQLSTATE alone would not.
func stalePlan(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	return pgErr.Code == "0A000" && pgErr.Routine == "RevalidateCachedQuery" ||
		pgErr.Code == "08P01" && pgErr.Routine == "PortalSetResultFormat"
}

// replan reports whether a query or exec that failed with err may be made
// once more, and readies the connection for it. It may when the plan was
// stale (stalePlan: nothing executed, and nothing was returned, since pgx
// stdlib reads a query's first row before it returns) and the server is
// outside a transaction; inside one the transaction is aborted, and the
// error is the caller's. For a database/sql Stmt (stmt), pgx would bind the
// same stale statement again: it is deallocated and prepared anew under
// the same name (its SQL), which stdlib's Stmt looks it up by. That needs
// the text pgx prepared, which a query rewriter may have made otherwise
// (rewritten): a Stmt whose text is not known is not retried. Nor is a
// text of several statements (st.MultiStatement): one before the refused
// EXECUTE may have committed.
func replan(ctx context.Context, sc *stdlib.Conn, err error, st *Statement, stmt, rewritten bool, query string) bool {
	if sc == nil || !stalePlan(err) || st.MultiStatement {
		return false
	}
	pc := sc.Conn()
	if pc.PgConn().TxStatus() != 'I' {
		return false
	}
	if stmt {
		if rewritten {
			return false
		}
		if pc.Deallocate(ctx, query) != nil {
			return false
		}
		if _, err := pc.Prepare(ctx, query, query); err != nil {
			// The Stmt is no longer prepared on this connection: pgx runs its
			// SQL as any other from now on, and says what is wrong with it.
			return false
		}
	}
	return true
}

// afterDDL drops every statement pgx keeps on the connection after a
// statement of kind DDL succeeded through it, so that none planned or
// described for the tables as they were is used again: the statement and
// description caches, and the statements prepared by name. pgx v5 offers
// no narrower way to empty its caches (their Invalidate is internal), and
// DeallocateAll is what it has. What it costs: every statement is prepared
// again at its next use (database/sql Stmts included: stdlib runs them by
// their SQL, which pgx then prepares or sends as its mode says), and a
// statement prepared by name through PgxConn, or with SQL PREPARE, is gone
// from the session. DDL run elsewhere (another connection, another
// process) is met by replan instead.
func afterDDL(ctx context.Context, sc *stdlib.Conn, st *Statement) {
	if st.Kind != KindDDL || sc == nil || !changesRowTypes(st.Operation) {
		return
	}
	pc := sc.Conn()
	if s := pc.PgConn().TxStatus(); s != 'I' && s != 'T' {
		return // DEALLOCATE would fail in a failed transaction; replan's turn
	}
	// An error here leaves pgx's caches empty and the server's statements
	// in place: pgx closes the connection on a network or context error,
	// and the server refuses DEALLOCATE ALL only in a failed transaction.
	_ = pc.DeallocateAll(ctx)
}

// changesRowTypes reports whether a DDL operation may change what a
// prepared statement returns: CREATE (OR REPLACE), ALTER and DROP may;
// COMMENT, GRANT, REVOKE, REINDEX, CLUSTER and REFRESH do not.
func changesRowTypes(op string) bool {
	return strings.HasPrefix(op, "CREATE") || strings.HasPrefix(op, "ALTER") || strings.HasPrefix(op, "DROP")
}
