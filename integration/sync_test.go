package integration

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync"
	"github.com/tsync/tsync/config"
	"github.com/tsync/tsync/internal/testmodels"
	"github.com/tsync/tsync/models"
)

// 1. Chain Site <- Slice <- Instance, all pending: synced in order, each OK.
func TestChainSyncsInDependencyOrder(t *testing.T) {
	e := newEnv(t)
	site, slice, inst := e.insertChain()
	e.startWorker()
	e.startStarter()
	e.waitInSync(20*time.Second, site, slice, inst)
	e.assertInSync(site, slice, inst)
	require.Equal(t, []models.Ref{site, slice, inst}, e.rec.Order("sync"))
	require.Empty(t, e.rec.Violations())
}

// 2. Diamond: A depends on B and C, both on D: D once, before B and C; A last.
func TestDiamondSyncsSharedDependencyOnce(t *testing.T) {
	e := newEnv(t)
	d := e.insert(&testmodels.D{Name: "d"})
	b := e.insert(&testmodels.B{Name: "b", DID: d.ID})
	c := e.insert(&testmodels.C{Name: "c", DID: d.ID})
	a := e.insert(&testmodels.A{Name: "a", BID: b.ID, CID: c.ID})
	e.startWorker()
	e.startStarter()
	e.waitInSync(20*time.Second, a, b, c, d)
	e.assertInSync(a, b, c, d)

	require.Len(t, e.rec.CallsOf("sync", d), 1, "D synced exactly once")
	order := e.rec.Order("sync")
	require.Len(t, order, 4)
	require.Equal(t, d, order[0])
	require.ElementsMatch(t, []models.Ref{b, c}, order[1:3])
	require.Equal(t, a, order[3])
	// Each dependent's call began after its dependency's call ended.
	dCall := e.rec.CallsOf("sync", d)[0]
	for _, r := range []models.Ref{b, c} {
		require.False(t, e.rec.CallsOf("sync", r)[0].Start.Before(dCall.End), "%s began before D ended", r)
	}
	require.Empty(t, e.rec.Violations())
}

// 3. Independent objects sync concurrently.
func TestIndependentObjectsSyncConcurrently(t *testing.T) {
	e := newEnv(t)
	var active, peak atomic.Int32
	e.rec.SetHook(func(ctx context.Context, op string, ref models.Ref, obj models.Object) error {
		n := active.Add(1)
		defer active.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(500 * time.Millisecond)
		return nil
	})
	var refs []models.Ref
	for i := range 20 {
		refs = append(refs, e.insert(&testmodels.Item{Name: fmt.Sprintf("item-%d", i)}))
	}
	start := time.Now()
	e.startWorker()
	e.startStarter()
	e.waitInSync(20*time.Second, refs...)
	elapsed := time.Since(start)
	t.Logf("20 objects x 500 ms step: all in sync after %v (serial would be 10s); peak concurrency %d", elapsed, peak.Load())
	e.assertInSync(refs...)
	// A bound with room for a loaded machine (steps 5 at a time take 2 s),
	// well under the serial 10 s.
	require.Less(t, elapsed, 6*time.Second, "20 x 500 ms must take far less than 10 s")
	require.GreaterOrEqual(t, peak.Load(), int32(5), "steps must overlap")
	require.Len(t, e.rec.Order("sync"), 20)
}

// 4. A failing Slice holds the Instance behind it until the Slice succeeds.
func TestFailureHoldsDependents(t *testing.T) {
	e := newEnv(t)
	var failing atomic.Bool
	failing.Store(true)
	var sliceAttempts atomic.Int32
	e.rec.SetHook(func(ctx context.Context, op string, ref models.Ref, obj models.Object) error {
		if ref.Model == "Slice" {
			sliceAttempts.Add(1)
			if failing.Load() {
				return errors.New("quota exceeded")
			}
		}
		return nil
	})
	site, slice, inst := e.insertChain()
	e.startWorker()
	e.startStarter()

	require.Eventually(t, func() bool { return sliceAttempts.Load() >= 3 }, 20*time.Second, 10*time.Millisecond)
	s := e.get(slice)
	require.Equal(t, models.CodeError, s.BackendCode)
	require.Equal(t, "quota exceeded", s.BackendStatus)
	require.Nil(t, s.Enacted)
	i := e.get(inst)
	require.Equal(t, models.CodeError, i.BackendCode)
	require.Equal(t, fmt.Sprintf("Failed due to error in model Slice id %d: quota exceeded", slice.ID), i.BackendStatus)
	require.Nil(t, i.Enacted)
	require.Empty(t, e.rec.CallsOf("sync", inst), "the Instance's SyncRecord must not run behind a failed Slice")
	e.assertInSync(site)

	failing.Store(false)
	e.waitInSync(20*time.Second, slice, inst)
	e.assertInSync(site, slice, inst)
	order := e.rec.Order("sync")
	require.Equal(t, []models.Ref{site, slice, inst}, order)
	require.Empty(t, e.rec.Violations())
}

// attemptGaps returns the time between the starts of successive calls.
func attemptGaps(calls []testmodels.Call) []time.Duration {
	var gaps []time.Duration
	for i := 1; i < len(calls); i++ {
		gaps = append(gaps, calls[i].Start.Sub(calls[i-1].Start))
	}
	return gaps
}

// timerSlack is how late the Temporal dev server fires a timer or a retry:
// its timers have about one second of granularity, so the intervals these
// tests use are whole seconds.
const timerSlack = 600 * time.Millisecond

// 5. Retries back off exponentially, capped; constant with backoff disabled.
func TestRetryBackoff(t *testing.T) {
	t.Parallel()
	const initial = time.Second
	for _, tc := range []struct {
		name     string
		disabled bool
		want     []time.Duration
	}{
		{"exponential", false, []time.Duration{initial, 2 * initial, 4 * initial, 4 * initial}},
		{"backoff disabled", true, []time.Duration{initial, initial, initial, initial}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, func(c *config.Config) {
				c.ObserverBackoffDisabled = tc.disabled
				c.Retry.InitialInterval = initial
				c.Retry.MaxInterval = 4 * initial
				c.Retry.BackoffCoefficient = 2
			})
			var attempts atomic.Int32
			e.rec.SetHook(func(ctx context.Context, op string, ref models.Ref, obj models.Object) error {
				if attempts.Add(1) <= int32(len(tc.want)) {
					return fmt.Errorf("attempt %d failed", attempts.Load())
				}
				return nil
			})
			item := e.insert(&testmodels.Item{Name: "flaky"})
			e.startWorker()
			e.startStarter()
			e.waitInSync(30*time.Second, item)
			calls := e.rec.CallsOf("sync", item)
			require.Len(t, calls, len(tc.want)+1)
			gaps := attemptGaps(calls)
			t.Logf("gaps between attempts: %v", gaps)
			for i, want := range tc.want {
				require.GreaterOrEqual(t, gaps[i], want-50*time.Millisecond, "gap %d", i)
				require.Less(t, gaps[i], want+timerSlack, "gap %d", i)
			}
			e.assertInSync(item)
		})
	}
}

// 6. A DeferredError is retried at the loop interval, never in error state.
func TestDeferredRetriesAtLoopInterval(t *testing.T) {
	t.Parallel()
	const loop = time.Second
	e := newEnv(t, func(c *config.Config) {
		c.LoopInterval = loop
		c.ObserverBackoffDisabled = false
		// Were deferrals retried with backoff, the gaps would be 1, 2, 4
		// and 8 s.
		c.Retry.InitialInterval = loop
		c.Retry.MaxInterval = 30 * time.Second
		c.Retry.BackoffCoefficient = 2
	})
	var attempts atomic.Int32
	e.rec.SetHook(func(ctx context.Context, op string, ref models.Ref, obj models.Object) error {
		if attempts.Add(1) <= 4 {
			return tsync.Deferf("waiting for quota")
		}
		return nil
	})
	item := e.insert(&testmodels.Item{Name: "later"})
	e.startWorker()
	e.startStarter()

	sawDeferred, sawError := false, false
	require.Eventually(t, func() bool {
		b := e.get(item)
		if b.BackendCode == models.CodeError {
			sawError = true
		}
		if b.BackendCode == models.CodePending && b.BackendStatus == "deferred: waiting for quota" {
			sawDeferred = true
		}
		return inSync(b)
	}, 30*time.Second, 5*time.Millisecond)
	require.True(t, sawDeferred, "status must read deferred: waiting for quota while deferred")
	require.False(t, sawError, "a deferred object is never in error state")
	calls := e.rec.CallsOf("sync", item)
	require.Len(t, calls, 5)
	gaps := attemptGaps(calls)
	t.Logf("gaps between deferred attempts: %v", gaps)
	for i, g := range gaps {
		require.GreaterOrEqual(t, g, loop-50*time.Millisecond, "gap %d", i)
		// A bound well under backoff's 4 and 8 s, not a timing: a loaded
		// machine delays a retry by more than the dev server's slack.
		require.Less(t, g, 3*loop, "gap %d: no backoff growth", i)
	}
	e.assertInSync(item)
}

// 7. An object updated while its SyncRecord runs is synced again.
func TestUpdateDuringSyncSyncsAgain(t *testing.T) {
	e := newEnv(t)
	var first atomic.Bool
	first.Store(true)
	e.rec.SetHook(func(ctx context.Context, op string, ref models.Ref, obj models.Object) error {
		if first.CompareAndSwap(true, false) {
			it, err := models.Load[testmodels.Item](ctx, e.app.Store, ref.ID)
			if err != nil {
				return err
			}
			it.Name = "changed during sync"
			return e.app.Store.Save(ctx, it)
		}
		return nil
	})
	item := e.insert(&testmodels.Item{Name: "original"})
	e.startWorker()
	e.startStarter()
	e.waitInSync(20*time.Second, item)
	calls := e.rec.CallsOf("sync", item)
	require.Len(t, calls, 2)
	final := e.get(item)
	require.True(t, calls[1].Updated.Equal(final.Updated), "second sync saw the second update")
	require.True(t, calls[0].Updated.Before(final.Updated))
	require.True(t, final.Enacted.Equal(final.Updated))
	e.assertInSync(item)
	it, err := models.Load[testmodels.Item](e.ctx, e.app.Store, item.ID)
	require.NoError(t, err)
	require.Equal(t, "changed during sync", it.Name)
}
