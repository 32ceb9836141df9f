package workflows

import (
	"fmt"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/tsync/tsync/internal/engine"
	"github.com/tsync/tsync/models"
)

// await runs the workflow of op for each of refs as a child, or, where the
// object's workflow is already running, subscribes to it, and returns every
// result. Under changeSignals, a change of the object ends the wait with
// errChanged (the children and subscriptions go on without it).
func (r *run) await(ctx workflow.Context, refs []models.Ref, op engine.Op) ([]Result, error) {
	type pending struct {
		ref   models.Ref
		id    string
		child workflow.ChildWorkflowFuture
	}
	var waits []pending
	for _, ref := range refs {
		id := WorkflowID(r.req.Params.Synchronizer, ref)
		opts := workflow.ChildWorkflowOptions{
			WorkflowID: id,
			// The dependency's sync outlives a cancelled or ended dependent.
			ParentClosePolicy: enumspb.PARENT_CLOSE_POLICY_ABANDON,
		}
		if r.req.Params.SearchAttributes {
			opts.TypedSearchAttributes = StartAttributes(r.req.Params.Synchronizer, ref, op).Typed
		}
		cctx := workflow.WithChildOptions(ctx, opts)
		child := workflow.ExecuteChildWorkflow(cctx, typeOf(op, r.current), Request{Object: ref, Params: r.req.Params})
		waits = append(waits, pending{ref: ref, id: id, child: child})
	}
	results := make([]Result, len(waits))
	// Those running already: ask each to tell us when it ends, all at once.
	var subscribed []int
	var signals []workflow.Future
	r.drainDone()
	for i, w := range waits {
		err := w.child.GetChildWorkflowExecution().Get(ctx, nil)
		if err == nil {
			continue
		}
		if !temporal.IsWorkflowExecutionAlreadyStartedError(err) {
			return nil, fmt.Errorf("start child %s: %w", w.id, err)
		}
		waits[i].child = nil
		delete(r.results, w.id)
		subscribed = append(subscribed, i)
		signals = append(signals, workflow.SignalExternalWorkflow(ctx, w.id, "", SignalSubscribe, Subscription{WorkflowID: r.id}))
	}
	waiting := subscribed[:0:0]
	for k, i := range subscribed {
		if err := signals[k].Get(ctx, nil); err != nil {
			// It ended in between: look again.
			results[i] = Result{Object: waits[i].ref, Outcome: StateRecheck}
			continue
		}
		waiting = append(waiting, i)
	}
	subscribed = waiting
	for i, w := range waits {
		if w.child == nil {
			continue
		}
		if woken, err := r.waitFuture(ctx, w.child); err != nil {
			return nil, err
		} else if woken {
			return nil, errChanged
		}
		var res Result
		if err := w.child.Get(ctx, &res); err != nil {
			if temporal.IsCanceledError(err) && ctx.Err() != nil {
				return nil, err
			}
			if temporal.IsWorkflowExecutionAlreadyStartedError(err) {
				continue // handled above
			}
			res = Result{Object: w.ref, Outcome: StateFailed}
		}
		results[i] = res
	}
	for _, i := range subscribed {
		w := waits[i]
		for {
			if res, ok := r.results[w.id]; ok {
				delete(r.results, w.id)
				results[i] = res
				break
			}
			woken, err := r.receiveDone(ctx)
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			if err != nil {
				return nil, err
			}
			if woken {
				return nil, errChanged
			}
		}
	}
	return results, nil
}

// drainDone moves Done signals already delivered into r.results.
func (r *run) drainDone() {
	for {
		var d Done
		if !r.done.ReceiveAsync(&d) {
			return
		}
		r.results[d.WorkflowID] = d.Result
	}
}
