// Package gateway is the vocabulary of the Provider Access Gateway: the records
// it serves and the errors it returns. It imports only the standard library
// and is imported by every other package; it must never import one of them.
package gateway

import (
	"errors"
	"fmt"
)

// Error codes reach GraphQL clients as extensions.code. They are API: add
// codes, never rename them.
const (
	CodeUnauthenticated = "UNAUTHENTICATED"
	CodeForbidden       = "FORBIDDEN"
	CodeNotFound        = "NOT_FOUND"
	CodeInvalid         = "BAD_USER_INPUT"
	CodeConflict        = "CONFLICT"
	CodeTooComplex      = "TOO_COMPLEX"
	CodeRateLimited     = "RATE_LIMITED"
	CodeInternal        = "INTERNAL"
)

// Error is an error whose Message may be shown to an API client. An error that
// is not, and does not wrap, an *Error is internal: logged in full, shown to
// the client as "internal error".
type Error struct {
	Code    string
	Message string // client-safe: never PHI, SQL or a Go error text
	Path    string // optional input path for BAD_USER_INPUT (e.g. "input.npi")
	Err     error  // optional cause, for logs only
}

func (e *Error) Error() string {
	msg := e.Code + ": " + e.Message
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with a client-safe formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrNotFound is the one answer for anything a principal may not see and
// anything that does not exist: the two must be indistinguishable.
var ErrNotFound = &Error{Code: CodeNotFound, Message: "not found"}

// ErrorCode returns the code of the first *Error in err's chain, "" for nil
// and CodeInternal for anything else.
func ErrorCode(err error) string {
	var e *Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Code
	}
	return CodeInternal
}
