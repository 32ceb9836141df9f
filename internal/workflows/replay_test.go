package workflows_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/temporalproto"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"

	"github.com/tsync/tsync/internal/activities"
	"github.com/tsync/tsync/internal/engine"
	"github.com/tsync/tsync/internal/testenv"
	"github.com/tsync/tsync/internal/workflows"
	"github.com/tsync/tsync/models"
)

// historyDir holds histories of real runs of the object workflows, recorded
// from a Temporal dev server by TestRecordHistories.
const historyDir = "testdata/histories"

// quietLogger logs warnings and errors only.
func quietLogger() log.Logger {
	return log.NewStructuredLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
}

// Every recorded history replays against the current code: a change that
// would break running workflows (another command sequence, a renamed
// activity, another child workflow type) fails here before it ships.
func TestReplayHistories(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(historyDir, "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, files, "no histories in %s", historyDir)
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".json"), func(t *testing.T) {
			r := worker.NewWorkflowReplayer()
			r.RegisterWorkflow(workflows.SyncWorkflow)
			r.RegisterWorkflow(workflows.DeleteWorkflow)
			require.NoError(t, r.ReplayWorkflowHistoryFromJSONFile(quietLogger(), f))
		})
	}
}

// recordParams are the settings of recorded runs: short intervals, search
// attributes on (their upserts are commands too).
func recordParams(synchronizer string) workflows.Params {
	return workflows.Params{
		Synchronizer:     synchronizer,
		LoopInterval:     200 * time.Millisecond,
		Retry:            workflows.RetryParams{Initial: 100 * time.Millisecond, Max: 400 * time.Millisecond, Coefficient: 2},
		StepTimeout:      10 * time.Second,
		HeartbeatTimeout: 5 * time.Second,
		SearchAttributes: true,
	}
}

// recording is one scenario run on a dev server, in a world of its own, on
// a task queue of its own.
type recording struct {
	name  string
	world func() *world
	run   func(t *testing.T, r *recorder)
}

// recorder starts root workflows of one scenario.
type recorder struct {
	c     client.Client
	w     *world
	queue string
	p     workflows.Params
}

// start starts the root workflow (sync, or delete) of ref.
func (r *recorder) start(t *testing.T, ref models.Ref, deletion bool) client.WorkflowRun {
	t.Helper()
	op := engine.OpFor(deletion)
	run, err := r.c.ExecuteWorkflow(context.Background(), client.StartWorkflowOptions{
		ID:                    workflows.WorkflowID(r.p.Synchronizer, ref),
		TaskQueue:             r.queue,
		TypedSearchAttributes: workflows.StartAttributes(r.p.Synchronizer, ref, op).Typed,
	}, workflows.WorkflowOf(op), workflows.Request{Object: ref, Params: r.p})
	require.NoError(t, err)
	return run
}

// wait waits for run (through continue-as-new) and returns its result.
func (r *recorder) wait(t *testing.T, run client.WorkflowRun) workflows.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var res workflows.Result
	require.NoError(t, run.Get(ctx, &res))
	return res
}

func recordings() []recording {
	site, slice, instance := ref("Site", 1), ref("Slice", 1), ref("Instance", 1)
	a, b, c, d := ref("A", 1), ref("B", 1), ref("C", 1), ref("D", 1)
	inSyncResult := func(o models.Ref) workflows.Result {
		return workflows.Result{Object: o, Outcome: workflows.StateInSync}
	}
	return []recording{
		{
			// Dependencies synced first by children; the Slice's policies
			// run first.
			name: "chain",
			world: func() *world {
				w := newWorld()
				w.add(site, object{pending: true})
				w.add(slice, object{pending: true, policy: true, deps: []models.Ref{site}})
				w.add(instance, object{pending: true, deps: []models.Ref{slice}})
				return w
			},
			run: func(t *testing.T, r *recorder) {
				require.Equal(t, inSyncResult(instance), r.wait(t, r.start(t, instance, false)))
			},
		},
		{
			// D defers once; B, C and A find their dependencies' workflows
			// running and subscribe to them.
			name: "shared",
			world: func() *world {
				w := newWorld()
				w.add(d, object{pending: true})
				w.add(b, object{pending: true, deps: []models.Ref{d}})
				w.add(c, object{pending: true, deps: []models.Ref{d}})
				w.add(a, object{pending: true, deps: []models.Ref{b, c}})
				w.syncHook, _ = deferOnce(d)
				return w
			},
			run: func(t *testing.T, r *recorder) {
				runs := []client.WorkflowRun{r.start(t, d, false)}
				time.Sleep(50 * time.Millisecond)
				runs = append(runs, r.start(t, b, false), r.start(t, c, false))
				time.Sleep(50 * time.Millisecond)
				runs = append(runs, r.start(t, a, false))
				for i, o := range []models.Ref{d, b, c, a} {
					require.Equal(t, inSyncResult(o), r.wait(t, runs[i]))
				}
			},
		},
		{
			// The Site, in error, fails twice more (the first attempt alone,
			// then retries by the retry policy); the Slice records "Failed
			// due to ..." while it waits.
			name: "retry",
			world: func() *world {
				w := newWorld()
				w.add(site, object{pending: true, code: models.CodeError, status: "old // quota exceeded"})
				w.add(slice, object{pending: true, deps: []models.Ref{site}})
				w.syncHook = func(r models.Ref, n int, o *object) (activities.SyncResult, error, bool) {
					if r == site && n <= 2 {
						return activities.SyncResult{}, temporal.NewApplicationError("quota exceeded", activities.ErrTypeStep), true
					}
					return activities.SyncResult{}, nil, false
				}
				return w
			},
			run: func(t *testing.T, r *recorder) {
				require.Equal(t, inSyncResult(slice), r.wait(t, r.start(t, slice, false)))
			},
		},
		{
			// The Site's deletion is held while the Instance is live, then
			// deletes its deleted dependents first, by child
			// DeleteWorkflows; the Slice's deletion defers once.
			name: "delete",
			world: func() *world {
				w := newWorld()
				w.add(site, object{deleted: true})
				w.add(slice, object{deleted: true, deps: []models.Ref{site}})
				w.add(instance, object{deps: []models.Ref{site}})
				_, w.deleteHook = deferOnce(slice)
				return w
			},
			run: func(t *testing.T, r *recorder) {
				run := r.start(t, site, true)
				time.Sleep(500 * time.Millisecond)
				r.w.update(instance, func(o *object) { o.deleted = true })
				require.Equal(t, workflows.Result{Object: site, Outcome: workflows.StateGone}, r.wait(t, run))
			},
		},
		{
			// A sync of a deleted object continues as its deletion; a
			// deletion of a live object continues as its sync; a missing
			// dependency holds a sync until it is there.
			name: "continue",
			world: func() *world {
				w := newWorld()
				w.add(site, object{pending: true, deleted: true, policy: true})
				w.add(slice, object{pending: true})
				w.add(instance, object{pending: true, deps: []models.Ref{ref("Site", 2)}})
				return w
			},
			run: func(t *testing.T, r *recorder) {
				require.Equal(t, workflows.Result{Object: site, Outcome: workflows.StateGone}, r.wait(t, r.start(t, site, false)))
				require.Equal(t, inSyncResult(slice), r.wait(t, r.start(t, slice, true)))
				run := r.start(t, instance, false)
				time.Sleep(500 * time.Millisecond)
				r.w.add(ref("Site", 2), object{synced: true, code: models.CodeOK, status: "OK"})
				require.Equal(t, inSyncResult(instance), r.wait(t, run))
			},
		},
	}
}

// TestRecordHistories records the histories TestReplayHistories replays,
// from a Temporal dev server (bin/temporal). Record them again only for a
// deliberate change of the workflows' commands (one that running workflows
// of the old code could not replay, so one that needs versioning):
//
//	TSYNC_RECORD_HISTORIES=1 go test -run TestRecordHistories ./internal/workflows/
func TestRecordHistories(t *testing.T) {
	if os.Getenv("TSYNC_RECORD_HISTORIES") == "" {
		t.Skip("set TSYNC_RECORD_HISTORIES=1 to record the histories again")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	srv, err := testenv.StartTemporal(ctx)
	cancel()
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Stop() })
	c, err := client.Dial(client.Options{HostPort: srv.HostPort(), Logger: quietLogger()})
	require.NoError(t, err)
	t.Cleanup(c.Close)

	old, err := filepath.Glob(filepath.Join(historyDir, "*.json"))
	require.NoError(t, err)
	for _, f := range old {
		require.NoError(t, os.Remove(f))
	}
	require.NoError(t, os.MkdirAll(historyDir, 0o755))
	for _, rec := range recordings() {
		t.Run(rec.name, func(t *testing.T) {
			r := &recorder{c: c, w: rec.world(), queue: "record-" + rec.name, p: recordParams(rec.name)}
			wk := worker.New(c, r.queue, worker.Options{})
			wk.RegisterWorkflow(workflows.SyncWorkflow)
			wk.RegisterWorkflow(workflows.DeleteWorkflow)
			wk.RegisterActivity(r.w)
			require.NoError(t, wk.Start())
			defer wk.Stop()
			rec.run(t, r)
			saveHistories(t, c, r.queue, rec.name)
		})
	}
}

// saveHistories waits for every workflow run on queue to close, then writes
// each run's history as <name>-<model>-<id>-<n>.json (n: the run's order
// among the runs of its workflow ID).
func saveHistories(t *testing.T, c client.Client, queue, name string) {
	t.Helper()
	ctx := context.Background()
	var runs []*workflowExecution
	require.Eventually(t, func() bool {
		runs = nil
		var token []byte
		for {
			resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
				Query: fmt.Sprintf("TaskQueue = %q", queue), NextPageToken: token,
			})
			if err != nil {
				return false
			}
			for _, e := range resp.Executions {
				if e.Status == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
					return false
				}
				runs = append(runs, &workflowExecution{id: e.Execution.WorkflowId, runID: e.Execution.RunId, start: e.StartTime.AsTime()})
			}
			if token = resp.NextPageToken; len(token) == 0 {
				return len(runs) > 0
			}
		}
	}, 30*time.Second, 200*time.Millisecond, "the runs of %s did not close", queue)
	slices.SortFunc(runs, func(a, b *workflowExecution) int {
		if c := strings.Compare(a.id, b.id); c != 0 {
			return c
		}
		return a.start.Compare(b.start)
	})
	n := map[string]int{}
	for _, e := range runs {
		n[e.id]++
		hist := &historypb.History{}
		it := c.GetWorkflowHistory(ctx, e.id, e.runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for it.HasNext() {
			ev, err := it.Next()
			require.NoError(t, err)
			hist.Events = append(hist.Events, ev)
		}
		data, err := temporalproto.CustomJSONMarshalOptions{Indent: "  "}.Marshal(hist)
		require.NoError(t, err)
		file := fmt.Sprintf("%s-%s-%d.json", name, strings.ReplaceAll(strings.TrimPrefix(e.id, name+"/"), "/", "-"), n[e.id])
		require.NoError(t, os.WriteFile(filepath.Join(historyDir, file), append(data, '\n'), 0o644))
	}
}

type workflowExecution struct {
	id, runID string
	start     time.Time
}
