package starter

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/tsync/tsync/internal/testenv"
	"github.com/tsync/tsync/internal/workflows"
	"github.com/tsync/tsync/models"
)

// A run found again for the same content is trusted twice as long each
// time, up to maxTrustFactor windows; one found for other content is not
// trusted, and a new run starts over at one window.
func TestTrustGrows(t *testing.T) {
	s := New(nil, nil, nil, Options{})
	ref := models.Ref{Model: "Site", ID: 2}
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	windows := func() time.Duration { return s.recent[ref].window / time.Minute }

	s.record(ref, t0, "run-1")
	require.Equal(t, time.Duration(1), windows())
	for _, want := range []time.Duration{2, 4, 8, 16, 16} {
		s.record(ref, t0, "run-1")
		require.True(t, s.recent[ref].trusted)
		require.Equal(t, want, windows())
	}
	require.True(t, s.skip(ref, t0, time.Now().Add(15*time.Minute)))
	require.False(t, s.skip(ref, t0, time.Now().Add(16*time.Minute)))

	s.record(ref, t0.Add(time.Second), "run-1")
	require.False(t, s.recent[ref].trusted, "the run seen before may predate this content")
	require.False(t, s.skip(ref, t0.Add(time.Second), time.Now()))
	s.record(ref, t0.Add(time.Second), "run-1")
	require.False(t, s.recent[ref].trusted, "never trusted for this content")

	s.record(ref, t0.Add(time.Second), "run-2")
	require.True(t, s.recent[ref].trusted)
	require.Equal(t, time.Duration(1), windows())

	s.record(ref, time.Time{}, "run-2")
	require.False(t, s.recent[ref].trusted, "content unknown")
}

// An expired entry is kept one more window, for the scan that verifies its
// run, then dropped, unless the last scan found its object still pending:
// a scan of a large backlog can outlast two windows.
func TestPruneKeepsExpiredForVerification(t *testing.T) {
	s := New(nil, nil, nil, Options{})
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	a, b := models.Ref{Model: "Site", ID: 1}, models.Ref{Model: "Site", ID: 2}
	c := models.Ref{Model: "Site", ID: 3}
	s.record(a, t0, "run-a")
	s.record(b, t0, "run-b")
	s.record(b, t0, "run-b") // two windows
	s.record(c, t0, "run-c")
	now := time.Now()

	// Scan 1 finds c pending; a and b are not listed (synced since).
	s.prune(now, s.scans.Add(1))
	s.stillPending("Site", []int64{3, 4})
	require.Len(t, s.recent, 3, "nothing has expired")
	require.NotContains(t, s.recent, models.Ref{Model: "Site", ID: 4}, "4 was never started")

	// Scan 2 begins 90 s later.
	s.prune(now.Add(90*time.Second), s.scans.Add(1))
	_, expired := s.expired(a, t0, now.Add(90*time.Second))
	require.True(t, expired)
	_, expired = s.expired(b, t0, now.Add(90*time.Second))
	require.False(t, expired, "b's window is two minutes")

	// Scan 3 begins after two windows of a and c: a is dropped, but c,
	// which scan 2 found pending, is kept; so is b, in its first window.
	s.stillPending("Site", []int64{3})
	s.prune(now.Add(2*time.Minute+time.Second), s.scans.Add(1))
	require.NotContains(t, s.recent, a)
	require.Contains(t, s.recent, b)
	require.Contains(t, s.recent, c, "a pending object lost its entry to a long scan")
	_, expired = s.expired(c, t0, now.Add(2*time.Minute+time.Second))
	require.True(t, expired, "kept for verification")

	// Scan 4: scan 3 found no object pending.
	s.prune(now.Add(4*time.Minute+time.Second), s.scans.Add(1))
	require.Empty(t, s.recent)
}

// failingLister is a client whose visibility queries fail.
type failingLister struct {
	client.Client
	calls int
}

func (f *failingLister) CountWorkflow(context.Context, *workflowservice.CountWorkflowExecutionsRequest) (*workflowservice.CountWorkflowExecutionsResponse, error) {
	f.calls++
	return nil, errors.New("visibility unavailable")
}

func (f *failingLister) ListWorkflow(context.Context, *workflowservice.ListWorkflowExecutionsRequest) (*workflowservice.ListWorkflowExecutionsResponse, error) {
	f.calls++
	return nil, errors.New("visibility unavailable")
}

// A failed visibility query leaves the objects to be started again, as
// they were, and says so once as a warning.
func TestVerifyRunningQueryFails(t *testing.T) {
	var logged bytes.Buffer
	lister := &failingLister{}
	s := New(lister, nil, nil, Options{Params: workflows.Params{Synchronizer: "syn"},
		Logger: slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	ref := models.Ref{Model: "Site", ID: 1}
	s.record(ref, t0, "run-1")
	later := time.Now().Add(2 * time.Minute)
	updated := map[int64]time.Time{1: t0}

	s.verifyRunning(context.Background(), "Site", []int64{1}, updated, later)
	s.verifyRunning(context.Background(), "Site", []int64{1}, updated, later)
	require.Equal(t, 2, lister.calls)
	require.False(t, s.skip(ref, t0, later), "started again by the scan")
	require.Zero(t, s.Verified())
	require.Equal(t, 1, strings.Count(logged.String(), "level=WARN"), logged.String())
	require.Contains(t, logged.String(), "visibility unavailable")
}

// On a real server, a scan trusts again, for twice as long, the runs
// visibility finds still running (in batches of verifyBatch IDs: a count,
// then a list when not all of the batch run), and not a run closed since,
// nor an entry still in its window (not queried). Another run of the
// workflow ID than the one it trusted, running, is trusted for a window:
// it started after that one ended.
func TestVerifyRunningOnServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Temporal dev server")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := testenv.StartTemporal(ctx)
	require.NoError(t, err)
	defer srv.Stop() //nolint:errcheck // the test is over
	c, err := client.DialContext(ctx, client.Options{HostPort: srv.HostPort()})
	require.NoError(t, err)
	defer c.Close()

	s := New(c, nil, nil, Options{Params: workflows.Params{Synchronizer: "syn"}})
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	const n = verifyBatch + 20
	ids := make([]int64, 0, n+3)
	updated := map[int64]time.Time{}
	runs := map[int64]string{}
	// No worker polls the task queue: the runs stay open.
	for id := int64(1); id <= n+3; id++ {
		ref := models.Ref{Model: "Site", ID: id}
		run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflows.WorkflowID("syn", ref), TaskQueue: "no-worker"}, "Nothing")
		require.NoError(t, err)
		ids = append(ids, id)
		updated[id] = t0
		runs[id] = run.GetRunID()
		s.record(ref, t0, run.GetRunID())
	}
	closed, other, fresh := int64(n+1), int64(n+2), int64(n+3)
	require.NoError(t, c.TerminateWorkflow(ctx, workflows.WorkflowID("syn", models.Ref{Model: "Site", ID: closed}), "", "by an operator"))
	s.record(models.Ref{Model: "Site", ID: other}, t0, "another-run") // a new, trusted entry
	require.Eventually(t, func() bool {
		running, err1 := c.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Query: "ExecutionStatus = 'Running'"})
		terminated, err2 := c.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Query: "ExecutionStatus = 'Terminated'"})
		return err1 == nil && err2 == nil && running.Count == n+2 && terminated.Count == 1
	}, 30*time.Second, 100*time.Millisecond, "visibility shows the runs")

	later := time.Now().Add(90 * time.Second)
	// fresh's entry is still in its window at later.
	s.mu.Lock()
	e := s.recent[models.Ref{Model: "Site", ID: fresh}]
	e.at, e.window = time.Now().Add(time.Minute), time.Minute
	s.recent[models.Ref{Model: "Site", ID: fresh}] = e
	s.mu.Unlock()

	s.verifyRunning(ctx, "Site", ids, updated, later)
	require.Equal(t, int64(n+1), s.Verified())
	for id := int64(1); id <= n; id++ {
		ref := models.Ref{Model: "Site", ID: id}
		require.True(t, s.skip(ref, t0, later), "%d", id)
		require.Equal(t, 2*time.Minute, s.recent[ref].window, "%d", id)
		require.Equal(t, runs[id], s.recent[ref].runID)
	}
	ref := models.Ref{Model: "Site", ID: closed}
	require.False(t, s.skip(ref, t0, later), "the closed run's object is started again")
	require.Equal(t, time.Minute, s.recent[ref].window)
	ref = models.Ref{Model: "Site", ID: other}
	require.True(t, s.skip(ref, t0, time.Now()), "the run running is trusted")
	require.Equal(t, time.Minute, s.recent[ref].window)
	require.Equal(t, runs[other], s.recent[ref].runID)
	require.Equal(t, time.Minute, s.recent[models.Ref{Model: "Site", ID: fresh}].window, "not queried")

	// The IDs reach the query quoted: one that could not be is not queried.
	q := &recordingLister{Client: c}
	s2 := New(q, nil, nil, Options{Params: workflows.Params{Synchronizer: `it's`}})
	s2.record(models.Ref{Model: "Site", ID: 1}, t0, "run-1")
	s2.verifyRunning(ctx, "Site", []int64{1}, updated, later)
	require.Empty(t, q.queries)
	s3 := New(q, nil, nil, Options{Params: workflows.Params{Synchronizer: "syn"}})
	s3.record(models.Ref{Model: "Site", ID: 1}, t0, "run-1")
	s3.record(models.Ref{Model: "Site", ID: 2}, t0, "run-2")
	s3.verifyRunning(ctx, "Site", []int64{1, 2}, updated, later)
	require.Equal(t, []string{"count WorkflowId IN ('syn/Site/1', 'syn/Site/2') AND ExecutionStatus = 'Running'"}, q.queries,
		"both run: a count, no list")
	q.queries = nil
	s3.record(models.Ref{Model: "Site", ID: closed}, t0, "run-closed")
	s3.verifyRunning(ctx, "Site", []int64{1, closed}, updated, later.Add(time.Hour))
	in := fmt.Sprintf("WorkflowId IN ('syn/Site/1', 'syn/Site/%d') AND ExecutionStatus = 'Running'", closed)
	require.Equal(t, []string{"count " + in, "list " + in}, q.queries, "one closed: the list says which")

	// The first scans adopt runs only when the task queue has some
	// running, or visibility cannot say.
	for queue, want := range map[string]bool{"no-worker": true, "empty": false, `it's`: true} {
		require.Equal(t, want, New(c, nil, nil, Options{TaskQueue: queue}).anyRunning(ctx), queue)
	}
	require.True(t, New(&failingLister{}, nil, nil, Options{TaskQueue: "no-worker"}).anyRunning(ctx))
}

// recordingLister records the visibility queries it passes on, each after
// "count " or "list ".
type recordingLister struct {
	client.Client
	queries []string
}

func (r *recordingLister) CountWorkflow(ctx context.Context, req *workflowservice.CountWorkflowExecutionsRequest) (*workflowservice.CountWorkflowExecutionsResponse, error) {
	r.queries = append(r.queries, "count "+req.GetQuery())
	return r.Client.CountWorkflow(ctx, req)
}

func (r *recordingLister) ListWorkflow(ctx context.Context, req *workflowservice.ListWorkflowExecutionsRequest) (*workflowservice.ListWorkflowExecutionsResponse, error) {
	r.queries = append(r.queries, "list "+req.GetQuery())
	return r.Client.ListWorkflow(ctx, req)
}
