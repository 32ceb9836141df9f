package integration

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync/internal/testmodels"
	"github.com/tsync/tsync/internal/workflows"
	"github.com/tsync/tsync/models"
)

// A restarted starter leaves alone the objects whose runs are at work on
// their content: its first scan asks visibility which runs are open
// (adoptRunning) and trusts those started after their object's content
// was written, rather than start each again (a failed creation in the
// server for every object of a backlog). An object changed after its run
// started is started again (the run may have read the old content), and
// the first starter of a task queue with nothing running asks nothing.
func TestRestartedStarterAdoptsRunsAtWork(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const n = 5
	var items []models.Ref
	for i := range n {
		items = append(items, e.insert(&testmodels.Item{Name: fmt.Sprintf("item-%d", i)}))
	}

	// No worker yet: the runs stay open.
	first := e.app.NewStarter()
	_, err := first.Scan(e.ctx)
	require.NoError(t, err)
	require.Equal(t, int64(n), first.Started())
	require.Zero(t, first.Adopted(), "nothing ran on the task queue")
	require.Eventually(t, func() bool { return len(e.openWorkflows()) == n }, 20*time.Second, 50*time.Millisecond)

	changed := items[0]
	e.rename(changed, "renamed")

	restarted := e.app.NewStarter()
	_, err = restarted.Scan(e.ctx)
	require.NoError(t, err)
	require.Equal(t, int64(n-1), restarted.Adopted())
	require.Equal(t, int64(1), restarted.Started(), "only the changed object's workflow is started (joined)")
	_, err = restarted.Scan(e.ctx)
	require.NoError(t, err)
	require.Equal(t, int64(1), restarted.Started(), "the adopted runs are trusted")
	require.Equal(t, int64(n-1), restarted.Adopted(), "only until a scan completed")

	e.startWorker()
	e.waitInSync(30*time.Second, items...)
	e.waitNoneOpen(15 * time.Second)
	for _, ref := range items {
		id := workflows.WorkflowID(e.cfg.ObserverName, ref)
		require.Len(t, e.runsOf(id), 1, "%s", ref)
		require.Len(t, e.rec.CallsOf("sync", ref), 1, "%s", ref)
	}
}
