// Package pgcluster runs a private PostgreSQL server from the machine's own
// PostgreSQL binaries: for `go run .` without DATABASE_URL and for tests
// without TEST_DATABASE_URL. The server listens on a unix socket only, runs
// as the postgres OS user when the gateway runs as root (initdb and postgres
// refuse root), and is started directly (not through pg_ctl) with Pdeathsig,
// so it never outlives the process that started it.
package pgcluster

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	_ "github.com/lib/pq" // the driver used for readiness checks
)

// ErrNoBinaries is returned when no PostgreSQL server binaries are installed.
var ErrNoBinaries = errors.New("no PostgreSQL server binaries found: install them (apt-get install postgresql) or set DATABASE_URL to an existing server")

// Options configure a cluster.
type Options struct {
	// DataDir holds the cluster. It is created with initdb when empty.
	DataDir string
	// SocketDir holds the unix socket; default DataDir. Its path must stay
	// under ~100 bytes (the kernel's sun_path limit).
	SocketDir string
	// Ephemeral trades durability for speed (tests): fsync and friends off.
	Ephemeral bool
	// Log receives one line when the server starts or is reused.
	Log func(msg string, args ...any)
}

// Cluster is a running (or reused) private PostgreSQL server.
type Cluster struct {
	opts  Options
	cmd   *exec.Cmd // nil when an already running server was reused
	done  chan error
	owner *user.User
}

// BinDir returns the directory of the machine's PostgreSQL server binaries.
func BinDir() (string, error) {
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		dir := strings.TrimSpace(string(out))
		if isExec(filepath.Join(dir, "postgres")) && isExec(filepath.Join(dir, "initdb")) {
			return dir, nil
		}
	}
	// Debian installs the server outside PATH and pg_config may belong to the
	// client package only: look where the server packages put it.
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	for i := len(matches) - 1; i >= 0; i-- { // newest major version first
		if isExec(filepath.Join(matches[i], "postgres")) && isExec(filepath.Join(matches[i], "initdb")) {
			return matches[i], nil
		}
	}
	return "", ErrNoBinaries
}

func isExec(path string) bool {
	st, err := os.Stat(path)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// Start starts the cluster in opts.DataDir, running initdb first when the
// directory is empty. If a server started earlier (by another command) is
// already accepting connections on the socket, Start reuses it.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	if opts.SocketDir == "" {
		opts.SocketDir = opts.DataDir
	}
	if opts.Log == nil {
		opts.Log = func(string, ...any) {}
	}
	if n := len(filepath.Join(opts.SocketDir, ".s.PGSQL.5432")); n > 100 {
		return nil, fmt.Errorf("socket path in %s is too long (%d bytes)", opts.SocketDir, n)
	}
	c := &Cluster{opts: opts}
	if c.ping(ctx) == nil {
		opts.Log("using the private PostgreSQL already running", "data_dir", opts.DataDir)
		return c, nil
	}
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	if os.Geteuid() == 0 {
		if c.owner, err = user.Lookup("postgres"); err != nil {
			return nil, errors.New("running as root, but there is no postgres OS user to run PostgreSQL as: install PostgreSQL (apt-get install postgresql) or set DATABASE_URL")
		}
	}
	for _, dir := range []string{opts.DataDir, opts.SocketDir} {
		if err := c.mkdir(dir); err != nil {
			return nil, err
		}
	}
	if _, err := os.Stat(filepath.Join(opts.DataDir, "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		initdb := c.command(ctx, filepath.Join(bin, "initdb"), "-D", opts.DataDir, "-U", "postgres",
			"--auth=trust", "--encoding=UTF8", "--locale=C", "--no-instructions")
		if out, err := initdb.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("initdb: %w: %s", err, lastLines(string(out), 5))
		}
	}
	// A postmaster.pid left by a killed server whose process is gone would
	// make postgres refuse to start; postgres itself checks the pid, so only
	// a stale socket lock needs no help. Start the server.
	args := []string{"-D", opts.DataDir, "-k", opts.SocketDir, "-c", "listen_addresses=",
		"-c", "max_connections=200", "-c", "shared_buffers=128MB"}
	if opts.Ephemeral {
		args = append(args, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	}
	logPath := filepath.Join(opts.DataDir, "server.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	if c.owner != nil {
		c.chown(logPath)
	}
	// Not exec.CommandContext: the server must outlive ctx (it is the
	// start-up context), and dies with this process through Pdeathsig.
	cmd := c.command(context.Background(), filepath.Join(bin, "postgres"), args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr.Pdeathsig = syscall.SIGQUIT
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	c.cmd = cmd
	c.done = make(chan error, 1)
	go func() { c.done <- cmd.Wait() }()

	deadline := time.Now().Add(30 * time.Second)
	for {
		if err := c.ping(ctx); err == nil {
			break
		}
		select {
		case err := <-c.done:
			c.cmd = nil
			log, _ := os.ReadFile(logPath)
			return nil, fmt.Errorf("postgres exited during start-up (%v): %s", err, lastLines(string(log), 5))
		case <-ctx.Done():
			c.Stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			c.Stop()
			return nil, fmt.Errorf("postgres did not accept connections within 30s; see %s", logPath)
		}
	}
	opts.Log("started private PostgreSQL", "data_dir", opts.DataDir)
	return c, nil
}

// URL returns a connection URL for database name on this cluster.
func (c *Cluster) URL(name string) string {
	q := url.Values{"host": {c.opts.SocketDir}, "sslmode": {"disable"}}
	return (&url.URL{Scheme: "postgres", User: url.User("postgres"), Path: "/" + name, RawQuery: q.Encode()}).String()
}

// Stop shuts a server this process started down (fast shutdown) and waits
// for it. A reused server is left running.
func (c *Cluster) Stop() error {
	if c.cmd == nil {
		return nil
	}
	_ = c.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-c.done:
	case <-time.After(15 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
	c.cmd = nil
	return nil
}

// Kill stops the server abruptly (SIGKILL of the postmaster), as a crash
// would. Fault tests use it; Restart brings the server back.
func (c *Cluster) Kill() error {
	if c.cmd == nil {
		return errors.New("pgcluster: server not started by this process")
	}
	_ = c.cmd.Process.Signal(syscall.SIGQUIT) // immediate shutdown of all backends
	<-c.done
	c.cmd = nil
	return nil
}

// Restart starts a stopped cluster again in the same directories.
func (c *Cluster) Restart(ctx context.Context) error {
	n, err := Start(ctx, c.opts)
	if err != nil {
		return err
	}
	*c = *n
	return nil
}

func (c *Cluster) ping(ctx context.Context) error {
	db, err := sql.Open("postgres", c.URL("postgres")+"&connect_timeout=2")
	if err != nil {
		return err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return db.PingContext(ctx)
}

// command prepares a PostgreSQL binary, as the postgres OS user when root.
func (c *Cluster) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	if c.owner != nil {
		uid, _ := strconv.ParseUint(c.owner.Uid, 10, 32)
		gid, _ := strconv.ParseUint(c.owner.Gid, 10, 32)
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		cmd.Dir = "/"
	}
	return cmd
}

func (c *Cluster) mkdir(dir string) error {
	// Parents must stay searchable by the postgres OS user; the directory
	// itself is private to it.
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	if c.owner != nil {
		return c.chown(dir)
	}
	return nil
}

func (c *Cluster) chown(path string) error {
	uid, _ := strconv.Atoi(c.owner.Uid)
	gid, _ := strconv.Atoi(c.owner.Gid)
	return os.Chown(path, uid, gid)
}

// Reachable reports whether the postgres OS user (when running as root) can
// reach dir: every parent must be searchable by it. The private cluster
// falls back to the temporary directory when it cannot.
func Reachable(dir string) bool {
	if os.Geteuid() != 0 {
		return true
	}
	owner, err := user.Lookup("postgres")
	if err != nil {
		return false
	}
	uid, _ := strconv.Atoi(owner.Uid)
	abs, err := filepath.Abs(dir)
	if err != nil {
		return false
	}
	for p := filepath.Dir(abs); ; p = filepath.Dir(p) {
		st, err := os.Stat(p)
		if errors.Is(err, os.ErrNotExist) {
			continue // created later, searchable by everyone
		}
		if err != nil {
			return false
		}
		sys := st.Sys().(*syscall.Stat_t)
		if int(sys.Uid) != uid && st.Mode().Perm()&0o001 == 0 {
			return false
		}
		if p == "/" {
			return true
		}
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " / ")
}
