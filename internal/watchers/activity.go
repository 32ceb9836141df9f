package watchers

import (
	"context"
	"errors"
	"fmt"

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
)

// Activities are the activities of WatchWorkflow. Register them on the
// synchronizer's task queue next to the sync workflows' (worker.Options
// Watchers).
type Activities struct {
	// Sync is the synchronizer whose watchers run.
	Sync *engine.Synchronizer
	// Store is the model store.
	Store *models.Store
}

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
	w, ok := a.Sync.Watcher(req.Watcher)
	if !ok {
		return "", temporal.NewNonRetryableApplicationError(fmt.Sprintf("watcher %s: not in this worker's synchronizer", req.Watcher), ErrTypeNoWatcher, nil)
	}
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
	err = activities.RunStep(ctx, func(ctx context.Context) error { return w.Watcher.HandleWatchedObject(ctx, obj, req.Event) })
	switch engine.Classify(err) {
	case engine.Succeeded:
		return OutcomeHandled, nil
	case engine.Noted:
		activity.GetLogger(ctx).Info("watcher note", "watcher", req.Watcher, "object", req.Object.String(), "note", err.Error())
		return OutcomeHandled, nil
	case engine.Deferred:
		return "", temporal.NewNonRetryableApplicationError(syncstate.StatusText(err.Error()), activities.ErrTypeDeferred, nil)
	default:
		// As a step's: valid UTF-8, cut, for Temporal's failure message.
		return "", temporal.NewApplicationError(syncstate.StatusText(err.Error()), ErrTypeWatcher)
	}
}

// Register registers WatchWorkflow and acts on r (a Temporal worker).
func Register(r sdkworker.Registry, acts *Activities) {
	r.RegisterWorkflow(WatchWorkflow)
	r.RegisterActivity(acts)
}
