package activities_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"

	"github.com/tsync/tsync/internal/activities"
	"github.com/tsync/tsync/internal/storetest"
	"github.com/tsync/tsync/models"
)

// SyncReady heartbeats while it inspects, as while its step runs: on a slow
// database its queries may outlast the heartbeat timeout, which would time
// the attempt out before its step began. The inspection here waits 2.5 s
// for a lock on the table; the object, no_sync, is not ready, so no step
// runs.
func TestSyncReadyHeartbeatsWhileInspecting(t *testing.T) {
	ctx := storetest.Ctx(t)
	store := storetest.NewStore(t, storetest.Registry(t))
	site := &storetest.Site{Name: "a"}
	require.NoError(t, store.Insert(ctx, site))
	table := pgx.Identifier{store.Schema(), "site"}.Sanitize()
	_, err := store.Pool().Exec(ctx, `UPDATE `+table+` SET no_sync = true WHERE id = $1`, site.ID)
	require.NoError(t, err)

	tx, err := store.Pool().Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `LOCK TABLE `+table+` IN ACCESS EXCLUSIVE MODE`)
	require.NoError(t, err)
	go func() {
		time.Sleep(2500 * time.Millisecond)
		_ = tx.Rollback(context.Background())
	}()

	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	a := &activities.Activities{Store: store}
	// Registered alone: export_test.go's methods are not activities.
	env.RegisterActivityWithOptions(a.SyncReady, activity.RegisterOptions{Name: "SyncReady"})
	var beats atomic.Int32
	env.SetOnActivityHeartbeatListener(func(*activity.Info, converter.EncodedValues) { beats.Add(1) })
	began := time.Now()
	val, err := env.ExecuteActivity(a.SyncReady, models.Ref{Model: "Site", ID: site.ID})
	require.NoError(t, err)
	require.GreaterOrEqual(t, time.Since(began), 2*time.Second, "the inspection waited for the lock")
	var out activities.ReadySync
	require.NoError(t, val.Get(&out))
	require.False(t, out.Ran)
	require.True(t, out.Inspection.Exists)
	require.True(t, out.Inspection.Blocked)
	// The SDK throttles heartbeats (without a heartbeat timeout, to one
	// every 30 s): at least one went out, and only the inspection ran.
	require.Positive(t, beats.Load(), "heartbeats during the inspection")
}
