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
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"

	"github.com/tsync/tsync/internal/activities"
	"github.com/tsync/tsync/internal/engine"
	"github.com/tsync/tsync/internal/replaytest"
	"github.com/tsync/tsync/internal/testenv"
	"github.com/tsync/tsync/internal/workflows"
	"github.com/tsync/tsync/models"
)

// historyDir holds histories of real runs of the object workflows, recorded
// from a Temporal dev server by TestRecordHistories: one directory per
// version of the workflow code whose workflows may still be running
// somewhere, each replayed against the current code. v0 to v3 are runs of
// the legacy type names (SyncWorkflow, DeleteWorkflow): v0 and v1 before
// changeSignals, v2 at versionChangeSignals, v3 at versionSyncReady (a run started by an earlier starter on a current
// worker). v4 are runs of the current type names (SyncType, DeleteType),
// which record no version.
const historyDir = "testdata/histories"

// currentHistories is the directory, under historyDir, of the histories the
// current code records. After a change of the workflows guarded by
// workflow.GetVersion, name a new one: the older directories stay until no
// workflow of their code can be running.
const currentHistories = "v4"

// objectWorkflows are the workflow types the histories replay against.
func objectWorkflows() map[string]any {
	return map[string]any{
		"SyncWorkflow":       workflows.SyncWorkflow,
		"DeleteWorkflow":     workflows.DeleteWorkflow,
		workflows.SyncType:   workflows.SyncWorkflow,
		workflows.DeleteType: workflows.DeleteWorkflow,
	}
}

// quietLogger logs warnings and errors only.
func quietLogger() log.Logger {
	return log.NewStructuredLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
}

// Every recorded history replays against the current code: a change that
// would break running workflows (another command sequence, a renamed
// activity, another child workflow type) fails here before it ships.
// replaytest.Replay also fails a history of an unregistered workflow type, a
// history that did not end, and a completed run whose replay returns
// another result. Each file is <scenario>-<Model>-<id>-<run>.json, the
// history of one run (recordings sets each scenario up); the paths each
// covers:
//
//   - chain: a sync chain started at the Instance. Instance-1-1 and
//     Slice-1-1: dependencies synced first, by a child SyncWorkflow; the
//     Slice's model policy runs before its sync (RunPolicy, look again).
//     Site-1-1: a plain sync, run as a child.
//   - shared: a shared dependency: B and C depend on D, A on B and C, each
//     started as a root. D-1-1: its step defers (deferral, loop pause)
//     until the others wait; it receives two subscriptions and signals
//     tsync-done to both. B-1-1, C-1-1: D's workflow runs already (the
//     child start fails): subscribe, wait for tsync-done; each is
//     subscribed to by A. A-1-1: subscribes to two running dependencies.
//   - retry: failure and retry. Site-1-1 (a child, already in error): its
//     first attempt, run alone, fails (state error), the retry policy's
//     first retry too, the next succeeds. Slice-1-1: records "Failed due
//     to error in ..." (code 2), then waits for its child.
//   - delete: delete with dependents. Site-1-1: held while a live
//     dependent uses it (status, loop pause), then deletes its deleted
//     dependents first by child DeleteWorkflows, then itself.
//     Slice-1-1: a child deletion that defers once. Instance-1-1: a child
//     deletion.
//   - continue: continue-as-new between the workflow types. Site-1-1: a
//     sync of a deleted object continues as its DeleteWorkflow, Site-1-2,
//     which runs its delete policy and deletes it. Slice-1-1: a deletion of
//     a live object continues as its SyncWorkflow, Slice-1-2.
//     Instance-1-1: held on a missing dependency until it appears.
//   - defer: deferral. Site-1-1 (a child): its policy defers once, then
//     its sync twice, each tried again after the loop interval, without
//     backoff. Slice-1-1: waits for that child.
//   - policy: model policies. Site-1-1: its policies run again (the object
//     changed while they ran), then fail once and are retried with backoff,
//     then the sync. Network-1-1: the policy of an object in sync updates
//     it, which is then synced. Slice-1-1: a DeleteWorkflow whose delete
//     policy runs before the deletion.
//   - held: a held dependent. Slice-1-1: waits behind its dependency,
//     whose own workflow is in error and backoff, by subscription, showing
//     "Failed due to ...", and syncs once it recovers. Site-1-1: that
//     dependency, failing its step again and again (the retry policy's
//     attempts), subscribed to, signalling the Slice when it succeeds.
//     Instance-1-1: held behind a no_sync dependency (status, loop pause,
//     three times), then syncs it by a child (Network-1-1) once unblocked.
//   - iterations: the bound on a run's length. Slice-1-1: held on a
//     missing dependency for 100 iterations, subscribed to meanwhile, then
//     continues as new carrying the subscription; Slice-1-2: syncs once
//     the dependency appears and signals the subscriber. Instance-1-1:
//     subscribes to the Slice's running workflow, told by its next run.
//   - signal (v2): tsync-changed during backoff (signal_record_test.go).
//     Site-1-1: its step fails; a signal with the content unchanged
//     resumes the backoff timer; a change and a signal run the step at
//     once, which succeeds. Network-1-1: its step fails, it is deleted
//     during the backoff and signalled: it continues as its
//     DeleteWorkflow, Network-1-2, which deletes it.
//
// Every scenario has files in the current set, and every file belongs to a
// scenario.
func TestReplayHistories(t *testing.T) {
	files, err := replaytest.Files(historyDir)
	require.NoError(t, err)
	types := map[string]int{}
	scenarios := map[string]int{}
	for _, f := range files {
		h, err := replaytest.Load(f)
		require.NoError(t, err)
		typ, err := replaytest.Type(h)
		require.NoError(t, err, f)
		types[typ]++
		scenario, _, _ := strings.Cut(filepath.Base(f), "-")
		if filepath.Dir(f) == filepath.Join(historyDir, currentHistories) {
			scenarios[scenario]++
		}
		t.Run(strings.TrimSuffix(strings.TrimPrefix(f, historyDir+"/"), ".json"), func(t *testing.T) {
			require.NoError(t, replaytest.Replay(h, replaytest.Options{Workflows: objectWorkflows(), Logger: quietLogger()}))
		})
	}
	for typ := range objectWorkflows() {
		require.Positive(t, types[typ], "no history of %s", typ)
	}
	var known []string
	for _, rec := range recordings() {
		known = append(known, rec.name)
		require.Positive(t, scenarios[rec.name], "no history of scenario %s in %s", rec.name, currentHistories)
	}
	for s := range scenarios {
		require.Contains(t, known, s, "histories of an unknown scenario")
	}
}

// A history of a workflow type that nothing is registered under fails to
// replay (the replayer would say so too, in a less direct way); so do a
// history cut before its end and one whose recorded result is not the
// result of the replay, which the replayer alone would accept.
func TestReplayRejectsUnknownTypeUnfinishedHistoryAndOtherResult(t *testing.T) {
	h, err := replaytest.Load(filepath.Join(historyDir, currentHistories, "chain-Instance-1-1.json"))
	require.NoError(t, err)
	err = replaytest.Replay(h, replaytest.Options{Workflows: map[string]any{workflows.DeleteType: workflows.DeleteWorkflow}})
	require.EqualError(t, err, "workflow type "+workflows.SyncType+" is not registered (registered: "+workflows.DeleteType+")")

	cut := &historypb.History{Events: h.Events[:len(h.Events)-3]}
	err = replaytest.Replay(cut, replaytest.Options{Workflows: objectWorkflows()})
	require.ErrorContains(t, err, "history of "+workflows.SyncType+" does not end the run: its last event is")

	other, err := converter.GetDefaultDataConverter().ToPayloads(workflows.Result{Object: ref("Instance", 1), Outcome: workflows.StateBlocked})
	require.NoError(t, err)
	h.Events[len(h.Events)-1].GetWorkflowExecutionCompletedEventAttributes().Result = other
	err = replaytest.Replay(h, replaytest.Options{Workflows: objectWorkflows()})
	require.EqualError(t, err, "replay "+workflows.SyncType+": result map[Object:map[id:1 model:Instance] Outcome:in-sync], recorded map[Object:map[id:1 model:Instance] Outcome:blocked]")
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
// a task queue of its own, under the scenario's name as synchronizer name
// (so its workflow IDs, and its files, start with it).
type recording struct {
	name string
	// params changes the recordParams of the scenario, if set.
	params func(p *workflows.Params)
	world  func() *recWorld
	// changed runs the scenario on workers with the deliberate change of
	// the workflows (changeGuarded, see version_test.go) from the start.
	changed bool
	// run starts the scenario's roots and asserts their results.
	run func(t *testing.T, r *recorder)
	// check asserts, once every run has closed, that the scenario took
	// the paths it is for: in the world, and in its histories.
	check func(t *testing.T, r *recorder, h histories)
}

// histories are the histories of a scenario, by file name.
type histories map[string]*historypb.History

// of returns the history of the n-th run of ref's workflow.
func (h histories) of(t *testing.T, scenario string, ref models.Ref, n int) *historypb.History {
	t.Helper()
	file := fmt.Sprintf("%s-%s-%d-%d.json", scenario, ref.Model, ref.ID, n)
	hist, ok := h[file]
	require.True(t, ok, "no history %s", file)
	return hist
}

// recorder runs the workers and starts the root workflows of one scenario.
type recorder struct {
	name  string
	c     client.Client
	w     *recWorld
	queue string
	p     workflows.Params
	wk    worker.Worker
}

// startWorker starts a worker on the scenario's queue under identity, with
// the workflows changed by change, if not nil.
func (r *recorder) startWorker(t *testing.T, identity string, change interceptor.WorkerInterceptor) {
	t.Helper()
	opts := worker.Options{Identity: identity}
	if change != nil {
		opts.Interceptors = []interceptor.WorkerInterceptor{change}
	}
	r.wk = worker.New(r.c, r.queue, opts)
	workflows.Register(r.wk)
	r.wk.RegisterActivity(r.w)
	require.NoError(t, r.wk.Start())
}

// upgrade stops the worker and starts one whose workflows have the
// guarded change: the upgrade of a deployment with workflows in flight.
func (r *recorder) upgrade(t *testing.T) {
	t.Helper()
	r.wk.Stop()
	r.startWorker(t, workerNew, changeGuarded(r.w))
}

// Worker identities of the recordings: the current code, and the code with
// the deliberate change.
const (
	workerOld = "tsync-record-old"
	workerNew = "tsync-record-new"
)

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
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var res workflows.Result
	require.NoError(t, run.Get(ctx, &res))
	return res
}

// until waits (generously, for a loaded machine) until cond holds.
func (r *recorder) until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	require.Eventually(t, cond, time.Minute, 10*time.Millisecond, "%s: waited for %s", r.name, what)
}

// signaled returns how many signal signals the current run of ref's
// workflow has received (0 when its history cannot be read).
func (r *recorder) signaled(t *testing.T, ref models.Ref, signal string) int {
	t.Helper()
	it := r.c.GetWorkflowHistory(context.Background(), workflows.WorkflowID(r.p.Synchronizer, ref), "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	n := 0
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return 0
		}
		if ev.GetWorkflowExecutionSignaledEventAttributes().GetSignalName() == signal {
			n++
		}
	}
	return n
}

// recWorld is the world of a recording, with what the recordings need
// beyond world's hooks: policies that do more than police, and the
// Precheck local activity of the deliberate change (version_test.go).
type recWorld struct {
	*world
	// policyHook overrides RunPolicy's n-th call (1-based) on an object;
	// handled false falls back to world's RunPolicy.
	policyHook func(ref models.Ref, n int, o *object) (out activities.Outcome, err error, handled bool)
	policyN    map[models.Ref]int
	prechecks  []models.Ref
	// opened is the gate the hooks of some scenarios wait for: they run
	// until the other workflows wait as they should, then open it.
	opened bool
}

// open opens the gate.
func (w *recWorld) open() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.opened = true
}

func newRecWorld() *recWorld { return &recWorld{world: newWorld(), policyN: map[models.Ref]int{}} }

// RunPolicy is world's, unless policyHook handles the call.
func (w *recWorld) RunPolicy(ctx context.Context, r models.Ref) (activities.Outcome, error) {
	w.mu.Lock()
	w.policyN[r]++
	if w.policyHook != nil {
		if out, err, handled := w.policyHook(r, w.policyN[r], w.objs[r]); handled {
			w.record("RunPolicy", r)
			w.mu.Unlock()
			return out, err
		}
	}
	w.mu.Unlock()
	return w.world.RunPolicy(ctx, r)
}

// Precheck is the local activity the deliberate change adds before each
// sync step. It does nothing but count.
func (w *recWorld) Precheck(_ context.Context, r models.Ref) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.prechecks = append(w.prechecks, r)
	return nil
}

// precheckCalls returns the objects Precheck ran for, in order.
func (w *recWorld) precheckCalls() []models.Ref {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.prechecks)
}

// callsFor returns the calls on r, as "Activity".
func (w *recWorld) callsFor(r models.Ref) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, c := range w.calls {
		if c.Ref == r {
			out = append(out, c.Activity)
		}
	}
	return out
}

// count returns how many times activity was called on r.
func (w *recWorld) count(activity string, r models.Ref) int {
	n := 0
	for _, c := range w.callsOf(activity) {
		if c == r {
			n++
		}
	}
	return n
}

// stepError is a failure of a step (or policy), retried with backoff.
func stepError(msg string) error {
	return temporal.NewApplicationError(msg, activities.ErrTypeStep)
}

// deferredError is a DeferredError of a step (or policy).
func deferredError(msg string) error {
	return temporal.NewNonRetryableApplicationError(msg, activities.ErrTypeDeferred, nil)
}

// Event types the checks count.
const (
	evActivity    = enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
	evMarker      = enumspb.EVENT_TYPE_MARKER_RECORDED
	evTimer       = enumspb.EVENT_TYPE_TIMER_STARTED
	evChild       = enumspb.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED
	evSignalSent  = enumspb.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED
	evSignaled    = enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
	evContinued   = enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
	evCompleted   = enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED
	evTaskStarted = enumspb.EVENT_TYPE_WORKFLOW_TASK_STARTED
)

// lastEvent returns the type of h's last event.
func lastEvent(h *historypb.History) enumspb.EventType {
	return h.Events[len(h.Events)-1].GetEventType()
}

// startRequest returns the Request h's run started with.
func startRequest(t *testing.T, h *historypb.History) workflows.Request {
	t.Helper()
	var req workflows.Request
	require.NoError(t, replaytest.StartInput(h, &req))
	return req
}

// identities returns the identities of the workers that ran h's workflow
// tasks, in order, each once.
func identities(h *historypb.History) []string {
	var out []string
	for _, e := range h.GetEvents() {
		if a := e.GetWorkflowTaskStartedEventAttributes(); a != nil && !slices.Contains(out, a.GetIdentity()) {
			out = append(out, a.GetIdentity())
		}
	}
	return out
}

func recordings() []recording {
	site, slice, instance, network := ref("Site", 1), ref("Slice", 1), ref("Instance", 1), ref("Network", 1)
	a, b, c, d := ref("A", 1), ref("B", 1), ref("C", 1), ref("D", 1)
	inSyncResult := func(o models.Ref) workflows.Result {
		return workflows.Result{Object: o, Outcome: workflows.StateInSync}
	}
	goneResult := func(o models.Ref) workflows.Result {
		return workflows.Result{Object: o, Outcome: workflows.StateGone}
	}
	return []recording{
		{
			// Dependencies synced first by children; the Slice's policies
			// run first.
			name: "chain",
			world: func() *recWorld {
				w := newRecWorld()
				w.add(site, object{pending: true})
				w.add(slice, object{pending: true, policy: true, deps: []models.Ref{site}})
				w.add(instance, object{pending: true, deps: []models.Ref{slice}})
				return w
			},
			run: func(t *testing.T, r *recorder) {
				require.Equal(t, inSyncResult(instance), r.wait(t, r.start(t, instance, false)))
			},
			check: func(t *testing.T, r *recorder, h histories) {
				require.Equal(t, []models.Ref{site, slice, instance}, r.w.callsOf("SyncObject"))
				require.Equal(t, []models.Ref{slice}, r.w.callsOf("RunPolicy"))
				require.Empty(t, r.w.statusRecords())
				require.Len(t, h, 3)
				require.Equal(t, 1, replaytest.Count(h.of(t, r.name, instance, 1), evChild, workflows.SyncType))
				require.Equal(t, 1, replaytest.Count(h.of(t, r.name, slice, 1), evChild, workflows.SyncType))
				require.Equal(t, 1, replaytest.Count(h.of(t, r.name, slice, 1), evActivity, "RunPolicy"))
			},
		},
		{
			// D defers until B, C and A wait: they find their
			// dependencies' workflows running and subscribe to them.
			name: "shared",
			world: func() *recWorld {
				w := newRecWorld()
				w.add(d, object{pending: true})
				w.add(b, object{pending: true, deps: []models.Ref{d}})
				w.add(c, object{pending: true, deps: []models.Ref{d}})
				w.add(a, object{pending: true, deps: []models.Ref{b, c}})
				// D defers until everyone waits for it.
				w.syncHook = func(r models.Ref, n int, o *object) (activities.SyncResult, error, bool) {
					return activities.SyncResult{}, deferredError("waiting for quota"), r == d && !w.opened
				}
				return w
			},
			run: func(t *testing.T, r *recorder) {
				runs := []client.WorkflowRun{r.start(t, d, false)}
				r.until(t, "D's first sync", func() bool { return r.w.count("SyncObject", d) >= 1 })
				runs = append(runs, r.start(t, b, false), r.start(t, c, false))
				r.until(t, "B and C to subscribe to D", func() bool { return r.signaled(t, d, workflows.SignalSubscribe) == 2 })
				runs = append(runs, r.start(t, a, false))
				r.until(t, "A to subscribe to B and C", func() bool {
					return r.signaled(t, b, workflows.SignalSubscribe) == 1 && r.signaled(t, c, workflows.SignalSubscribe) == 1
				})
				r.w.open()
				for i, o := range []models.Ref{d, b, c, a} {
					require.Equal(t, inSyncResult(o), r.wait(t, runs[i]))
				}
			},
			check: func(t *testing.T, r *recorder, h histories) {
				deferrals := r.w.count("SyncObject", d) - 1
				require.Positive(t, deferrals)
				require.ElementsMatch(t, []models.Ref{b, c, a}, slices.DeleteFunc(r.w.callsOf("SyncObject"), func(o models.Ref) bool { return o == d }))
				hd := h.of(t, r.name, d, 1)
				require.Equal(t, deferrals+1, replaytest.Count(hd, evActivity, "SyncReady"), "D deferred, then synced, each attempt a SyncReady")
				require.Equal(t, deferrals, replaytest.Count(hd, evTimer, ""), "a pause after each deferral")
				require.Equal(t, 2, replaytest.Count(hd, evSignaled, workflows.SignalSubscribe), "B and C subscribed to D")
				require.Equal(t, 2, replaytest.Count(hd, evSignalSent, workflows.SignalDone), "D told B and C")
				for _, o := range []models.Ref{b, c} {
					ho := h.of(t, r.name, o, 1)
					require.Equal(t, 1, replaytest.Count(ho, evSignalSent, workflows.SignalSubscribe), "%s subscribed to D", o)
					require.Equal(t, 1, replaytest.Count(ho, evSignaled, workflows.SignalDone), "%s told by D", o)
				}
				ha := h.of(t, r.name, a, 1)
				require.Equal(t, 2, replaytest.Count(ha, evSignalSent, workflows.SignalSubscribe), "A subscribed to B and C")
				require.Len(t, h, 4, "no child run of its own")
			},
		},
		{
			// The Site, in error, fails twice more (the first attempt alone,
			// then retries by the retry policy); the Slice records "Failed
			// due to ..." while it waits.
			name: "retry",
			world: func() *recWorld {
				w := newRecWorld()
				w.add(site, object{pending: true, code: models.CodeError, status: "old // quota exceeded"})
				w.add(slice, object{pending: true, deps: []models.Ref{site}})
				w.syncHook = func(r models.Ref, n int, o *object) (activities.SyncResult, error, bool) {
					if r == site && n <= 2 {
						return activities.SyncResult{}, stepError("quota exceeded"), true
					}
					return activities.SyncResult{}, nil, false
				}
				return w
			},
			run: func(t *testing.T, r *recorder) {
				require.Equal(t, inSyncResult(slice), r.wait(t, r.start(t, slice, false)))
			},
			check: func(t *testing.T, r *recorder, h histories) {
				require.Equal(t, []models.Ref{site, site, site, slice}, r.w.callsOf("SyncObject"))
				require.Equal(t, []statusRecord{{Ref: slice, Code: models.CodeError, Text: "Failed due to error in model Site id 1: quota exceeded"}}, r.w.statusRecords())
				hs := h.of(t, r.name, site, 1)
				require.Equal(t, 3, replaytest.Count(hs, evActivity, "SyncReady"), "each attempt an activity, with its look")
				require.Equal(t, 2, replaytest.Count(hs, evTimer, ""), "a backoff timer after each failure")
			},
		},
		{
			// The Site's deletion is held while the Instance is live, then
			// deletes its deleted dependents first, by child
			// DeleteWorkflows; the Slice's deletion defers once.
			name: "delete",
			world: func() *recWorld {
				w := newRecWorld()
				w.add(site, object{deleted: true})
				w.add(slice, object{deleted: true, deps: []models.Ref{site}})
				w.add(instance, object{deps: []models.Ref{site}})
				_, w.deleteHook = deferOnce(slice)
				return w
			},
			run: func(t *testing.T, r *recorder) {
				run := r.start(t, site, true)
				r.until(t, "the Site held twice", func() bool { return len(r.w.statusRecords()) >= 2 })
				r.w.update(instance, func(o *object) { o.deleted = true })
				require.Equal(t, goneResult(site), r.wait(t, run))
			},
			check: func(t *testing.T, r *recorder, h histories) {
				deleted := r.w.callsOf("DeleteObject")
				require.ElementsMatch(t, []models.Ref{slice, slice, instance, site}, deleted)
				require.Equal(t, site, deleted[len(deleted)-1], "the Site last")
				held := statusRecord{Ref: site, Code: models.CodePending, Text: "deferred: cannot delete, still used by model Instance id 1"}
				for _, s := range r.w.statusRecords() {
					require.Equal(t, held, s)
				}
				hs := h.of(t, r.name, site, 1)
				require.Equal(t, 2, replaytest.Count(hs, evChild, workflows.DeleteType))
				require.GreaterOrEqual(t, replaytest.Count(hs, evTimer, ""), 2, "held, paused")
				require.Equal(t, 2, replaytest.Count(h.of(t, r.name, slice, 1), evActivity, "DeleteObject"), "deferred, then deleted")
				for _, o := range []models.Ref{site, slice, instance} {
					_, ok := r.w.get(o)
					require.False(t, ok, "%s purged", o)
				}
			},
		},
		{
			// A sync of a deleted object continues as its deletion; a
			// deletion of a live object continues as its sync; a missing
			// dependency holds a sync until it is there.
			name: "continue",
			world: func() *recWorld {
				w := newRecWorld()
				w.add(site, object{pending: true, deleted: true, policy: true})
				w.add(slice, object{pending: true})
				w.add(instance, object{pending: true, deps: []models.Ref{ref("Site", 2)}})
				return w
			},
			run: func(t *testing.T, r *recorder) {
				require.Equal(t, goneResult(site), r.wait(t, r.start(t, site, false)))
				require.Equal(t, inSyncResult(slice), r.wait(t, r.start(t, slice, true)))
				run := r.start(t, instance, false)
				r.until(t, "the Instance held twice", func() bool { return len(r.w.statusRecords()) >= 2 })
				r.w.add(ref("Site", 2), object{synced: true, code: models.CodeOK, status: "OK"})
				require.Equal(t, inSyncResult(instance), r.wait(t, run))
			},
			check: func(t *testing.T, r *recorder, h histories) {
				for _, c := range []struct {
					ref           models.Ref
					first, second string
				}{{site, workflows.SyncType, workflows.DeleteType}, {slice, workflows.DeleteType, workflows.SyncType}} {
					h1, h2 := h.of(t, r.name, c.ref, 1), h.of(t, r.name, c.ref, 2)
					typ, _ := replaytest.Type(h1)
					require.Equal(t, c.first, typ)
					require.Equal(t, evContinued, lastEvent(h1))
					typ, _ = replaytest.Type(h2)
					require.Equal(t, c.second, typ)
					require.Equal(t, evCompleted, lastEvent(h2))
				}
				require.Equal(t, 1, replaytest.Count(h.of(t, r.name, site, 2), evActivity, "RunPolicy"), "the delete policy")
				held := statusRecord{Ref: instance, Code: models.CodePending, Text: "deferred: dependency model Site id 2 does not exist"}
				for _, s := range r.w.statusRecords() {
					require.Equal(t, held, s)
				}
				require.Equal(t, []models.Ref{slice, instance}, r.w.callsOf("SyncObject"))
				require.Equal(t, []models.Ref{site}, r.w.callsOf("DeleteObject"))
			},
		},
		{
			// The Site's policy defers once, then its sync twice, while
			// the Slice waits for it as its child.
			name: "defer",
			world: func() *recWorld {
				w := newRecWorld()
				w.add(site, object{pending: true, policy: true})
				w.add(slice, object{pending: true, deps: []models.Ref{site}})
				w.policyHook = func(r models.Ref, n int, o *object) (activities.Outcome, error, bool) {
					return "", deferredError("waiting for the address plan"), r == site && n == 1
				}
				w.syncHook = func(r models.Ref, n int, o *object) (activities.SyncResult, error, bool) {
					return activities.SyncResult{}, deferredError("waiting for quota"), r == site && n <= 2
				}
				return w
			},
			run: func(t *testing.T, r *recorder) {
				require.Equal(t, inSyncResult(slice), r.wait(t, r.start(t, slice, false)))
			},
			check: func(t *testing.T, r *recorder, h histories) {
				require.Equal(t, []string{
					"Inspect", "RunPolicy", "Inspect", "RunPolicy", "Inspect",
					"SyncObject", "Inspect", "SyncObject", "Inspect", "SyncObject",
				}, r.w.callsFor(site))
				hs := h.of(t, r.name, site, 1)
				require.Equal(t, 2, replaytest.Count(hs, evActivity, "RunPolicy"))
				require.Equal(t, 5, replaytest.Count(hs, evActivity, "SyncReady"), "each look, 3 with the step")
				require.Zero(t, replaytest.Count(hs, evActivity, "SyncObject"))
				require.Equal(t, 3, replaytest.Count(hs, evTimer, ""), "a pause after each deferral")
				require.Equal(t, 1, replaytest.Count(h.of(t, r.name, slice, 1), evChild, workflows.SyncType))
			},
		},
		{
			// Policies that run again, fail and are retried, update an
			// object in sync, and run before a deletion.
			name: "policy",
			world: func() *recWorld {
				w := newRecWorld()
				w.add(site, object{pending: true, policy: true})
				w.add(network, object{synced: true, code: models.CodeOK, status: "OK", policy: true})
				w.add(slice, object{deleted: true, policy: true})
				w.policyHook = func(r models.Ref, n int, o *object) (activities.Outcome, error, bool) {
					switch {
					case r == site && n == 1:
						// Changed while its policies ran: they run again.
						return activities.OutcomeSkipped, nil, true
					case r == site && n == 2:
						return "", stepError("address plan unreachable"), true
					case r == network:
						// The policy changes the object: it needs a sync.
						o.policy, o.pending = false, true
						return activities.OutcomeOK, nil, true
					}
					return "", nil, false
				}
				return w
			},
			run: func(t *testing.T, r *recorder) {
				require.Equal(t, inSyncResult(site), r.wait(t, r.start(t, site, false)))
				require.Equal(t, inSyncResult(network), r.wait(t, r.start(t, network, false)))
				require.Equal(t, goneResult(slice), r.wait(t, r.start(t, slice, true)))
			},
			check: func(t *testing.T, r *recorder, h histories) {
				require.Equal(t, []string{"Inspect", "RunPolicy", "Inspect", "RunPolicy", "Inspect", "RunPolicy", "Inspect", "SyncObject"}, r.w.callsFor(site), "a look before each attempt")
				require.Equal(t, []string{"Inspect", "RunPolicy", "Inspect", "SyncObject"}, r.w.callsFor(network))
				require.Equal(t, []string{"Inspect", "RunPolicy", "Inspect", "Dependents", "DeleteObject"}, r.w.callsFor(slice))
				hs := h.of(t, r.name, site, 1)
				require.Equal(t, 3, replaytest.Count(hs, evActivity, "RunPolicy"), "again, failed, retried")
				require.Equal(t, 1, replaytest.Count(hs, evTimer, ""), "the backoff before the retries")
				require.Equal(t, 2, replaytest.Count(h.of(t, r.name, network, 1), evActivity, "SyncReady"), "before its policies, then with the step")
				require.Equal(t, 1, replaytest.Count(h.of(t, r.name, slice, 1), evActivity, "RunPolicy"))
			},
		},
		{
			// The Slice waits, subscribed, behind the Site's workflow in
			// error and backoff; the Instance is held behind a no_sync
			// Network until it is unblocked.
			name: "held",
			world: func() *recWorld {
				w := newRecWorld()
				w.add(site, object{pending: true})
				w.add(slice, object{pending: true, deps: []models.Ref{site}})
				w.add(network, object{blocked: true})
				w.add(instance, object{pending: true, deps: []models.Ref{network}})
				// The Site fails until the Slice waits for it.
				w.syncHook = func(r models.Ref, n int, o *object) (activities.SyncResult, error, bool) {
					if r == site && !w.opened {
						// As the real activity does: the error is recorded.
						o.code, o.status = models.CodeError, "no route // quota exceeded"
						return activities.SyncResult{}, stepError("quota exceeded"), true
					}
					return activities.SyncResult{}, nil, false
				}
				return w
			},
			run: func(t *testing.T, r *recorder) {
				siteRun := r.start(t, site, false)
				r.until(t, "the Site's first failure", func() bool { return r.w.count("SyncObject", site) >= 1 })
				sliceRun := r.start(t, slice, false)
				instanceRun := r.start(t, instance, false)
				r.until(t, "the Slice to subscribe to the Site, the Site to fail again", func() bool {
					return r.signaled(t, site, workflows.SignalSubscribe) == 1 && r.w.count("SyncObject", site) >= 3
				})
				r.w.open()
				r.until(t, "the Instance held three times", func() bool { return r.w.count("RecordStatus", instance) >= 3 })
				r.w.update(network, func(o *object) { o.blocked, o.pending = false, true })
				require.Equal(t, inSyncResult(site), r.wait(t, siteRun))
				require.Equal(t, inSyncResult(slice), r.wait(t, sliceRun))
				require.Equal(t, inSyncResult(instance), r.wait(t, instanceRun))
			},
			check: func(t *testing.T, r *recorder, h histories) {
				require.GreaterOrEqual(t, r.w.count("SyncObject", site), 4, "failures, then a success")
				failed := statusRecord{Ref: slice, Code: models.CodeError, Text: "Failed due to error in model Site id 1: quota exceeded"}
				held := statusRecord{Ref: instance, Code: models.CodePending, Text: "deferred: dependency model Network id 1 is not synced (no_sync or lazy_blocked)"}
				var heldN int
				for _, s := range r.w.statusRecords() {
					if s.Ref == instance {
						require.Equal(t, held, s)
						heldN++
						continue
					}
					require.Equal(t, failed, s)
				}
				require.GreaterOrEqual(t, heldN, 3)
				hs, hl := h.of(t, r.name, site, 1), h.of(t, r.name, slice, 1)
				require.Equal(t, 1, replaytest.Count(hs, evSignaled, workflows.SignalSubscribe), "the Slice subscribed to the Site")
				require.Equal(t, 1, replaytest.Count(hs, evSignalSent, workflows.SignalDone))
				require.Equal(t, 1, replaytest.Count(hl, evSignalSent, workflows.SignalSubscribe))
				require.Equal(t, 1, replaytest.Count(hl, evSignaled, workflows.SignalDone))
				require.Equal(t, 1, replaytest.Count(hl, evMarker, "RecordStatus"), "Failed due to ...")
				hi := h.of(t, r.name, instance, 1)
				require.GreaterOrEqual(t, replaytest.Count(hi, evTimer, ""), 3, "held, paused")
				require.Equal(t, 1, replaytest.Count(hi, evChild, workflows.SyncType), "the Network synced once unblocked")
				inSync(t, r.w.world, network, instance)
			},
		},
		{
			// The Slice, held on a missing dependency, continues as new
			// after 100 iterations, carrying the Instance's subscription.
			name:   "iterations",
			params: func(p *workflows.Params) { p.LoopInterval = 20 * time.Millisecond },
			world: func() *recWorld {
				w := newRecWorld()
				w.add(slice, object{pending: true, deps: []models.Ref{ref("Site", 9)}})
				w.add(instance, object{pending: true, deps: []models.Ref{slice}})
				return w
			},
			run: func(t *testing.T, r *recorder) {
				sliceRun := r.start(t, slice, false)
				r.until(t, "the Slice held", func() bool { return r.w.count("RecordStatus", slice) >= 1 })
				instanceRun := r.start(t, instance, false)
				// 100 inspections in the first run, and one in the next.
				r.until(t, "the Slice's next run", func() bool { return r.w.count("Inspect", slice) >= 101 })
				r.w.add(ref("Site", 9), object{synced: true, code: models.CodeOK, status: "OK"})
				require.Equal(t, inSyncResult(slice), r.wait(t, sliceRun))
				require.Equal(t, inSyncResult(instance), r.wait(t, instanceRun))
			},
			check: func(t *testing.T, r *recorder, h histories) {
				h1, h2 := h.of(t, r.name, slice, 1), h.of(t, r.name, slice, 2)
				require.Len(t, h, 3)
				require.Equal(t, evContinued, lastEvent(h1))
				require.Equal(t, 1, replaytest.Count(h1, evActivity, "SyncReady"), "the first look")
				require.Equal(t, 99, replaytest.Count(h1, evMarker, "Inspect"), "held: the other 99 iterations look with Inspect")
				require.Equal(t, 1, replaytest.Count(h1, evSignaled, workflows.SignalSubscribe))
				require.Equal(t, []string{workflows.WorkflowID(r.name, instance)}, startRequest(t, h2).Subscribers, "the subscription carried over")
				require.Equal(t, 1, replaytest.Count(h2, evSignalSent, workflows.SignalDone))
				hi := h.of(t, r.name, instance, 1)
				require.Equal(t, 1, replaytest.Count(hi, evSignalSent, workflows.SignalSubscribe))
				require.Equal(t, 1, replaytest.Count(hi, evSignaled, workflows.SignalDone))
				require.Equal(t, []models.Ref{slice, instance}, r.w.callsOf("SyncObject"))
			},
		},
		signalRecording(),
	}
}

// TestRecordHistories records the histories TestReplayHistories replays
// (those of the current code, into historyDir/currentHistories, replacing
// them), and those of the deliberate change of version_test.go, from a
// Temporal dev server (bin/temporal). Record them again after a change of
// the scenarios, or after a change of the workflows guarded by
// workflow.GetVersion (under a new currentHistories: see the README,
// "Changing workflow code"):
//
//	TSYNC_RECORD_HISTORIES=1 go test -run TestRecordHistories ./internal/workflows/
//
// Each scenario asserts its results and the paths its runs took, so that a
// scenario that went another way (on a loaded machine, say) fails rather
// than being recorded.
func TestRecordHistories(t *testing.T) {
	if os.Getenv("TSYNC_RECORD_HISTORIES") == "" {
		t.Skip("set TSYNC_RECORD_HISTORIES=1 to record the histories again")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	srv, err := testenv.StartTemporal(ctx, replaytest.DevServerArgs()...)
	cancel()
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Stop() })
	c, err := client.Dial(client.Options{HostPort: srv.HostPort(), Logger: quietLogger()})
	require.NoError(t, err)
	t.Cleanup(c.Close)

	record := func(t *testing.T, dir string, recs []recording) {
		for _, rec := range recs {
			t.Run(rec.name, func(t *testing.T) {
				old, err := filepath.Glob(filepath.Join(dir, rec.name+"-*.json"))
				require.NoError(t, err)
				for _, f := range old {
					require.NoError(t, os.Remove(f))
				}
				p := recordParams(rec.name)
				if rec.params != nil {
					rec.params(&p)
				}
				r := &recorder{name: rec.name, c: c, w: rec.world(), queue: "record-" + rec.name, p: p}
				var change interceptor.WorkerInterceptor
				identity := workerOld
				if rec.changed {
					change, identity = changeGuarded(r.w), workerNew
				}
				r.startWorker(t, identity, change)
				defer func() { r.wk.Stop() }()
				rec.run(t, r)
				hists, err := replaytest.Save(context.Background(), c, r.queue, dir, time.Minute)
				require.NoError(t, err)
				for file := range hists {
					require.True(t, strings.HasPrefix(file, rec.name+"-"), file)
				}
				rec.check(t, r, hists)
			})
		}
	}
	t.Run("current", func(t *testing.T) { record(t, filepath.Join(historyDir, currentHistories), recordings()) })
	t.Run("changed", func(t *testing.T) { record(t, changedHistoryDir, changedRecordings()) })
}
