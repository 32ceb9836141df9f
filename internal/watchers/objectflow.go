package watchers

import (
	"fmt"
	"slices"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/tsync/tsync"
	"github.com/tsync/tsync/internal/activities"
	"github.com/tsync/tsync/internal/outbox"
	"github.com/tsync/tsync/internal/workflows"
	"github.com/tsync/tsync/models"
)

// SignalChange is the signal that gives a WatchObjectWorkflow a change
// (a Change) to handle.
const SignalChange = "change"

// Position is where a change is in the order of the changes: its outbox id
// (the order in which the changes of one row committed) and its stream entry
// id. A change claimed by another dispatcher, or published again, keeps its
// outbox id.
type Position struct {
	// Outbox is the outbox row id; 0 for an event added to the stream
	// without one.
	Outbox int64
	// Stream is the id of the stream entry it was delivered as.
	Stream string
}

// Less reports whether p comes before q: by outbox id when both have one,
// else by stream id.
func (p Position) Less(q Position) bool {
	if p.Outbox > 0 && q.Outbox > 0 {
		return p.Outbox < q.Outbox
	}
	return outbox.StreamIDOf(p.Stream).Less(outbox.StreamIDOf(q.Stream))
}

// Change is one change for a WatchObjectWorkflow: the event and its position.
type Change struct {
	Event tsync.WatchEvent
	Pos   Position
}

// ObjectRequest starts a WatchObjectWorkflow: one watcher, one object, the
// changes it is told about by signals (SignalChange).
type ObjectRequest struct {
	// Watcher is the watcher's name.
	Watcher string
	// Object is the affected object, of a model the watcher synchronizes.
	Object models.Ref
	// Params are the synchronizer's workflow settings.
	Params workflows.Params
	// Linger is how long the workflow waits for another change once it has
	// handled all it got, so that a change delivered again meets the
	// workflow that handled it. 0: DefaultLinger.
	Linger time.Duration
	// Pending are the changes not yet handled (carried across
	// continue-as-new).
	Pending []Change
	// Handled are the event ids of the latest handled changes, at most
	// maxHandled (carried across continue-as-new).
	Handled []string
}

// ObjectResult is what a WatchObjectWorkflow returns.
type ObjectResult struct {
	Object models.Ref
	// Handled counts the changes whose handler call succeeded (or whose
	// object was skipped) in this run.
	Handled int
	// Duplicates counts the changes received again and not run again.
	Duplicates int
}

// ObjectWorkflowID returns the ID of the workflow that runs watcher for
// object in synchronizer: "<synchronizer>/watch/<watcher>/<Model>/<id>".
func ObjectWorkflowID(synchronizer, watcher string, object models.Ref) string {
	return fmt.Sprintf("%s/watch/%s/%s/%d", synchronizer, watcher, object.Model, object.ID)
}

const (
	// DefaultLinger is ObjectRequest.Linger's default.
	DefaultLinger = 2 * time.Minute
	// maxHandled bounds the event ids a workflow remembers.
	maxHandled = 1000
	// maxCommands bounds the activities and timers of one run before it
	// continues as new, to keep its history short.
	maxCommands = 500
)

// objectRun is the state of one run of WatchObjectWorkflow.
type objectRun struct {
	req      ObjectRequest
	queue    []Change // not handled yet, ordered by position
	handled  []string // latest handled event ids, oldest first
	seen     map[string]bool
	res      ObjectResult
	commands int
}

// receive queues c in position order, unless it was handled or is queued.
func (r *objectRun) receive(c Change) {
	if r.seen[c.Event.ID] {
		r.res.Duplicates++
		return
	}
	r.seen[c.Event.ID] = true
	i, _ := slices.BinarySearchFunc(r.queue, c, func(a, b Change) int {
		if a.Pos.Less(b.Pos) {
			return -1
		}
		return 1
	})
	r.queue = slices.Insert(r.queue, i, c)
}

// done records c as handled.
func (r *objectRun) done(c Change) {
	r.res.Handled++
	r.handled = append(r.handled, c.Event.ID)
	if len(r.handled) > maxHandled {
		delete(r.seen, r.handled[0])
		r.handled = r.handled[1:]
	}
}

// WatchObjectWorkflow runs the watcher's HandleWatchedObject for the object,
// once for each change it receives (SignalChange; the dispatcher starts it
// with signal-with-start), one at a time, in the order of the changes'
// positions. Each call is WatchWorkflow's: one activity that loads the
// object fresh, retried by the step retry policy until it succeeds, run
// again after the loop interval when deferred; the next change waits for it.
// A change whose event id it has handled or queued (among the latest
// maxHandled) is not run again. With nothing left to handle it waits Linger
// for another change, then completes; it continues as new, carrying its
// queue and the ids it handled, after maxCommands activities and timers.
func WatchObjectWorkflow(ctx workflow.Context, req ObjectRequest) (ObjectResult, error) {
	r := &objectRun{req: req, seen: map[string]bool{}, res: ObjectResult{Object: req.Object}}
	for _, id := range req.Handled {
		r.seen[id] = true
	}
	r.handled = slices.Clone(req.Handled)
	for _, c := range req.Pending {
		r.receive(c)
	}
	linger := req.Linger
	if linger <= 0 {
		linger = DefaultLinger
	}
	ch := workflow.GetSignalChannel(ctx, SignalChange)
	drain := func() {
		var c Change
		for ch.ReceiveAsync(&c) {
			r.receive(c)
			c = Change{}
		}
	}
	for {
		drain()
		if r.commands >= maxCommands {
			next := req
			next.Pending, next.Handled = r.queue, r.handled
			return r.res, workflow.NewContinueAsNewError(ctx, WatchObjectWorkflow, next)
		}
		if len(r.queue) == 0 {
			if !r.wait(ctx, ch, linger) {
				drain()
				if len(r.queue) == 0 {
					return r.res, nil
				}
			}
			continue
		}
		c := r.queue[0]
		ok, err := r.handle(ctx, c)
		if err != nil {
			return r.res, err
		}
		if ok {
			r.queue = r.queue[1:]
			r.done(c)
		}
	}
}

// wait waits up to linger for a change; it reports whether one came.
func (r *objectRun) wait(ctx workflow.Context, ch workflow.ReceiveChannel, linger time.Duration) bool {
	tctx, cancel := workflow.WithCancel(ctx)
	defer cancel()
	got := false
	sel := workflow.NewSelector(ctx)
	sel.AddReceive(ch, func(c workflow.ReceiveChannel, _ bool) {
		var change Change
		c.Receive(ctx, &change)
		r.receive(change)
		got = true
	})
	sel.AddFuture(workflow.NewTimer(tctx, linger), func(workflow.Future) {})
	sel.Select(ctx)
	return got
}

// handle runs the handler for c until it succeeds (deferrals wait the loop
// interval), or until the run has issued maxCommands (ok false: c stays
// queued for the next run); it fails only when the activity fails for good
// (no such watcher) or the workflow is cancelled.
func (r *objectRun) handle(ctx workflow.Context, c Change) (ok bool, err error) {
	p := r.req.Params
	ctx = workflow.WithActivityOptions(ctx, p.StepOptions(p.Retry.Initial, 0, activities.ErrTypeDeferred, ErrTypeNoWatcher))
	call := Request{Watcher: r.req.Watcher, Object: r.req.Object, Event: c.Event, Params: p, Record: true}
	for {
		r.commands++
		err := workflow.ExecuteActivity(ctx, acts.HandleWatchedObject, call).Get(ctx, nil)
		if err == nil {
			return true, nil
		}
		if !activities.IsDeferred(err) {
			// Unwrapped: the workflow's failure keeps the activity's
			// error type (ErrTypeNoWatcher).
			return false, err
		}
		interval := p.LoopInterval
		if interval <= 0 {
			interval = time.Second
		}
		r.commands++
		if err := workflow.Sleep(ctx, interval); err != nil {
			return false, err
		}
		if r.commands >= maxCommands {
			return false, nil
		}
	}
}
