package auditpg_test

import (
	"log"
	"net/http"
	"time"

	"github.com/auditpg/auditpg"
)

// Handler mounts the dashboard of `auditpg serve` in the application, with
// its live driver statistics (the driver's fingerprints on the Queries
// page, the result cache on the Cache page), behind the application's own
// authentication (here requireAdmin). Its links are relative: mount it at
// the root of a path, with StripPrefix.
func ExampleHandler() {
	db, err := auditpg.Open("postgres://app@localhost:5432/audit")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	dash := auditpg.Handler(db, auditpg.HandlerRetention(365*24*time.Hour))
	mux := http.NewServeMux()
	mux.Handle("/debug/auditpg/", http.StripPrefix("/debug/auditpg", requireAdmin(dash)))
	go http.ListenAndServe("localhost:8081", mux)
}
