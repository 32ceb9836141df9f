package watchers_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/tsync/tsync"
	"github.com/tsync/tsync/internal/activities"
	"github.com/tsync/tsync/internal/watchers"
	"github.com/tsync/tsync/internal/workflows"
)

// objectEnv runs WatchObjectWorkflow in the test suite with handle as its
// activity, and sends changes (event ids, with positions as given) at start.
func objectEnv(t *testing.T, handle func(req watchers.Request) (watchers.Outcome, error), changes map[string]int64) *testsuite.TestWorkflowEnvironment {
	var s testsuite.WorkflowTestSuite
	s.SetLogger(log.NewStructuredLogger(slog.New(slog.DiscardHandler)))
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflow(watchers.WatchObjectWorkflow)
	env.RegisterActivityWithOptions(func(_ context.Context, req watchers.Request) (watchers.Outcome, error) { return handle(req) },
		activity.RegisterOptions{Name: "HandleWatchedObject"})
	env.RegisterDelayedCallback(func() {
		for id, pos := range changes {
			env.SignalWorkflow(watchers.SignalChange, watchers.Change{Event: tsync.WatchEvent{ID: id, Changed: watchObject}, Pos: watchers.Position{Outbox: pos}})
		}
	}, 0)
	return env
}

func objectParams() watchers.ObjectRequest {
	return watchers.ObjectRequest{Watcher: "w", Object: watchObject, Linger: time.Minute, Params: workflows.Params{
		Synchronizer: "s", LoopInterval: time.Second, StepTimeout: time.Minute, HeartbeatTimeout: time.Minute,
		Retry: workflows.RetryParams{Initial: time.Second, Max: time.Second, Coefficient: 2},
	}}
}

// Changes sent together are handled in position order, whatever order the
// signals came in; one sent twice is handled once.
func TestObjectWorkflowOrdersAndDeduplicates(t *testing.T) {
	var got []string
	env := objectEnv(t, func(req watchers.Request) (watchers.Outcome, error) {
		got = append(got, req.Event.ID)
		require.True(t, req.Record)
		return watchers.OutcomeHandled, nil
	}, map[string]int64{"c": 3, "a": 1, "d": 4, "b": 2})
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(watchers.SignalChange, watchers.Change{Event: tsync.WatchEvent{ID: "b"}, Pos: watchers.Position{Outbox: 2}})
	}, 10*time.Second)
	env.ExecuteWorkflow(watchers.WatchObjectWorkflow, objectParams())
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	var res watchers.ObjectResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, []string{"a", "b", "c", "d"}, got)
	require.Equal(t, watchers.ObjectResult{Object: watchObject, Handled: 4, Duplicates: 1}, res)
}

// A change deferred for long continues as new, carrying the changes not
// handled yet (in order) and the ids handled.
func TestObjectWorkflowContinuesAsNewWithItsQueue(t *testing.T) {
	var calls int
	env := objectEnv(t, func(req watchers.Request) (watchers.Outcome, error) {
		calls++
		if req.Event.ID == "b" {
			return "", temporal.NewNonRetryableApplicationError("later", activities.ErrTypeDeferred, nil)
		}
		return watchers.OutcomeHandled, nil
	}, map[string]int64{"c": 3, "a": 1, "b": 2})
	env.ExecuteWorkflow(watchers.WatchObjectWorkflow, objectParams())
	require.True(t, env.IsWorkflowCompleted())
	var can *workflow.ContinueAsNewError
	require.ErrorAs(t, env.GetWorkflowError(), &can)
	var next watchers.ObjectRequest
	require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(can.Input, &next))
	var pending []string
	for _, c := range next.Pending {
		pending = append(pending, c.Event.ID)
	}
	require.Equal(t, []string{"b", "c"}, pending)
	require.Equal(t, []string{"a"}, next.Handled)
	require.Equal(t, 1+250, calls, "a, then b until the run's commands are spent")
}
