package testmodels

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync/models"
)

// The Recorder's checks can fail: two overlapping calls of one object and a
// call older than one already seen are flagged; calls of two objects, and a
// delete after a newer sync, are not.
func TestRecorderFlagsConcurrentAndStaleCalls(t *testing.T) {
	r := NewRecorder(ChainDiamond()...)
	ctx := context.Background()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	item := func(id int64, updated time.Time) *Item {
		it := &Item{}
		it.ID, it.Updated = id, updated
		return it
	}
	inside := make(chan struct{})
	release := make(chan struct{})
	r.SetHook(func(ctx context.Context, op string, ref models.Ref, obj models.Object) error {
		if ref.ID == 1 && obj.SyncState().Updated.Equal(t0) {
			close(inside)
			<-release
		}
		return nil
	})
	done := make(chan struct{})
	go func() { defer close(done); _ = r.SyncRecord(ctx, item(1, t0)) }()
	<-inside
	require.NoError(t, r.SyncRecord(ctx, item(2, t0)))                  // another object: fine
	require.NoError(t, r.SyncRecord(ctx, item(1, t0.Add(time.Second)))) // overlaps call 1
	close(release)
	<-done
	require.NoError(t, r.SyncRecord(ctx, item(1, t0.Add(-time.Second)))) // older than seen
	require.NoError(t, r.DeleteRecord(ctx, item(2, t0)))                 // delete: own sequence
	require.Equal(t, []string{
		"concurrent sync of model Item id 1",
		"stale sync of model Item id 1: updated 2025-12-31 23:59:59 +0000 UTC, an earlier call saw 2026-01-01 00:00:01 +0000 UTC",
	}, r.Violations())
	require.Len(t, r.Calls(), 5)
	one, two := models.Ref{Model: "Item", ID: 1}, models.Ref{Model: "Item", ID: 2}
	require.Equal(t, []models.Ref{two, one, one, one}, r.Order("sync"), "in the order the calls ended")
	require.Equal(t, []models.Ref{two}, r.Order("delete"))
}
