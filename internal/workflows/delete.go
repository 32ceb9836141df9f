package workflows

import (
	"fmt"
	"strings"

	"go.temporal.io/sdk/workflow"

	"github.com/tsync/tsync/internal/activities"
	"github.com/tsync/tsync/models"
)

// maxNamed is how many blocking objects a held status names.
const maxNamed = 5

func (r *run) delete(ctx workflow.Context) (Result, error) {
	for iteration := 0; ; iteration++ {
		if r.shouldContinueAsNew(ctx, iteration) {
			return r.continueAsNew(ctx, DeleteWorkflow, true)
		}
		ins, err := r.inspect(ctx)
		if err != nil {
			return Result{}, err
		}
		switch {
		case !ins.Exists:
			return r.result(OutcomeGone), nil
		case !ins.Deleted:
			if r.isChild(ctx) {
				// The parent waits for this deletion; as a SyncWorkflow
				// this child would not end while the parent is deleted
				// (see sync). End; the starter starts the sync.
				return r.result(OutcomeRecheck), nil
			}
			// Undeleted meanwhile: sync it instead.
			return r.continueAsNew(ctx, SyncWorkflow, true)
		case ins.NeedsPolicy:
			// The delete policies run before the deletion.
			if err := r.runPolicy(ctx); err != nil {
				return Result{}, err
			}
			continue
		case ins.WriteProtect:
			return r.result(OutcomeWriteProtected), nil
		}

		var deps []models.Dependent
		if err := workflow.ExecuteLocalActivity(r.bookkeepingContext(ctx), acts.Dependents, r.ref()).Get(ctx, &deps); err != nil {
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
			results, err := r.await(ctx, first, DeleteWorkflow)
			if err != nil {
				return Result{}, err
			}
			if !allGone(results) {
				if err := r.pause(ctx); err != nil {
					return Result{}, err
				}
			}
			continue
		}

		var out activities.Outcome
		err = r.runStep(ctx, acts.DeleteObject, &out)
		switch {
		case isDeferred(err):
			if err := r.pause(ctx); err != nil {
				return Result{}, err
			}
			continue
		case err != nil:
			return Result{}, fmt.Errorf("delete %s: %w", r.ref(), err)
		}
		if out == activities.OutcomeOK || out == activities.OutcomeGone {
			return r.result(OutcomeGone), nil
		}
		// Skipped: undeleted or write-protected meanwhile; look again.
	}
}

func allGone(results []Result) bool {
	for _, res := range results {
		if res.Outcome != OutcomeGone {
			return false
		}
	}
	return true
}

func nameSome(names []string) string {
	if len(names) <= maxNamed {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:maxNamed], ", "), len(names)-maxNamed)
}
