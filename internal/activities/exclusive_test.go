package activities_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync/internal/activities"
	"github.com/tsync/tsync/internal/storetest"
	"github.com/tsync/tsync/internal/testenv"
	"github.com/tsync/tsync/models"
)

// twoWorkers returns the activities of two worker processes of one
// synchronizer: one schema, a pool each.
func twoWorkers(t *testing.T) (*activities.Activities, *activities.Activities) {
	t.Helper()
	s1 := storetest.NewStore(t, storetest.Registry(t))
	pool, err := pgxpool.New(context.Background(), testenv.DatabaseURL())
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	s2, err := models.NewStore(pool, s1.Schema(), s1.Graph())
	require.NoError(t, err)
	return &activities.Activities{Store: s1}, &activities.Activities{Store: s2}
}

// span is when one step call ran.
type span struct{ start, end time.Time }

// timeline records when the step calls of each object ran, and the calls
// that began while another of their object ran.
type timeline struct {
	mu       sync.Mutex
	active   map[models.Ref]int
	spans    map[models.Ref][]span
	overlaps []string
}

func newTimeline() *timeline {
	return &timeline{active: map[models.Ref]int{}, spans: map[models.Ref][]span{}}
}

// step returns fn recorded as a step call of ref.
func (tl *timeline) step(ref models.Ref, fn func(context.Context) error) func(context.Context) error {
	return func(ctx context.Context) error {
		tl.mu.Lock()
		if tl.active[ref]++; tl.active[ref] > 1 {
			tl.overlaps = append(tl.overlaps, ref.String())
		}
		s := span{start: time.Now()}
		tl.mu.Unlock()
		defer func() {
			tl.mu.Lock()
			defer tl.mu.Unlock()
			tl.active[ref]--
			s.end = time.Now()
			tl.spans[ref] = append(tl.spans[ref], s)
		}()
		return fn(ctx)
	}
}

// of returns the calls of ref, in the order they began.
func (tl *timeline) of(ref models.Ref) []span {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	s := slices.Clone(tl.spans[ref])
	slices.SortFunc(s, func(a, b span) int { return a.start.Compare(b.start) })
	return s
}

// heldLock is an advisory lock of an object, as pg_locks shows it.
type heldLock struct {
	ID  int64
	PID int32
}

// locksOf lists the granted object locks of a's synchronizer for model.
func locksOf(t *testing.T, a *activities.Activities, model string) []heldLock {
	t.Helper()
	rows, err := a.Store.Pool().Query(context.Background(), `SELECT objid::bigint, pid FROM pg_locks
		WHERE locktype = 'advisory' AND objsubid = 2 AND granted AND classid = $1::bigint::oid ORDER BY 1, 2`,
		activities.LockClass(a.Store.Schema(), model))
	require.NoError(t, err)
	locks, err := pgx.CollectRows(rows, pgx.RowToStructByPos[heldLock])
	require.NoError(t, err)
	return locks
}

// Two workers' calls of one object never overlap, though the first ignores
// its context and outlives its attempt by far: the replacements wait for
// it, one at a time, whether on the other worker or on the same one. A
// call of another object runs meanwhile. Nothing stays locked.
func TestCallsOfOneObjectNeverOverlap(t *testing.T) {
	ctx := storetest.Ctx(t)
	w1, w2 := twoWorkers(t)
	x, y := models.Ref{Model: "Site", ID: 1}, models.Ref{Model: "Site", ID: 2}
	tl := newTimeline()
	started := make(chan struct{})
	first := make(chan error, 1)
	go func() {
		actx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		first <- w1.Call(actx, x, "sync", tl.step(x, func(context.Context) error {
			close(started)
			time.Sleep(800 * time.Millisecond)
			return nil
		}))
	}()
	<-started
	replacements := make(chan error, 2)
	for _, w := range []*activities.Activities{w2, w1} {
		go func() {
			replacements <- w.Call(ctx, x, "sync", tl.step(x, func(context.Context) error {
				time.Sleep(50 * time.Millisecond)
				return nil
			}))
		}()
	}
	require.NoError(t, w2.Call(ctx, y, "sync", tl.step(y, func(context.Context) error { return nil })))
	require.NoError(t, <-first)
	require.NoError(t, <-replacements)
	require.NoError(t, <-replacements)

	require.Empty(t, tl.overlaps)
	xs := tl.of(x)
	require.Len(t, xs, 3)
	for i := 1; i < len(xs); i++ {
		require.False(t, xs[i].start.Before(xs[i-1].end), "call %d of %s began before call %d ended: %v", i, x, i-1, xs)
	}
	ys := tl.of(y)
	require.Len(t, ys, 1)
	require.True(t, ys[0].end.Before(xs[0].end), "%s ran while the first call of %s ran: %v %v", y, x, ys, xs)
	require.Empty(t, locksOf(t, w1, "Site"))
	require.Empty(t, w1.HeldLocks())
	require.Empty(t, w2.HeldLocks())
}

// A call whose context ends while the previous call of its object runs
// fails with activities.ErrCallRunning, without running; the previous call keeps its
// lock. Once that call returns, the next one runs.
func TestCallWaitingOutItsContextFails(t *testing.T) {
	ctx := storetest.Ctx(t)
	w1, w2 := twoWorkers(t)
	x := models.Ref{Model: "Site", ID: 1}
	started, release := make(chan struct{}), make(chan struct{})
	first := make(chan error, 1)
	go func() {
		first <- w1.Call(ctx, x, "sync", func(context.Context) error {
			close(started)
			<-release
			return nil
		})
	}()
	<-started
	var ran atomic.Int32
	step := func(context.Context) error { ran.Add(1); return nil }
	actx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	err := w2.Call(actx, x, "sync", step)
	cancel()
	require.ErrorIs(t, err, activities.ErrCallRunning)
	require.Regexp(t, `^step timed out \(step_timeout\): Site 1: the previous step call of this object is still running \(waited \d+ms\)$`, err.Error())
	require.Zero(t, ran.Load())
	locks := locksOf(t, w1, "Site")
	require.Len(t, locks, 1)
	require.Equal(t, int64(1), locks[0].ID)
	require.Equal(t, []int64{x.ID}, w1.HeldLocks())
	require.Empty(t, w2.HeldLocks())

	close(release)
	require.NoError(t, <-first)
	require.NoError(t, w2.Call(ctx, x, "sync", step))
	require.Equal(t, int32(1), ran.Load())
	require.Empty(t, locksOf(t, w1, "Site"))
}

// A lock whose connection dies (its process died, as far as PostgreSQL
// knows) is freed: the other worker's call runs, though the first call has
// not returned. When it does, its release leaves nothing locked.
func TestLockOfDeadConnectionIsFreed(t *testing.T) {
	ctx := storetest.Ctx(t)
	w1, w2 := twoWorkers(t)
	x := models.Ref{Model: "Site", ID: 1}
	started, release := make(chan struct{}), make(chan struct{})
	first := make(chan error, 1)
	go func() {
		first <- w1.Call(ctx, x, "sync", func(context.Context) error {
			close(started)
			<-release
			return nil
		})
	}()
	<-started
	locks := locksOf(t, w1, "Site")
	require.Len(t, locks, 1)
	dead := locks[0].PID
	var killed bool
	require.NoError(t, w2.Store.Pool().QueryRow(ctx, `SELECT pg_terminate_backend($1)`, dead).Scan(&killed))
	require.True(t, killed)

	ran := false
	require.NoError(t, w2.Call(ctx, x, "sync", func(context.Context) error {
		ran = true
		locks = locksOf(t, w2, "Site")
		return nil
	}))
	require.True(t, ran)
	require.Len(t, locks, 1, "the second call's lock")
	require.NotEqual(t, dead, locks[0].PID)

	close(release)
	require.NoError(t, <-first)
	require.Empty(t, locksOf(t, w1, "Site"))
	require.Empty(t, w1.HeldLocks())
	require.Empty(t, w2.HeldLocks())
}

// A step that panics releases its lock: the next call runs at once.
func TestPanickingCallReleasesItsLock(t *testing.T) {
	ctx := storetest.Ctx(t)
	w1, w2 := twoWorkers(t)
	x := models.Ref{Model: "Site", ID: 1}
	err := w1.Call(ctx, x, "sync", func(context.Context) error { panic("boom") })
	require.ErrorContains(t, err, "panic: boom")
	actx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	require.NoError(t, w2.Call(actx, x, "sync", func(context.Context) error { return nil }))
	require.Empty(t, locksOf(t, w1, "Site"))
}

// CloseLocks closes the lock sessions a call left open (they linger for the
// next call), and a call after it opens one again.
func TestCloseClosesLockSessions(t *testing.T) {
	ctx := storetest.Ctx(t)
	w1, _ := twoWorkers(t)
	x := models.Ref{Model: "Site", ID: 1}
	noop := func(context.Context) error { return nil }
	require.NoError(t, w1.Call(ctx, x, "sync", noop))
	require.Equal(t, 1, w1.LockSessions(), "the session lingers")
	activities.CloseLocks(w1)
	require.Zero(t, w1.LockSessions())
	require.NoError(t, w1.Call(ctx, x, "sync", noop))
	require.Equal(t, 1, w1.LockSessions())
	activities.CloseLocks(w1)
}

// BenchmarkExclusive measures the lock's cost per step call (lock and
// unlock), against one round trip of the pool's (SELECT 1).
func BenchmarkExclusive(b *testing.B) {
	store := storetest.NewStore(b, storetest.Registry(b))
	a := &activities.Activities{Store: store}
	ctx := context.Background()
	noop := func(context.Context) error { return nil }
	var next atomic.Int64
	b.Run("call", func(b *testing.B) {
		for b.Loop() {
			if err := a.Exclusive(models.Ref{Model: "Site", ID: next.Add(1)}, noop)(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.SetParallelism(8)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := a.Exclusive(models.Ref{Model: "Site", ID: next.Add(1)}, noop)(ctx); err != nil {
					panic(fmt.Sprint(err))
				}
			}
		})
	})
	b.Run("select1", func(b *testing.B) {
		for b.Loop() {
			if _, err := store.Pool().Exec(ctx, `SELECT 1`); err != nil {
				b.Fatal(err)
			}
		}
	})
}
