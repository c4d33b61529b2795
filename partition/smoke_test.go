package partition

import (
	"context"
	"testing"
	"time"
)

func TestSmoke(t *testing.T) {
	db := openDB(t, "")
	s := newSchema(t, db)
	m := newManager(t, db, WithTable(Table{s, "audit_log"}), WithClock(fixedClock(date(2024, 2, 10))))
	r, err := m.Create(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", r)
	exec(t, db, `INSERT INTO `+Table{s, "audit_log"}.String()+` ("timestamp", action, status) VALUES ($1, 'a', 'success'), ('2020-01-01', 'b', 'x')`, time.Now())
	l, err := m.List(context.Background(), true)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range l.Partitions {
		t.Logf("%s %s %v %v", p.Name, p.Bound, *p.ExactRows, p.EstimatedRows)
	}
	r, err = m.Create(context.Background())
	t.Logf("%+v %v", r, err)
}
