package workflows

import (
	"fmt"
	"strings"

	"go.temporal.io/sdk/workflow"

	"github.com/tsync/tsync/models"
)

// cycleStatus is the status of an object on a cycle of objects (through
// self-links), the cycle named from the object back to itself:
// "dependency cycle: Network 3 -> Network 5 -> Network 3".
func cycleStatus(cycle []models.Ref) string {
	names := make([]string, len(cycle))
	for i, ref := range cycle {
		names[i] = fmt.Sprintf("%s %d", ref.Model, ref.ID)
	}
	return "dependency cycle: " + strings.Join(names, " -> ")
}

// holdCycle records that the object is on a cycle of objects (code 2, the
// cycle as status), answers the workflows of the other objects on the cycle
// that wait for this one (see leaveCycle), and waits for the loop interval,
// before the object is inspected again: fixing the data frees it. Neither
// its dependencies (on the cycle, for a sync) nor its dependents (for a
// deletion) are waited for, which would wait forever. It returns true when
// the run must end now, with StateRecheck: a child whose parent is on the
// cycle. Inspections recorded before trees have no Cycle, so old histories
// never come here.
func (r *run) holdCycle(ctx workflow.Context, cycle []models.Ref) (bool, error) {
	status := cycleStatus(cycle)
	r.setState(ctx, StateHeld, status)
	if err := r.recordStatus(ctx, models.CodeError, status); err != nil {
		return false, err
	}
	if r.leaveCycle(ctx, cycle) {
		return true, nil
	}
	return false, r.pause(ctx)
}

// leaveCycle frees the workflows of the other objects on the cycle that
// wait for this one: they began to wait before the cycle closed, and would
// wait forever, showing no cycle. Subscribers on the cycle get
// StateRecheck and are dropped (they look again, find the cycle and hold
// themselves); others (objects below the cycle) keep waiting. It returns
// true for a child whose parent is on the cycle: that run must end (with
// StateRecheck) so that its parent can look again; the starter starts the
// object's workflow again.
func (r *run) leaveCycle(ctx workflow.Context, cycle []models.Ref) bool {
	on := map[string]bool{}
	for _, ref := range cycle {
		if ref != r.ref() {
			on[WorkflowID(r.req.Params.Synchronizer, ref)] = true
		}
	}
	if p := workflow.GetInfo(ctx).ParentWorkflowExecution; p != nil && on[p.ID] {
		return true
	}
	r.receiveSubscriptions()
	var keep []string
	var sent []workflow.Future
	for _, id := range r.subscribers {
		if !on[id] {
			keep = append(keep, id)
			continue
		}
		sent = append(sent, workflow.SignalExternalWorkflow(ctx, id, "", SignalDone, Done{WorkflowID: r.id, Result: r.result(StateRecheck)}))
	}
	for _, f := range sent {
		// A subscriber that is gone needs no answer.
		_ = f.Get(ctx, nil)
	}
	r.subscribers = keep
	return false
}
