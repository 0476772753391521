package server

import (
	"context"
	"errors"
	"io"
)

// runToken is the `token` command: it asks the running gateway's
// /oauth/token (at PUBLIC_URL) and prints the access token.
func runToken(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return errors.New("token: not implemented yet")
}
