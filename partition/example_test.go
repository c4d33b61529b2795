package partition_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"time"

	"github.com/auditpg/auditpg/partition"
)

var db *sql.DB // sql.Open("pgx", dsn), or any PostgreSQL driver; auditpg's too

func ExampleAuditLogSchema() {
	// For a migration tool: the parent, its key, its indexes and the
	// default partition, as plain SQL.
	ddl := partition.AuditLogSchema(partition.Table{Schema: "audit", Name: "audit_log"})
	fmt.Println(ddl[:57])
	// Output: CREATE TABLE IF NOT EXISTS "audit"."audit_log" (
	//     id
}

func ExamplePartitionName() {
	from, _ := partition.Quarterly.Range(time.Date(2024, 5, 17, 9, 0, 0, 0, time.UTC))
	fmt.Println(partition.PartitionName("audit_log", from))
	// Output: audit_log_p20240401
}

func ExampleInterval_Range() {
	// Bounds are UTC: at 10:00 on 1 February in Kiritimati (UTC+14) it is
	// still January in UTC.
	kiritimati := time.FixedZone("LINT", 14*3600)
	from, to := partition.Monthly.Range(time.Date(2024, 2, 1, 10, 0, 0, 0, kiritimati))
	fmt.Println(from, to)
	// Output: 2024-01-01 00:00:00 +0000 UTC 2024-02-01 00:00:00 +0000 UTC
}

func ExampleParseInterval() {
	iv, err := partition.ParseInterval("weekly")
	fmt.Println(iv, err)
	// Output: weekly <nil>
}

func ExampleNew() {
	m, err := partition.New(db,
		partition.WithInterval(partition.Monthly),
		partition.WithPremake(4),
		partition.WithRetention(7*365*24*time.Hour),
		partition.WithRetentionMode(partition.Archive),
		partition.WithLogger(slog.Default()))
	if err != nil {
		log.Fatal(err)
	}
	_ = m
}

func ExampleManager_Create() {
	// WithCreateTable: a missing audit_log is created (else ErrNoTable).
	m, _ := partition.New(db, partition.WithCreateTable(true))
	r, err := m.Create(context.Background())
	var conflict *partition.IntervalConflictError
	switch {
	case errors.As(err, &conflict):
		log.Fatalf("the table has %v partitions; leave WithInterval out", conflict.Have)
	case err != nil:
		log.Fatal(err)
	}
	fmt.Println("created", r.Created, "moved", r.Moved)
}

func ExampleManager_CleanupFuture() {
	// A premake once set too large left years of empty partitions ahead:
	// list those beyond the 4 kept, then remove them.
	m, _ := partition.New(db, partition.WithPremake(4))
	r, err := m.CleanupFuture(context.Background(), true) // dry run
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(r.Removed), "empty partitions beyond premake;", r.Warnings)
	if _, err := m.CleanupFuture(context.Background(), false); err != nil {
		log.Fatal(err)
	}
}

func ExampleManager_Maintain() {
	m, _ := partition.New(db, partition.WithRetention(90*24*time.Hour))
	r, err := m.Maintain(context.Background())
	if errors.Is(err, partition.ErrLockTimeout) {
		log.Print("a long transaction held the table; maintenance will try again")
		return
	}
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(r.Created), r.Moved, len(r.Removed))
}

func ExampleManager_MoveDefault() {
	m, _ := partition.New(db, partition.WithBatchSize(5000))
	r, err := m.MoveDefault(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("moved", r.Moved, "rows into", r.Created)
}

func ExampleManager_Cleanup() {
	m, _ := partition.New(db, partition.WithRetention(365*24*time.Hour))
	r, err := m.Cleanup(context.Background(), true) // dry run
	if err != nil {
		log.Fatal(err)
	}
	for _, rm := range r.Removed {
		fmt.Println("would remove", rm.Name, rm.From, rm.To)
	}
}

func ExampleManager_List() {
	m, _ := partition.New(db)
	l, err := m.List(context.Background(), false)
	if err != nil {
		log.Fatal(err)
	}
	for _, p := range l.Partitions {
		rows := "never analyzed" // run ANALYZE for an estimate
		if p.EstimatedRows != nil {
			rows = fmt.Sprint(*p.EstimatedRows)
		}
		fmt.Println(p.Name, p.From, p.To, rows, p.SizeBytes)
	}
	fmt.Println("gaps:", l.Gaps)
}

func ExampleManager_Analyze() {
	m, _ := partition.New(db, partition.WithRetention(90*24*time.Hour))
	a, err := m.Analyze(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range a.Recommendations {
		fmt.Println(r)
	}
}

func ExampleManager_Convert() {
	m, _ := partition.New(db, partition.WithProgress(func(p partition.Progress) {
		log.Printf("%s %d/%d", p.Step, p.Done, p.Total)
	}))
	res, err := m.Convert(context.Background())
	if errors.Is(err, partition.ErrCountMismatch) {
		log.Print("rows changed during the copy; nothing swapped, try again later")
		return
	}
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Rows, "rows; old table kept as", res.Backup)
}

func ExampleNewScheduler() {
	m, _ := partition.New(db, partition.WithCreateTable(true), partition.WithRetention(90*24*time.Hour))
	s := partition.NewScheduler(m, partition.Every(24*time.Hour), partition.OnRun(func(r partition.Run) {
		if r.Err != nil {
			log.Printf("partition maintenance failed: %v", r.Err)
		}
	}))
	s.Start(context.Background())
	defer s.Stop()
	// ... the application runs; every instance may start one: one at a
	// time does the work.
	if last, ok := s.Last(); ok {
		fmt.Println(last.Started, last.Duration, last.Skipped)
	}
}
