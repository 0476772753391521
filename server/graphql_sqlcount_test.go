package server

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"example.com/gateway/store"
	"example.com/gateway/store/storetest"
)

// statementCounter counts the SQL statements executed by PostgreSQL for
// the store, through a database/sql driver wrapper around lib/pq: the way
// to prove that a query costs a constant number of statements (no N+1)
// without touching store. It counts executions (plain and prepared), not
// the preparation of statements.
type statementCounter struct{ n atomic.Int64 }

func (c *statementCounter) count() int64 { return c.n.Load() }

// countingDB opens the database at url through the counting wrapper and
// returns it as a store.DB with the fixture's clock.
func countingDB(t testing.TB, url string) (*store.DB, *statementCounter) {
	t.Helper()
	base, err := pq.NewConnector(url)
	if err != nil {
		t.Fatal(err)
	}
	c := &statementCounter{}
	sqlDB := sql.OpenDB(countingConnector{base, c})
	sqlDB.SetMaxOpenConns(4)
	sqlDB.SetMaxIdleConns(4)
	t.Cleanup(func() { sqlDB.Close() })
	db := &store.DB{DB: sqlx.NewDb(sqlDB, "postgres"), Now: func() time.Time { return fixtureToday }, UpcomingDays: 30}
	return db, c
}

// countingStore returns a fresh migrated database opened through the
// counter.
func countingStore(t testing.TB) (*store.DB, *statementCounter) {
	t.Helper()
	return countingDB(t, storetest.URL(t))
}

type countingConnector struct {
	driver.Connector
	c *statementCounter
}

func (cc countingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := cc.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: conn, c: cc.c}, nil
}

// countingConn forwards every optional interface lib/pq's connection has.
type countingConn struct {
	driver.Conn
	c *statementCounter
}

func (cn *countingConn) QueryContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	cn.c.n.Add(1)
	return cn.Conn.(driver.QueryerContext).QueryContext(ctx, q, args)
}

func (cn *countingConn) ExecContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	cn.c.n.Add(1)
	return cn.Conn.(driver.ExecerContext).ExecContext(ctx, q, args)
}

func (cn *countingConn) PrepareContext(ctx context.Context, q string) (driver.Stmt, error) {
	st, err := cn.Conn.(driver.ConnPrepareContext).PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	return &countingStmt{Stmt: st, c: cn.c}, nil
}

type countingStmt struct {
	driver.Stmt
	c *statementCounter
}

func (st *countingStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	st.c.n.Add(1)
	return st.Stmt.(driver.StmtQueryContext).QueryContext(ctx, args)
}

func (st *countingStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	st.c.n.Add(1)
	return st.Stmt.(driver.StmtExecContext).ExecContext(ctx, args)
}

func (cn *countingConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	return cn.Conn.(driver.ConnBeginTx).BeginTx(ctx, opts)
}

func (cn *countingConn) Ping(ctx context.Context) error { return cn.Conn.(driver.Pinger).Ping(ctx) }

func (cn *countingConn) ResetSession(ctx context.Context) error {
	return cn.Conn.(driver.SessionResetter).ResetSession(ctx)
}

func (cn *countingConn) IsValid() bool { return cn.Conn.(driver.Validator).IsValid() }

func (cn *countingConn) CheckNamedValue(nv *driver.NamedValue) error {
	return cn.Conn.(driver.NamedValueChecker).CheckNamedValue(nv)
}
