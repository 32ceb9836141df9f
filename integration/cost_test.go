package integration

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/tsync/tsync/config"
	"github.com/tsync/tsync/internal/replaytest"
	"github.com/tsync/tsync/internal/testmodels"
	"github.com/tsync/tsync/internal/workflows"
	"github.com/tsync/tsync/models"
)

// An object created while the starter listens costs its workflow what a
// workflow that only runs the step costs, and a search-attribute upsert or
// two: one run, started without a signal, whose one activity (SyncReady)
// looks at the object and runs its step; no local activity, timer or
// signal (issue 15, item 2). The loop interval is a minute, so that only
// the announcements start workflows.
func TestCreatedObjectCostsOneRunAndOneActivity(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *config.Config) { c.LoopInterval = time.Minute })
	e.startWorker()
	e.startStarter()
	time.Sleep(500 * time.Millisecond) // the starter's first scan, of nothing
	var refs []models.Ref
	for i := range 10 {
		refs = append(refs, e.insert(&testmodels.Item{Name: fmt.Sprintf("item-%d", i)}))
	}
	e.waitInSync(30*time.Second, refs...)

	for _, ref := range refs {
		id := workflows.WorkflowID(e.cfg.ObserverName, ref)
		var runs []string
		require.Eventually(t, func() bool {
			resp, err := e.app.Client.ListWorkflow(e.ctx, &workflowservice.ListWorkflowExecutionsRequest{
				Query: fmt.Sprintf("WorkflowId = %q", id)})
			require.NoError(t, err)
			runs = runs[:0]
			for _, ex := range resp.Executions {
				if ex.Status != enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
					return false
				}
				runs = append(runs, ex.Execution.RunId)
			}
			return len(runs) > 0
		}, 10*time.Second, 50*time.Millisecond, "the workflow of %s completed", ref)
		require.Len(t, runs, 1, "runs of %s", ref)

		h := history(t, e, id, runs[0])
		require.Equal(t, 1, replaytest.Count(h, enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED, ""), "%s: activities", ref)
		require.Equal(t, 1, replaytest.Count(h, enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED, "SyncReady"), "%s: the activity", ref)
		require.Zero(t, replaytest.Count(h, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED, ""), "%s: signals", ref)
		require.Zero(t, replaytest.Count(h, enumspb.EVENT_TYPE_TIMER_STARTED, ""), "%s: timers", ref)
		require.Zero(t, replaytest.Count(h, enumspb.EVENT_TYPE_MARKER_RECORDED, "Inspect"), "%s: local activities", ref)
	}
}

// history is the history of run of workflow id.
func history(t *testing.T, e *env, id, run string) *historypb.History {
	t.Helper()
	h := &historypb.History{}
	it := e.app.Client.GetWorkflowHistory(e.ctx, id, run, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(t, err)
		h.Events = append(h.Events, ev)
	}
	return h
}
