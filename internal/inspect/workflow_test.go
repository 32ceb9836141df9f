package inspect_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/tsync/tsync/internal/inspect"
	"github.com/tsync/tsync/internal/inspect/inspecttest"
	"github.com/tsync/tsync/internal/storetest"
	"github.com/tsync/tsync/internal/testenv"
	"github.com/tsync/tsync/internal/workflows"
)

// probeWorkflow stands for a sync that fails: it answers the state query
// with an error and runs an activity that fails, retried in an hour.
func probeWorkflow(ctx workflow.Context) error {
	live := workflows.LiveState{Object: "probe", Operation: "sync", State: workflows.StateError, Status: "probe failed"}
	if err := workflow.SetQueryHandler(ctx, workflows.QueryState, func() (workflows.LiveState, error) { return live, nil }); err != nil {
		return err
	}
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Hour, BackoffCoefficient: 2},
	})
	return workflow.ExecuteActivity(ctx, "probeStep").Get(ctx, nil)
}

func probeStep(context.Context) error { return errors.New("backend said no") }

// Object reads the workflow of an object: attempt, next retry and last
// failure of its pending activity, and its live state, which makes a
// pending object's State an error; with no worker to answer the query, it
// says so.
func TestObjectWorkflow(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	srv, err := testenv.StartTemporal(ctx)
	if err != nil && os.Getenv("CI") != "true" {
		t.Skipf("no Temporal dev server: %v", err)
	}
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Stop() })
	cl, err := client.Dial(client.Options{HostPort: srv.HostPort(), Namespace: "default"})
	require.NoError(t, err)
	t.Cleanup(cl.Close)

	f := inspecttest.New(t)
	queue := "inspect-" + testenv.Random(4)
	w := worker.New(cl, queue, worker.Options{})
	w.RegisterWorkflowWithOptions(probeWorkflow, workflow.RegisterOptions{Name: "probe"})
	w.RegisterActivityWithOptions(probeStep, activityOptions("probeStep"))
	require.NoError(t, w.Start())
	stopped := false
	defer func() {
		if !stopped {
			w.Stop()
		}
	}()

	in := inspect.New(f.Store, cl, inspect.Options{Synchronizer: "it" + testenv.Random(3), Namespace: "default", QueryTimeout: 5 * time.Second})
	id := fmt.Sprintf("%s/Site/%d", in.Options().Synchronizer, f.New.ID)
	_, err = cl.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: queue}, "probe")
	require.NoError(t, err)
	t.Cleanup(func() { _ = cl.TerminateWorkflow(context.Background(), id, "", "test done") })

	// Wait for the first attempt to fail.
	var o *inspect.Object
	require.Eventually(t, func() bool {
		o, err = in.Object(storetest.Ctx(t), "Site", f.New.ID)
		require.NoError(t, err)
		return o.Workflow.Attempt >= 2
	}, time.Minute, 200*time.Millisecond)
	wf := o.Workflow
	require.Equal(t, id, wf.ID)
	require.True(t, wf.Known)
	require.True(t, wf.Running)
	require.Equal(t, "Running", wf.Status)
	require.Equal(t, queue, wf.TaskQueue)
	require.Equal(t, "probeStep", wf.Activity)
	require.EqualValues(t, 2, wf.Attempt)
	require.Equal(t, "backend said no", wf.LastFailure)
	require.NotNil(t, wf.NextRetry)
	require.WithinRange(t, *wf.NextRetry, time.Now().Add(50*time.Minute), time.Now().Add(61*time.Minute))
	require.Equal(t, &workflows.LiveState{Object: "probe", Operation: "sync", State: workflows.StateError, Status: "probe failed"}, wf.Live)
	require.Empty(t, wf.Problem)
	// Its columns say pending (never synced); the live state says error.
	require.Equal(t, inspect.StatePending, inspect.Classify(o.Row))
	require.Equal(t, inspect.StateError, o.State)

	// No worker: the query goes unanswered, and Object says why.
	w.Stop()
	stopped = true
	o, err = in.Object(storetest.Ctx(t), "Site", f.New.ID)
	require.NoError(t, err)
	require.True(t, o.Workflow.Running)
	require.Nil(t, o.Workflow.Live)
	require.Equal(t, inspect.StatePending, o.State)
	require.Contains(t, o.Workflow.Problem, "is a worker polling task queue "+queue+"?")

	// An object whose workflow never ran.
	o, err = in.Object(storetest.Ctx(t), "Site", f.InSync.ID)
	require.NoError(t, err)
	require.True(t, o.Workflow.Known)
	require.False(t, o.Workflow.Running)
	require.Empty(t, o.Workflow.Status)
	require.Empty(t, o.Workflow.Problem)
}

func activityOptions(name string) activity.RegisterOptions {
	return activity.RegisterOptions{Name: name}
}
