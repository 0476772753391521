// Package storetest gives each test its own migrated PostgreSQL database,
// cloned from a template (CREATE DATABASE … TEMPLATE), so tests run in
// parallel against a real server without seeing each other's rows. The
// server is TEST_DATABASE_URL when set (a server where tests may create
// databases), otherwise a private cluster of this test process on tmpfs.
// A test never skips for want of a database. Like net/http/httptest, only
// tests import it.
package storetest

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	_ "github.com/lib/pq"

	"example.com/gateway/internal/pgcluster"
	"example.com/gateway/migrations"
	"example.com/gateway/store"
)

var (
	setupOnce sync.Once
	setupErr  error
	server    string // URL of the server's maintenance database
	template  string // name of the migrated template database
	cluster   *pgcluster.Cluster
	tmpDir    string
)

// Main runs the package's tests and then drops the template and stops the
// private cluster. Call it from TestMain: os.Exit(storetest.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	cleanup()
	return code
}

func cleanup() {
	if server != "" && template != "" {
		if admin, err := sqlx.Connect("postgres", server); err == nil {
			admin.Exec("ALTER DATABASE " + template + " WITH IS_TEMPLATE false")
			admin.Exec("DROP DATABASE IF EXISTS " + template + " WITH (FORCE)")
			admin.Close()
		}
	}
	if cluster != nil {
		cluster.Stop()
	}
	if tmpDir != "" {
		os.RemoveAll(tmpDir)
	}
}

// ServerURL returns the URL of the test server's maintenance database,
// starting the private cluster if needed.
func ServerURL(tb testing.TB) string {
	tb.Helper()
	setupOnce.Do(func() { setupErr = setup() })
	if setupErr != nil {
		tb.Fatalf("test database: %v", setupErr)
	}
	return server
}

// URL returns the connection URL of a fresh, migrated database that is
// dropped when the test ends.
func URL(tb testing.TB) string {
	tb.Helper()
	base := ServerURL(tb)
	name := "t_" + strings.ToLower(rand.Text()[:16])
	admin, err := sqlx.Connect("postgres", base)
	if err != nil {
		tb.Fatal(err)
	}
	defer admin.Close()
	// Clones of one template can collide ("source database is being accessed
	// by other users") for a moment while another clone starts: retry.
	for attempt := 0; ; attempt++ {
		_, err = admin.Exec("CREATE DATABASE " + name + " TEMPLATE " + template)
		if err == nil || attempt == 20 {
			break
		}
		time.Sleep(time.Duration(10+attempt*10) * time.Millisecond)
	}
	if err != nil {
		tb.Fatalf("clone template: %v", err)
	}
	tb.Cleanup(func() {
		admin, err := sqlx.Connect("postgres", base)
		if err != nil {
			return
		}
		defer admin.Close()
		admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
	})
	return withDatabase(base, name)
}

// New returns an open *store.DB on a fresh, migrated database.
func New(tb testing.TB) *store.DB {
	tb.Helper()
	db, err := store.Open(context.Background(), URL(tb), store.Options{MaxConns: 4})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

func setup() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	server = os.Getenv("TEST_DATABASE_URL")
	if server == "" {
		c, dir, err := startPrivate(ctx)
		if err != nil {
			return err
		}
		cluster, tmpDir = c, dir
		server = c.URL("postgres")
	}
	admin, err := sqlx.Connect("postgres", server)
	if err != nil {
		return fmt.Errorf("connect %s: %w", redact(server), err)
	}
	defer admin.Close()
	template = "tmpl_" + strings.ToLower(rand.Text()[:16])
	if _, err := admin.Exec("CREATE DATABASE " + template); err != nil {
		return err
	}
	db, err := store.Open(ctx, withDatabase(server, template), store.Options{MaxConns: 1})
	if err != nil {
		return err
	}
	err = store.Migrate(ctx, db, migrations.FS)
	db.Close() // nothing may stay connected to a template
	if err != nil {
		return err
	}
	_, err = admin.Exec("ALTER DATABASE " + template + " WITH IS_TEMPLATE true")
	return err
}

// startPrivate starts a cluster for this test process on tmpfs where there
// is one, sweeping directories left by test processes that died.
func startPrivate(ctx context.Context) (*pgcluster.Cluster, string, error) {
	root := os.TempDir()
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		root = "/dev/shm"
	}
	root = filepath.Join(root, "gateway-test-pg")
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, "", err
	}
	os.Chmod(root, 0o755) // the postgres OS user must traverse it
	sweep(root)
	dir := filepath.Join(root, strconv.Itoa(os.Getpid()))
	os.RemoveAll(dir)
	c, err := pgcluster.Start(ctx, pgcluster.Options{DataDir: filepath.Join(dir, "data"), SocketDir: dir, Ephemeral: true})
	if err != nil {
		os.RemoveAll(dir)
		return nil, "", err
	}
	return c, dir, nil
}

func sweep(root string) {
	entries, _ := os.ReadDir(root)
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if syscall.Kill(pid, 0) == syscall.ESRCH {
			os.RemoveAll(filepath.Join(root, e.Name()))
		}
	}
}

func withDatabase(base, name string) string {
	u, err := url.Parse(base)
	if err != nil || u.Scheme == "" {
		// key=value DSN
		return base + " dbname=" + name
	}
	u.Path = "/" + name
	return u.String()
}

func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "the database"
	}
	return u.Redacted()
}
