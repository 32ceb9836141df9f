package watchers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/tsync/tsync/internal/activities"
	"github.com/tsync/tsync/internal/engine"
	"github.com/tsync/tsync/internal/syncstate"
	"github.com/tsync/tsync/models"
)

// Application error types of the watcher activity.
const (
	// ErrTypeWatcher is a failed handler; it is retried with backoff.
	ErrTypeWatcher = "WatcherError"
	// ErrTypeNoWatcher: the worker has no watcher of the requested name (a
	// worker running another version of the synchronizer). Not retried.
	ErrTypeNoWatcher = "NoWatcher"
)

// Outcome of one HandleWatchedObject activity.
type Outcome string

// Outcomes.
const (
	// OutcomeHandled: the handler ran and succeeded.
	OutcomeHandled Outcome = "handled"
	// OutcomeGone: the object no longer exists.
	OutcomeGone Outcome = "gone"
	// OutcomeSkipped: the object is deleted, no_sync or lazy_blocked.
	OutcomeSkipped Outcome = "skipped"
	// OutcomeDuplicate: the watcher had handled this change for the object
	// (it was delivered again after its workflow closed).
	OutcomeDuplicate Outcome = "duplicate"
)

// Activities are the activities of WatchWorkflow. Register them on the
// synchronizer's task queue next to the sync workflows' (worker.Options
// Watchers).
type Activities struct {
	// Sync is the synchronizer whose watchers run.
	Sync *engine.Synchronizer
	// Store is the model store.
	Store *models.Store
	// Log receives one line per handler call's outcome (WatchLogMessage:
	// watcher, model, id, outcome, attempt, duration, error): at warn for
	// a failure, at info otherwise. Nil logs nothing.
	Log *slog.Logger

	handled handledLog
}

// WatchLogMessage is the message of the line logged for every watcher
// handler call's outcome (see Activities.Log).
const WatchLogMessage = "watch"

// NewActivities returns the watcher activities of sync over store.
func NewActivities(sync *engine.Synchronizer, store *models.Store) *Activities {
	return &Activities{Sync: sync, Store: store}
}

// HandleWatchedObject loads req.Object fresh and runs the watcher's
// HandleWatchedObject on it, heartbeating meanwhile. Objects that are gone,
// deleted, no_sync or lazy_blocked are skipped. A handler error (or panic) is
// returned as a retryable ErrTypeWatcher error; a DeferredError as a
// non-retryable activities.ErrTypeDeferred one (the workflow runs the
// handler again after the loop interval); an InnocuousError is a success, logged.
func (a *Activities) HandleWatchedObject(ctx context.Context, req Request) (Outcome, error) {
	ctx, stop := activities.KeepAlive(ctx)
	defer stop()
	w, ok := a.Sync.Watcher(req.Watcher)
	if !ok {
		return "", temporal.NewNonRetryableApplicationError(fmt.Sprintf("watcher %s: not in this worker's synchronizer", req.Watcher), ErrTypeNoWatcher, nil)
	}
	if req.Record {
		done, err := a.handled.seen(ctx, a.Store, req.Watcher, req.Object, req.Event.ID)
		if err != nil {
			return "", fmt.Errorf("watcher %s: %w", req.Watcher, err)
		}
		if done {
			return OutcomeDuplicate, nil
		}
	}
	out, err := a.handle(ctx, w, req)
	if err == nil && req.Record {
		if err := a.handled.record(ctx, a.Store, req.Watcher, req.Object, req.Event.ID); err != nil {
			// The handler ran: a retry would run it again; the record is
			// only for a change delivered again later.
			activity.GetLogger(ctx).Warn("recording a handled change failed", "error", err)
		}
	}
	return out, err
}

// handle loads the object and runs the handler of w on it.
func (a *Activities) handle(ctx context.Context, w *engine.Watcher, req Request) (Outcome, error) {
	obj, err := a.Store.Get(ctx, req.Object.Model, req.Object.ID)
	if errors.Is(err, models.ErrNotFound) {
		return OutcomeGone, nil
	}
	if err != nil {
		return "", fmt.Errorf("watcher %s: %w", req.Watcher, err)
	}
	if b := obj.SyncState(); b.Deleted || b.NoSync || b.LazyBlocked {
		return OutcomeSkipped, nil
	}
	start := time.Now()
	err = activities.RunStep(ctx, func(ctx context.Context) error { return w.Watcher.HandleWatchedObject(ctx, obj, req.Event) })
	class := engine.Classify(err)
	a.logOutcome(ctx, req, class, time.Since(start), err)
	switch class {
	case engine.Succeeded, engine.Noted:
		return OutcomeHandled, nil
	case engine.Deferred:
		return "", temporal.NewNonRetryableApplicationError(syncstate.StatusText(err.Error()), activities.ErrTypeDeferred, nil)
	default:
		// As a step's: valid UTF-8, cut, for Temporal's failure message.
		return "", temporal.NewApplicationError(syncstate.StatusText(err.Error()), ErrTypeWatcher)
	}
}

// Register registers WatchObjectWorkflow, WatchWorkflow (which the
// dispatchers no longer start, for the workflows started by an older
// version) and acts on r (a Temporal worker).
func Register(r sdkworker.Registry, acts *Activities) {
	r.RegisterWorkflow(WatchObjectWorkflow)
	r.RegisterWorkflow(WatchWorkflow)
	r.RegisterActivity(acts)
}

// logOutcome logs the outcome of one handler call: at warn for a failure,
// with the error's text; at info for a success, a deferral or an innocuous
// error (with its text). The attempt is the SDK's: the watcher workflow
// runs all attempts of a change's handler as one activity.
func (a *Activities) logOutcome(ctx context.Context, req Request, class engine.Outcome, took time.Duration, err error) {
	if a.Log == nil {
		return
	}
	level := slog.LevelInfo
	if class == engine.Failed {
		level = slog.LevelWarn
	}
	if !a.Log.Enabled(ctx, level) {
		return
	}
	attrs := []slog.Attr{
		slog.String("watcher", req.Watcher),
		slog.String("model", req.Object.Model),
		slog.Int64("id", req.Object.ID),
		slog.String("outcome", activities.OutcomeLabel(class)),
		slog.Duration("duration", took),
	}
	if activity.IsActivity(ctx) {
		info := activity.GetInfo(ctx)
		attrs = append(attrs, slog.Int("attempt", int(info.Attempt)), slog.String("workflow_id", info.WorkflowExecution.ID))
	}
	if err != nil {
		attrs = append(attrs, slog.String("error", syncstate.StatusText(err.Error())))
	}
	a.Log.LogAttrs(ctx, level, WatchLogMessage, attrs...)
}
