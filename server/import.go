package server

import (
	"context"
	"errors"
	"io"
)

// runImport is the `import` command: it loads the payer's files.
func runImport(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return errors.New("import: not implemented yet")
}
