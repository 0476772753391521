package server

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"example.com/gateway/gateway"
	"example.com/gateway/sandbox"
	"example.com/gateway/store"
)

// Dev-mode sandbox: small enough to load in a second, large enough to page.
const (
	devSeedMembers = 300
	devSeed        = 1
)

// seedOnce loads the small sandbox data set when the database has none, so a
// newcomer's first `go run .` has something to query.
func seedOnce(ctx context.Context, db *store.DB, logger *slog.Logger) error {
	has, err := db.HasSandboxData(ctx)
	if err != nil || has {
		return err
	}
	stats, err := seed(ctx, db, devSeedMembers, devSeed)
	if err != nil {
		return err
	}
	logger.Info("loaded the sandbox data set", "members", stats.Members, "claims", stats.Claims,
		"seed", devSeed, "elapsed", stats.Elapsed.String())
	return nil
}

func seed(ctx context.Context, db *store.DB, members int, seed int64) (store.SeedStats, error) {
	g, err := sandbox.New(sandbox.Options{Members: members, Seed: seed, Today: gateway.DateOf(db.Now())})
	if err != nil {
		return store.SeedStats{}, err
	}
	return db.ReplaceSandbox(ctx, g)
}

// runSeed is the `seed` command: it atomically replaces every sandbox row
// with the data set of --members and --seed.
func runSeed(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("seed", flag.ContinueOnError)
	fs.SetOutput(stderr)
	members := fs.Int("members", 1000, "number of synthetic members")
	seedValue := fs.Int64("seed", 1, "seed: the same seed gives the same data, IDs included")
	if err := fs.Parse(args); err != nil {
		return &exitError{code: 2, err: err}
	}
	if fs.NArg() > 0 {
		return usage(stderr, "seed takes no arguments besides its flags")
	}
	ctx, cancel := commandContext(ctx)
	defer cancel()
	cfg, err := LoadConfig(getenv)
	if err != nil {
		return err
	}
	logger := NewLogger(stderr, cfg.LogLevel)
	db, closeDB, err := OpenDatabase(ctx, cfg, logger, cfg.MigrateOnStart)
	if err != nil {
		return err
	}
	defer closeDB()
	stats, err := seed(ctx, db, *members, *seedValue)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "sandbox replaced: %d members, %d claims (%d lines), %d encounters, %d prior authorizations, %d clinical resources, %d attributions in %s\n",
		stats.Members, stats.Claims, stats.ClaimLines, stats.Encounters, stats.PriorAuthorizations,
		stats.ClinicalResources, stats.Attributions+stats.OrgAttributions, stats.Elapsed.Round(1e6))
	return nil
}
