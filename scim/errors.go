package scim

import (
	"errors"
	"fmt"
	"net/http"
)

// Sentinel errors: the [*Error] a refused request is logged with wraps
// them, for errors.Is.
var (
	// ErrUnkeyable means a write carried no externalId, or one the
	// connection's [SubjectMapping] cannot turn into a subject: such a
	// user would never meet their own sign-in.
	ErrUnkeyable = errors.New("scim: externalId cannot key a user")
	// ErrUnauthorized means a request had no bearer token of the
	// connection.
	ErrUnauthorized = errors.New("scim: no valid bearer token")
)

// SCIM error types (RFC 7644 §3.12, the scimType of a 400 or 409).
const (
	scimInvalidFilter = "invalidFilter"
	scimTooMany       = "tooMany"
	scimUniqueness    = "uniqueness"
	scimMutability    = "mutability"
	scimInvalidSyntax = "invalidSyntax"
	scimInvalidPath   = "invalidPath"
	scimNoTarget      = "noTarget"
	scimInvalidValue  = "invalidValue"
)

// Error is a SCIM error response: an HTTP status, a scimType for 400 and
// 409, and a detail. Err, when set, is the cause (for logs and
// errors.Is); it is never sent.
type Error struct {
	// Status is the HTTP status.
	Status int
	// Type is the scimType ("" for none).
	Type string
	// Detail is the message sent to the client.
	Detail string
	// Err is the cause.
	Err error
}

// Error returns the status, type and detail.
func (e *Error) Error() string {
	if e.Type != "" {
		return fmt.Sprintf("scim: %d %s: %s", e.Status, e.Type, e.Detail)
	}
	return fmt.Sprintf("scim: %d: %s", e.Status, e.Detail)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// badRequest returns a 400 error of scimType typ.
func badRequest(typ, format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Type: typ, Detail: fmt.Sprintf(format, args...)}
}

// notFound returns a 404 error.
func notFound(format string, args ...any) *Error {
	return &Error{Status: http.StatusNotFound, Detail: fmt.Sprintf(format, args...)}
}

// conflict returns a 409 uniqueness error.
func conflict(err error, format string, args ...any) *Error {
	return &Error{Status: http.StatusConflict, Type: scimUniqueness, Detail: fmt.Sprintf(format, args...), Err: err}
}
