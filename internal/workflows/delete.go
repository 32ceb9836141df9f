package workflows

import (
	"errors"
	"fmt"

	"go.temporal.io/sdk/workflow"

	"github.com/tsync/tsync/internal/activities"
	"github.com/tsync/tsync/internal/engine"
	"github.com/tsync/tsync/internal/syncstate"
	"github.com/tsync/tsync/models"
)

// DeleteWorkflow deletes req.Object from the backend and purges its row,
// after every deleted object that depends on it; while live objects still
// depend on it, it is held with a status naming them.
func DeleteWorkflow(ctx workflow.Context, req Request) (Result, error) {
	r := newRun(ctx, req, engine.OpDelete)
	res, err := r.delete(ctx)
	return r.finish(ctx, res, err)
}

func (r *run) delete(ctx workflow.Context) (Result, error) {
	for iteration := 0; ; iteration++ {
		if r.shouldContinueAsNew(ctx, iteration) {
			return r.continueAsNew(ctx, engine.OpDelete, true)
		}
		ins, err := r.inspect(ctx)
		if err != nil {
			return Result{}, err
		}
		switch {
		case !ins.Exists:
			return r.result(StateGone), nil
		case !ins.Deleted:
			if r.isChild(ctx) {
				// The parent waits for this deletion; as a SyncWorkflow
				// this child would not end while the parent is deleted
				// (see sync). End; the starter starts the sync.
				return r.result(StateRecheck), nil
			}
			// Undeleted meanwhile: sync it instead.
			return r.continueAsNew(ctx, engine.OpSync, true)
		case ins.NeedsPolicy:
			// The delete policies run before the deletion.
			if err := r.runPolicy(ctx); err != nil {
				return Result{}, err
			}
			continue
		case ins.WriteProtect:
			return r.result(StateWriteProtected), nil
		case len(ins.Cycle) > 0:
			end, err := r.holdCycle(ctx, ins.Cycle)
			if err != nil {
				return Result{}, err
			}
			if end {
				return r.result(StateRecheck), nil
			}
			continue
		}

		var deps []syncstate.Dependent
		if err := workflow.ExecuteLocalActivity(bookkeepingContext(ctx), acts.Dependents, r.ref()).Get(ctx, &deps); err != nil {
			return Result{}, fmt.Errorf("dependents of %s: %w", r.ref(), err)
		}
		var live []string
		var first []models.Ref
		for _, d := range deps {
			switch {
			case !d.Deleted:
				live = append(live, d.Ref.String())
			case d.WriteProtect:
				live = append(live, d.Ref.String()+" (deleted, write_protect)")
			default:
				first = append(first, d.Ref)
			}
		}
		if len(live) > 0 {
			if err := r.hold(ctx, "deferred: cannot delete, still used by "+nameSome(live)); err != nil {
				return Result{}, err
			}
			continue
		}
		if len(first) > 0 {
			// Dependents go first, in reverse dependency order.
			r.setState(ctx, StateWaiting, "waiting for the deletion of "+refNames(first))
			results, err := r.await(ctx, first, engine.OpDelete)
			if errors.Is(err, errChanged) {
				continue
			}
			if err != nil {
				return Result{}, err
			}
			if !allGone(results) && !r.recheckAtOnce(ctx, results) {
				if err := r.pause(ctx); err != nil {
					return Result{}, err
				}
			}
			continue
		}

		var out activities.Outcome
		deferred, err := r.step(ctx, acts.DeleteObject, "delete", &out)
		switch {
		case err != nil:
			return Result{}, err
		case deferred:
			continue
		case out == activities.OutcomeOK || out == activities.OutcomeGone:
			return r.result(StateGone), nil
		}
		// Skipped: undeleted or write-protected meanwhile; look again.
	}
}

// deleteRecheck is the workflow.GetVersion change ID of a deletion that
// looks again at once, rather than after a loop interval, when the
// dependents it waited for are gone or must be looked at again (their
// workflow ended as it subscribed, or ended with StateRecheck), as a sync
// does for its dependencies. It is asked only there, so that only the runs
// that reach it pay its marker.
const deleteRecheck = "delete-recheck"

// recheckAtOnce reports whether the deletion looks again at once after
// results: none failed or was held (each is gone or to be looked at again),
// under deleteRecheck.
func (r *run) recheckAtOnce(ctx workflow.Context, results []Result) bool {
	for _, res := range results {
		if res.Outcome != StateGone && res.Outcome != StateRecheck {
			return false
		}
	}
	return workflow.GetVersion(ctx, deleteRecheck, workflow.DefaultVersion, 1) >= 1
}

func allGone(results []Result) bool {
	for _, res := range results {
		if res.Outcome != StateGone {
			return false
		}
	}
	return true
}
