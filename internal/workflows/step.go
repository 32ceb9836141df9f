package workflows

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/tsync/tsync/internal/activities"
)

// step runs step activity fn (see runStep, retryStep) and decides what its
// end means to the run's loop: again reports that the caller looks at the
// object again (the step deferred and the loop interval has passed since,
// or, under changeSignals, it failed and its backoff is over or was cut
// short by a change of the object); err is a failure of the run (what names
// the step in it: "sync", "delete", "policies of"), or of the pause.
func (r *run) step(ctx workflow.Context, fn any, what string, out any) (again bool, err error) {
	if r.v2 {
		again, err = r.retryStep(ctx, fn, what, out)
		if again && err == nil {
			return true, nil
		}
	} else {
		err = r.runStep(ctx, fn, out)
	}
	switch {
	case activities.IsDeferred(err):
		// Recorded as "deferred: ..." by the activity; no backoff.
		return true, r.pause(ctx)
	case err != nil:
		return false, fmt.Errorf("%s %s: %w", what, r.ref(), err)
	}
	return false, nil
}

// runPolicy runs the object's model policies (as a step: retried with
// backoff, deferrable). The caller looks at the object again.
func (r *run) runPolicy(ctx workflow.Context) error {
	var out activities.Outcome
	_, err := r.step(ctx, acts.RunPolicy, "policies of", &out)
	return err
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
	if activities.IsDeferred(err) {
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
	if activities.IsDeferred(err) {
		r.setState(ctx, StateDeferred, "deferred: "+errorText(err))
	}
	return err
}

// retryStep runs one attempt of step activity fn (changeSignals). If it
// fails, it shows the object in error, with the attempt and the next
// retry's time in the memo, and waits on a durable timer for the backoff of
// that attempt (RetryParams.Schedule), then reports again: the caller looks
// at the object and runs the next attempt, counted on from the attempts
// carried in r.req.Retry while the content stays the same. A change signal
// that finds the content changed ends the wait at once and restarts the
// count (new content, new error sequence: the next failure waits Initial);
// other signals leave the wait as it was.
func (r *run) retryStep(ctx workflow.Context, fn any, what string, out any) (again bool, err error) {
	p := r.req.Params.Retry
	retry := r.req.Retry
	r.req.Retry = nil
	r.setState(ctx, StateRunning, r.live.Status)
	err = workflow.ExecuteActivity(r.stepOptions(ctx, p.Initial, 1), fn, r.ref()).Get(ctx, out)
	if err == nil || ctx.Err() != nil {
		r.setRetry(ctx, 0, time.Time{})
		return false, err
	}
	if ins, ok := activities.FailedInspection(err); ok {
		// SyncReady: the content this attempt synced.
		r.seen = contentOf(ins)
	}
	attempt := 1
	if retry != nil && retry.Step == what && retry.Updated.Equal(r.seen.updated) {
		attempt = retry.Attempt + 1
	}
	if activities.IsDeferred(err) {
		r.setRetry(ctx, 0, time.Time{})
		r.setState(ctx, StateDeferred, "deferred: "+errorText(err))
		return false, err
	}
	wait := p.delay(attempt)
	r.setRetry(ctx, attempt, workflow.Now(ctx).Add(wait))
	r.setState(ctx, StateError, errorText(err))
	woken, err := r.sleep(ctx, wait)
	if err != nil {
		return false, err
	}
	if !woken {
		r.req.Retry = &RetryState{Step: what, Attempt: attempt, Updated: r.seen.updated}
	}
	return true, nil
}

// stepOptions is ctx with the options of a step activity whose retries
// start at initial, for at most attempts attempts (0: forever).
func (r *run) stepOptions(ctx workflow.Context, initial time.Duration, attempts int32) workflow.Context {
	return workflow.WithActivityOptions(ctx, r.req.Params.StepOptions(initial, attempts, activities.ErrTypeDeferred))
}

// errorText is the message of an activity's failure, without the SDK's
// wrapping ("activity error (type: ..., ...): ").
func errorText(err error) string {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return appErr.Message()
	}
	var timeoutErr *temporal.TimeoutError
	if errors.As(err, &timeoutErr) {
		return fmt.Sprintf("step timed out (%s)", strings.ToLower(strings.TrimPrefix(timeoutErr.TimeoutType().String(), "TIMEOUT_TYPE_")))
	}
	return err.Error()
}
