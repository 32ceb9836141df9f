package workflows

import (
	"errors"
	"slices"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/tsync/tsync/internal/engine"
)

// maxIterations bounds the loops of one run before it continues as new, to
// keep histories short.
const maxIterations = 100

// finish notifies every subscriber of the run's end, unless it continues as
// new as the same kind of workflow, which carries them over.
func (r *run) finish(ctx workflow.Context, res Result, err error) (Result, error) {
	var can *workflow.ContinueAsNewError
	if errors.As(err, &can) {
		return res, err
	}
	if err != nil {
		res = r.result(StateFailed)
		if temporal.IsCanceledError(err) {
			ctx, _ = workflow.NewDisconnectedContext(ctx)
		}
		r.setState(ctx, StateFailed, err.Error())
	} else {
		state, status := res.Outcome, r.live.Status
		switch state {
		case StateInSync:
			status = "OK"
		case StateRecheck:
			// A result only: the object is looked at again.
			state = StatePending
		}
		r.setState(ctx, state, status)
	}
	r.notify(ctx, res)
	return res, err
}

// notify signals res to every subscriber, including those that subscribe
// while it does so.
func (r *run) notify(ctx workflow.Context, res Result) {
	notified := 0
	for {
		// Subscriptions already delivered but not yet received.
		r.receiveSubscriptions()
		if notified == len(r.subscribers) {
			return
		}
		var futures []workflow.Future
		for _, id := range r.subscribers[notified:] {
			futures = append(futures, workflow.SignalExternalWorkflow(ctx, id, "", SignalDone, Done{WorkflowID: r.id, Result: res}))
		}
		notified = len(r.subscribers)
		for _, f := range futures {
			// A subscriber that is gone needs no answer.
			_ = f.Get(ctx, nil)
		}
	}
}

// receiveSubscriptions adds the subscriptions already delivered to the
// subscribers.
func (r *run) receiveSubscriptions() {
	for {
		var s Subscription
		if !r.subscribe.ReceiveAsync(&s) {
			return
		}
		r.addSubscriber(s.WorkflowID)
	}
}

func (r *run) addSubscriber(id string) {
	if id != "" && !slices.Contains(r.subscribers, id) {
		r.subscribers = append(r.subscribers, id)
	}
}

func (r *run) shouldContinueAsNew(ctx workflow.Context, iteration int) bool {
	return iteration >= maxIterations || workflow.GetInfo(ctx).GetContinueAsNewSuggested()
}

// continueAsNew continues the run as the workflow of op, carrying
// subscribers over when it waits for the same thing they do.
func (r *run) continueAsNew(ctx workflow.Context, op engine.Op, carry bool) (Result, error) {
	req := r.req
	req.Subscribers = nil
	if op != r.op {
		req.Retry = nil
	}
	if carry {
		r.receiveSubscriptions()
		req.Subscribers = r.subscribers
	}
	return Result{}, workflow.NewContinueAsNewError(ctx, typeOf(op, r.current), req)
}
