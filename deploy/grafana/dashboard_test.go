package grafana_test

import (
	"bytes"
	"os"
	"testing"

	"github.com/auditpg/auditpg/deploy/grafana"
)

// The committed dashboard is what the code makes: run `go generate
// ./deploy/grafana` after changing it.
func TestCommittedJSONIsGenerated(t *testing.T) {
	want, err := grafana.JSON()
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("auditpg.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("deploy/grafana/auditpg.json differs from what the code makes: run `go generate ./deploy/grafana` and commit it")
	}
}
