package workflows_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/tsync/tsync/internal/engine"
	"github.com/tsync/tsync/internal/workflows"
)

// Each operation has its workflow, started under its current type name; an
// unknown one is a programming error.
func TestWorkflowOf(t *testing.T) {
	require.Equal(t, "SyncWorkflow3", workflows.WorkflowOf(engine.OpSync))
	require.Equal(t, "DeleteWorkflow3", workflows.WorkflowOf(engine.OpDelete))
	require.Panics(t, func() { workflows.WorkflowOf("purge") })
}

// The step retry policy: backoff from the given initial interval by the
// coefficient (at least 1), capped at Max (at least initial).
func TestStepOptions(t *testing.T) {
	p := workflows.Params{
		Retry:            workflows.RetryParams{Initial: time.Second, Max: 8 * time.Second, Coefficient: 2},
		StepTimeout:      time.Minute,
		HeartbeatTimeout: 10 * time.Second,
	}
	o := p.StepOptions(2*time.Second, 1, "A", "B")
	require.Equal(t, time.Minute, o.StartToCloseTimeout)
	require.Equal(t, 10*time.Second, o.HeartbeatTimeout)
	require.Equal(t, &temporal.RetryPolicy{
		InitialInterval: 2 * time.Second, BackoffCoefficient: 2, MaximumInterval: 8 * time.Second,
		MaximumAttempts: 1, NonRetryableErrorTypes: []string{"A", "B"},
	}, o.RetryPolicy)

	p.Retry.Coefficient = 0
	o = p.StepOptions(16*time.Second, 0)
	require.Equal(t, &temporal.RetryPolicy{
		InitialInterval: 16 * time.Second, BackoffCoefficient: 1, MaximumInterval: 16 * time.Second,
	}, o.RetryPolicy)
}
