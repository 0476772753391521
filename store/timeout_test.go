package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/lib/pq"

	"example.com/gateway/gateway"
	"example.com/gateway/store"
	"example.com/gateway/store/storetest"
)

// The timeouts are the behaviour under test: statements of 50 ms pass and
// statements of 2 s are cancelled under a 500 ms statement_timeout.
const testStatementTimeout = 500 * time.Millisecond

// wantTimeout checks that err is the store's one answer to a statement
// cancelled by statement_timeout.
func wantTimeout(t *testing.T, what string, err error) {
	t.Helper()
	var ge *gateway.Error
	var pqErr *pq.Error
	switch {
	case err == nil:
		t.Errorf("%s: no error, want the statement timeout", what)
	case !errors.Is(err, store.ErrStatementTimeout):
		t.Errorf("%s: %v, want ErrStatementTimeout in the chain", what, err)
	case !errors.As(err, &ge) || ge.Code != gateway.CodeInternal || ge.Message != "the database did not answer in time":
		t.Errorf("%s: %v, want an INTERNAL *gateway.Error saying the database did not answer in time", what, err)
	case !errors.As(err, &pqErr) || pqErr.Code != "57014":
		t.Errorf("%s: %v, want the query_canceled cause in the chain", what, err)
	}
}

func TestStatementTimeoutBoundsEveryStatementOfThePool(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db, err := store.Open(ctx, storetest.URL(t), store.Options{MaxConns: 2, StatementTimeout: testStatementTimeout, Name: "bounded"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })

	// The settings travel as run-time parameters of every session.
	var st, idle, name string
	if err := db.GetContext(ctx, &name, `SHOW application_name`); err != nil || name != "bounded" {
		t.Errorf("application_name = %q (%v), want bounded", name, err)
	}
	if err := db.GetContext(ctx, &st, `SHOW statement_timeout`); err != nil || st != "500ms" {
		t.Errorf("statement_timeout = %q (%v), want 500ms", st, err)
	}
	if err := db.GetContext(ctx, &idle, `SHOW idle_in_transaction_session_timeout`); err != nil || idle != "1s" {
		t.Errorf("idle_in_transaction_session_timeout = %q (%v), want 1s", idle, err)
	}

	// Just under passes.
	if _, err := db.ExecContext(ctx, `SELECT pg_sleep(0.05)`); err != nil {
		t.Errorf("50 ms statement: %v", err)
	}
	// Over fails, wherever the statement fails.
	_, err = db.ExecContext(ctx, `SELECT pg_sleep(2)`)
	wantTimeout(t, "exec", err)
	var one int
	wantTimeout(t, "query", db.GetContext(ctx, &one, `SELECT 1 FROM pg_sleep(2)`))
	stmt, err := db.PreparexContext(ctx, `SELECT 1 FROM pg_sleep($1)`)
	if err != nil {
		t.Fatal(err)
	}
	defer stmt.Close()
	if err := stmt.GetContext(ctx, &one, 0.05); err != nil {
		t.Errorf("prepared 50 ms statement: %v", err)
	}
	wantTimeout(t, "prepared statement", stmt.GetContext(ctx, &one, 2))
	// Rows already sent, then the cancellation: the error comes from Next.
	rows, err := db.QueryContext(ctx, `SELECT g FROM generate_series(1, 3) g, LATERAL pg_sleep(CASE WHEN g = 3 THEN 2 ELSE 0 END)`)
	if err != nil {
		wantTimeout(t, "streamed query", err)
	} else {
		for rows.Next() {
		}
		wantTimeout(t, "streamed rows", rows.Err())
		rows.Close()
	}
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = tx.ExecContext(ctx, `SELECT pg_sleep(2)`)
	wantTimeout(t, "in a transaction", err)
	tx.Rollback()

	// A cancelled context is the caller's doing, not a timeout.
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := db.ExecContext(cctx, `SELECT pg_sleep(2)`); err == nil || errors.Is(err, store.ErrStatementTimeout) {
		t.Errorf("cancelled context: %v, want an error that is not ErrStatementTimeout", err)
	}

	// The pool is still whole: both connections answer.
	for range 4 {
		if err := db.GetContext(ctx, &one, `SELECT 1`); err != nil {
			t.Fatalf("after the timeouts: %v", err)
		}
	}
}

// TestPoolWithoutStatementTimeoutIsUnbounded: a pool without a
// StatementTimeout (the background pool) is unbounded even where the
// database's own default bounds statements.
func TestPoolWithoutStatementTimeoutIsUnbounded(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	url := storetest.URL(t)
	admin, err := store.Open(ctx, url, store.Options{MaxConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.ExecContext(ctx, `DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET statement_timeout = 100', current_database()); END $$`); err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(ctx, url, store.Options{MaxConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var st string
	if err := db.GetContext(ctx, &st, `SHOW statement_timeout`); err != nil || st != "0" {
		t.Errorf("statement_timeout = %q (%v), want 0", st, err)
	}
	if _, err := db.ExecContext(ctx, `SELECT pg_sleep(0.5)`); err != nil {
		t.Errorf("a statement longer than the database's default timeout: %v", err)
	}
}
