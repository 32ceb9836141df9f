package workflows_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/workflow"

	"github.com/tsync/tsync/internal/activities"
	"github.com/tsync/tsync/internal/workflows"
	"github.com/tsync/tsync/models"
)

// A chain Site <- Slice <- Instance, all pending: the Instance's workflow
// syncs its dependencies first, by child workflows, each exactly once.
func TestSyncChainSyncsDependenciesFirst(t *testing.T) {
	w := newWorld()
	site, slice, instance := ref("Site", 1), ref("Slice", 1), ref("Instance", 1)
	w.add(site, object{pending: true})
	w.add(slice, object{pending: true, deps: []models.Ref{site}})
	w.add(instance, object{pending: true, deps: []models.Ref{slice}})
	h := newHarness(t, w, harnessOptions{})

	res, err := h.runSync(t, instance, testParams)
	require.NoError(t, err)
	require.Equal(t, workflows.Result{Object: instance, Outcome: workflows.StateInSync}, res)
	require.Equal(t, []models.Ref{site, slice, instance}, w.callsOf("SyncObject"))
	require.Empty(t, w.statusRecords())
	inSync(t, w, site, slice, instance)
}

// samples-go style isolation: the dependency's child workflow is mocked, so
// only the parent's own logic runs.
func TestSyncWithMockedChildWorkflow(t *testing.T) {
	w := newWorld()
	site, slice := ref("Site", 1), ref("Slice", 1)
	w.add(site, object{pending: true})
	w.add(slice, object{pending: true, deps: []models.Ref{site}})
	h := newHarness(t, w, harnessOptions{})

	// OnWorkflow mocks also catch the root workflow's execution in the test
	// environment: the root (the Slice) runs the real SyncWorkflow.
	isSlice := mock.MatchedBy(func(req workflows.Request) bool { return req.Object == slice })
	h.env.OnWorkflow(workflows.SyncType, mock.Anything, isSlice).Return(workflows.SyncWorkflow).Once()
	isSite := mock.MatchedBy(func(req workflows.Request) bool { return req.Object == site })
	h.env.OnWorkflow(workflows.SyncType, mock.Anything, isSite).
		Return(workflows.Result{Object: site, Outcome: workflows.StateInSync}, nil).Once()

	res, err := h.runSync(t, slice, testParams)
	require.NoError(t, err)
	require.Equal(t, workflows.Result{Object: slice, Outcome: workflows.StateInSync}, res)
	// Only the Slice's step ran: the Site's workflow was the mock.
	require.Equal(t, []models.Ref{slice}, w.callsOf("SyncObject"))
	require.Equal(t, []models.Ref{slice}, w.callsOf("Inspect"))
	o, _ := w.get(site)
	require.True(t, o.pending, "the mocked child did not touch the Site")
	inSync(t, w, slice)
}

// An object changed during its sync is synced again.
func TestSyncAgainWhenChangedDuringSync(t *testing.T) {
	w := newWorld()
	site := ref("Site", 1)
	w.add(site, object{pending: true})
	w.syncHook = func(r models.Ref, n int, o *object) (activities.SyncResult, error, bool) {
		if n == 1 {
			// Synced, but updated meanwhile: still pending.
			o.code, o.status = models.CodeOK, "OK"
			return activities.SyncResult{Outcome: activities.OutcomeOK, Pending: true}, nil, true
		}
		return activities.SyncResult{}, nil, false
	}
	h := newHarness(t, w, harnessOptions{})

	res, err := h.runSync(t, site, testParams)
	require.NoError(t, err)
	require.Equal(t, workflows.Result{Object: site, Outcome: workflows.StateInSync}, res)
	require.Equal(t, []models.Ref{site, site}, w.callsOf("SyncObject"))
	require.Equal(t, []models.Ref{site, site}, w.callsOf("Inspect"))
	inSync(t, w, site)
}

// A deleted object's SyncWorkflow continues as new as its DeleteWorkflow.
func TestSyncOfDeletedObjectContinuesAsDelete(t *testing.T) {
	w := newWorld()
	site := ref("Site", 1)
	w.add(site, object{pending: true, deleted: true})
	h := newHarness(t, w, harnessOptions{})

	_, err := h.runSync(t, site, testParams)
	require.Error(t, err)
	var can *workflow.ContinueAsNewError
	require.True(t, errors.As(err, &can), "%v", err)
	require.Equal(t, workflows.DeleteType, can.WorkflowType.Name)
	var req workflows.Request
	require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(can.Input, &req))
	require.Equal(t, workflows.Request{Object: site, Params: testParams}, req)
	require.Empty(t, w.callsOf("SyncObject"))
	require.Empty(t, w.callsOf("DeleteObject"))
}

// Model policies run before the sync (as a step activity), then the object
// is inspected again; a dependency's policies run in its own workflow.
func TestSyncRunsPoliciesFirst(t *testing.T) {
	w := newWorld()
	site, slice := ref("Site", 1), ref("Slice", 1)
	w.add(site, object{pending: true, policy: true})
	w.add(slice, object{pending: true, policy: true, deps: []models.Ref{site}})
	h := newHarness(t, w, harnessOptions{})

	res, err := h.runSync(t, slice, testParams)
	require.NoError(t, err)
	require.Equal(t, workflows.Result{Object: slice, Outcome: workflows.StateInSync}, res)
	require.Equal(t, []string{
		"Inspect Slice 1", "RunPolicy Slice 1", "Inspect Slice 1",
		"Inspect Site 1", "RunPolicy Site 1", "Inspect Site 1", "SyncObject Site 1",
		"SyncObject Slice 1",
	}, w.callLog())
	inSync(t, w, site, slice)
}

// An object's first look is the SyncReady activity, which runs its step
// when it is ready; with Waits (its starter saw its dependencies pending),
// it is the Inspect local activity, and the step its own activity after
// the dependencies. Either way, the Slice is synced after the Site.
func TestSyncFirstLookSyncReadyUnlessWaits(t *testing.T) {
	site, slice := ref("Site", 1), ref("Slice", 1)
	for _, waits := range []bool{false, true} {
		t.Run(fmt.Sprintf("waits=%v", waits), func(t *testing.T) {
			w := newWorld()
			w.add(site, object{pending: true})
			w.add(slice, object{pending: true, deps: []models.Ref{site}})
			h := newHarness(t, w, harnessOptions{})
			h.env.SetStartWorkflowOptions(workflowOptions(workflows.WorkflowID(testParams.Synchronizer, slice)))
			h.env.ExecuteWorkflow(workflows.SyncType, workflows.Request{Object: slice, Params: testParams, Waits: waits})
			require.True(t, h.env.IsWorkflowCompleted())
			require.NoError(t, h.env.GetWorkflowError())
			require.Equal(t, []models.Ref{site, slice}, w.callsOf("SyncObject"))

			first := h.startsOf("Inspect", slice)[0]
			require.Equal(t, waits, first.Local, "the Slice's first look is local")
			// The Site, a child with no Waits, always looks with SyncReady.
			require.False(t, h.startsOf("Inspect", site)[0].Local)
		})
	}
}
