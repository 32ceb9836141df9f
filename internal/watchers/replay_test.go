package watchers_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/tsync/tsync"
	"github.com/tsync/tsync/internal/activities"
	"github.com/tsync/tsync/internal/replaytest"
	"github.com/tsync/tsync/internal/testenv"
	"github.com/tsync/tsync/internal/watchers"
	"github.com/tsync/tsync/internal/workflows"
	"github.com/tsync/tsync/models"
)

// watchHistoryDir holds histories of real runs of WatchWorkflow, recorded
// from a Temporal dev server by TestRecordWatchHistories: one directory per
// version of the workflow code whose workflows may still be running
// somewhere (see internal/workflows' historyDir and the README, "Changing
// workflow code").
const watchHistoryDir = "testdata/histories"

// currentWatchHistories is the directory, under watchHistoryDir, of the
// histories the current code records.
const currentWatchHistories = "v2"

// Every recorded history of WatchWorkflow (v1: the dispatchers of older
// versions started one per change) and of WatchObjectWorkflow (v2) replays
// against the current code (see internal/workflows' TestReplayHistories).
// The current set's scenarios are objectRecordings'. A v1 file is
// <scenario>-watch-<watcher>-<Model>-<id>-<event>-<run>.json; the paths:
//
//   - handled: the handler succeeds at once.
//   - skipped: the activity skips the object (deleted, no_sync or
//     lazy_blocked).
//   - retried: the handler fails twice and is retried by the step retry
//     policy (one activity, its third attempt succeeds).
//   - deferred: the handler defers twice: each time the workflow pauses
//     for the loop interval, without backoff, and runs it again.
//   - nowatcher: the worker has no watcher of that name: the activity's
//     non-retryable error fails the workflow.
//   - continued: the handler defers 100 times: the run continues as new
//     (-1), and the next run handles it (-2).
func TestReplayWatchHistories(t *testing.T) {
	files, err := replaytest.Files(watchHistoryDir)
	require.NoError(t, err)
	scenarios := map[string]int{}
	for _, f := range files {
		h, err := replaytest.Load(f)
		require.NoError(t, err)
		if filepath.Dir(f) == filepath.Join(watchHistoryDir, currentWatchHistories) {
			scenario, _, _ := strings.Cut(filepath.Base(f), "-")
			scenarios[scenario]++
		}
		t.Run(strings.TrimSuffix(strings.TrimPrefix(f, watchHistoryDir+"/"), ".json"), func(t *testing.T) {
			require.NoError(t, replaytest.Replay(h, replaytest.Options{
				Workflows: map[string]any{"WatchWorkflow": watchers.WatchWorkflow, "WatchObjectWorkflow": watchers.WatchObjectWorkflow},
				Logger:    log.NewStructuredLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))),
			}))
		})
	}
	var known []string
	for _, rec := range objectRecordings() {
		known = append(known, rec.name)
		require.Positive(t, scenarios[rec.name], "no history of scenario %s in %s", rec.name, currentWatchHistories)
	}
	for s := range scenarios {
		require.Contains(t, known, s, "histories of an unknown scenario")
	}
}

// watchRecording is one WatchObjectWorkflow run (and its continuations)
// recorded on a dev server, on a task queue of its own, under the
// scenario's name as synchronizer name.
type watchRecording struct {
	name string
	// changes are the event ids signalled (signal-with-start), in order;
	// one event id may come twice (a redelivery).
	changes []string
	// handle is the handler activity's n-th call (1-based).
	handle func(n int) (watchers.Outcome, error)
	// check asserts the run's end (res, err) and its histories.
	check func(t *testing.T, res watchers.ObjectResult, err error, h map[string]*historypb.History)
}

// watchObject is the object every recording's change affects.
var watchObject = models.Ref{Model: "Instance", ID: 1}

// watchFile returns the file name of the n-th run of scenario.
func watchFile(scenario string, n int) string {
	return fmt.Sprintf("%s-watch-w-Instance-1-%d.json", scenario, n)
}

// fakeHandler stands for the watchers' activity (same name, same
// signature), without a database: what each call returns is the
// recording's.
type fakeHandler struct {
	mu     sync.Mutex
	calls  int
	handle func(n int) (watchers.Outcome, error)
}

func (f *fakeHandler) HandleWatchedObject(_ context.Context, req watchers.Request) (watchers.Outcome, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if req.Object != watchObject {
		return "", fmt.Errorf("unexpected object %s", req.Object)
	}
	return f.handle(f.calls)
}

func objectRecordings() []watchRecording {
	ok := func(int) (watchers.Outcome, error) { return watchers.OutcomeHandled, nil }
	deferred := func() error {
		return temporal.NewNonRetryableApplicationError("waiting for quota", activities.ErrTypeDeferred, nil)
	}
	return []watchRecording{
		{
			name:    "sequence",
			changes: []string{"e1", "e2", "e1", "e3"},
			handle:  ok,
			check: func(t *testing.T, res watchers.ObjectResult, err error, h map[string]*historypb.History) {
				require.NoError(t, err)
				require.Equal(t, watchers.ObjectResult{Object: watchObject, Handled: 3, Duplicates: 1}, res)
				require.Len(t, h, 1)
				require.Equal(t, 3, replaytest.Count(h[watchFile("sequence", 1)], enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED, "HandleWatchedObject"))
			},
		},
		{
			name:    "retried",
			changes: []string{"e1", "e2"},
			handle: func(n int) (watchers.Outcome, error) {
				if n <= 2 {
					return "", temporal.NewApplicationError("backend unreachable", watchers.ErrTypeWatcher)
				}
				return watchers.OutcomeHandled, nil
			},
			check: func(t *testing.T, res watchers.ObjectResult, err error, h map[string]*historypb.History) {
				require.NoError(t, err)
				require.Equal(t, watchers.ObjectResult{Object: watchObject, Handled: 2}, res)
				require.Equal(t, 2, replaytest.Count(h[watchFile("retried", 1)], enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED, "HandleWatchedObject"))
			},
		},
		{
			name:    "deferred",
			changes: []string{"e1"},
			handle: func(n int) (watchers.Outcome, error) {
				if n <= 2 {
					return "", deferred()
				}
				return watchers.OutcomeHandled, nil
			},
			check: func(t *testing.T, res watchers.ObjectResult, err error, h map[string]*historypb.History) {
				require.NoError(t, err)
				require.Equal(t, watchers.ObjectResult{Object: watchObject, Handled: 1}, res)
				hist := h[watchFile("deferred", 1)]
				require.Equal(t, 3, replaytest.Count(hist, enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED, "HandleWatchedObject"))
				require.Equal(t, 3, replaytest.Count(hist, enumspb.EVENT_TYPE_TIMER_STARTED, ""), "two deferrals and the linger")
			},
		},
		{
			name:    "nowatcher",
			changes: []string{"e1"},
			handle: func(int) (watchers.Outcome, error) {
				return "", temporal.NewNonRetryableApplicationError("watcher w: not in this worker's synchronizer", watchers.ErrTypeNoWatcher, nil)
			},
			check: func(t *testing.T, _ watchers.ObjectResult, err error, h map[string]*historypb.History) {
				var appErr *temporal.ApplicationError
				require.True(t, errors.As(err, &appErr), "%v", err)
				require.Equal(t, watchers.ErrTypeNoWatcher, appErr.Type())
				hist := h[watchFile("nowatcher", 1)]
				require.Equal(t, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED, hist.Events[len(hist.Events)-1].GetEventType())
			},
		},
	}
}

// TestRecordWatchHistories records the histories TestReplayWatchHistories
// replays into watchHistoryDir/currentWatchHistories (replacing those of
// the scenarios it records), from a dev server of its own, with the
// watchers' activity faked (the workflow's history is the same). Record
// them again after a change of the scenarios, or after a change of
// WatchObjectWorkflow guarded by workflow.GetVersion (under a new
// currentWatchHistories):
//
//	TSYNC_RECORD_HISTORIES=1 go test -run TestRecordWatchHistories ./internal/watchers/
func TestRecordWatchHistories(t *testing.T) {
	if os.Getenv("TSYNC_RECORD_HISTORIES") == "" {
		t.Skip("set TSYNC_RECORD_HISTORIES=1 to record the histories again")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	srv, err := testenv.StartTemporal(ctx, replaytest.DevServerArgs()...)
	cancel()
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Stop() })
	c, err := client.Dial(client.Options{HostPort: srv.HostPort(), Logger: log.NewStructuredLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))})
	require.NoError(t, err)
	t.Cleanup(c.Close)
	dir := filepath.Join(watchHistoryDir, currentWatchHistories)
	require.NoError(t, os.MkdirAll(dir, 0o755))

	for _, rec := range objectRecordings() {
		t.Run(rec.name, func(t *testing.T) {
			old, err := filepath.Glob(filepath.Join(dir, rec.name+"-*.json"))
			require.NoError(t, err)
			for _, f := range old {
				require.NoError(t, os.Remove(f))
			}
			queue := "record-watch-" + rec.name
			wk := sdkworker.New(c, queue, sdkworker.Options{})
			wk.RegisterWorkflow(watchers.WatchObjectWorkflow)
			wk.RegisterActivity(&fakeHandler{handle: rec.handle})
			require.NoError(t, wk.Start())
			defer wk.Stop()

			p := workflows.Params{
				Synchronizer:     rec.name,
				LoopInterval:     200 * time.Millisecond,
				Retry:            workflows.RetryParams{Initial: 100 * time.Millisecond, Max: 400 * time.Millisecond, Coefficient: 2},
				StepTimeout:      10 * time.Second,
				HeartbeatTimeout: 5 * time.Second,
				SearchAttributes: true,
			}
			id := watchers.ObjectWorkflowID(rec.name, "w", watchObject)
			var run client.WorkflowRun
			for n, event := range rec.changes {
				ev := tsync.WatchEvent{ID: event, Changed: models.Ref{Model: "Site", ID: 1}, Op: models.OpUpdate, Fields: []string{"name"}}
				pos := watchers.Position{Outbox: int64(n + 1), Stream: fmt.Sprintf("1-%d", n)}
				// As the dispatcher gives them (Dispatcher.signal).
				run, err = c.SignalWithStartWorkflow(context.Background(), id, watchers.SignalChange, watchers.Change{Event: ev, Pos: pos}, client.StartWorkflowOptions{
					TaskQueue:             queue,
					WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
					Memo:                  map[string]any{"change": "Site update 1 [name]"},
					TypedSearchAttributes: temporal.NewSearchAttributes(
						workflows.AttrSynchronizer.ValueSet(rec.name),
						workflows.AttrModel.ValueSet(watchObject.Model),
						workflows.AttrObjectID.ValueSet(watchObject.ID),
						workflows.AttrOperation.ValueSet(watchers.OperationWatch)),
				}, watchers.WatchObjectWorkflow, watchers.ObjectRequest{Watcher: "w", Object: watchObject, Params: p, Linger: time.Second})
				require.NoError(t, err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			var res watchers.ObjectResult
			runErr := run.Get(ctx, &res)

			hists, err := replaytest.Save(context.Background(), c, queue, dir, time.Minute)
			require.NoError(t, err)
			for file := range hists {
				require.True(t, strings.HasPrefix(file, rec.name+"-watch-w-Instance-1-"), file)
			}
			rec.check(t, res, runErr, hists)
		})
	}
}
