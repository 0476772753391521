// Command gateway is the Provider Access Gateway: a health plan's GraphQL and
// FHIR Bulk Data API through which in-network providers read the data of the
// members attributed to them (CMS-0057-F Provider Access API).
//
// Usage:
//
//	gateway [serve]                      serve everything
//	gateway migrate                      apply migrations and exit
//	gateway seed --members N --seed S    load the synthetic sandbox data
//	gateway import --kind K FILE…        load the payer's data
//	gateway token --client-id ID …       get an access token from a running gateway
//
// Without DATABASE_URL every command uses the private PostgreSQL in
// .data/postgres, starting it when it is not running.
package main

import (
	"context"
	"fmt"
	"os"

	"example.com/gateway/server"
)

func main() {
	if err := server.Main(context.Background(), os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "gateway:", err)
		os.Exit(server.ExitCode(err))
	}
}
