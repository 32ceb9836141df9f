package tsync

import (
	"errors"
	"fmt"
)

// DeferredError is a temporary condition (the XOS DeferredException): the
// object is recorded as "deferred: <text>" with code 0, not as an error, and
// the step is tried again after the loop interval, every time, without
// backoff.
type DeferredError struct {
	Err error
}

func (e *DeferredError) Error() string { return e.Err.Error() }

// Unwrap returns the cause.
func (e *DeferredError) Unwrap() error { return e.Err }

// Defer wraps err as a DeferredError.
func Defer(err error) error { return &DeferredError{Err: err} }

// Deferf formats a DeferredError.
func Deferf(format string, args ...any) error { return Defer(fmt.Errorf(format, args...)) }

// InnocuousError is a note rather than a failure (the XOS
// InnocuousException): its text is recorded with code 1 and nothing is held
// or retried.
type InnocuousError struct {
	Err error
}

func (e *InnocuousError) Error() string { return e.Err.Error() }

// Unwrap returns the cause.
func (e *InnocuousError) Unwrap() error { return e.Err }

// Innocuous wraps err as an InnocuousError.
func Innocuous(err error) error { return &InnocuousError{Err: err} }

// IsDeferred reports whether err wraps a DeferredError.
func IsDeferred(err error) bool {
	var d *DeferredError
	return errors.As(err, &d)
}

// IsInnocuous reports whether err wraps an InnocuousError.
func IsInnocuous(err error) bool {
	var i *InnocuousError
	return errors.As(err, &i)
}
