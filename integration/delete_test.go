package integration

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync/internal/testmodels"
	"github.com/tsync/tsync/models"
)

func (e *env) delete(refs ...models.Ref) {
	e.t.Helper()
	for _, r := range refs {
		require.NoError(e.t, e.app.Store.Delete(e.ctx, r.Model, r.ID))
	}
}

func (e *env) waitGone(timeout time.Duration, refs ...models.Ref) {
	e.t.Helper()
	require.Eventually(e.t, func() bool {
		for _, r := range refs {
			if e.exists(r) {
				return false
			}
		}
		return true
	}, timeout, 20*time.Millisecond, "objects not purged: %s", e.describe(refs...))
}

// 8. Deletion runs in reverse dependency order, then purges.
func TestDeleteInReverseDependencyOrder(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	site, slice, inst := e.insertChain()
	e.startWorker()
	e.startStarter()
	e.waitInSync(20*time.Second, site, slice, inst)

	// Deleted dependencies first: the Site's deletion must wait for the rest.
	e.delete(site, slice, inst)
	e.waitGone(30*time.Second, site, slice, inst)
	require.Equal(t, []models.Ref{inst, slice, site}, e.rec.Order("delete"))
	require.Empty(t, e.rec.Violations())
}

// 8b. A deleted Site that a live Slice uses is held, naming the Slice.
func TestDeleteHeldByLiveDependent(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	site := e.insert(&testmodels.Site{Name: "s"})
	slice := e.insert(&testmodels.Slice{Name: "sl", SiteID: site.ID})
	e.startWorker()
	e.startStarter()
	e.waitInSync(20*time.Second, site, slice)

	e.delete(site)
	want := fmt.Sprintf("deferred: cannot delete, still used by model Slice id %d", slice.ID)
	require.Eventually(t, func() bool { return e.get(site).BackendStatus == want }, 20*time.Second, 20*time.Millisecond, e.describe(site))
	b := e.get(site)
	require.Equal(t, models.CodePending, b.BackendCode)
	require.True(t, b.Deleted)
	time.Sleep(1500 * time.Millisecond) // a few loop intervals
	require.Empty(t, e.rec.CallsOf("delete", site), "DeleteRecord must not run while a live object depends on it")
	require.True(t, e.exists(site))
	e.assertInSync(slice)

	e.delete(slice)
	e.waitGone(30*time.Second, site, slice)
	require.Equal(t, []models.Ref{slice, site}, e.rec.Order("delete"))
}

// An object deleted before it was ever synced is purged without DeleteRecord.
func TestDeleteNeverSyncedPurgesDirectly(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	item := e.insert(&testmodels.Item{Name: "never", Base: models.Base{NoSync: true}})
	e.delete(item)
	e.startWorker()
	e.startStarter()
	e.waitGone(20*time.Second, item)
	require.Empty(t, e.rec.Calls())
}
