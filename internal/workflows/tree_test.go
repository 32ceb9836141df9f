package workflows_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync/internal/activities"
	"github.com/tsync/tsync/internal/workflows"
	"github.com/tsync/tsync/models"
)

// inspectGraph adds w.cycles[r] and w.distant[r] to r's inspection, as the
// real Inspect finds them (a distant dependency is listed while it is not
// in sync). Called with w.mu held.
func (w *world) inspectGraph(r models.Ref, ins *activities.Inspection) {
	n := 0
	for _, c := range w.calls {
		if c.Activity == "Inspect" && c.Ref == r {
			n++
		}
	}
	if n >= w.cycleFrom[r] {
		ins.Cycle = w.cycles[r]
	}
	for _, d := range w.distant[r] {
		do, ok := w.objs[d]
		if !ok || (do.synced && do.code != models.CodeError) {
			continue
		}
		ins.Deps = append(ins.Deps, activities.DepState{
			Ref: d, Exists: true, Pending: do.pending, Synced: do.synced, Code: do.code, Status: do.status,
			Synchronized: true, Distant: true,
		})
	}
}

// An object on a cycle is held in error naming the cycle, looked at again
// every loop interval, and synced once the cycle is gone; its dependency
// on the cycle is not waited for meanwhile.
func TestSyncCycleHeldUntilFixed(t *testing.T) {
	w := newWorld()
	a, b := ref("Network", 3), ref("Network", 5)
	w.add(a, object{pending: true, deps: []models.Ref{b}})
	w.add(b, object{pending: true, deps: []models.Ref{a}})
	w.cycles = map[models.Ref][]models.Ref{a: {a, b, a}, b: {b, a, b}}
	h := newHarness(t, w, harnessOptions{})
	h.env.RegisterDelayedCallback(func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.cycles = nil
		w.objs[a].deps = nil
	}, 1500*time.Millisecond)

	res, err := h.runSync(t, a, testParams)
	require.NoError(t, err)
	require.Equal(t, workflows.Result{Object: a, Outcome: workflows.StateInSync}, res)
	held := statusRecord{Ref: a, Code: models.CodeError, Text: "dependency cycle: Network 3 -> Network 5 -> Network 3"}
	require.Equal(t, []statusRecord{held, held}, w.statusRecords())
	require.Equal(t, []time.Duration{0, time.Second, 2 * time.Second}, h.offsets(h.startsOf("Inspect", a)))
	require.Equal(t, []models.Ref{a}, w.callsOf("SyncObject"), "b, on the cycle, is not synced by a's workflow")
	inSync(t, w, a)
}

// A deleted object on a cycle is held the same way: its deleted dependents
// on the cycle are not waited for, which would wait forever.
func TestDeleteCycleHeldUntilFixed(t *testing.T) {
	w := newWorld()
	a, b := ref("Network", 3), ref("Network", 5)
	w.add(a, object{deleted: true, deps: []models.Ref{b}})
	w.add(b, object{deleted: true, deps: []models.Ref{a}})
	w.cycles = map[models.Ref][]models.Ref{a: {a, b, a}}
	h := newHarness(t, w, harnessOptions{})
	h.env.RegisterDelayedCallback(func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.cycles = nil
		w.objs[b].deps = nil
	}, 1500*time.Millisecond)

	res, err := h.runDelete(t, a, testParams)
	require.NoError(t, err)
	require.Equal(t, workflows.Result{Object: a, Outcome: workflows.StateGone}, res)
	held := statusRecord{Ref: a, Code: models.CodeError, Text: "dependency cycle: Network 3 -> Network 5 -> Network 3"}
	require.Equal(t, []statusRecord{held, held}, w.statusRecords())
	require.Equal(t, []models.Ref{a}, w.callsOf("DeleteObject"))
	require.Equal(t, []models.Ref{a}, w.callsOf("Dependents"), "its dependents are looked at only once the cycle is gone")
	_, exists := w.get(a)
	require.False(t, exists)
}

// A distant dependency (pending, reached through an in-sync Slice) is
// synced by a child workflow before the object: M1 <- M2 <- M3.
func TestSyncWaitsForDistantDependency(t *testing.T) {
	w := newWorld()
	site, slice, inst := ref("Site", 1), ref("Slice", 1), ref("Instance", 1)
	w.add(site, object{pending: true})
	w.add(slice, object{synced: true, code: models.CodeOK, status: "OK", deps: []models.Ref{site}})
	w.add(inst, object{pending: true, deps: []models.Ref{slice}})
	w.distant = map[models.Ref][]models.Ref{inst: {site}}
	h := newHarness(t, w, harnessOptions{})

	res, err := h.runSync(t, inst, testParams)
	require.NoError(t, err)
	require.Equal(t, workflows.Result{Object: inst, Outcome: workflows.StateInSync}, res)
	require.Equal(t, []models.Ref{site, inst}, w.callsOf("SyncObject"), "the Site first; the Slice, in sync, not at all")
	inSync(t, w, site, slice, inst)
}

// A cycle closed while a's workflow waits for its child b, both on it: the
// child does not hold (its parent would wait forever without showing the
// cycle) but records its status and ends with StateRecheck; a looks again,
// finds the cycle and holds until it is fixed.
func TestSyncCycleChildOfMemberEnds(t *testing.T) {
	w := newWorld()
	a, b := ref("Network", 3), ref("Network", 5)
	w.add(a, object{pending: true, deps: []models.Ref{b}})
	w.add(b, object{pending: true, deps: []models.Ref{a}})
	w.cycles = map[models.Ref][]models.Ref{a: {a, b, a}, b: {b, a, b}}
	w.cycleFrom = map[models.Ref]int{a: 2}
	h := newHarness(t, w, harnessOptions{})
	h.env.RegisterDelayedCallback(func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.cycles = nil
		w.objs[a].deps = nil
	}, 1500*time.Millisecond)

	res, err := h.runSync(t, a, testParams)
	require.NoError(t, err)
	require.Equal(t, workflows.Result{Object: a, Outcome: workflows.StateInSync}, res)
	heldA := statusRecord{Ref: a, Code: models.CodeError, Text: "dependency cycle: Network 3 -> Network 5 -> Network 3"}
	heldB := statusRecord{Ref: b, Code: models.CodeError, Text: "dependency cycle: Network 5 -> Network 3 -> Network 5"}
	require.Equal(t, []statusRecord{heldB, heldA, heldA}, w.statusRecords())
	require.Equal(t, []string{workflows.WorkflowID(testParams.Synchronizer, b)}, h.childStarts)
	require.Equal(t, []models.Ref{a}, w.callsOf("SyncObject"))
	o, _ := w.get(b)
	require.Equal(t, models.CodeError, o.code, "b, still pending, is the starter's to sync again")
}
