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

// Every panel has an id of its own: links to a panel name it.
func TestPanelIDsUnique(t *testing.T) {
	d, err := grafana.Dashboard()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[uint32]bool{}
	for i, p := range d.Panels {
		var id uint32
		switch {
		case p.Panel != nil && p.Panel.Id != nil:
			id = *p.Panel.Id
		case p.RowPanel != nil:
			id = p.RowPanel.Id
		}
		if id == 0 || seen[id] {
			t.Errorf("panel %d: id %d is missing or taken", i, id)
		}
		seen[id] = true
	}
}
