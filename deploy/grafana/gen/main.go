// Command gen writes auditpg's Grafana dashboard (package grafana) as JSON:
//
//	go run ./deploy/grafana/gen -o deploy/grafana/auditpg.json
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/auditpg/auditpg/deploy/grafana"
)

func main() {
	out := flag.String("o", "", "the file to write (default: standard output)")
	flag.Parse()
	b, err := grafana.JSON()
	if err == nil {
		if *out == "" {
			_, err = os.Stdout.Write(b)
		} else {
			err = os.WriteFile(*out, b, 0o644)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}
