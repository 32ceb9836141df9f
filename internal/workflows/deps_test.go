package workflows_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/workflow"

	"github.com/tsync/tsync/internal/workflows"
	"github.com/tsync/tsync/models"
)

// A diamond A->B, A->C, B->D, C->D: the shared D is synced once, before B
// and C (one of which subscribes to D's running workflow), and A is last.
//
// The subscription is delayed by 100ms of workflow time: without it, the
// subscriber's signal can reach D's child workflow in the same dispatch as
// the other dependent starts it, before the test environment has installed
// its signal handler, and the test environment then panics inside the
// subscriber (a nil signal handler: an SDK test-environment limitation; a
// Temporal server accepts a signal to a workflow as soon as it is started).
// (While an activity runs, the test environment fires a timer after its
// duration in wall time, so the delay must not be tiny.)
func TestSyncDiamondSyncsSharedDependencyOnce(t *testing.T) {
	w := newWorld()
	a, b, c, d := ref("A", 1), ref("B", 1), ref("C", 1), ref("D", 1)
	w.add(d, object{pending: true})
	w.add(b, object{pending: true, deps: []models.Ref{d}})
	w.add(c, object{pending: true, deps: []models.Ref{d}})
	w.add(a, object{pending: true, deps: []models.Ref{b, c}})
	h := newHarness(t, w, harnessOptions{
		stepDelay:      map[models.Ref]time.Duration{d: time.Second},
		subscribeDelay: 100 * time.Millisecond,
	})

	res, err := h.runSync(t, a, testParams)
	require.NoError(t, err)
	require.Equal(t, workflows.Result{Object: a, Outcome: workflows.StateInSync}, res)
	synced := w.callsOf("SyncObject")
	require.Len(t, synced, 4, "%v", synced)
	require.Equal(t, d, synced[0], "D first: %v", synced)
	require.ElementsMatch(t, []models.Ref{b, c}, synced[1:3])
	require.Equal(t, a, synced[3], "A last: %v", synced)
	// One workflow each: the dependent that did not start D waited for it.
	for _, id := range []string{"t/B/1", "t/C/1", "t/D/1"} {
		require.Equal(t, 1, h.childRuns(id), id)
	}
	require.Len(t, h.startsOf("Inspect", a), 1, "A was never held")
	require.Empty(t, w.statusRecords())
	// B, C and A synced as soon as D's 1s step ended.
	for _, r := range []models.Ref{a, b, c} {
		require.Equal(t, []time.Duration{time.Second}, h.offsets(h.startsOf("SyncObject", r)), "%s synced once D was", r)
	}
	inSync(t, w, a, b, c, d)
}

// sharedDependencyParent starts the workflow of type wf (SyncType or
// DeleteType) of first as a child, then, a second later, those of then
// (which wait for first) as children, and returns every result.
func sharedDependencyParent(ctx workflow.Context, wf string, p workflows.Params, first models.Ref, then []models.Ref) ([]workflows.Result, error) {
	startChild := func(r models.Ref) workflow.ChildWorkflowFuture {
		cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{WorkflowID: workflows.WorkflowID(p.Synchronizer, r)})
		return workflow.ExecuteChildWorkflow(cctx, wf, workflows.Request{Object: r, Params: p})
	}
	futures := []workflow.ChildWorkflowFuture{startChild(first)}
	if err := futures[0].GetChildWorkflowExecution().Get(ctx, nil); err != nil {
		return nil, err
	}
	if err := workflow.Sleep(ctx, time.Second); err != nil {
		return nil, err
	}
	for _, r := range then {
		futures = append(futures, startChild(r))
	}
	var results []workflows.Result
	for _, f := range futures {
		var res workflows.Result
		if err := f.Get(ctx, &res); err != nil {
			return nil, err
		}
		results = append(results, res)
	}
	return results, nil
}

// B and C depend on D, whose workflow is already running (its step takes 10s):
// their child starts of D fail as already started, so they subscribe, and D
// signals them when it ends.
func TestSyncWaitsForRunningDependency(t *testing.T) {
	w := newWorld()
	b, c, d := ref("B", 1), ref("C", 1), ref("D", 1)
	w.add(d, object{pending: true})
	w.add(b, object{pending: true, deps: []models.Ref{d}})
	w.add(c, object{pending: true, deps: []models.Ref{d}})
	h := newHarness(t, w, harnessOptions{stepDelay: map[models.Ref]time.Duration{d: 10 * time.Second}})
	h.env.RegisterWorkflow(sharedDependencyParent)

	h.env.SetStartWorkflowOptions(workflowOptions("t/parent"))
	h.env.ExecuteWorkflow(sharedDependencyParent, workflows.SyncType, testParams, d, []models.Ref{b, c})
	require.True(t, h.env.IsWorkflowCompleted())
	require.NoError(t, h.env.GetWorkflowError())
	var results []workflows.Result
	require.NoError(t, h.env.GetWorkflowResult(&results))
	require.Equal(t, []workflows.Result{
		{Object: d, Outcome: workflows.StateInSync},
		{Object: b, Outcome: workflows.StateInSync},
		{Object: c, Outcome: workflows.StateInSync},
	}, results)

	synced := w.callsOf("SyncObject")
	require.Len(t, synced, 3, "%v", synced)
	require.Equal(t, d, synced[0])
	require.ElementsMatch(t, []models.Ref{b, c}, synced[1:])
	// D's workflow ran once: B and C waited for it rather than running their own.
	for _, id := range []string{"t/B/1", "t/C/1", "t/D/1"} {
		require.Equal(t, 1, h.childRuns(id), id)
	}
	require.Len(t, h.startsOf("Inspect", b), 1, "B subscribed, was signalled, and synced")
	require.Len(t, h.startsOf("Inspect", c), 1, "C subscribed, was signalled, and synced")
	require.Empty(t, w.statusRecords())
	// B and C synced when D's 10s step ended, not before.
	for _, r := range []models.Ref{b, c} {
		require.Equal(t, []time.Duration{10 * time.Second}, h.offsets(h.startsOf("SyncObject", r)), "%s", r)
	}
	inSync(t, w, b, c, d)
}

// A dependency whose workflow ends just as the dependent subscribes: the
// subscription fails, and the dependent looks again and proceeds.
func TestSyncDependencyEndsAsWeSubscribe(t *testing.T) {
	w := newWorld()
	b, d := ref("B", 1), ref("D", 1)
	w.add(d, object{pending: true})
	w.add(b, object{pending: true, deps: []models.Ref{d}})
	h := newHarness(t, w, harnessOptions{
		stepDelay:      map[models.Ref]time.Duration{d: 2 * time.Second},
		subscribeDelay: 5 * time.Second,
	})
	h.env.RegisterWorkflow(sharedDependencyParent)

	h.env.SetStartWorkflowOptions(workflowOptions("t/parent"))
	h.env.ExecuteWorkflow(sharedDependencyParent, workflows.SyncType, testParams, d, []models.Ref{b})
	require.True(t, h.env.IsWorkflowCompleted())
	require.NoError(t, h.env.GetWorkflowError())
	var results []workflows.Result
	require.NoError(t, h.env.GetWorkflowResult(&results))
	require.Equal(t, []workflows.Result{
		{Object: d, Outcome: workflows.StateInSync},
		{Object: b, Outcome: workflows.StateInSync},
	}, results)

	require.Equal(t, []models.Ref{d, b}, w.callsOf("SyncObject"))
	// B inspected at 1s (D pending, running: subscribe, delayed to 6s, finds
	// D's workflow ended at 2s), then again at 6s, and synced.
	require.Equal(t, []time.Duration{time.Second, 6 * time.Second}, h.offsets(h.startsOf("Inspect", b)))
	require.Equal(t, []time.Duration{6 * time.Second}, h.offsets(h.startsOf("SyncObject", b)))
	inSync(t, w, b, d)
}

// A missing dependency holds the object ("deferred: ... does not exist"); it
// is inspected again every loop interval and synced once the dependency is
// there.
func TestSyncHeldOnMissingDependency(t *testing.T) {
	w := newWorld()
	site, slice := ref("Site", 9), ref("Slice", 1)
	w.add(slice, object{pending: true, deps: []models.Ref{site}})
	h := newHarness(t, w, harnessOptions{})
	h.env.RegisterDelayedCallback(func() {
		w.add(site, object{synced: true, code: models.CodeOK, status: "OK"})
	}, 2500*time.Millisecond)

	res, err := h.runSync(t, slice, testParams)
	require.NoError(t, err)
	require.Equal(t, workflows.Result{Object: slice, Outcome: workflows.StateInSync}, res)

	held := statusRecord{Ref: slice, Code: models.CodePending, Text: "deferred: dependency model Site id 9 does not exist"}
	require.Equal(t, []statusRecord{held, held, held}, w.statusRecords())
	require.Equal(t, []time.Duration{0, time.Second, 2 * time.Second, 3 * time.Second}, h.offsets(h.startsOf("Inspect", slice)))
	require.Equal(t, []models.Ref{slice}, w.callsOf("SyncObject"), "the Site, in sync, is not synced")
	require.Equal(t, []time.Duration{3 * time.Second}, h.offsets(h.startsOf("SyncObject", slice)))
	inSync(t, w, slice)
}

// A dependency deleted while a dependent's workflow waits for its child
// SyncWorkflow: the child must not continue as the dependency's
// DeleteWorkflow, which its parent would then wait for while the deletion
// waits for the (deleted) dependent: a deadlock. It ends with
// StateDeleted; the dependent is held, looks again, and, deleted itself,
// continues as its own DeleteWorkflow.
func TestSyncDependencyDeletedWhileDependentWaits(t *testing.T) {
	w := newWorld()
	site, slice := ref("Site", 1), ref("Slice", 1)
	w.add(site, object{pending: true})
	w.add(slice, object{pending: true, deps: []models.Ref{site}})
	w.syncHook, _ = deferOnce(site)
	h := newHarness(t, w, harnessOptions{})
	h.env.RegisterDelayedCallback(func() {
		w.update(site, func(o *object) { o.deleted, o.pending = true, false })
		w.update(slice, func(o *object) { o.deleted, o.pending = true, false })
	}, 500*time.Millisecond)

	_, err := h.runSync(t, slice, testParams)
	var can *workflow.ContinueAsNewError
	require.True(t, errors.As(err, &can), "%v", err)
	require.Equal(t, workflows.DeleteType, can.WorkflowType.Name)
	require.Equal(t, 2*time.Second, h.env.Now().Sub(h.t0))

	require.Equal(t, []statusRecord{{Ref: slice, Code: models.CodePending, Text: "deferred: dependency model Site id 1 is deleted"}}, w.statusRecords())
	require.Equal(t, []time.Duration{0, time.Second}, h.offsets(h.startsOf("Inspect", site)))
	require.Equal(t, []time.Duration{0, 2 * time.Second}, h.offsets(h.startsOf("Inspect", slice)))
	require.Equal(t, 1, h.childRuns("t/Site/1"))
	require.Empty(t, w.callsOf("DeleteObject"))
	require.Empty(t, w.callsOf("Dependents"), "the Site's deletion is not run by the Slice's sync")
}

// A dependency in error: the dependent records, at once, code 2 and
// "Failed due to error in <dependency>: <its latest error>", then waits for
// the dependency's sync.
func TestSyncDependencyInErrorShownOnDependent(t *testing.T) {
	w := newWorld()
	site, slice := ref("Site", 1), ref("Slice", 1)
	w.add(site, object{pending: true, code: models.CodeError, status: "no route // quota exceeded"})
	w.add(slice, object{pending: true, deps: []models.Ref{site}})
	h := newHarness(t, w, harnessOptions{})

	res, err := h.runSync(t, slice, testParams)
	require.NoError(t, err)
	require.Equal(t, workflows.Result{Object: slice, Outcome: workflows.StateInSync}, res)
	require.Equal(t, []statusRecord{{Ref: slice, Code: models.CodeError, Text: "Failed due to error in model Site id 1: quota exceeded"}}, w.statusRecords())
	require.Equal(t, []models.Ref{site, slice}, w.callsOf("SyncObject"))
	inSync(t, w, site, slice)
}
