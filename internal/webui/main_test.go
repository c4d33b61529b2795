package webui_test

import (
	"os"
	"testing"

	"github.com/auditpg/auditpg/internal/testdb"
)

// testDSN points at the temporary cluster TestMain starts (or at
// AUDITPG_TEST_DATABASE_URL).
var testDSN string

func TestMain(m *testing.M) { os.Exit(testdb.Run(m, &testDSN)) }
