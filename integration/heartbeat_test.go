package integration

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync/config"
	"github.com/tsync/tsync/internal/testmodels"
	"github.com/tsync/tsync/internal/workflows"
)

// An attempt heartbeats through all its parts, not only its step: with a
// 1 s heartbeat timeout, a sync whose row another transaction holds locked
// for 4 s (its BeginSync waits, after an inspection that took a moment) is
// not timed out by the server while it waits. The step runs once, its
// attempt completes, and the run's history holds no timeout. Before, only
// the inspection and the step heartbeat, each on its own interval: a part
// in between that outlasted the timeout, or parts each shorter than an
// interval adding up to more, had the attempt timed out while it worked.
func TestAttemptHeartbeatsWhileRowLocked(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *config.Config) { c.HeartbeatTimeout = time.Second })
	item := e.insert(&testmodels.Item{Name: "locked"})
	m, _ := e.app.Store.Graph().Model("Item")

	tx, err := e.app.Store.Pool().Begin(e.ctx)
	require.NoError(t, err)
	defer tx.Rollback(e.ctx) //nolint:errcheck // rolled back below
	_, err = tx.Exec(e.ctx, `SELECT id FROM `+e.app.Store.Table(m)+` WHERE id = $1 FOR UPDATE`, item.ID)
	require.NoError(t, err)

	e.startWorker()
	e.startStarter()
	// The attempt's BeginSync waits for the row.
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		var n int
		require.NoError(c, e.app.Store.Pool().QueryRow(e.ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE 'UPDATE %'`+
			` AND query LIKE '%' || $1 || '%'`, e.app.Store.Table(m)).Scan(&n))
		assert.Positive(c, n, "no sync waits for the locked row: %s", e.describe(item))
	}, 30*time.Second, 20*time.Millisecond)
	time.Sleep(4 * time.Second)
	require.Empty(t, e.rec.CallsOf("sync", item), "the step ran while its row was locked")
	require.NoError(t, tx.Rollback(e.ctx))

	e.waitInSync(30*time.Second, item)
	require.Len(t, e.rec.CallsOf("sync", item), 1)
	require.Equal(t, "OK", e.get(item).BackendStatus)
	e.waitNoneOpen(15 * time.Second)

	id := workflows.WorkflowID(e.cfg.ObserverName, item)
	var activityEvents []string
	for _, ev := range history(t, e, id, "").GetEvents() {
		if name := ev.GetEventType().String(); strings.HasPrefix(name, "ActivityTask") {
			activityEvents = append(activityEvents, name)
		}
	}
	require.Equal(t, []string{"ActivityTaskScheduled", "ActivityTaskStarted", "ActivityTaskCompleted"}, activityEvents,
		"runs: %v", e.runsOf(id))
	require.Empty(t, e.rec.Violations())
}
