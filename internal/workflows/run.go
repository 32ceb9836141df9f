package workflows

import (
	"fmt"
	"slices"

	"go.temporal.io/sdk/workflow"

	"github.com/tsync/tsync/internal/activities"
	"github.com/tsync/tsync/internal/engine"
	"github.com/tsync/tsync/models"
)

// acts is used only for activity method references; workers register a real
// *activities.Activities.
var acts *activities.Activities

// run is the state of one object workflow run.
type run struct {
	req Request
	// op is what the run does: the workflow it runs as.
	op          engine.Op
	id          string
	subscribers []string
	subscribe   workflow.ReceiveChannel
	done        workflow.ReceiveChannel
	// results holds Done signals received and not consumed yet, by sender.
	results map[string]Result
	// live is the run's state, as QueryState answers it.
	live LiveState
	// shown and memo are the TsyncState and status memo last written.
	shown State
	memo  string

	// v2 is set when the run's waits are interrupted by SignalChanged
	// (changeSignals); changed is that signal's channel.
	v2      bool
	changed workflow.ReceiveChannel
	// syncReady is set when the sync workflow looks at its object with
	// the SyncReady activity (versionSyncReady); held, when its last look
	// found it held (see look).
	syncReady, held bool
	// current is set when the run's workflow type is a current name, not
	// a legacy one (see SyncType); its children and continuations keep
	// its family.
	current bool
	// seen is the content of the object at the run's last inspection; next
	// is an inspection made while waiting, for the run's next look.
	seen content
	next *activities.Inspection
	// retryShown is set while the memo shows a failing step's retries;
	// memoNext is a change of those that the next lasting state writes
	// with its own (runs of the current type names).
	retryShown bool
	memoNext   map[string]any
}

func newRun(ctx workflow.Context, req Request, op engine.Op) *run {
	r := &run{
		req:         req,
		op:          op,
		id:          workflow.GetInfo(ctx).WorkflowExecution.ID,
		subscribers: slices.Clone(req.Subscribers),
		subscribe:   workflow.GetSignalChannel(ctx, SignalSubscribe),
		done:        workflow.GetSignalChannel(ctx, SignalDone),
		results:     map[string]Result{},
	}
	// Subscriptions stay buffered in their channel until the run ends (see
	// notify). No coroutine may receive them meanwhile: a value handed to a
	// blocked coroutine is lost if the workflow completes before it runs.
	r.initChanges(ctx)
	r.startState(ctx)
	return r
}

func (r *run) ref() models.Ref { return r.req.Object }

func (r *run) result(o State) Result { return Result{Object: r.ref(), Outcome: o} }

// isChild reports whether the run is a child workflow, started by another
// object's workflow that waits for its result (through continue-as-new).
func (r *run) isChild(ctx workflow.Context) bool {
	return workflow.GetInfo(ctx).ParentWorkflowExecution != nil
}

// inspect looks at the object: under changeSignals, it first drops the
// change signals delivered so far (this look sees their changes), and takes
// the inspection a wait made, if any.
func (r *run) inspect(ctx workflow.Context) (activities.Inspection, error) {
	if !r.v2 {
		return r.inspectNow(ctx)
	}
	r.drainChanged()
	if r.next != nil {
		ins := *r.next
		r.next = nil
		r.seen = contentOf(ins)
		return ins, nil
	}
	ins, err := r.inspectNow(ctx)
	if err == nil {
		r.seen = contentOf(ins)
	}
	return ins, err
}

// inspectNow runs the Inspect local activity.
func (r *run) inspectNow(ctx workflow.Context) (activities.Inspection, error) {
	var ins activities.Inspection
	err := workflow.ExecuteLocalActivity(bookkeepingContext(ctx), acts.Inspect, r.ref()).Get(ctx, &ins)
	if err != nil {
		return ins, fmt.Errorf("inspect %s: %w", r.ref(), err)
	}
	return ins, nil
}

func (r *run) recordStatus(ctx workflow.Context, code int, status string) error {
	err := workflow.ExecuteLocalActivity(bookkeepingContext(ctx), acts.RecordStatus, r.ref(), code, status).Get(ctx, nil)
	if err != nil {
		return fmt.Errorf("record status of %s: %w", r.ref(), err)
	}
	return nil
}

// pause waits for the loop interval, before an object held or deferred is
// tried again (a durable timer, without backoff). Under changeSignals, a
// change of the object ends it early; the caller looks at the object again
// either way.
func (r *run) pause(ctx workflow.Context) error {
	_, err := r.sleep(ctx, r.req.Params.LoopInterval)
	return err
}
