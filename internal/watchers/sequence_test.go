package watchers_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync"
	"github.com/tsync/tsync/internal/testmodels"
	"github.com/tsync/tsync/internal/watchers"
	"github.com/tsync/tsync/models"
)

// span is one handler call of the timeline watcher.
type span struct {
	obj        int64
	event      string
	start, end time.Time
	err        error
}

// timeline records the handler calls of a slow watcher of Instance that
// watches Slice (through slice_id).
type timeline struct {
	mu    sync.Mutex
	spans []span
	slow  time.Duration
	fail  func(event string, attempt int) error
	tries map[string]int
}

func (tl *timeline) watcher() tsync.Watcher {
	return tsync.WatcherOf[testmodels.Instance](tsync.WatcherFuncs[testmodels.Instance]{
		Name:  "seq",
		Links: []models.Link{{Dest: "Slice", Via: "slice_id"}},
		Handle: func(_ context.Context, i *testmodels.Instance, ev tsync.WatchEvent) error {
			s := span{obj: i.ID, event: ev.ID, start: time.Now()}
			tl.mu.Lock()
			tl.tries[ev.ID]++
			if tl.fail != nil {
				s.err = tl.fail(ev.ID, tl.tries[ev.ID])
			}
			tl.mu.Unlock()
			time.Sleep(tl.slow)
			s.end = time.Now()
			tl.mu.Lock()
			tl.spans = append(tl.spans, s)
			tl.mu.Unlock()
			return s.err
		},
	})
}

// of returns the calls for object id, in the order they started.
func (tl *timeline) of(id int64) []span {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	var out []span
	for _, s := range tl.spans {
		if s.obj == id {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b span) int { return a.start.Compare(b.start) })
	return out
}

// seqEnv is an env whose only watcher is tl's, with a second consumer group
// on the stream that reads nothing, so the stream keeps every event (in
// the order of the changes) for the test to compare with.
func seqEnv(t *testing.T, tl *timeline) *env {
	tl.tries = map[string]int{}
	e := newEnv(t, nil, func(*Recorder) []tsync.Watcher { return []tsync.Watcher{tl.watcher()} })
	require.NoError(t, e.rdb.XGroupCreateMkStream(e.ctx, e.stream(), "order", "0").Err())
	return e
}

// streamOrder returns the event ids of the stream, in stream order, each
// once (a change published again keeps its first place).
func (e *env) streamOrder() []string {
	e.t.Helper()
	msgs, err := e.rdb.XRange(e.ctx, e.stream(), "-", "+").Result()
	require.NoError(e.t, err)
	var out []string
	for _, m := range msgs {
		if id, _ := m.Values[watchers.FieldEvent].(string); id != "" && !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

// requireSequential checks the calls of one object: none overlaps the
// next, the successful ones are the object's events of the stream in
// stream order, each once.
func requireSequential(t *testing.T, calls []span, want []string) {
	t.Helper()
	var got []string
	for i, c := range calls {
		if i > 0 {
			require.False(t, c.start.Before(calls[i-1].end), "call %d started %s before call %d ended", i, calls[i-1].end.Sub(c.start), i-1)
		}
		if c.err == nil {
			got = append(got, c.event)
		}
	}
	require.Equal(t, want, got, "handled once each, in the order of the changes")
}

// waitCalls waits until object id has n successful calls, then a little
// more, for calls that should not come.
func waitCalls(t *testing.T, tl *timeline, id int64, n int) {
	t.Helper()
	require.Eventually(t, func() bool {
		ok := 0
		for _, s := range tl.of(id) {
			if s.err == nil {
				ok++
			}
		}
		return ok >= n
	}, 60*time.Second, 50*time.Millisecond)
	time.Sleep(time.Second)
}

// Five quick changes of a slice fire a slow watcher of its instance five
// times: one at a time, in the order of the changes, once each; the two
// instances of another slice changed at the same time run concurrently.
func TestWatcherCallsAreSequentialPerObject(t *testing.T) {
	tl := &timeline{slow: 300 * time.Millisecond}
	e := seqEnv(t, tl)
	f := e.fixture()
	e.discardOutbox()
	e.startAll()
	const changes = 5
	for i := range changes {
		f.slice2.Name = fmt.Sprintf("slice2-%d", i)
		e.save(f.slice2)
		f.slice1.Name = fmt.Sprintf("slice1-%d", i)
		e.save(f.slice1)
		time.Sleep(20 * time.Millisecond)
	}
	i1, i2, i3 := f.inst[0].ID, f.inst[1].ID, f.inst[2].ID
	waitCalls(t, tl, i3, changes)
	waitCalls(t, tl, i1, changes)
	waitCalls(t, tl, i2, changes)
	order := e.streamOrder()
	require.Len(t, order, 2*changes)
	var want2, want1 []string
	for k, id := range order {
		if k%2 == 0 {
			want2 = append(want2, id)
		} else {
			want1 = append(want1, id)
		}
	}
	for id, want := range map[int64][]string{i3: want2, i1: want1, i2: want1} {
		requireSequential(t, tl.of(id), want)
	}
	// Instances 1 and 2 (one slice, two objects) ran side by side.
	a, b := tl.of(i1), tl.of(i2)
	var overlap time.Duration
	for k := range changes {
		lo, hi := max(a[k].start.UnixNano(), b[k].start.UnixNano()), min(a[k].end.UnixNano(), b[k].end.UnixNano())
		if hi > lo {
			overlap += time.Duration(hi - lo)
		}
	}
	require.Greater(t, overlap, time.Duration(changes)*100*time.Millisecond, "two objects' calls overlap")
	all := tl.of(i3)
	t.Logf("5 changes, 300 ms handler: object calls took %s end to end; two objects overlapped %s of %s",
		all[len(all)-1].end.Sub(all[0].start).Round(time.Millisecond), overlap.Round(time.Millisecond), time.Duration(changes)*300*time.Millisecond)
}

// A failing handler is retried, and the next change of its object waits
// for it to succeed.
func TestFailedCallHoldsTheNextChange(t *testing.T) {
	tl := &timeline{slow: 50 * time.Millisecond}
	e := seqEnv(t, tl)
	f := e.fixture()
	e.discardOutbox()
	var first string
	tl.fail = func(event string, attempt int) error {
		if first == "" {
			first = event
		}
		if event == first && attempt <= 2 {
			return errors.New("backend down")
		}
		return nil
	}
	e.startAll()
	for i := range 3 {
		f.slice2.Name = fmt.Sprintf("slice2-%d", i)
		e.save(f.slice2)
	}
	id := f.inst[2].ID
	waitCalls(t, tl, id, 3)
	calls := tl.of(id)
	order := e.streamOrder()
	requireSequential(t, calls, order)
	require.Len(t, calls, 5, "two failed attempts, then three calls")
	require.Equal(t, first, order[0])
	for _, c := range calls[:3] {
		require.Equal(t, first, c.event, "the first change is retried before the next runs")
	}
	require.Error(t, calls[0].err)
	require.Error(t, calls[1].err)
	require.NoError(t, calls[2].err)
}

// A dispatcher that dies after giving changes to the workflows and before
// acknowledging them is replaced by another, which gives them again: each
// runs once, in order.
func TestDispatcherRestartKeepsOrder(t *testing.T) {
	tl := &timeline{slow: 200 * time.Millisecond}
	e := seqEnv(t, tl)
	f := e.fixture()
	e.discardOutbox()
	e.startWorker()
	e.startRelay(watchers.RelayOptions{})
	const changes = 5
	for i := range changes {
		f.slice2.Name = fmt.Sprintf("slice2-%d", i)
		e.save(f.slice2)
	}
	require.Eventually(t, func() bool { return len(e.streamOrder()) == changes }, 10*time.Second, 20*time.Millisecond)
	a := e.newDispatcher(func(o *watchers.Options) {
		o.Consumer = "a"
		o.Hooks.BeforeAck = func([]string) error { return errCrash }
	})
	select {
	case err := <-e.run("dispatcher a", a.Run):
		require.ErrorIs(t, err, errCrash)
	case <-time.After(20 * time.Second):
		t.Fatal("dispatcher a did not crash")
	}
	b := e.newDispatcher(func(o *watchers.Options) { o.Consumer = "b" })
	e.run("dispatcher b", b.Run)
	for i := changes; i < 2*changes; i++ {
		f.slice2.Name = fmt.Sprintf("slice2-%d", i)
		e.save(f.slice2)
	}
	id := f.inst[2].ID
	waitCalls(t, tl, id, 2*changes)
	requireSequential(t, tl.of(id), e.streamOrder())
	require.GreaterOrEqual(t, b.Stats().Started, int64(2*changes))
	require.Zero(t, e.pending())
}

// handledRecords counts the rows of the table of handled changes.
func (e *env) handledRecords() int {
	e.t.Helper()
	var n int
	require.NoError(e.t, e.app.Store.Pool().QueryRow(e.ctx,
		`SELECT count(*) FROM `+pgx.Identifier{e.app.Store.Schema(), watchers.HandledTable}.Sanitize()).Scan(&n))
	return n
}

// Each handled change is recorded (the workflow closes, and a change
// delivered again later must still run nothing); a sweep deletes the
// records older than the retention.
func TestHandledChangesRecordedAndPruned(t *testing.T) {
	tl := &timeline{}
	e := seqEnv(t, tl)
	f := e.fixture()
	e.discardOutbox()
	e.startWorker()
	e.startRelay(watchers.RelayOptions{})
	e.run("dispatcher a", e.newDispatcher(nil).Run)
	f.slice1.Name = "renamed"
	e.save(f.slice1)
	waitCalls(t, tl, f.inst[0].ID, 1)
	waitCalls(t, tl, f.inst[1].ID, 1)
	require.Equal(t, 2, e.handledRecords(), "one change, two objects")

	b := e.newDispatcher(func(o *watchers.Options) { o.HandledRetention = time.Millisecond })
	e.run("dispatcher b", b.Run)
	require.Eventually(t, func() bool { return e.handledRecords() == 0 }, 10*time.Second, 50*time.Millisecond)
}
