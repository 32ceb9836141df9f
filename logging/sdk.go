package logging

import (
	"context"
	"errors"
	"log/slog"
	"slices"

	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
)

// SDKActivityError is the message of the Temporal SDK's line for every
// failed attempt of an activity, logged at error.
const SDKActivityError = "Activity error."

// NewSDKLogger returns the logger to give the Temporal SDK (client.Options
// Logger): log, except that the SDK's per-attempt SDKActivityError line is
// logged at debug, not error, when the activity's error is an application
// error of one of the types recorded: the outcomes the caller logs itself
// (tsync's activities log each step's outcome, at warn for a failure), so
// that a step failing or deferring does not also shout ERROR at every
// attempt. Every other SDK line keeps its level: a poller's failure, a
// workflow's panic, an activity's panic or an error of another type is
// still an error.
func NewSDKLogger(log *slog.Logger, recorded ...string) sdklog.Logger {
	return sdklog.NewStructuredLogger(slog.New(&sdkHandler{next: log.Handler(), recorded: slices.Clone(recorded)}))
}

// sdkHandler is the slog.Handler of NewSDKLogger.
type sdkHandler struct {
	next     slog.Handler
	recorded []string
}

// Enabled reports whether next logs level. A demoted line is enabled at
// error, then dropped by Handle unless next logs debug.
func (h *sdkHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.next.Enabled(ctx, level)
}

// Handle logs r by next, at debug when it is a recorded activity error.
func (h *sdkHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level > slog.LevelDebug && h.demoted(r) {
		r = r.Clone()
		r.Level = slog.LevelDebug
		if !h.next.Enabled(ctx, r.Level) {
			return nil
		}
	}
	return h.next.Handle(ctx, r)
}

// demoted reports whether r is the SDK's line for an activity attempt
// that failed with an application error of a recorded type.
func (h *sdkHandler) demoted(r slog.Record) bool {
	if r.Message != SDKActivityError {
		return false
	}
	found := false
	r.Attrs(func(a slog.Attr) bool {
		err, ok := a.Value.Resolve().Any().(error)
		if !ok || a.Key != "Error" {
			return true
		}
		var appErr *temporal.ApplicationError
		found = errors.As(err, &appErr) && slices.Contains(h.recorded, appErr.Type())
		return false
	})
	return found
}

// WithAttrs returns the handler with attrs on every line.
func (h *sdkHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &sdkHandler{next: h.next.WithAttrs(attrs), recorded: h.recorded}
}

// WithGroup returns the handler with the lines' attributes in group name.
func (h *sdkHandler) WithGroup(name string) slog.Handler {
	return &sdkHandler{next: h.next.WithGroup(name), recorded: h.recorded}
}
