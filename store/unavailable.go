package store

import (
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"strings"

	"github.com/lib/pq"
)

// IsUnavailable reports whether err says the database could not be
// reached or went away mid-statement (an outage, a restart, a failover),
// or did not answer in time (ErrStatementTimeout): failures a client
// should retry later, which HTTP answers 503 with Retry-After, rather
// than faults of the gateway.
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrStatementTimeout) || errors.Is(err, driver.ErrBadConn) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return true
	}
	var pqErr *pq.Error
	if errors.As(err, &pqErr) {
		// Class 08: connection exception; 57P01–57P03: admin shutdown,
		// crash shutdown, cannot connect now (PostgreSQL Appendix A).
		return pqErr.Code.Class() == "08" || strings.HasPrefix(string(pqErr.Code), "57P")
	}
	return false
}
