package integration

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/converter"

	"github.com/tsync/tsync/internal/testmodels"
	"github.com/tsync/tsync/internal/workflows"
	"github.com/tsync/tsync/models"
)

// A failing sync is found by a visibility query on its state, carries its
// error in the memo, and answers the state query; once it succeeds, its
// state is in-sync.
func TestFailingSyncIsVisible(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	require.True(t, e.app.Params().SearchAttributes, "search attributes registered")
	var failing atomic.Bool
	failing.Store(true)
	e.rec.SetHook(func(ctx context.Context, op string, ref models.Ref, obj models.Object) error {
		if ref.Model == "Site" && failing.Load() {
			return errors.New("switch unreachable")
		}
		return nil
	})
	site := e.insert(&testmodels.Site{Name: "broken"})
	slice := e.insert(&testmodels.Slice{Name: "behind", SiteID: site.ID})
	e.startWorker()
	e.startStarter()
	siteID := workflows.WorkflowID(e.cfg.ObserverName, site)
	sliceID := workflows.WorkflowID(e.cfg.ObserverName, slice)

	query := fmt.Sprintf("TsyncSynchronizer = %q AND TsyncState = 'error'", e.cfg.ObserverName)
	var found *workflowservice.ListWorkflowExecutionsResponse
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		resp, err := e.app.Client.ListWorkflow(e.ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query})
		require.NoError(c, err)
		found = resp
		assert.Len(c, resp.Executions, 1)
	}, 20*time.Second, 100*time.Millisecond, "query %s", query)
	x := found.Executions[0]
	require.Equal(t, siteID, x.Execution.WorkflowId)
	var status string
	require.NoError(t, converter.GetDefaultDataConverter().FromPayload(x.Memo.Fields["status"], &status))
	require.Equal(t, "switch unreachable", status)

	live := func(id string) workflows.LiveState {
		v, err := e.app.Client.QueryWorkflow(e.ctx, id, "", workflows.QueryState)
		require.NoError(t, err)
		var s workflows.LiveState
		require.NoError(t, v.Get(&s))
		return s
	}
	s := live(siteID)
	require.Equal(t, workflows.StateError, s.State)
	require.Equal(t, "switch unreachable", s.Status)
	require.Equal(t, "sync", s.Operation)
	// The scan starts the Slice's workflow once the Site's wave stalls (a
	// second without the Site getting in sync: see starter.Scan).
	require.Eventually(t, func() bool {
		v, err := e.app.Client.QueryWorkflow(e.ctx, sliceID, "", workflows.QueryState)
		var s workflows.LiveState
		return err == nil && v.Get(&s) == nil && s.State == workflows.StateWaiting
	}, 10*time.Second, 50*time.Millisecond)
	require.Equal(t, fmt.Sprintf("Failed due to error in model Site id %d: switch unreachable", site.ID), e.get(slice).BackendStatus)

	failing.Store(false)
	e.waitInSync(20*time.Second, site, slice)
	inSyncQuery := fmt.Sprintf("TsyncSynchronizer = %q AND TsyncState = 'in-sync' AND TsyncModel = 'Site' AND TsyncObjectID = %d", e.cfg.ObserverName, site.ID)
	require.Eventually(t, func() bool {
		resp, err := e.app.Client.ListWorkflow(e.ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: inSyncQuery})
		require.NoError(t, err)
		return len(resp.Executions) == 1
	}, 20*time.Second, 100*time.Millisecond, "query %s", inSyncQuery)
}
