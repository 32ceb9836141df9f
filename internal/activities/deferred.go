package activities

import (
	"errors"

	"go.temporal.io/sdk/temporal"
)

// IsDeferred reports whether err is, or wraps, the failure of an activity
// that ended with an ErrTypeDeferred error: a step, model policy or watcher
// handler that returned a DeferredError. Workflows run it again after the
// loop interval, without backoff.
func IsDeferred(err error) bool {
	var appErr *temporal.ApplicationError
	return errors.As(err, &appErr) && appErr.Type() == ErrTypeDeferred
}
