package pgtemp_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/jackc/pgx/v5"

	"github.com/auditpg/auditpg/internal/pgtemp"
)

func ExampleStart() {
	ctx := context.Background()
	cluster, err := pgtemp.Start(ctx, pgtemp.WithLogger(os.Stderr), pgtemp.WithSetting("log_min_duration_statement", "0"))
	if err != nil {
		log.Fatal(err) // names the package to install when PostgreSQL is missing
	}
	defer func() {
		if err := cluster.Stop(); err != nil {
			log.Print(err)
		}
	}()

	conn, err := pgx.Connect(ctx, cluster.DSN())
	if err != nil {
		log.Print(err)
		return
	}
	defer conn.Close(ctx)
	var libs string
	if err := conn.QueryRow(ctx, "SHOW shared_preload_libraries").Scan(&libs); err != nil {
		log.Print(err)
		return
	}
	fmt.Println(libs)
}

func ExampleCluster_CreateDatabase() {
	ctx := context.Background()
	cluster, err := pgtemp.Start(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer cluster.Stop()

	// Any name works: it is quoted as an identifier and escaped in the URL.
	dsn, err := cluster.CreateDatabase(ctx, `audit "test" db`)
	if err != nil {
		log.Print(err)
		return
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		log.Print(err)
		return
	}
	defer conn.Close(ctx)
	var n int64
	// pg_stat_statements is ready in the new database.
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_stat_statements").Scan(&n); err != nil {
		log.Print(err)
		return
	}
	fmt.Println(dsn)
}
