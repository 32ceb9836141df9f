package workflows

import (
	"go.temporal.io/sdk/workflow"

	"github.com/tsync/tsync/internal/activities"
	"github.com/tsync/tsync/internal/engine"
)

// SyncWorkflow brings req.Object in sync, its dependencies first. It ends
// when the object is in sync (StateInSync), gone, blocked (no_sync,
// lazy_blocked) or deleted (it then continues as a DeleteWorkflow, unless it
// runs as a dependent's child: it then ends with StateDeleted). Step
// failures are retried by the activity's retry policy, so the workflow waits
// until the step succeeds; deferred steps and held objects are tried again
// after the loop interval.
func SyncWorkflow(ctx workflow.Context, req Request) (Result, error) {
	r := newRun(ctx, req, engine.OpSync)
	res, err := r.sync(ctx)
	return r.finish(ctx, res, err)
}

func (r *run) sync(ctx workflow.Context) (Result, error) {
	for iteration := 0; ; iteration++ {
		if r.shouldContinueAsNew(ctx, iteration) {
			return r.continueAsNew(ctx, engine.OpSync, true)
		}
		ins, ran, err := r.look(ctx)
		switch {
		case err != nil:
			return Result{}, err
		case ran == nil:
		case ran.Outcome == activities.OutcomeGone:
			return r.result(StateGone), nil
		case ran.Outcome == activities.OutcomeOK && !ran.Pending:
			return r.result(StateInSync), nil
		default:
			// The step failed or deferred and its wait is over, it was
			// skipped, or the object changed during the step: look again.
			continue
		}
		switch {
		case !ins.Exists:
			return r.result(StateGone), nil
		case ins.Deleted:
			if r.isChild(ctx) {
				// The parent, a dependent, waits for this child to end,
				// and a child that continues as new has not ended: it would
				// wait for the deletion, which waits for deleted dependents
				// (a deadlock). End; the starter starts the deletion.
				return r.result(StateDeleted), nil
			}
			// Whoever waits for this object's sync must not wait for its
			// deletion (which may wait for them): answer now.
			r.notify(ctx, r.result(StateDeleted))
			r.subscribers = nil
			return r.continueAsNew(ctx, engine.OpDelete, false)
		case ins.NeedsPolicy:
			// Model policies run before the sync; then look again.
			if err := r.runPolicy(ctx); err != nil {
				return Result{}, err
			}
			continue
		case ins.Blocked:
			return r.result(StateBlocked), nil
		case !ins.Pending:
			return r.result(StateInSync), nil
		case len(ins.Cycle) > 0:
			end, err := r.holdCycle(ctx, ins.Cycle)
			if err != nil {
				return Result{}, err
			}
			if end {
				return r.result(StateRecheck), nil
			}
			r.held = true
			continue
		}

		deps, err := r.ensureDependencies(ctx, ins.Deps)
		if err != nil {
			return Result{}, err
		}
		switch deps {
		case depsHeld:
			if err := r.pause(ctx); err != nil {
				return Result{}, err
			}
			r.held = true
			continue
		case depsRecheck:
			continue
		}

		var out activities.SyncResult
		deferred, err := r.step(ctx, acts.SyncObject, "sync", &out)
		switch {
		case err != nil:
			return Result{}, err
		case deferred:
			continue
		case out.Outcome == activities.OutcomeGone:
			return r.result(StateGone), nil
		case out.Outcome == activities.OutcomeOK && !out.Pending:
			return r.result(StateInSync), nil
		}
		// Skipped (no longer pending) or synced: look again, which also
		// syncs again an object that changed during its sync.
	}
}

// look is the loop's look at the object. Under versionSyncReady, with no
// inspection at hand (see inspect) and unless the run was held at its last
// look, it is the SyncReady activity: when the object is ready, its step
// has run in it, and ran is the step's result (or, when the step failed or
// deferred and its wait is over, an empty result: the caller looks again);
// otherwise ran is nil and ins is the inspection, as inspect returns it.
// A run held at its last look, or at its first look one whose starter said
// it Waits, looks with the Inspect local activity: cheaper than an
// activity when, as a rule, it must wait.
func (r *run) look(ctx workflow.Context) (ins activities.Inspection, ran *activities.SyncResult, err error) {
	held := r.held || r.req.Waits
	r.held, r.req.Waits = false, false
	if !r.syncReady || r.next != nil || held {
		ins, err = r.inspect(ctx)
		return ins, nil, err
	}
	r.drainChanged()
	var out activities.ReadySync
	again, err := r.step(ctx, acts.SyncReady, "sync", &out)
	switch {
	case err != nil:
		return ins, nil, err
	case again:
		return ins, &activities.SyncResult{}, nil
	}
	r.seen = contentOf(out.Inspection)
	if out.Ran {
		return out.Inspection, &out.Sync, nil
	}
	return out.Inspection, nil, nil
}
