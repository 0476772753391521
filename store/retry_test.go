package store_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"example.com/gateway/store"
	"example.com/gateway/store/storetest"
)

// TestInTxRetriesADeadlock makes PostgreSQL detect a real deadlock: two
// transactions lock two rows in opposite order (channels make sure each
// holds its first row before either asks for its second). PostgreSQL
// aborts one of them with 40P01; inTx runs that one again, after the other
// committed, so both end up committed and the loser ran twice.
func TestInTxRetriesADeadlock(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	ctx := t.Context()
	if _, err := db.ExecContext(ctx, `CREATE TABLE retry_rows (id int PRIMARY KEY, v text NOT NULL DEFAULT '')`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO retry_rows (id) VALUES (1), (2)`); err != nil {
		t.Fatal(err)
	}

	// Each transaction appends its name to both rows: first, then second.
	type side struct {
		name          string
		first, second int
		locked        chan struct{} // closed once it holds its first row
		runs          atomic.Int32
		err           error
	}
	a := &side{name: "a", first: 1, second: 2, locked: make(chan struct{})}
	b := &side{name: "b", first: 2, second: 1, locked: make(chan struct{})}
	a2b := map[*side]*side{a: b, b: a}
	var wg sync.WaitGroup
	for _, s := range []*side{a, b} {
		other := a2b[s]
		wg.Go(func() {
			s.err = db.InTx(ctx, func(tx *sqlx.Tx) error {
				run := s.runs.Add(1)
				// Fast detection; the test runs as a superuser.
				if _, err := tx.ExecContext(ctx, `SET LOCAL deadlock_timeout = '50ms'`); err != nil {
					return err
				}
				if _, err := tx.ExecContext(ctx, `UPDATE retry_rows SET v = v || $1 WHERE id = $2`, s.name, s.first); err != nil {
					return err
				}
				if run == 1 {
					close(s.locked)
					<-other.locked // both hold their first row: the second updates deadlock
				}
				_, err := tx.ExecContext(ctx, `UPDATE retry_rows SET v = v || $1 WHERE id = $2`, s.name, s.second)
				return err
			})
		})
	}
	wg.Wait()

	if a.err != nil || b.err != nil {
		t.Fatalf("errors: a %v, b %v; want both committed", a.err, b.err)
	}
	runs := []int32{a.runs.Load(), b.runs.Load()}
	if !(runs[0] == 1 && runs[1] == 2 || runs[0] == 2 && runs[1] == 1) {
		t.Fatalf("runs: a %d, b %d; want the winner once and the loser twice", runs[0], runs[1])
	}
	var vs []string
	if err := db.SelectContext(ctx, &vs, `SELECT v FROM retry_rows ORDER BY id`); err != nil {
		t.Fatal(err)
	}
	// The winner's writes come first on both rows; the loser's rolled-back
	// first run left nothing.
	winner, loser := "a", "b"
	if runs[0] == 2 {
		winner, loser = "b", "a"
	}
	if want := []string{winner + loser, winner + loser}; strings.Join(vs, ",") != strings.Join(want, ",") {
		t.Errorf("rows = %q, want %q", vs, want)
	}
}

// TestInTxDoesNotRetryOtherErrors: an error that is neither a
// serialization failure nor a deadlock — from PostgreSQL or from fn —
// ends the transaction at once, rolled back.
func TestInTxDoesNotRetryOtherErrors(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	ctx := t.Context()
	if _, err := db.ExecContext(ctx, `CREATE TABLE retry_once (id int PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	errMine := errors.New("fn failed")
	for _, tc := range []struct {
		name string
		fail func(tx *sqlx.Tx) error
		want func(error) bool
	}{
		{"unique violation", func(tx *sqlx.Tx) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO retry_once VALUES (1), (1)`)
			return err
		}, func(err error) bool { var e *pq.Error; return errors.As(err, &e) && e.Code == "23505" }},
		{"division by zero", func(tx *sqlx.Tx) error {
			_, err := tx.ExecContext(ctx, `SELECT 1/0`)
			return err
		}, func(err error) bool { var e *pq.Error; return errors.As(err, &e) && e.Code == "22012" }},
		{"fn's own error", func(tx *sqlx.Tx) error { return errMine }, func(err error) bool { return errors.Is(err, errMine) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runs := 0
			err := db.InTx(ctx, func(tx *sqlx.Tx) error {
				runs++
				if _, err := tx.ExecContext(ctx, `INSERT INTO retry_once VALUES (100 + $1)`, runs); err != nil {
					return err
				}
				return tc.fail(tx)
			})
			if !tc.want(err) {
				t.Errorf("error = %v", err)
			}
			if runs != 1 {
				t.Errorf("fn ran %d times, want 1", runs)
			}
		})
	}
	var n int
	if err := db.GetContext(ctx, &n, `SELECT count(*) FROM retry_once`); err != nil || n != 0 {
		t.Errorf("rows left by failed transactions: %d (%v), want 0", n, err)
	}
}

// TestInTxRetriesBoundedWhileCtxLasts: a transaction that keeps failing
// with a retryable error runs a bounded number of times; one whose context
// ends is not run again.
func TestInTxRetriesBoundedWhileCtxLasts(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	serialization := &pq.Error{Code: "40001", Message: "could not serialize access"}

	runs := 0
	err := db.InTx(t.Context(), func(tx *sqlx.Tx) error {
		runs++
		return serialization
	})
	if !errors.Is(err, serialization) || !store.IsRetryable(err) {
		t.Errorf("error = %v, want the last run's serialization failure", err)
	}
	if runs != 3 {
		t.Errorf("fn ran %d times, want 3", runs)
	}

	ctx, cancel := context.WithCancel(t.Context())
	runs = 0
	err = db.InTx(ctx, func(tx *sqlx.Tx) error {
		runs++
		cancel() // the caller gave up while this run was failing
		return serialization
	})
	if !errors.Is(err, serialization) || runs != 1 {
		t.Errorf("after the context ended: error %v, %d runs; want the failure after 1 run", err, runs)
	}
}
