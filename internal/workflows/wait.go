package workflows

import (
	"errors"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/tsync/tsync/internal/activities"
)

// changeSignals is the workflow.GetVersion change ID of the waits that a
// SignalChanged interrupts, and of step retries as workflow timers. Runs
// that started on older code (DefaultVersion) keep the uninterruptible
// sleeps and the activity retry policy.
const changeSignals = "change-signals"

// Memo keys of a failing step's retries, next to memoStatus: the attempts
// made so far for the object's current content, and when the next one runs
// (RFC 3339). Both are removed when the step succeeds or defers.
const (
	memoAttempt   = "attempt"
	memoNextRetry = "next_retry"
)

// errChanged reports that a wait was interrupted by a change of the object:
// the caller looks at it again.
var errChanged = errors.New("object changed")

// content is what a change signal is compared against: an object whose
// content is the same after a signal was not changed (the signal is
// spurious, or announced a change of sync-state columns only).
type content struct {
	exists, deleted, blocked, writeProtect bool
	updated                                time.Time
}

func contentOf(ins activities.Inspection) content {
	return content{exists: ins.Exists, deleted: ins.Deleted, blocked: ins.Blocked, writeProtect: ins.WriteProtect, updated: ins.Updated}
}

// Versions of changeSignals. A version of the same change ID rather than a
// change ID of its own: each change ID a run records costs it a marker and
// a search-attribute upsert (TemporalChangeVersion), a billable action.
const (
	// versionChangeSignals: waits interrupted by SignalChanged, retries as
	// workflow timers.
	versionChangeSignals workflow.Version = 1
	// versionSyncReady: also, the sync workflow's first look at its object
	// is the SyncReady activity (see run.look).
	versionSyncReady workflow.Version = 2
)

// initChanges decides whether the run's waits can be interrupted (see
// changeSignals), and how it looks at its object: a run of a current type
// name (SyncType, DeleteType) has every change up to versionSyncReady and
// records no version; a run of a legacy one asks workflow.GetVersion.
func (r *run) initChanges(ctx workflow.Context) {
	r.current = isCurrentType(workflow.GetInfo(ctx).WorkflowType.Name)
	v := versionSyncReady
	if !r.current {
		v = workflow.GetVersion(ctx, changeSignals, workflow.DefaultVersion, versionSyncReady)
	}
	r.v2 = v >= versionChangeSignals
	r.syncReady = v >= versionSyncReady
	r.changed = workflow.GetSignalChannel(ctx, SignalChanged)
}

// drainChanged drops the change signals already delivered: the inspection
// that follows sees what they announced.
func (r *run) drainChanged() {
	for {
		var c Changed
		if !r.changed.ReceiveAsync(&c) {
			return
		}
	}
}

// receiveChanged is the selector callback of the change signal channel.
func (r *run) receiveChanged(ctx workflow.Context) func(workflow.ReceiveChannel, bool) {
	return func(c workflow.ReceiveChannel, _ bool) {
		var v Changed
		c.Receive(ctx, &v)
	}
}

// wake looks at the object again after a change signal: it reports whether
// its content changed since the run last inspected it, and if so keeps the
// inspection for the run's next look.
func (r *run) wake(ctx workflow.Context) (bool, error) {
	r.drainChanged()
	ins, err := r.inspectNow(ctx)
	if err != nil {
		return false, err
	}
	if contentOf(ins) == r.seen {
		return false, nil
	}
	r.next = &ins
	return true, nil
}

// sleep waits for d on a durable timer. Under changeSignals a change signal
// interrupts it: if the object's content changed, sleep returns true at
// once; else it waits for the rest of d (noise does not shorten a wait).
func (r *run) sleep(ctx workflow.Context, d time.Duration) (bool, error) {
	if !r.v2 {
		return false, workflow.Sleep(ctx, d)
	}
	deadline := workflow.Now(ctx).Add(d)
	for {
		left := deadline.Sub(workflow.Now(ctx))
		if left <= 0 {
			return false, nil
		}
		tctx, cancel := workflow.WithCancel(ctx)
		timer := workflow.NewTimer(tctx, left)
		fired := false
		var err error
		sel := workflow.NewSelector(ctx)
		sel.AddFuture(timer, func(f workflow.Future) { fired, err = true, f.Get(ctx, nil) })
		sel.AddReceive(r.changed, r.receiveChanged(ctx))
		sel.Select(ctx)
		if fired {
			return false, err
		}
		cancel()
		if woken, err := r.wake(ctx); err != nil || woken {
			return woken, err
		}
	}
}

// waitFuture waits for f to be ready; under changeSignals, a change of the
// object's content interrupts it (true).
func (r *run) waitFuture(ctx workflow.Context, f workflow.Future) (bool, error) {
	if !r.v2 {
		return false, nil
	}
	for !f.IsReady() {
		sel := workflow.NewSelector(ctx)
		sel.AddFuture(f, func(workflow.Future) {})
		sel.AddReceive(r.changed, r.receiveChanged(ctx))
		sel.AddReceive(ctx.Done(), func(workflow.ReceiveChannel, bool) {})
		sel.Select(ctx)
		if f.IsReady() || ctx.Err() != nil {
			break
		}
		if woken, err := r.wake(ctx); err != nil || woken {
			return woken, err
		}
	}
	return false, nil
}

// receiveDone waits for one Done signal and keeps its result; under
// changeSignals, a change of the object's content interrupts it (true).
func (r *run) receiveDone(ctx workflow.Context) (bool, error) {
	if !r.v2 {
		var d Done
		r.done.Receive(ctx, &d)
		r.results[d.WorkflowID] = d.Result
		return false, nil
	}
	for {
		got := false
		sel := workflow.NewSelector(ctx)
		sel.AddReceive(r.done, func(c workflow.ReceiveChannel, _ bool) {
			var d Done
			c.Receive(ctx, &d)
			r.results[d.WorkflowID] = d.Result
			got = true
		})
		sel.AddReceive(r.changed, r.receiveChanged(ctx))
		sel.AddReceive(ctx.Done(), func(workflow.ReceiveChannel, bool) {})
		sel.Select(ctx)
		if got || ctx.Err() != nil {
			return false, nil
		}
		if woken, err := r.wake(ctx); err != nil || woken {
			return woken, err
		}
	}
}

// setRetry writes the memo of a failing step's retries: attempt made, the
// next at next; attempt 0 removes them.
func (r *run) setRetry(ctx workflow.Context, attempt int, next time.Time) {
	var memo map[string]any
	switch {
	case attempt > 0:
		memo = map[string]any{memoAttempt: attempt, memoNextRetry: next.UTC().Format(time.RFC3339Nano)}
		r.retryShown = true
	case r.retryShown:
		memo = map[string]any{memoAttempt: nil, memoNextRetry: nil}
		r.retryShown = false
	default:
		return
	}
	if r.current {
		// Written with the state that follows (setState): one memo
		// change, one billable action.
		r.memoNext = memo
		return
	}
	r.upsert(ctx, workflow.UpsertMemo(ctx, memo))
}
