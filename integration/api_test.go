package integration

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync"
	"github.com/tsync/tsync/config"
	"github.com/tsync/tsync/internal/syncstate"
	"github.com/tsync/tsync/internal/testmodels"
	"github.com/tsync/tsync/models"
)

// A change is picked up at once through NOTIFY, not at the next scan.
func TestNotifyWakesStarter(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *config.Config) { c.LoopInterval = time.Hour })
	e.startWorker()
	e.startStarter()
	time.Sleep(300 * time.Millisecond) // the first scan is done; the next is an hour away
	saved := time.Now()
	item := e.insert(&testmodels.Item{Name: "notified"})
	e.waitInSync(10*time.Second, item)
	calls := e.rec.CallsOf("sync", item)
	require.Len(t, calls, 1)
	t.Logf("pickup: save to SyncRecord start %v", calls[0].Start.Sub(saved))
	require.Less(t, calls[0].Start.Sub(saved), 3*time.Second)
}

// evenOnly is a step whose FetchPending override skips odd ids.
type evenOnly struct{ *testmodels.Recorder }

func (s evenOnly) Synchronizes() []models.Object { return []models.Object{new(testmodels.Item)} }

func (s evenOnly) FetchPending(ctx context.Context, q tsync.PendingQuery) ([]int64, error) {
	ids, err := q.Default(ctx)
	if err != nil {
		return nil, err
	}
	var out []int64
	for _, id := range ids {
		if id%2 == 0 {
			out = append(out, id)
		}
	}
	// Keep paging correct: report a full page when the default query did.
	if len(ids) == q.Limit && len(out) < q.Limit && len(ids) > 0 {
		out = append(out, ids[len(ids)-1])
	}
	return out, nil
}

// A step's FetchPending override decides which objects the starter starts.
func TestFetchPendingOverride(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *config.Config) { c.LoopInterval = 200 * time.Millisecond })
	step := evenOnly{Recorder: e.rec}
	require.Implements(t, (*tsync.PendingFetcher)(nil), step)
	ids, err := step.FetchPending(e.ctx, tsync.PendingQuery{Model: "Item", Limit: 10, Objects: syncstate.New(e.app.Store).Reader()})
	require.NoError(t, err)
	require.Empty(t, ids)
	var want []int64
	for i := range 4 {
		ref := e.insert(&testmodels.Item{Name: "x"})
		if i%2 == 1 {
			want = append(want, ref.ID)
		}
	}
	ids, err = step.FetchPending(e.ctx, tsync.PendingQuery{Model: "Item", Limit: 10, Objects: syncstate.New(e.app.Store).Reader()})
	require.NoError(t, err)
	require.Equal(t, want, ids)
}

// An InnocuousError is recorded with code 1 and holds nothing.
func TestInnocuousErrorRecordedAsOK(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.rec.SetHook(func(ctx context.Context, op string, ref models.Ref, obj models.Object) error {
		if ref.Model == "Site" {
			return tsync.Innocuous(errors.New("site already exists, adopted"))
		}
		return nil
	})
	site := e.insert(&testmodels.Site{Name: "s"})
	slice := e.insert(&testmodels.Slice{Name: "sl", SiteID: site.ID})
	e.startWorker()
	e.startStarter()
	e.waitInSync(20*time.Second, slice)
	b := e.get(site)
	require.Equal(t, models.CodeOK, b.BackendCode)
	require.Equal(t, "site already exists, adopted", b.BackendStatus)
	require.True(t, b.Enacted.Equal(b.Updated))
	require.Len(t, e.rec.CallsOf("sync", site), 1)
}

// A panicking step is recorded as an error; the worker lives on and the
// retry succeeds.
func TestPanickingStepIsAnError(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var calls atomic.Int32
	e.rec.SetHook(func(ctx context.Context, op string, ref models.Ref, obj models.Object) error {
		if calls.Add(1) == 1 {
			panic("boom")
		}
		return nil
	})
	item := e.insert(&testmodels.Item{Name: "p"})
	e.startWorker()
	e.startStarter()
	var status string
	require.Eventually(t, func() bool {
		b := e.get(item)
		if b.BackendCode == models.CodeError {
			status = b.BackendStatus
		}
		return inSync(b)
	}, 20*time.Second, 5*time.Millisecond)
	require.True(t, strings.HasPrefix(status, "panic: boom"), "status while failed: %q", status)
	require.Equal(t, int32(2), calls.Load())
	e.assertInSync(item)
}
