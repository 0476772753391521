package server

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// exitError carries a specific exit code (e.g. import over --max-rejects).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// ExitCode is the process exit code for err: 2 for usage errors, the code an
// exitError carries, else 1.
func ExitCode(err error) int {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	if errors.Is(err, flag.ErrHelp) {
		return 2
	}
	return 1
}

// Main runs one command of the gateway binary.
func Main(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		if len(args) > 0 {
			return usage(stderr, "serve takes no arguments")
		}
		return Run(ctx, getenv, stderr)
	case "migrate":
		return runMigrate(ctx, getenv, stderr)
	case "seed":
		return runSeed(ctx, args, getenv, stdout, stderr)
	case "import":
		return runImport(ctx, args, getenv, stdout, stderr)
	case "token":
		return runToken(ctx, args, getenv, stdout, stderr)
	case "rotate-signing-key":
		return runRotateSigningKey(ctx, args, getenv, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, helpText)
		return nil
	}
	return usage(stderr, fmt.Sprintf("unknown command %q", cmd))
}

const helpText = `usage: gateway [command]

commands:
  serve                                   serve everything (the default)
  migrate                                 apply migrations and exit
  seed --members N --seed S               replace the synthetic sandbox data
  import --kind fhir|attribution|optout FILE…   load the payer's data
  token --client-id ID (--client-secret S | --private-key FILE) [--scope …]
                                          get an access token from the running gateway
  rotate-signing-key [--publish-ahead D]  publish a new token-signing key, retire old ones

Configuration comes from the environment; see README.md.
`

func usage(stderr io.Writer, msg string) error {
	fmt.Fprintf(stderr, "gateway: %s\n\n%s", msg, helpText)
	return &exitError{code: 2, err: errors.New(msg)}
}

// commandContext is a command's context: cancelled on SIGINT or SIGTERM.
func commandContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
}

func runMigrate(ctx context.Context, getenv func(string) string, stderr io.Writer) error {
	ctx, cancel := commandContext(ctx)
	defer cancel()
	cfg, err := LoadConfig(getenv)
	if err != nil {
		return err
	}
	logger := NewLogger(stderr, cfg.LogLevel)
	_, closeDB, err := OpenDatabase(ctx, cfg, logger, true)
	if err != nil {
		return err
	}
	closeDB()
	logger.Info("migrations applied")
	return nil
}
