package watchers

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/tsync/tsync"
	"github.com/tsync/tsync/internal/activities"
	"github.com/tsync/tsync/internal/workflows"
	"github.com/tsync/tsync/models"
)

// Request starts a WatchWorkflow: one watcher, one affected object, one
// change.
type Request struct {
	// Watcher is the watcher's name.
	Watcher string
	// Object is the affected object, of a model the watcher synchronizes.
	Object models.Ref
	// Event is the change that fired.
	Event tsync.WatchEvent
	// Params are the synchronizer's workflow settings (retry policy, step
	// timeout, heartbeat timeout, loop interval).
	Params workflows.Params
	// Record (set by WatchObjectWorkflow) makes the activity skip a change
	// the watcher handled for the object (HandledTable), and record the
	// change once handled.
	Record bool `json:",omitempty"`
}

// Result is what a WatchWorkflow returns.
type Result struct {
	Object  models.Ref
	Outcome Outcome
}

// WorkflowID returns the ID of the workflow that runs watcher for object
// and event in synchronizer: "<synchronizer>/watch/<watcher>/<Model>/<id>/<event>".
// It is deterministic, so a change delivered twice starts one workflow.
func WorkflowID(synchronizer, watcher string, object models.Ref, event string) string {
	return fmt.Sprintf("%s/watch/%s/%s/%d/%s", synchronizer, watcher, object.Model, object.ID, event)
}

// maxDeferrals bounds the deferred attempts of one run before it continues
// as new, to keep its history short.
const maxDeferrals = 100

// acts is used only for activity method references; workers register a real
// *Activities.
var acts *Activities

// WatchWorkflow runs the watcher's HandleWatchedObject for the object, in
// one activity that loads it fresh, retried by the step retry policy
// (exponential backoff, capped, forever) until it succeeds. A handler that
// returns a DeferredError runs again after the loop interval, without
// backoff.
func WatchWorkflow(ctx workflow.Context, req Request) (Result, error) {
	p := req.Params
	ctx = workflow.WithActivityOptions(ctx, p.StepOptions(p.Retry.Initial, 0, activities.ErrTypeDeferred, ErrTypeNoWatcher))
	for range maxDeferrals {
		var out Outcome
		err := workflow.ExecuteActivity(ctx, acts.HandleWatchedObject, req).Get(ctx, &out)
		if err == nil {
			return Result{Object: req.Object, Outcome: out}, nil
		}
		if !activities.IsDeferred(err) {
			return Result{Object: req.Object}, err
		}
		interval := p.LoopInterval
		if interval <= 0 {
			interval = time.Second
		}
		if err := workflow.Sleep(ctx, interval); err != nil {
			return Result{Object: req.Object}, err
		}
	}
	return Result{Object: req.Object}, workflow.NewContinueAsNewError(ctx, WatchWorkflow, req)
}
