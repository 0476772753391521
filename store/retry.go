package store

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/lib/pq"
)

// Retrying transactions. A serialization failure (SQLSTATE 40001) or a
// deadlock (40P01) ends a transaction that did nothing wrong: PostgreSQL
// rolled it back so that another could go on, and running it again
// usually succeeds. Only whole transactions are retried (inTx), never a
// lone statement, whose outcome may be unknown: a transaction that failed
// with one of these codes certainly did not commit.

const (
	txAttempts    = 3                     // runs of a transaction at most
	txBackoffBase = 10 * time.Millisecond // before the second run; doubles after
)

// IsRetryable reports whether err is a serialization failure or a
// deadlock: the transaction was rolled back and may simply run again.
func IsRetryable(err error) bool {
	var pqErr *pq.Error
	return errors.As(err, &pqErr) && (pqErr.Code == "40001" || pqErr.Code == "40P01")
}

// retryTx runs tx, a whole transaction, until it succeeds, fails with an
// error that is not retryable, has run txAttempts times, or ctx ends; it
// waits a jittered, growing backoff between runs, so that transactions
// that collided do not collide again in step. It returns the last run's
// error.
func retryTx(ctx context.Context, tx func() error) error {
	for attempt := 1; ; attempt++ {
		err := tx()
		if err == nil || attempt == txAttempts || !IsRetryable(err) {
			return err
		}
		t := time.NewTimer(txBackoff(attempt))
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

// txBackoff is the wait after the attempt-th run: uniformly random in
// [d/2, d) with d = txBackoffBase × 2^(attempt-1).
func txBackoff(attempt int) time.Duration {
	d := txBackoffBase << (attempt - 1)
	return d/2 + rand.N(d/2)
}
