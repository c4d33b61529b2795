package pgtemp

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"
)

// RunTests runs a package's tests against a PostgreSQL server, for TestMain:
//
//	var testDSN string
//
//	func TestMain(m *testing.M) { os.Exit(pgtemp.RunTests(m, &testDSN)) }
//
// When AUDITPG_TEST_DATABASE_URL is set, *dsn is set to it and no cluster is
// started. Otherwise RunTests starts a cluster, stores its DSN in *dsn, runs
// m.Run, stops the cluster and returns the exit code. When the cluster cannot
// start (no PostgreSQL binaries, say) it prints why on standard error and
// returns 1 without running the tests: they fail rather than skip.
func RunTests(m *testing.M, dsn *string) int {
	if url := os.Getenv(EnvDatabaseURL); url != "" {
		*dsn = url
		return m.Run()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	c, err := Start(ctx)
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: cannot start a temporary PostgreSQL for the tests: %v\n", err)
		return 1
	}
	*dsn = c.DSN()
	code := m.Run()
	if err := c.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "warning: %v\n", err)
	}
	return code
}
