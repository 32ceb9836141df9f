package inspect_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/tsync/tsync/internal/inspect"
	"github.com/tsync/tsync/internal/inspect/inspecttest"
	"github.com/tsync/tsync/internal/storetest"
)

// queryClient describes every workflow as running on task queue "q" and
// answers state queries with queryErr.
type queryClient struct {
	client.Client
	queryErr error
}

func (queryClient) DescribeWorkflow(context.Context, string, string) (*client.WorkflowExecutionDescription, error) {
	return &client.WorkflowExecutionDescription{RawResponse: &workflowservice.DescribeWorkflowExecutionResponse{
		WorkflowExecutionInfo: &workflowpb.WorkflowExecutionInfo{
			Status:    enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING,
			TaskQueue: "q",
		},
	}}, nil
}

func (c queryClient) QueryWorkflow(context.Context, string, string, string, ...any) (converter.EncodedValue, error) {
	return nil, c.queryErr
}

// A server gives up on a query a little before the caller's deadline, with
// its own DeadlineExceeded: that too says no worker polls the task queue.
// It cancels one whose worker stopped polling before answering (Canceled).
// Any other query error is reported as it is.
func TestObjectQueryUnanswered(t *testing.T) {
	f := inspecttest.New(t)
	for _, tc := range []struct {
		name    string
		err     error
		problem string
	}{
		{"server deadline", serviceerror.NewDeadlineExceeded("query timed out before a worker could process it"),
			"no worker answered the state query within 3s: is a worker polling task queue q?"},
		{"worker gone", serviceerror.NewCanceled("context canceled"),
			"the worker handed the state query stopped before it answered: is a worker polling task queue q?"},
		{"other", errors.New("boom"), "state query failed: boom"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := inspect.New(f.Store, queryClient{queryErr: tc.err}, inspect.Options{Synchronizer: "s", Namespace: "default"})
			o, err := in.Object(storetest.Ctx(t), "Site", f.New.ID)
			require.NoError(t, err)
			require.True(t, o.Workflow.Running)
			require.Nil(t, o.Workflow.Live)
			require.Equal(t, tc.problem, o.Workflow.Problem)
		})
	}
}
