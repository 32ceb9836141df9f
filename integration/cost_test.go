package integration

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/converter"

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

// A scan that starts a chain's objects together tells those whose
// dependencies it started too that they will likely wait (Request.Waits):
// they look first with the Inspect local activity rather than SyncReady,
// an activity that would only find them waiting. The Site, with no
// dependency, still looks and syncs in one SyncReady.
func TestScanHintsObjectsWhoseDependenciesArePending(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *config.Config) { c.LoopInterval = time.Minute })
	site, slice, inst := e.insertChain() // before the starter: its first scan starts them
	e.startWorker()
	e.startStarter()
	e.waitInSync(30*time.Second, site, slice, inst)

	for _, c := range []struct {
		ref   models.Ref
		waits bool
	}{{site, false}, {slice, true}, {inst, true}} {
		id := workflows.WorkflowID(e.cfg.ObserverName, c.ref)
		h := history(t, e, id, "")
		var req workflows.Request
		in := h.Events[0].GetWorkflowExecutionStartedEventAttributes().GetInput()
		require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(in, &req))
		require.Equal(t, c.waits, req.Waits, "%s: waits", c.ref)
		inspects := replaytest.Count(h, enumspb.EVENT_TYPE_MARKER_RECORDED, "Inspect")
		readies := replaytest.Count(h, enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED, "SyncReady")
		if c.waits {
			require.Positive(t, inspects, "%s: looks with Inspect", c.ref)
		} else {
			require.Zero(t, inspects, "%s: no Inspect", c.ref)
			require.Equal(t, 1, readies, "%s: one SyncReady", c.ref)
		}
	}
}
