package integration

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync/config"
	"github.com/tsync/tsync/internal/testmodels"
	"github.com/tsync/tsync/models"
)

// changeTarget is issue 13's target for a change reaching a waiting sync;
// changeBound is what the tests assert, with room for a loaded machine.
const (
	changeTarget = 2 * time.Second
	changeBound  = 10 * time.Second
)

// minuteBackoff is a backoff of a minute after a failure, so that a step
// run within changeBound of a change can only have been woken by it.
func minuteBackoff(c *config.Config) {
	c.ObserverBackoffDisabled = false
	c.Retry.InitialInterval = time.Minute
	c.Retry.MaxInterval = time.Minute
	c.Retry.BackoffCoefficient = 2
}

var errBadName = errors.New("bad name")

// waitCalls waits until cond holds of ref's calls of op, and returns them.
func (e *env) waitCalls(op string, ref models.Ref, cond func([]testmodels.Call) bool) []testmodels.Call {
	e.t.Helper()
	var calls []testmodels.Call
	require.Eventually(e.t, func() bool {
		calls = e.rec.CallsOf(op, ref)
		return cond(calls)
	}, 30*time.Second, 20*time.Millisecond, "calls of %s on %s: %v", op, ref, e.rec.CallsOf(op, ref))
	return calls
}

func failedOnce(calls []testmodels.Call) bool { return len(calls) >= 1 && calls[0].Err != nil }

// rename saves ref's Item under name, and returns when it was committed.
func (e *env) rename(ref models.Ref, name string) time.Time {
	e.t.Helper()
	obj, err := e.app.Store.Get(e.ctx, ref.Model, ref.ID)
	require.NoError(e.t, err)
	obj.(*testmodels.Item).Name = name
	require.NoError(e.t, e.app.Store.Save(e.ctx, obj))
	return time.Now()
}

// A fix made during a minute's backoff is synced at once (issue 13, item 2).
func TestFixDuringBackoffSyncedAtOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, minuteBackoff)
	e.rec.SetHook(func(_ context.Context, op string, _ models.Ref, obj models.Object) error {
		if op == "sync" && obj.(*testmodels.Item).Name == "bad" {
			return errBadName
		}
		return nil
	})
	item := e.insert(&testmodels.Item{Name: "bad"})
	e.startWorker()
	e.startStarter()
	e.waitCalls("sync", item, failedOnce)
	time.Sleep(500 * time.Millisecond) // in the backoff now
	fixed := e.rename(item, "good")
	calls := e.waitCalls("sync", item, func(c []testmodels.Call) bool { return len(c) >= 2 && c[len(c)-1].Err == nil })
	took := calls[len(calls)-1].End.Sub(fixed)
	t.Logf("fix during a 1m backoff synced %v after the fix (target %v)", took.Round(time.Millisecond), changeTarget)
	require.Len(t, calls, 2, "no retry but the one the fix caused")
	require.Less(t, took, changeBound)
	e.waitInSync(changeBound, item)
}

// A delete made during a minute's backoff runs DeleteRecord at once.
func TestDeleteDuringBackoffDeletesAtOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, minuteBackoff)
	e.rec.SetHook(func(_ context.Context, op string, _ models.Ref, _ models.Object) error {
		if op == "sync" {
			return errBadName
		}
		return nil
	})
	item := e.insert(&testmodels.Item{Name: "doomed"})
	e.startWorker()
	e.startStarter()
	e.waitCalls("sync", item, failedOnce)
	time.Sleep(500 * time.Millisecond)
	require.NoError(t, e.app.Store.Delete(e.ctx, item.Model, item.ID))
	deleted := time.Now()
	calls := e.waitCalls("delete", item, func(c []testmodels.Call) bool { return len(c) >= 1 && !c[0].End.IsZero() })
	took := calls[0].Start.Sub(deleted)
	t.Logf("delete during a 1m backoff: DeleteRecord %v after the delete (target %v)", took.Round(time.Millisecond), changeTarget)
	require.Less(t, took, changeBound)
	require.NoError(t, calls[0].Err)
	require.Len(t, e.rec.CallsOf("sync", item), 1, "no sync retried")
	require.Eventually(t, func() bool { return !e.exists(item) }, changeBound, 50*time.Millisecond, "purged")
}

// An update made while the step runs is synced right after it.
func TestUpdateDuringStepSyncedAfterIt(t *testing.T) {
	t.Parallel()
	e := newEnv(t, minuteBackoff)
	e.rec.SetHook(func(ctx context.Context, op string, _ models.Ref, obj models.Object) error {
		if op == "sync" && obj.(*testmodels.Item).Name == "v1" {
			select {
			case <-time.After(2 * time.Second):
			case <-ctx.Done():
			}
		}
		return nil
	})
	item := e.insert(&testmodels.Item{Name: "v1"})
	e.startWorker()
	e.startStarter()
	e.waitCalls("sync", item, func(c []testmodels.Call) bool { return len(c) >= 1 })
	time.Sleep(300 * time.Millisecond)
	e.rename(item, "v2")
	calls := e.waitCalls("sync", item, func(c []testmodels.Call) bool { return len(c) >= 2 && !c[1].End.IsZero() })
	after := calls[1].Start.Sub(calls[0].End)
	t.Logf("update during a 2s step: synced again %v after that step ended", after.Round(time.Millisecond))
	require.NoError(t, calls[0].Err)
	require.NoError(t, calls[1].Err)
	require.True(t, calls[1].Updated.After(calls[0].Updated), "the second sync saw the update")
	require.Less(t, after, changeBound)
	e.waitInSync(changeBound, item)
}
