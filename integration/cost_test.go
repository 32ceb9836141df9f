package integration

import (
	"context"
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

// A scan that finds a chain's objects pending together starts them in
// waves: the Slice's workflow once the Site is in sync, the Instance's once
// the Slice is. Each then costs what an object with nothing to wait for
// costs (one SyncReady; no Inspect, child workflow or signal), rather than
// waiting in its workflow for its dependencies' (issue 15: in a graph of
// sites pending at once, that waiting was the extra server work).
func TestScanStartsDependentsInWaves(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *config.Config) { c.LoopInterval = time.Minute })
	site, slice, inst := e.insertChain() // before the starter: its first scan starts them
	e.startWorker()
	e.startStarter()
	e.waitInSync(30*time.Second, site, slice, inst)

	var prev models.Ref
	for _, ref := range []models.Ref{site, slice, inst} {
		h := history(t, e, workflows.WorkflowID(e.cfg.ObserverName, ref), "")
		require.False(t, startRequest(t, h).Waits, "%s: waits", ref)
		require.Zero(t, replaytest.Count(h, enumspb.EVENT_TYPE_MARKER_RECORDED, "Inspect"), "%s: no Inspect", ref)
		require.Equal(t, 1, replaytest.Count(h, enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED, "SyncReady"), "%s: one SyncReady", ref)
		require.Zero(t, replaytest.Count(h, enumspb.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED, ""), "%s: no child", ref)
		require.Zero(t, replaytest.Count(h, enumspb.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED, ""), "%s: no signal sent", ref)
		if prev != (models.Ref{}) {
			calls := e.rec.CallsOf("sync", prev)
			require.Len(t, calls, 1, "%s synced once", prev)
			require.False(t, h.Events[0].GetEventTime().AsTime().Before(calls[0].End), "%s started after %s was synced", ref, prev)
		}
		prev = ref
	}
}

// A wave that stalls (no dependency got in sync for WaveStall: here the
// Site's step takes 3s) does not hold its dependents back: the scan starts
// them with the Waits hint, and they wait in their workflows, looking
// first with the Inspect local activity rather than SyncReady, an
// activity that would only find them waiting.
func TestScanStartsDependentsOfAStalledWave(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *config.Config) { c.LoopInterval = time.Minute })
	site, slice, inst := e.insertChain()
	e.slowStep(site, 3*time.Second)
	e.startWorker()
	e.startStarter()
	e.waitInSync(30*time.Second, site, slice, inst)

	siteSynced := e.rec.CallsOf("sync", site)
	require.Len(t, siteSynced, 1)
	for _, c := range []struct {
		ref   models.Ref
		waits bool
	}{{site, false}, {slice, true}, {inst, true}} {
		h := history(t, e, workflows.WorkflowID(e.cfg.ObserverName, c.ref), "")
		require.Equal(t, c.waits, startRequest(t, h).Waits, "%s: waits", c.ref)
		inspects := replaytest.Count(h, enumspb.EVENT_TYPE_MARKER_RECORDED, "Inspect")
		readies := replaytest.Count(h, enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED, "SyncReady")
		if !c.waits {
			require.Zero(t, inspects, "%s: no Inspect", c.ref)
			require.Equal(t, 1, readies, "%s: one SyncReady", c.ref)
			continue
		}
		require.Positive(t, inspects, "%s: looks with Inspect", c.ref)
		// Started about WaveStall (1s) after the scan began, long before
		// the Site's 3s step ended.
		require.True(t, h.Events[0].GetEventTime().AsTime().Before(siteSynced[0].End), "%s started while the Site synced", c.ref)
	}
}

// Each object waits for its own dependencies only, not for the whole
// model they belong to: while one Site's step takes 4s, the Slice and
// Instance of another Site start once their own dependency is in sync,
// without the Waits hint; those of the slow Site start with it once none
// of the objects waited for got in sync for WaveStall.
func TestScanStartsEachDependentOnceItsOwnAreInSync(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *config.Config) { c.LoopInterval = time.Minute })
	slowSite, slowSlice, slowInst := e.insertChain()
	site, slice, inst := e.insertChain()
	e.slowStep(slowSite, 4*time.Second)
	e.startWorker()
	e.startStarter()
	e.waitInSync(30*time.Second, site, slice, inst, slowSite, slowSlice, slowInst)

	slowSynced := e.rec.CallsOf("sync", slowSite)
	require.Len(t, slowSynced, 1)
	prev := site
	for _, ref := range []models.Ref{slice, inst} {
		h := history(t, e, workflows.WorkflowID(e.cfg.ObserverName, ref), "")
		require.False(t, startRequest(t, h).Waits, "%s: waits", ref)
		require.Zero(t, replaytest.Count(h, enumspb.EVENT_TYPE_MARKER_RECORDED, "Inspect"), "%s: no Inspect", ref)
		calls := e.rec.CallsOf("sync", prev)
		require.Len(t, calls, 1, "%s synced once", prev)
		started := h.Events[0].GetEventTime().AsTime()
		require.False(t, started.Before(calls[0].End), "%s started after %s was synced", ref, prev)
		require.True(t, started.Before(slowSynced[0].End), "%s started while the slow Site synced", ref)
		prev = ref
	}
	for _, ref := range []models.Ref{slowSlice, slowInst} {
		h := history(t, e, workflows.WorkflowID(e.cfg.ObserverName, ref), "")
		require.True(t, startRequest(t, h).Waits, "%s: waits", ref)
		require.True(t, h.Events[0].GetEventTime().AsTime().Before(slowSynced[0].End), "%s started while the slow Site synced", ref)
	}
}

// slowStep makes every step call on ref take d (or until cancelled).
func (e *env) slowStep(ref models.Ref, d time.Duration) {
	e.rec.SetHook(func(ctx context.Context, _ string, r models.Ref, _ models.Object) error {
		if r == ref {
			select {
			case <-ctx.Done():
			case <-time.After(d):
			}
		}
		return nil
	})
}

// startRequest decodes the Request that started the run of h.
func startRequest(t *testing.T, h *historypb.History) workflows.Request {
	t.Helper()
	var req workflows.Request
	require.NoError(t, replaytest.StartInput(h, &req))
	return req
}
