package workflows

import (
	"errors"
	"fmt"
	"strings"

	"go.temporal.io/sdk/workflow"

	"github.com/tsync/tsync/internal/activities"
	"github.com/tsync/tsync/internal/engine"
	"github.com/tsync/tsync/internal/syncstate"
	"github.com/tsync/tsync/models"
)

// depsState is what ensureDependencies found.
type depsState int

const (
	// depsReady: every dependency is in sync.
	depsReady depsState = iota
	// depsHeld: the object cannot be synced now; its status says why.
	depsHeld
	// depsRecheck: a dependency's workflow ended unseen; look again at once.
	depsRecheck
)

// ensureDependencies brings every dependency in sync, syncing those that
// need it by child workflows (or waiting for their running workflows).
func (r *run) ensureDependencies(ctx workflow.Context, deps []activities.DepState) (depsState, error) {
	var need []models.Ref
	var reasons []string
	failed := ""
	for _, d := range deps {
		switch {
		case d.InSync():
		case !d.Exists:
			reasons = append(reasons, fmt.Sprintf("dependency %s does not exist", d.Ref))
		case d.Deleted:
			reasons = append(reasons, fmt.Sprintf("dependency %s is deleted", d.Ref))
		case d.Blocked:
			reasons = append(reasons, fmt.Sprintf("dependency %s is not synced (no_sync or lazy_blocked)", d.Ref))
		case !d.Synchronized:
			reasons = append(reasons, fmt.Sprintf("waiting for dependency %s, synchronized elsewhere", d.Ref))
		default:
			if d.Code == models.CodeError && failed == "" {
				failed = syncstate.FailedDueTo(d.Ref, syncstate.LastError(d.Status))
			}
			need = append(need, d.Ref)
		}
	}
	if len(reasons) > 0 {
		return depsHeld, r.holdStatus(ctx, "deferred: "+strings.Join(reasons, "; "))
	}
	if len(need) == 0 {
		return depsReady, nil
	}
	waiting := "waiting for " + refNames(need)
	if failed != "" {
		waiting = failed
		if err := r.recordStatus(ctx, models.CodeError, failed); err != nil {
			return depsHeld, err
		}
	}
	r.setState(ctx, StateWaiting, waiting)
	results, err := r.await(ctx, need, engine.OpSync)
	if errors.Is(err, errChanged) {
		return depsRecheck, nil
	}
	if err != nil {
		return depsHeld, err
	}
	recheck := false
	for _, res := range results {
		switch res.Outcome {
		case StateInSync:
		case StateRecheck:
			recheck = true
		default:
			reasons = append(reasons, fmt.Sprintf("dependency %s is %s", res.Object, res.Outcome))
		}
	}
	if len(reasons) > 0 {
		return depsHeld, r.holdStatus(ctx, "deferred: "+strings.Join(reasons, "; "))
	}
	if recheck {
		// A dependency's workflow had just ended: look again at once.
		return depsRecheck, nil
	}
	return depsReady, nil
}
