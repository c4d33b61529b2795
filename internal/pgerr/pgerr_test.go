package pgerr_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/auditpg/auditpg/internal/pgerr"
)

func TestSQLState(t *testing.T) {
	server := &pgconn.PgError{Code: "55P03", Message: "could not obtain lock"}
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"nil", nil, ""},
		{"server error", server, "55P03"},
		{"wrapped server error", fmt.Errorf("step: %w", server), "55P03"},
		{"joined", errors.Join(context.Canceled, server), "55P03"},
		{"not from the server", context.Canceled, ""},
	} {
		if got := pgerr.SQLState(tc.err); got != tc.want {
			t.Errorf("%s: SQLState(%v) = %q, want %q", tc.name, tc.err, got, tc.want)
		}
	}
}
