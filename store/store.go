// Package store is the gateway's only door to PostgreSQL: every SQL statement
// lives here, next to the method that runs it. Methods that read member data
// take an auth.Principal and apply the policy's scope in the SQL itself, so
// rows a principal may not see are never fetched; there is no unscoped
// variant of a member read.
package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"reflect"
	"strconv"
	"sync"
	"time"

	"github.com/golang-migrate/migrate/v4"
	"github.com/golang-migrate/migrate/v4/database/postgres"
	"github.com/golang-migrate/migrate/v4/source/iofs"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"example.com/gateway/gateway"
)

// DB is the gateway's database handle.
type DB struct {
	*sqlx.DB
	// Now is the clock used for "today" in the policy; tests may replace it.
	Now func() time.Time
	// UpcomingDays is ATTRIBUTION_UPCOMING_DAYS (DESIGN.md §1 rule 3).
	UpcomingDays int

	stmts sync.Map // query → *sqlx.Stmt: prepared member reads (see preparedRead)
}

// Options tune a connection pool.
type Options struct {
	MaxConns int // default 4
	// Name is the sessions' application_name, which tells the pools apart
	// in pg_stat_activity and the server's log; "" keeps the URL's.
	Name string
	// StatementTimeout bounds every statement of the pool's sessions
	// (PostgreSQL's statement_timeout); 0 means none. It replaces any
	// statement_timeout of the URL, the role or the database, so a pool
	// without one is unbounded whatever the server's defaults. With a
	// timeout, a statement it cancels fails with ErrStatementTimeout inside
	// a *gateway.Error (INTERNAL, "the database did not answer in time"),
	// and a session idle in a transaction for twice as long is ended
	// (idle_in_transaction_session_timeout), so that a stuck request never
	// holds its locks for long.
	StatementTimeout time.Duration
}

// ErrStatementTimeout is in the chain of the error of every statement that
// a pool's StatementTimeout cancelled, within a *gateway.Error whose
// message is client-safe: errors.Is(err, ErrStatementTimeout) tells an
// answer that should be "retry later" (HTTP 503) from other failures.
var ErrStatementTimeout = errors.New("statement timeout")

// Open connects to url and checks the connection. The pool's sessions get
// opts' timeouts as run-time parameters at connection start (lib/pq sends
// pq.Config.Runtime in the startup packet, as it does with unknown
// parameters of a URL), so they cost no statement per request.
func Open(ctx context.Context, url string, opts Options) (*DB, error) {
	cfg, err := pq.NewConfig(url)
	if err != nil {
		return nil, err
	}
	if cfg.Runtime == nil {
		cfg.Runtime = map[string]string{}
	}
	if opts.Name != "" {
		cfg.ApplicationName = opts.Name
	}
	cfg.Runtime["statement_timeout"] = milliseconds(opts.StatementTimeout)
	cfg.Runtime["idle_in_transaction_session_timeout"] = milliseconds(2 * opts.StatementTimeout)
	if opts.StatementTimeout > 0 {
		// The request pool runs OLTP reads of a few milliseconds. PostgreSQL
		// JIT-compiles any plan whose estimated cost passes jit_above_cost,
		// and the generic plans of the policy's prepared reads are costed
		// high (1.28M for a member count): compiling took ~360 ms of a 653 ms
		// statement that ran in 135 ms without it. JIT never repays itself
		// here; the background pool (no timeout) keeps the server's setting
		// for its long scans.
		cfg.Runtime["jit"] = "off"
	}
	pqc, err := pq.NewConnectorConfig(cfg)
	if err != nil {
		return nil, err
	}
	var connector driver.Connector = pqc
	if opts.StatementTimeout > 0 {
		connector = timeoutConnector{pqc}
	}
	db := sqlx.NewDb(sql.OpenDB(connector), "postgres")
	maxConns := opts.MaxConns
	if maxConns <= 0 {
		maxConns = 4
	}
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.PingContext(pingCtx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to database: %w", err)
	}
	return &DB{DB: db, Now: time.Now, UpcomingDays: 30}, nil
}

// milliseconds is d as a PostgreSQL time setting in milliseconds, rounded
// up so that a positive duration never becomes 0 ("none").
func milliseconds(d time.Duration) string {
	if d <= 0 {
		return "0"
	}
	return strconv.FormatInt(int64((d+time.Millisecond-1)/time.Millisecond), 10)
}

// Migrate applies every migration in migrations that the database lacks. It
// runs on one dedicated connection, so closing the migrator leaves the pool
// open; concurrent migrators are serialized by golang-migrate's advisory lock.
func Migrate(ctx context.Context, db *DB, migrations fs.FS) error {
	conn, err := db.DB.DB.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	driver, err := postgres.WithConnection(ctx, conn, &postgres.Config{})
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	src, err := iofs.New(migrations, ".")
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	m, err := migrate.NewWithInstance("iofs", src, "postgres", driver)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if err := m.Up(); err != nil && !errors.Is(err, migrate.ErrNoChange) {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// Ping reports whether the database answers (readiness).
func (db *DB) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return db.PingContext(ctx)
}

// today is the policy's "today" (attribution states, DESIGN.md §1 rule 3).
func (db *DB) today() gateway.Date { return gateway.DateOf(db.Now()) }

// inTx runs fn in a transaction, committing when fn returns nil. When the
// transaction fails with a serialization failure or a deadlock (SQLSTATE
// 40001, 40P01), PostgreSQL has rolled it back and inTx runs it again,
// whole, a bounded number of times (see retry.go); any other error is
// returned at once.
//
// fn's contract, because it may run more than once: everything it does
// goes through tx, so a rolled-back attempt leaves no trace; it does no
// I/O outside the database (mail, files, HTTP), which a retry would
// repeat; and it assigns, never accumulates, what it hands back through
// captured variables (n = …, not n++ or append), so the last attempt's
// results are the ones returned.
func (db *DB) inTx(ctx context.Context, fn func(tx *sqlx.Tx) error) error {
	return retryTx(ctx, func() error { return db.txOnce(ctx, fn) })
}

// txOnce is one attempt of inTx.
func (db *DB) txOnce(ctx context.Context, fn func(tx *sqlx.Tx) error) (err error) {
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if err = fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// isUniqueViolation reports whether err is a unique_violation on constraint
// (any constraint when constraint is "").
func isUniqueViolation(err error, constraint string) bool {
	var pqErr *pq.Error
	return errors.As(err, &pqErr) && pqErr.Code == "23505" &&
		(constraint == "" || pqErr.Constraint == constraint)
}

// isForeignKeyViolation reports whether err is a foreign_key_violation on
// constraint.
func isForeignKeyViolation(err error, constraint string) bool {
	var pqErr *pq.Error
	return errors.As(err, &pqErr) && pqErr.Code == "23503" && pqErr.Constraint == constraint
}

// notFound maps sql.ErrNoRows to the one NOT_FOUND answer.
func notFound(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return gateway.ErrNotFound
	}
	return err
}

// The statement timeout's one translation. A pool with a StatementTimeout
// connects through timeoutConnector, whose connections, statements,
// results and transactions pass every call through to lib/pq and turn the
// error of a statement cancelled by statement_timeout — SQLSTATE 57014
// query_canceled while the caller's context is still live (a cancelled
// context gives the same code, and is no timeout) — into a *gateway.Error,
// wherever it surfaces: a query, an exec, a row of a result, a commit.
// Every store method of such a pool thereby answers it the same way, and
// the GraphQL presenter and the FHIR handlers need no knowledge of SQL.

// timeoutMessage is what a client is told.
const timeoutMessage = "the database did not answer in time"

// timeoutError returns err translated when it is a statement timeout.
func timeoutError(ctx context.Context, err error) error {
	var pqErr *pq.Error
	if err == nil || ctx.Err() != nil || !errors.As(err, &pqErr) || pqErr.Code != "57014" {
		return err
	}
	return &gateway.Error{Code: gateway.CodeInternal, Message: timeoutMessage,
		Err: fmt.Errorf("%w: %w", ErrStatementTimeout, err)}
}

// pqConn is what database/sql uses of a lib/pq connection.
type pqConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.ExecerContext
	driver.QueryerContext
	driver.Pinger
	driver.NamedValueChecker
	driver.SessionResetter
	driver.Validator
}

type timeoutConnector struct{ driver.Connector }

func (c timeoutConnector) Connect(ctx context.Context) (driver.Conn, error) {
	cn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	pc, ok := cn.(pqConn)
	if !ok {
		cn.Close()
		return nil, fmt.Errorf("store: driver connection %T lacks what database/sql uses", cn)
	}
	return timeoutConn{pc}, nil
}

type timeoutConn struct{ pqConn }

func (c timeoutConn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

func (c timeoutConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	st, err := c.pqConn.PrepareContext(ctx, query)
	if err != nil {
		return nil, timeoutError(ctx, err)
	}
	return timeoutStmt{st}, nil
}

func (c timeoutConn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

func (c timeoutConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	tx, err := c.pqConn.BeginTx(ctx, opts)
	if err != nil {
		return nil, timeoutError(ctx, err)
	}
	return timeoutTx{tx, ctx}, nil
}

func (c timeoutConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	res, err := c.pqConn.ExecContext(ctx, query, args)
	return res, timeoutError(ctx, err)
}

func (c timeoutConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	rows, err := c.pqConn.QueryContext(ctx, query, args)
	if err != nil {
		return nil, timeoutError(ctx, err)
	}
	return timeoutRows{rows, ctx}, nil
}

type timeoutTx struct {
	driver.Tx
	ctx context.Context // BeginTx's, which lib/pq watches until the end
}

func (tx timeoutTx) Commit() error { return timeoutError(tx.ctx, tx.Tx.Commit()) }

// timeoutStmt is a prepared statement, or a COPY FROM STDIN (whose raw
// CopyData it passes on, for store's COPY writers).
type timeoutStmt struct{ driver.Stmt }

func (st timeoutStmt) Exec(args []driver.Value) (driver.Result, error) {
	res, err := st.Stmt.Exec(args)
	return res, timeoutError(context.Background(), err)
}

func (st timeoutStmt) Query(args []driver.Value) (driver.Rows, error) {
	rows, err := st.Stmt.Query(args)
	if err != nil {
		return nil, timeoutError(context.Background(), err)
	}
	return timeoutRows{rows, context.Background()}, nil
}

func (st timeoutStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	var res driver.Result
	var err error
	if sc, ok := st.Stmt.(driver.StmtExecContext); ok {
		res, err = sc.ExecContext(ctx, args)
	} else if err = ctx.Err(); err == nil {
		var values []driver.Value
		if values, err = namedValues(args); err == nil {
			res, err = st.Stmt.Exec(values)
		}
	}
	return res, timeoutError(ctx, err)
}

func (st timeoutStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	var rows driver.Rows
	var err error
	if sc, ok := st.Stmt.(driver.StmtQueryContext); ok {
		rows, err = sc.QueryContext(ctx, args)
	} else if err = ctx.Err(); err == nil {
		var values []driver.Value
		if values, err = namedValues(args); err == nil {
			rows, err = st.Stmt.Query(values)
		}
	}
	if err != nil {
		return nil, timeoutError(ctx, err)
	}
	return timeoutRows{rows, ctx}, nil
}

// CopyData passes on lib/pq's raw COPY data of a COPY FROM STDIN statement.
func (st timeoutStmt) CopyData(ctx context.Context, line string) (driver.Result, error) {
	cd, ok := st.Stmt.(interface {
		CopyData(context.Context, string) (driver.Result, error)
	})
	if !ok {
		return nil, fmt.Errorf("store: driver statement %T is not a COPY FROM STDIN", st.Stmt)
	}
	res, err := cd.CopyData(ctx, line)
	return res, timeoutError(ctx, err)
}

func namedValues(args []driver.NamedValue) ([]driver.Value, error) {
	values := make([]driver.Value, len(args))
	for i, a := range args {
		if a.Name != "" {
			return nil, errors.New("store: named arguments are not supported")
		}
		values[i] = a.Value
	}
	return values, nil
}

// timeoutRows is a result being read: a statement cancelled half-way
// fails in Next.
type timeoutRows struct {
	driver.Rows
	ctx context.Context
}

func (r timeoutRows) Next(dest []driver.Value) error {
	return timeoutError(r.ctx, r.Rows.Next(dest))
}

func (r timeoutRows) HasNextResultSet() bool {
	rs, ok := r.Rows.(driver.RowsNextResultSet)
	return ok && rs.HasNextResultSet()
}

func (r timeoutRows) NextResultSet() error {
	rs, ok := r.Rows.(driver.RowsNextResultSet)
	if !ok {
		return io.EOF
	}
	return timeoutError(r.ctx, rs.NextResultSet())
}

func (r timeoutRows) ColumnTypeScanType(i int) reflect.Type {
	if ct, ok := r.Rows.(driver.RowsColumnTypeScanType); ok {
		return ct.ColumnTypeScanType(i)
	}
	return reflect.TypeFor[any]()
}

func (r timeoutRows) ColumnTypeDatabaseTypeName(i int) string {
	if ct, ok := r.Rows.(driver.RowsColumnTypeDatabaseTypeName); ok {
		return ct.ColumnTypeDatabaseTypeName(i)
	}
	return ""
}

func (r timeoutRows) ColumnTypeLength(i int) (int64, bool) {
	if ct, ok := r.Rows.(driver.RowsColumnTypeLength); ok {
		return ct.ColumnTypeLength(i)
	}
	return 0, false
}

func (r timeoutRows) ColumnTypePrecisionScale(i int) (int64, int64, bool) {
	if ct, ok := r.Rows.(driver.RowsColumnTypePrecisionScale); ok {
		return ct.ColumnTypePrecisionScale(i)
	}
	return 0, 0, false
}
