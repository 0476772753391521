// Package migrations holds the numbered SQL migrations of the gateway's
// database, embedded so that the binary migrates itself.
package migrations

import "embed"

// FS holds the migration files in golang-migrate's naming
// (NNNN_name.up.sql / NNNN_name.down.sql).
//
//go:embed *.sql
var FS embed.FS
