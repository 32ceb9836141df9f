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
	require.Equal(t, []statusRecord{held, held}, w.statusRecords())
	require.Equal(t, []time.Duration{2 * time.Second, 3 * time.Second}, h.offsets(h.startsOf("RecordStatus", site)))
	require.Equal(t, []models.Ref{slice}, w.callsOf("DeleteObject"), "only the deferred try")
	require.Equal(t, 1, h.childRuns("t/Slice/1"))
	require.Empty(t, w.callsOf("SyncObject"))
}
