package auditpg_test

import (
	"log"
	"net/http"
	"os"

	"github.com/auditpg/auditpg"
)

// StatsHandler serves the statistics to `auditpg client report --url`;
// mount it behind the application's own authentication (here requireAdmin).
// Snapshot.WriteJSON writes the same JSON to a file, for --file.
func ExampleStatsHandler() {
	db, err := auditpg.Open("postgres://app@localhost:5432/audit")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	mux := http.NewServeMux()
	mux.Handle("GET /debug/auditpg", requireAdmin(auditpg.StatsHandler(db)))
	go http.ListenAndServe("localhost:8081", mux)

	if s, err := auditpg.Stats(db); err == nil {
		f, err := os.Create("auditpg-stats.json")
		if err != nil {
			log.Fatal(err)
		}
		defer f.Close()
		if err := s.WriteJSON(f); err != nil {
			log.Fatal(err)
		}
	}
}

// requireAdmin stands for the application's own authentication.
func requireAdmin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+os.Getenv("ADMIN_TOKEN") {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}
