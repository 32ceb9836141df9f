package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// StepOptions returns the options of a step activity (a step's SyncRecord
// or DeleteRecord, an object's model policies, a watcher's handler): the
// step and heartbeat timeouts, and a retry policy of exponential backoff
// from initial by Retry.Coefficient (1 when below 1), capped at Retry.Max
// (or initial, when larger), for at most attempts attempts (0: forever),
// that retries no error of the application error types nonRetryable.
//
// It is the one retry policy of tsync's step activities: the object
// workflows and the watchers' workflow use it.
func (p Params) StepOptions(initial time.Duration, attempts int32, nonRetryable ...string) workflow.ActivityOptions {
	coefficient := p.Retry.Coefficient
	if coefficient < 1 {
		coefficient = 1
	}
	return workflow.ActivityOptions{
		StartToCloseTimeout: p.StepTimeout,
		HeartbeatTimeout:    p.HeartbeatTimeout,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        initial,
			BackoffCoefficient:     coefficient,
			MaximumInterval:        max(p.Retry.Max, initial),
			MaximumAttempts:        attempts,
			NonRetryableErrorTypes: nonRetryable,
		},
	}
}

// bookkeepingContext is for the short database reads and writes of the
// workflow (Inspect, Dependents, RecordStatus): local activities, run in the
// worker that runs the workflow task, with no task queue round trip. A
// database outage makes them retry with backoff, for as long as it lasts.
func bookkeepingContext(ctx workflow.Context) workflow.Context {
	return workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: 10 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    100 * time.Millisecond,
			BackoffCoefficient: 2,
			MaximumInterval:    30 * time.Second,
		},
	})
}
