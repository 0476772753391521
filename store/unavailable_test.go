package store

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"testing"

	"github.com/lib/pq"
)

func TestIsUnavailable(t *testing.T) {
	for err, want := range map[error]bool{
		nil:                                       false,
		errors.New("boom"):                        false,
		context.Canceled:                          false,
		&pq.Error{Code: "23505"}:                  false,
		&pq.Error{Code: "40P01"}:                  false,
		&pq.Error{Code: "57P01"}:                  true, // admin_shutdown
		&pq.Error{Code: "57P03"}:                  true, // cannot_connect_now
		&pq.Error{Code: "08006"}:                  true, // connection_failure
		fmt.Errorf("read: %w", driver.ErrBadConn): true,
		&net.OpError{Op: "dial", Err: errors.New("connection refused")}: true,
		fmt.Errorf("%w: x", ErrStatementTimeout):                        true,
	} {
		if got := IsUnavailable(err); got != want {
			t.Errorf("IsUnavailable(%v) = %v, want %v", err, got, want)
		}
	}
}
