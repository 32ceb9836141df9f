package workflows_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/tsync/tsync/internal/activities"
	"github.com/tsync/tsync/internal/workflows"
	"github.com/tsync/tsync/models"
)

// slowParams back off for a minute and pause ten minutes, so that a step
// run early can only have been woken by SignalChanged.
func slowParams() workflows.Params {
	p := testParams
	p.LoopInterval = 10 * time.Minute
	p.Retry = workflows.RetryParams{Initial: time.Minute, Max: 8 * time.Minute, Coefficient: 2}
	return p
}

// failFirst makes the first n sync steps fail with a step error.
func failFirst(w *world, n int) {
	w.syncHook = func(r models.Ref, k int, o *object) (activities.SyncResult, error, bool) {
		if k <= n {
			o.code, o.status = models.CodeError, "bad field"
			return activities.SyncResult{}, temporal.NewApplicationError("bad field", activities.ErrTypeStep), true
		}
		return activities.SyncResult{}, nil, false
	}
}

// changeAt changes ref in the world at workflow time at (if change is
// set) and signals SignalChanged to the workflow under test.
func changeAt(h *harness, r models.Ref, at time.Duration, change func(o *object)) {
	h.env.RegisterDelayedCallback(func() {
		if change != nil {
			h.w.update(r, change)
		}
		h.env.SignalWorkflow(workflows.SignalChanged, workflows.Changed{})
	}, at)
}

// bump is a content change: a new updated time.
func bump(o *object) { o.updated = o.updated.Add(time.Second) }

// A fix during a step's backoff runs the step at once, not at the end of
// the minute.
func TestChangeDuringBackoffRunsStepAtOnce(t *testing.T) {
	w := newWorld()
	site := ref("Site", 1)
	w.add(site, object{pending: true})
	failFirst(w, 1)
	h := newHarness(t, w, harnessOptions{})
	changeAt(h, site, 5*time.Second, bump)

	res, err := h.runSync(t, site, slowParams())
	require.NoError(t, err)
	require.Equal(t, workflows.StateInSync, res.Outcome)
	require.Equal(t, []time.Duration{0, 5 * time.Second}, h.offsets(h.startsOf("SyncObject", site)))
	inSync(t, w, site)
}

// A new content restarts the backoff at Initial: attempts 1 and 2 fail
// (1m, 2m apart would be next), the content changes during the 2m wait, the
// step runs at once, fails, and waits Initial again.
func TestChangeRestartsBackoffAtInitial(t *testing.T) {
	w := newWorld()
	site := ref("Site", 1)
	w.add(site, object{pending: true})
	failFirst(w, 3)
	h := newHarness(t, w, harnessOptions{})
	changeAt(h, site, 90*time.Second, bump)

	res, err := h.runSync(t, site, slowParams())
	require.NoError(t, err)
	require.Equal(t, workflows.StateInSync, res.Outcome)
	require.Equal(t, []time.Duration{0, time.Minute, 90 * time.Second, 150 * time.Second},
		h.offsets(h.startsOf("SyncObject", site)))
}

// A signal that finds the content unchanged (spurious, or a change of
// sync-state columns only) does not shorten the wait: the schedule stays
// 1m, 2m.
func TestSpuriousSignalKeepsSchedule(t *testing.T) {
	w := newWorld()
	site := ref("Site", 1)
	w.add(site, object{pending: true})
	failFirst(w, 2)
	h := newHarness(t, w, harnessOptions{})
	changeAt(h, site, 5*time.Second, nil)
	changeAt(h, site, 90*time.Second, func(o *object) { o.status = "touched" })

	res, err := h.runSync(t, site, slowParams())
	require.NoError(t, err)
	require.Equal(t, workflows.StateInSync, res.Outcome)
	starts := h.startsOf("SyncObject", site)
	require.Equal(t, []time.Duration{time.Minute, 2 * time.Minute}, gaps(starts))
	// Two looks after the signals, one before each attempt.
	require.Len(t, h.startsOf("Inspect", site), 5)
}

// A delete during a step's backoff continues as the object's DeleteWorkflow
// at once.
func TestDeleteDuringBackoffContinuesAsDelete(t *testing.T) {
	w := newWorld()
	site := ref("Site", 1)
	w.add(site, object{pending: true})
	failFirst(w, 100)
	h := newHarness(t, w, harnessOptions{})
	var at time.Duration
	h.env.RegisterDelayedCallback(func() {
		w.update(site, func(o *object) { o.deleted = true; bump(o) })
		h.env.SignalWorkflow(workflows.SignalChanged, workflows.Changed{})
	}, 5*time.Second)

	h.env.SetStartWorkflowOptions(workflowOptions(workflows.WorkflowID(testParams.Synchronizer, site)))
	h.env.ExecuteWorkflow(workflows.SyncType, workflows.Request{Object: site, Params: slowParams()})
	require.True(t, h.env.IsWorkflowCompleted())
	at = h.env.Now().Sub(h.t0)
	var can *workflow.ContinueAsNewError
	require.True(t, errors.As(h.env.GetWorkflowError(), &can), "%v", h.env.GetWorkflowError())
	require.Equal(t, workflows.DeleteType, can.WorkflowType.Name)
	require.Equal(t, 5*time.Second, at)
	require.Len(t, h.startsOf("SyncObject", site), 1)
}

// A held object (its dependency missing) whose own links change looks
// again at once, not after the loop interval.
func TestChangeWhileHeldLooksAgain(t *testing.T) {
	w := newWorld()
	site, missing := ref("Site", 1), ref("Network", 9)
	w.add(site, object{pending: true, deps: []models.Ref{missing}})
	h := newHarness(t, w, harnessOptions{})
	changeAt(h, site, 5*time.Second, func(o *object) { o.deps = nil; bump(o) })

	res, err := h.runSync(t, site, slowParams())
	require.NoError(t, err)
	require.Equal(t, workflows.StateInSync, res.Outcome)
	require.Equal(t, []time.Duration{5 * time.Second}, h.offsets(h.startsOf("SyncObject", site)))
}

// A deferred step is tried again at once when the object changes.
func TestChangeWhileDeferredLooksAgain(t *testing.T) {
	w := newWorld()
	site := ref("Site", 1)
	w.add(site, object{pending: true})
	w.syncHook = func(r models.Ref, n int, o *object) (activities.SyncResult, error, bool) {
		if n == 1 {
			return activities.SyncResult{}, temporal.NewNonRetryableApplicationError("later", activities.ErrTypeDeferred, nil), true
		}
		return activities.SyncResult{}, nil, false
	}
	h := newHarness(t, w, harnessOptions{})
	changeAt(h, site, 5*time.Second, bump)

	res, err := h.runSync(t, site, slowParams())
	require.NoError(t, err)
	require.Equal(t, workflows.StateInSync, res.Outcome)
	require.Equal(t, []time.Duration{0, 5 * time.Second}, h.offsets(h.startsOf("SyncObject", site)))
}

// A change of an object waiting for its dependency's workflow (a child in
// backoff) stops the wait and looks again: deleted, it continues as its
// DeleteWorkflow.
func TestChangeWhileAwaitingDependency(t *testing.T) {
	w := newWorld()
	slice, site := ref("Slice", 1), ref("Site", 1)
	w.add(site, object{pending: true})
	w.add(slice, object{pending: true, deps: []models.Ref{site}})
	failFirst(w, 2)
	h := newHarness(t, w, harnessOptions{})
	changeAt(h, slice, 5*time.Second, func(o *object) { o.deleted = true; bump(o) })

	h.env.SetStartWorkflowOptions(workflowOptions(workflows.WorkflowID(testParams.Synchronizer, slice)))
	h.env.ExecuteWorkflow(workflows.SyncType, workflows.Request{Object: slice, Params: slowParams()})
	require.True(t, h.env.IsWorkflowCompleted())
	var can *workflow.ContinueAsNewError
	require.True(t, errors.As(h.env.GetWorkflowError(), &can), "%v", h.env.GetWorkflowError())
	require.Equal(t, workflows.DeleteType, can.WorkflowType.Name)
	// Looked at again when signalled, and not after (the test environment
	// itself completes only once the abandoned child has ended).
	require.Equal(t, []time.Duration{0, 5 * time.Second}, h.offsets(h.startsOf("Inspect", slice)))
}
