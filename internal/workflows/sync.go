package workflows

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/tsync/tsync/internal/activities"
	"github.com/tsync/tsync/models"
)

// maxIterations bounds the loops of one run before it continues as new, to
// keep histories short.
const maxIterations = 100

// acts is used only for activity method references; workers register a real
// *activities.Activities.
var acts *activities.Activities

// SyncWorkflow brings req.Object in sync, its dependencies first. It ends
// when the object is in sync (OutcomeInSync), gone, blocked (no_sync,
// lazy_blocked) or deleted (it then continues as a DeleteWorkflow, unless it
// runs as a dependent's child: it then ends with OutcomeDeleted). Step
// failures are retried by the activity's retry policy, so the workflow waits
// until the step succeeds; deferred steps and held objects are tried again
// after the loop interval.
func SyncWorkflow(ctx workflow.Context, req Request) (Result, error) {
	r := newRun(ctx, req, "sync")
	res, err := r.sync(ctx)
	return r.finish(ctx, res, err)
}

// DeleteWorkflow deletes req.Object from the backend and purges its row,
// after every deleted object that depends on it; while live objects still
// depend on it, it is held with a status naming them.
func DeleteWorkflow(ctx workflow.Context, req Request) (Result, error) {
	r := newRun(ctx, req, "delete")
	res, err := r.delete(ctx)
	return r.finish(ctx, res, err)
}

// run is the state of one object workflow run.
type run struct {
	req         Request
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
}

func newRun(ctx workflow.Context, req Request, op string) *run {
	r := &run{
		req:         req,
		id:          workflow.GetInfo(ctx).WorkflowExecution.ID,
		subscribers: slices.Clone(req.Subscribers),
		subscribe:   workflow.GetSignalChannel(ctx, SignalSubscribe),
		done:        workflow.GetSignalChannel(ctx, SignalDone),
		results:     map[string]Result{},
	}
	// Subscriptions stay buffered in their channel until the run ends (see
	// notify). No coroutine may receive them meanwhile: a value handed to a
	// blocked coroutine is lost if the workflow completes before it runs.
	r.startState(ctx, op)
	return r
}

func (r *run) addSubscriber(id string) {
	if id != "" && !slices.Contains(r.subscribers, id) {
		r.subscribers = append(r.subscribers, id)
	}
}

func (r *run) ref() models.Ref { return r.req.Object }

func (r *run) result(o Outcome) Result { return Result{Object: r.ref(), Outcome: o} }

// finish notifies every subscriber of the run's end, unless it continues as
// new as the same kind of workflow, which carries them over.
func (r *run) finish(ctx workflow.Context, res Result, err error) (Result, error) {
	var can *workflow.ContinueAsNewError
	if errors.As(err, &can) {
		return res, err
	}
	if err != nil {
		res = r.result(OutcomeFailed)
		if temporal.IsCanceledError(err) {
			ctx, _ = workflow.NewDisconnectedContext(ctx)
		}
		r.setState(ctx, StateFailed, err.Error())
	} else {
		status := r.live.Status
		if res.Outcome == OutcomeInSync {
			status = "OK"
		}
		r.setState(ctx, outcomeStates[res.Outcome], status)
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
		for {
			var s Subscription
			if !r.subscribe.ReceiveAsync(&s) {
				break
			}
			r.addSubscriber(s.WorkflowID)
		}
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

// continueAsNew continues the run as workflow fn, carrying subscribers over
// when fn waits for the same thing they do.
func (r *run) continueAsNew(ctx workflow.Context, fn any, carry bool) (Result, error) {
	req := r.req
	req.Subscribers = nil
	if carry {
		for {
			var s Subscription
			if !r.subscribe.ReceiveAsync(&s) {
				break
			}
			r.addSubscriber(s.WorkflowID)
		}
		req.Subscribers = r.subscribers
	}
	return Result{}, workflow.NewContinueAsNewError(ctx, fn, req)
}

// isChild reports whether the run is a child workflow, started by another
// object's workflow that waits for its result (through continue-as-new).
func (r *run) isChild(ctx workflow.Context) bool {
	return workflow.GetInfo(ctx).ParentWorkflowExecution != nil
}

func (r *run) shouldContinueAsNew(ctx workflow.Context, iteration int) bool {
	return iteration >= maxIterations || workflow.GetInfo(ctx).GetContinueAsNewSuggested()
}

// bookkeepingContext is for the short database reads and writes of the
// workflow (Inspect, Dependents, RecordStatus): local activities, run in the
// worker that runs the workflow task, with no task queue round trip. A
// database outage makes them retry with backoff, for as long as it lasts.
func (r *run) bookkeepingContext(ctx workflow.Context) workflow.Context {
	return workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: 10 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    100 * time.Millisecond,
			BackoffCoefficient: 2,
			MaximumInterval:    30 * time.Second,
		},
	})
}

func (r *run) stepOptions(ctx workflow.Context, initial time.Duration, attempts int32) workflow.Context {
	p := r.req.Params
	coefficient := p.Retry.Coefficient
	if coefficient < 1 {
		coefficient = 1
	}
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: p.StepTimeout,
		HeartbeatTimeout:    p.HeartbeatTimeout,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        initial,
			BackoffCoefficient:     coefficient,
			MaximumInterval:        max(p.Retry.Max, initial),
			MaximumAttempts:        attempts,
			NonRetryableErrorTypes: []string{activities.ErrTypeDeferred},
		},
	})
}

// runPolicy runs the object's model policies (as a step: retried with
// backoff, deferrable).
func (r *run) runPolicy(ctx workflow.Context) error {
	var out activities.Outcome
	err := r.runStep(ctx, acts.RunPolicy, &out)
	if isDeferred(err) {
		return r.pause(ctx)
	}
	if err != nil {
		return fmt.Errorf("policies of %s: %w", r.ref(), err)
	}
	return nil
}

// runStep runs a step activity (fn) until it succeeds or defers. Its first
// attempt runs alone, so that the workflow sees a failure at once and shows
// itself in error (TsyncState, memo, query); the retries come from the
// activity's retry policy, starting one backoff step later, so the attempts
// are Initial, Initial*c, Initial*c², ... apart, capped at Max (c = 1 with
// observer_backoff_disabled).
func (r *run) runStep(ctx workflow.Context, fn any, out any) error {
	r.setState(ctx, StateRunning, r.live.Status)
	p := r.req.Params.Retry
	err := workflow.ExecuteActivity(r.stepOptions(ctx, p.Initial, 1), fn, r.ref()).Get(ctx, out)
	if err == nil || ctx.Err() != nil {
		return err
	}
	if isDeferred(err) {
		r.setState(ctx, StateDeferred, "deferred: "+errorText(err))
		return err
	}
	r.setState(ctx, StateError, errorText(err))
	if err := workflow.Sleep(ctx, p.Initial); err != nil {
		return err
	}
	next := p.Initial
	if p.Coefficient > 1 {
		next = min(time.Duration(float64(p.Initial)*p.Coefficient), max(p.Max, p.Initial))
	}
	err = workflow.ExecuteActivity(r.stepOptions(ctx, next, 0), fn, r.ref()).Get(ctx, out)
	if isDeferred(err) {
		r.setState(ctx, StateDeferred, "deferred: "+errorText(err))
	}
	return err
}

func (r *run) inspect(ctx workflow.Context) (activities.Inspection, error) {
	var ins activities.Inspection
	err := workflow.ExecuteLocalActivity(r.bookkeepingContext(ctx), acts.Inspect, r.ref()).Get(ctx, &ins)
	if err != nil {
		return ins, fmt.Errorf("inspect %s: %w", r.ref(), err)
	}
	return ins, nil
}

func (r *run) recordStatus(ctx workflow.Context, code int, status string) error {
	err := workflow.ExecuteLocalActivity(r.bookkeepingContext(ctx), acts.RecordStatus, r.ref(), code, status).Get(ctx, nil)
	if err != nil {
		return fmt.Errorf("record status of %s: %w", r.ref(), err)
	}
	return nil
}

// holdStatus records that the object is held, with code 0 and status.
func (r *run) holdStatus(ctx workflow.Context, status string) error {
	r.setState(ctx, StateHeld, status)
	return r.recordStatus(ctx, models.CodePending, status)
}

// hold records that the object is held and sleeps for the loop interval.
func (r *run) hold(ctx workflow.Context, status string) error {
	if err := r.holdStatus(ctx, status); err != nil {
		return err
	}
	return r.pause(ctx)
}

// refNames lists refs for a status.
func refNames(refs []models.Ref) string {
	names := make([]string, len(refs))
	for i, ref := range refs {
		names[i] = ref.String()
	}
	return nameSome(names)
}

func isDeferred(err error) bool {
	var appErr *temporal.ApplicationError
	return errors.As(err, &appErr) && appErr.Type() == activities.ErrTypeDeferred
}

func (r *run) sync(ctx workflow.Context) (Result, error) {
	for iteration := 0; ; iteration++ {
		if r.shouldContinueAsNew(ctx, iteration) {
			return r.continueAsNew(ctx, SyncWorkflow, true)
		}
		ins, err := r.inspect(ctx)
		if err != nil {
			return Result{}, err
		}
		switch {
		case !ins.Exists:
			return r.result(OutcomeGone), nil
		case ins.Deleted:
			if r.isChild(ctx) {
				// The parent, a dependent, waits for this child to end,
				// and a child that continues as new has not ended: it would
				// wait for the deletion, which waits for deleted dependents
				// (a deadlock). End; the starter starts the deletion.
				return r.result(OutcomeDeleted), nil
			}
			// Whoever waits for this object's sync must not wait for its
			// deletion (which may wait for them): answer now.
			r.notify(ctx, r.result(OutcomeDeleted))
			r.subscribers = nil
			return r.continueAsNew(ctx, DeleteWorkflow, false)
		case ins.NeedsPolicy:
			// Model policies run before the sync; then look again.
			if err := r.runPolicy(ctx); err != nil {
				return Result{}, err
			}
			continue
		case ins.Blocked:
			return r.result(OutcomeBlocked), nil
		case !ins.Pending:
			return r.result(OutcomeInSync), nil
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
			continue
		case depsRecheck:
			continue
		}

		var out activities.SyncResult
		err = r.runStep(ctx, acts.SyncObject, &out)
		switch {
		case isDeferred(err):
			// Recorded as "deferred: ..." by the activity; no backoff.
			if err := r.pause(ctx); err != nil {
				return Result{}, err
			}
			continue
		case err != nil:
			return Result{}, fmt.Errorf("sync %s: %w", r.ref(), err)
		}
		switch {
		case out.Outcome == activities.OutcomeGone:
			return r.result(OutcomeGone), nil
		case out.Outcome == activities.OutcomeOK && !out.Pending:
			return r.result(OutcomeInSync), nil
		}
		// Skipped (no longer pending) or synced: look again, which also
		// syncs again an object that changed during its sync.
	}
}

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
				failed = fmt.Sprintf("Failed due to error in %s: %s", d.Ref, lastError(d.Status))
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
	results, err := r.await(ctx, need, SyncWorkflow)
	if err != nil {
		return depsHeld, err
	}
	recheck := false
	for _, res := range results {
		switch res.Outcome {
		case OutcomeInSync:
		case OutcomeRecheck:
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

// lastError returns the latest error of a " // "-joined status.
func lastError(status string) string {
	if i := strings.LastIndex(status, " // "); i >= 0 {
		return status[i+4:]
	}
	return status
}

// await runs workflow fn for each of refs as a child, or, where the object's
// workflow is already running, subscribes to it, and returns every result.
func (r *run) await(ctx workflow.Context, refs []models.Ref, fn any) ([]Result, error) {
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
			op := "sync"
			if isDeleteWorkflow(fn) {
				op = "delete"
			}
			opts.TypedSearchAttributes = StartAttributes(r.req.Params.Synchronizer, ref, op).Typed
		}
		cctx := workflow.WithChildOptions(ctx, opts)
		child := workflow.ExecuteChildWorkflow(cctx, fn, Request{Object: ref, Params: r.req.Params})
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
			results[i] = Result{Object: waits[i].ref, Outcome: OutcomeRecheck}
			continue
		}
		waiting = append(waiting, i)
	}
	subscribed = waiting
	for i, w := range waits {
		if w.child == nil {
			continue
		}
		var res Result
		if err := w.child.Get(ctx, &res); err != nil {
			if temporal.IsCanceledError(err) && ctx.Err() != nil {
				return nil, err
			}
			if temporal.IsWorkflowExecutionAlreadyStartedError(err) {
				continue // handled above
			}
			res = Result{Object: w.ref, Outcome: OutcomeFailed}
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
			var d Done
			r.done.Receive(ctx, &d)
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			r.results[d.WorkflowID] = d.Result
		}
	}
	return results, nil
}

// isDeleteWorkflow reports whether fn is DeleteWorkflow.
func isDeleteWorkflow(fn any) bool {
	return reflect.ValueOf(fn).Pointer() == reflect.ValueOf(DeleteWorkflow).Pointer()
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

// pause waits for the loop interval, before an object held or deferred is
// tried again (a durable timer, without backoff).
func (r *run) pause(ctx workflow.Context) error {
	return workflow.Sleep(ctx, r.req.Params.LoopInterval)
}
