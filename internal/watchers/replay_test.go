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
const currentWatchHistories = "v1"

// Every recorded history of WatchWorkflow replays against the current
// code (see internal/workflows' TestReplayHistories). Each file is
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
				Workflows: map[string]any{"WatchWorkflow": watchers.WatchWorkflow},
				Logger:    log.NewStructuredLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))),
			}))
		})
	}
	var known []string
	for _, rec := range watchRecordings() {
		known = append(known, rec.name)
		require.Positive(t, scenarios[rec.name], "no history of scenario %s in %s", rec.name, currentWatchHistories)
	}
	for s := range scenarios {
		require.Contains(t, known, s, "histories of an unknown scenario")
	}
}

// watchRecording is one WatchWorkflow run (and its continuations) recorded
// on a dev server, on a task queue of its own, under the scenario's name as
// synchronizer name.
type watchRecording struct {
	name string
	// loop is the loop interval (200ms when zero).
	loop time.Duration
	// handle is the handler activity's n-th call (1-based).
	handle func(n int) (watchers.Outcome, error)
	// check asserts the run's end (res, err) and its histories.
	check func(t *testing.T, res watchers.Result, err error, h map[string]*historypb.History)
}

// watchObject is the object every recording's change affects.
var watchObject = models.Ref{Model: "Instance", ID: 1}

// watchFile returns the file name of the n-th run of scenario.
func watchFile(scenario string, n int) string {
	return fmt.Sprintf("%s-watch-w-Instance-1-e1-%d.json", scenario, n)
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

func watchRecordings() []watchRecording {
	handled := watchers.Result{Object: watchObject, Outcome: watchers.OutcomeHandled}
	deferred := func() error {
		return temporal.NewNonRetryableApplicationError("waiting for quota", activities.ErrTypeDeferred, nil)
	}
	return []watchRecording{
		{
			name:   "handled",
			handle: func(int) (watchers.Outcome, error) { return watchers.OutcomeHandled, nil },
			check: func(t *testing.T, res watchers.Result, err error, h map[string]*historypb.History) {
				require.NoError(t, err)
				require.Equal(t, handled, res)
				require.Len(t, h, 1)
			},
		},
		{
			name:   "skipped",
			handle: func(int) (watchers.Outcome, error) { return watchers.OutcomeSkipped, nil },
			check: func(t *testing.T, res watchers.Result, err error, h map[string]*historypb.History) {
				require.NoError(t, err)
				require.Equal(t, watchers.Result{Object: watchObject, Outcome: watchers.OutcomeSkipped}, res)
			},
		},
		{
			name: "retried",
			handle: func(n int) (watchers.Outcome, error) {
				if n <= 2 {
					return "", temporal.NewApplicationError("backend unreachable", watchers.ErrTypeWatcher)
				}
				return watchers.OutcomeHandled, nil
			},
			check: func(t *testing.T, res watchers.Result, err error, h map[string]*historypb.History) {
				require.NoError(t, err)
				require.Equal(t, handled, res)
				hist := h[watchFile("retried", 1)]
				require.Equal(t, 1, replaytest.Count(hist, enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED, "HandleWatchedObject"))
				for _, e := range hist.Events {
					if a := e.GetActivityTaskStartedEventAttributes(); a != nil {
						require.Equal(t, int32(3), a.GetAttempt(), "the third attempt succeeded")
					}
				}
			},
		},
		{
			name: "deferred",
			handle: func(n int) (watchers.Outcome, error) {
				if n <= 2 {
					return "", deferred()
				}
				return watchers.OutcomeHandled, nil
			},
			check: func(t *testing.T, res watchers.Result, err error, h map[string]*historypb.History) {
				require.NoError(t, err)
				require.Equal(t, handled, res)
				hist := h[watchFile("deferred", 1)]
				require.Equal(t, 3, replaytest.Count(hist, enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED, "HandleWatchedObject"))
				require.Equal(t, 2, replaytest.Count(hist, enumspb.EVENT_TYPE_TIMER_STARTED, ""))
			},
		},
		{
			name: "nowatcher",
			handle: func(int) (watchers.Outcome, error) {
				return "", temporal.NewNonRetryableApplicationError("watcher w: not in this worker's synchronizer", watchers.ErrTypeNoWatcher, nil)
			},
			check: func(t *testing.T, _ watchers.Result, err error, h map[string]*historypb.History) {
				var appErr *temporal.ApplicationError
				require.True(t, errors.As(err, &appErr), "%v", err)
				require.Equal(t, watchers.ErrTypeNoWatcher, appErr.Type())
				hist := h[watchFile("nowatcher", 1)]
				require.Equal(t, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED, hist.Events[len(hist.Events)-1].GetEventType())
			},
		},
		{
			name: "continued",
			loop: 20 * time.Millisecond,
			handle: func(n int) (watchers.Outcome, error) {
				if n <= 100 {
					return "", deferred()
				}
				return watchers.OutcomeHandled, nil
			},
			check: func(t *testing.T, res watchers.Result, err error, h map[string]*historypb.History) {
				require.NoError(t, err)
				require.Equal(t, handled, res)
				require.Len(t, h, 2)
				h1, h2 := h[watchFile("continued", 1)], h[watchFile("continued", 2)]
				require.Equal(t, 100, replaytest.Count(h1, enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED, "HandleWatchedObject"))
				require.Equal(t, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW, h1.Events[len(h1.Events)-1].GetEventType())
				require.Equal(t, 1, replaytest.Count(h2, enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED, "HandleWatchedObject"))
			},
		},
	}
}

// TestRecordWatchHistories records the histories TestReplayWatchHistories
// replays into watchHistoryDir/currentWatchHistories (replacing those of
// the scenarios it records), from a dev server of its own, with the
// watchers' activity faked (the workflow's history is the same). Record
// them again after a change of the scenarios, or after a change of
// WatchWorkflow guarded by workflow.GetVersion (under a new
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

	for _, rec := range watchRecordings() {
		t.Run(rec.name, func(t *testing.T) {
			old, err := filepath.Glob(filepath.Join(dir, rec.name+"-*.json"))
			require.NoError(t, err)
			for _, f := range old {
				require.NoError(t, os.Remove(f))
			}
			queue := "record-watch-" + rec.name
			wk := sdkworker.New(c, queue, sdkworker.Options{})
			wk.RegisterWorkflow(watchers.WatchWorkflow)
			wk.RegisterActivity(&fakeHandler{handle: rec.handle})
			require.NoError(t, wk.Start())
			defer wk.Stop()

			loop := rec.loop
			if loop == 0 {
				loop = 200 * time.Millisecond
			}
			p := workflows.Params{
				Synchronizer:     rec.name,
				LoopInterval:     loop,
				Retry:            workflows.RetryParams{Initial: 100 * time.Millisecond, Max: 400 * time.Millisecond, Coefficient: 2},
				StepTimeout:      10 * time.Second,
				HeartbeatTimeout: 5 * time.Second,
				SearchAttributes: true,
			}
			ev := tsync.WatchEvent{ID: "e1", Changed: models.Ref{Model: "Site", ID: 1}, Op: models.OpUpdate, Fields: []string{"name"}}
			// As the dispatcher starts them (Dispatcher.start).
			run, err := c.ExecuteWorkflow(context.Background(), client.StartWorkflowOptions{
				ID:                       watchers.WorkflowID(rec.name, "w", watchObject, ev.ID),
				TaskQueue:                queue,
				WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
				WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
				Memo:                     map[string]any{"change": "Site update 1 [name]"},
				TypedSearchAttributes: temporal.NewSearchAttributes(
					workflows.AttrSynchronizer.ValueSet(rec.name),
					workflows.AttrModel.ValueSet(watchObject.Model),
					workflows.AttrObjectID.ValueSet(watchObject.ID),
					workflows.AttrOperation.ValueSet(watchers.OperationWatch)),
			}, watchers.WatchWorkflow, watchers.Request{Watcher: "w", Object: watchObject, Event: ev, Params: p})
			require.NoError(t, err)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			var res watchers.Result
			runErr := run.Get(ctx, &res)

			hists, err := replaytest.Save(context.Background(), c, queue, dir, time.Minute)
			require.NoError(t, err)
			for file := range hists {
				require.True(t, strings.HasPrefix(file, rec.name+"-watch-w-Instance-1-e1-"), file)
			}
			rec.check(t, res, runErr, hists)
		})
	}
}
