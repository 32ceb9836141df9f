package tsync

import (
	"errors"
	"fmt"
)

// What a step's error means is decided in this order, the first match
// winning (see Step):
//
//  1. nil: success.
//  2. an error wrapping a *DeferredError anywhere in its chain (errors.As,
//     through fmt.Errorf's %w and errors.Join): deferred, even when it also
//     wraps an *InnocuousError, since a deferred condition means the backend
//     is not in step yet.
//  3. an error wrapping an *InnocuousError: success with a note.
//  4. any other error: failure.

// DeferredError is a temporary condition (the XOS DeferredException): the
// object is recorded as "deferred: <text>" with code 0, not as an error, and
// the step is tried again after the loop interval, every time, without
// backoff. Make one with Defer or Deferf; find one with IsDeferred or
// errors.Is(err, &DeferredError{}).
type DeferredError struct {
	// Err is the cause; nil means none was given.
	Err error
}

// Error returns the cause's text, or "deferred" without one. It is safe on
// a nil *DeferredError.
func (e *DeferredError) Error() string {
	if e == nil || e.Err == nil {
		return "deferred"
	}
	return e.Err.Error()
}

// Unwrap returns the cause.
func (e *DeferredError) Unwrap() error {
	if e == nil {
		return nil
	}
	return e.Err
}

// Is reports whether target is a *DeferredError, so that
// errors.Is(err, &DeferredError{}) finds any DeferredError in err's chain.
func (e *DeferredError) Is(target error) bool {
	_, ok := target.(*DeferredError)
	return ok
}

// Defer wraps err as a DeferredError. Defer(nil) is a DeferredError with no
// cause (its text is "deferred"): deferring is never turned into success by
// a nil cause.
func Defer(err error) error { return &DeferredError{Err: err} }

// Deferf formats a DeferredError; %w wraps a cause as fmt.Errorf does.
func Deferf(format string, args ...any) error { return Defer(fmt.Errorf(format, args...)) }

// InnocuousError is a note rather than a failure (the XOS
// InnocuousException): its text is recorded with code 1 and nothing is held
// or retried. Make one with Innocuous or Innocuousf; find one with
// IsInnocuous or errors.Is(err, &InnocuousError{}).
type InnocuousError struct {
	// Err is the note; nil means none was given.
	Err error
}

// Error returns the note's text, or "innocuous error" without one. It is
// safe on a nil *InnocuousError.
func (e *InnocuousError) Error() string {
	if e == nil || e.Err == nil {
		return "innocuous error"
	}
	return e.Err.Error()
}

// Unwrap returns the note.
func (e *InnocuousError) Unwrap() error {
	if e == nil {
		return nil
	}
	return e.Err
}

// Is reports whether target is an *InnocuousError, so that
// errors.Is(err, &InnocuousError{}) finds any InnocuousError in err's chain.
func (e *InnocuousError) Is(target error) bool {
	_, ok := target.(*InnocuousError)
	return ok
}

// Innocuous wraps err as an InnocuousError. Innocuous(nil) is an
// InnocuousError with no note.
func Innocuous(err error) error { return &InnocuousError{Err: err} }

// Innocuousf formats an InnocuousError; %w wraps a cause as fmt.Errorf does.
func Innocuousf(format string, args ...any) error { return Innocuous(fmt.Errorf(format, args...)) }

// IsDeferred reports whether err wraps a DeferredError.
func IsDeferred(err error) bool { return errors.Is(err, &DeferredError{}) }

// IsInnocuous reports whether err wraps an InnocuousError.
func IsInnocuous(err error) bool { return errors.Is(err, &InnocuousError{}) }
