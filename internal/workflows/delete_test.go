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

// Deletion runs in reverse dependency order: deleted dependents first.
func TestDeleteDependentsFirst(t *testing.T) {
	w := newWorld()
	site, slice, instance := ref("Site", 1), ref("Slice", 1), ref("Instance", 1)
	w.add(site, object{deleted: true})
	w.add(slice, object{deleted: true, deps: []models.Ref{site}})
	w.add(instance, object{deleted: true, deps: []models.Ref{slice}})
	h := newHarness(t, w, harnessOptions{})

	res, err := h.runDelete(t, site, testParams)
	require.NoError(t, err)
	require.Equal(t, workflows.Result{Object: site, Outcome: workflows.StateGone}, res)
	require.Equal(t, []models.Ref{instance, slice, site}, w.callsOf("DeleteObject"))
	require.Empty(t, w.statusRecords())
	for _, r := range []models.Ref{site, slice, instance} {
		_, ok := w.get(r)
		require.False(t, ok, "%s purged", r)
	}
}

// A deleted object that a live object still uses is held, with a status
// naming it, until the live object is gone.
func TestDeleteHeldWhileUsedByLiveObject(t *testing.T) {
	w := newWorld()
	site, slice := ref("Site", 1), ref("Slice", 2)
	w.add(site, object{deleted: true})
	w.add(slice, object{deps: []models.Ref{site}})
	h := newHarness(t, w, harnessOptions{})
	var purgedAt time.Duration
	h.env.RegisterDelayedCallback(func() {
		w.update(slice, func(o *object) { o.deleted = true })
		w.purge(slice)
		purgedAt = h.env.Now().Sub(h.t0)
	}, 3500*time.Millisecond)

	res, err := h.runDelete(t, site, testParams)
	require.NoError(t, err)
	require.Equal(t, workflows.Result{Object: site, Outcome: workflows.StateGone}, res)
	require.Equal(t, 3500*time.Millisecond, purgedAt)

	held := statusRecord{Ref: site, Code: models.CodePending, Text: "deferred: cannot delete, still used by model Slice id 2"}
	require.Equal(t, []statusRecord{held, held, held, held}, w.statusRecords(), "held at 0s, 1s, 2s and 3s")
	require.Equal(t, []time.Duration{0, time.Second, 2 * time.Second, 3 * time.Second}, h.offsets(h.startsOf("RecordStatus", site)))
	require.Equal(t, []models.Ref{site}, w.callsOf("DeleteObject"))
	require.Equal(t, []time.Duration{4 * time.Second}, h.offsets(h.startsOf("DeleteObject", site)), "deleted only once the Slice was gone")
	_, ok := w.get(site)
	require.False(t, ok, "Site purged")
}

// The counterpart: a deleted dependent undeleted while the DeleteWorkflow
// of its dependency waits for its child DeleteWorkflow. The child must not
// continue as the dependent's SyncWorkflow (held while the dependency is
// deleted, and deadlocked with it once the dependency is undeleted too): it
// ends, and the dependency's deletion is held with a status naming the
// dependent, until the dependency is undeleted.
func TestDeleteDependentUndeletedWhileWaited(t *testing.T) {
	w := newWorld()
	site, slice := ref("Site", 1), ref("Slice", 1)
	w.add(site, object{deleted: true})
	w.add(slice, object{deleted: true, deps: []models.Ref{site}})
	_, w.deleteHook = deferOnce(slice)
	h := newHarness(t, w, harnessOptions{})
	h.env.RegisterDelayedCallback(func() {
		w.update(slice, func(o *object) { o.deleted, o.pending = false, true })
	}, 500*time.Millisecond)
	h.env.RegisterDelayedCallback(func() {
		w.update(site, func(o *object) { o.deleted, o.pending = false, true })
	}, 3500*time.Millisecond)

	_, err := h.runDelete(t, site, testParams)
	var can *workflow.ContinueAsNewError
	require.True(t, errors.As(err, &can), "%v", err)
	require.Equal(t, workflows.SyncType, can.WorkflowType.Name)
	require.Equal(t, 4*time.Second, h.env.Now().Sub(h.t0))

	held := statusRecord{Ref: site, Code: models.CodePending, Text: "deferred: cannot delete, still used by model Slice id 1"}
	require.Equal(t, []statusRecord{held, held, held}, w.statusRecords())
	// Held from 1s, when the child ended (StateRecheck) and the Site looked
	// again at once (deleteRecheck), until it was undeleted.
	require.Equal(t, []time.Duration{time.Second, 2 * time.Second, 3 * time.Second}, h.offsets(h.startsOf("RecordStatus", site)))
	require.Equal(t, []models.Ref{slice}, w.callsOf("DeleteObject"), "only the deferred try")
	require.Equal(t, 1, h.childRuns("t/Slice/1"))
	require.Empty(t, w.callsOf("SyncObject"))
}

// A deleted dependent whose DeleteWorkflow ends just as the dependency's
// subscribes to it: the subscription fails, and the dependency looks again
// at once and is deleted, rather than after a loop interval (under load, a
// hard delete of a Site and its Slice purged the Site a minute late). A run
// that paused there before the change (its history has no delete-recheck
// marker) still pauses, to replay.
func TestDeleteDependentEndsAsWeSubscribe(t *testing.T) {
	for _, tc := range []struct {
		name   string
		old    bool
		relook time.Duration
	}{
		{name: "current", relook: 6 * time.Second},
		{name: "before delete-recheck", old: true, relook: 66 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld()
			site, slice := ref("Site", 1), ref("Slice", 1)
			w.add(site, object{deleted: true})
			w.add(slice, object{deleted: true, deps: []models.Ref{site}})
			h := newHarness(t, w, harnessOptions{
				stepDelay:      map[models.Ref]time.Duration{slice: 2 * time.Second},
				subscribeDelay: 5 * time.Second,
			})
			h.env.RegisterWorkflow(sharedDependencyParent)
			if tc.old {
				h.env.OnGetVersion("delete-recheck", workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
			}
			p := testParams
			p.LoopInterval = time.Minute

			h.env.SetStartWorkflowOptions(workflowOptions("t/parent"))
			h.env.ExecuteWorkflow(sharedDependencyParent, workflows.DeleteType, p, slice, []models.Ref{site})
			require.True(t, h.env.IsWorkflowCompleted())
			require.NoError(t, h.env.GetWorkflowError())
			var results []workflows.Result
			require.NoError(t, h.env.GetWorkflowResult(&results))
			require.Equal(t, []workflows.Result{
				{Object: slice, Outcome: workflows.StateGone},
				{Object: site, Outcome: workflows.StateGone},
			}, results)

			require.Equal(t, []models.Ref{slice, site}, w.callsOf("DeleteObject"))
			// The Site looked at 1s (the Slice deleted, its workflow
			// running: subscribe, delayed to 6s, finds it ended at 2s),
			// then again: at once, or (before) a loop interval later.
			require.Equal(t, []time.Duration{time.Second, tc.relook}, h.offsets(h.startsOf("Dependents", site)))
			require.Equal(t, []time.Duration{tc.relook}, h.offsets(h.startsOf("DeleteObject", site)))
			require.Equal(t, 1, h.childRuns("t/Slice/1"), "the Slice's workflow ran once")
			require.Empty(t, w.statusRecords())
			for _, r := range []models.Ref{site, slice} {
				_, ok := w.get(r)
				require.False(t, ok, "%s purged", r)
			}
		})
	}
}
