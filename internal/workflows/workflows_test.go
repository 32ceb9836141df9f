package workflows_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/tsync/tsync/internal/activities"
	"github.com/tsync/tsync/internal/workflows"
	"github.com/tsync/tsync/models"
)

// testParams are the settings every test workflow runs with.
var testParams = workflows.Params{
	Synchronizer:     "t",
	LoopInterval:     time.Second,
	Retry:            workflows.RetryParams{Initial: time.Second, Max: 8 * time.Second, Coefficient: 2},
	StepTimeout:      time.Minute,
	HeartbeatTimeout: 10 * time.Second,
}

// acts is only used for activity method expressions (a nil receiver is fine).
var acts *activities.Activities

func ref(model string, id int64) models.Ref { return models.Ref{Model: model, ID: id} }

// ---------------------------------------------------------------------------
// The simulated world: an in-memory "database" the fake activities read and
// update.

type object struct {
	deleted      bool
	writeProtect bool
	blocked      bool
	pending      bool
	// synced: its current content was synced (enacted not older than
	// updated); Inspect reports it as the dependency's Synced.
	synced bool
	code   int
	status string
	deps   []models.Ref
}

// call is one fake activity invocation, in the order the fakes ran.
type call struct {
	Activity string
	Ref      models.Ref
}

// statusRecord is one RecordStatus call.
type statusRecord struct {
	Ref  models.Ref
	Code int
	Text string
}

// syncHook overrides SyncObject's behaviour for its n-th call (1-based) on an
// object; handled false falls back to the default behaviour.
type syncHook func(ref models.Ref, n int, o *object) (res activities.SyncResult, err error, handled bool)

// deleteHook is syncHook's counterpart for DeleteObject.
type deleteHook func(ref models.Ref, n int, o *object) (out activities.Outcome, err error, handled bool)

type world struct {
	mu         sync.Mutex
	objs       map[models.Ref]*object
	calls      []call
	statuses   []statusRecord
	syncN      map[models.Ref]int
	syncHook   syncHook
	deleteN    map[models.Ref]int
	deleteHook deleteHook
}

func newWorld() *world {
	return &world{objs: map[models.Ref]*object{}, syncN: map[models.Ref]int{}, deleteN: map[models.Ref]int{}}
}

// add inserts (or replaces) an object.
func (w *world) add(r models.Ref, o object) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.objs[r] = &o
}

// update changes an existing object under the lock.
func (w *world) update(r models.Ref, fn func(o *object)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	fn(w.objs[r])
}

// purge removes an object's row.
func (w *world) purge(r models.Ref) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.objs, r)
}

func (w *world) get(r models.Ref) (object, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	o, ok := w.objs[r]
	if !ok {
		return object{}, false
	}
	return *o, true
}

func (w *world) record(activity string, r models.Ref) {
	w.calls = append(w.calls, call{Activity: activity, Ref: r})
}

// callsOf returns the objects activity was called for, in order.
func (w *world) callsOf(activity string) []models.Ref {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []models.Ref
	for _, c := range w.calls {
		if c.Activity == activity {
			out = append(out, c.Ref)
		}
	}
	return out
}

// callLog lists every call, as "Activity Model id".
func (w *world) callLog() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, c := range w.calls {
		out = append(out, fmt.Sprintf("%s %s %d", c.Activity, c.Ref.Model, c.Ref.ID))
	}
	return out
}

func (w *world) statusRecords() []statusRecord {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.statuses)
}

func (w *world) Inspect(_ context.Context, r models.Ref) (activities.Inspection, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.record("Inspect", r)
	o, ok := w.objs[r]
	if !ok {
		return activities.Inspection{}, nil
	}
	ins := activities.Inspection{
		Exists: true, Deleted: o.deleted, WriteProtect: o.writeProtect, Blocked: o.blocked,
		Pending: o.pending, Code: o.code,
	}
	for _, d := range o.deps {
		ds := activities.DepState{Ref: d, Synchronized: true}
		if do, ok := w.objs[d]; ok {
			ds.Exists, ds.Deleted, ds.Blocked, ds.Pending, ds.Synced = true, do.deleted, do.blocked, do.pending, do.synced
			ds.Code, ds.Status = do.code, do.status
		}
		ins.Deps = append(ins.Deps, ds)
	}
	return ins, nil
}

func (w *world) SyncObject(_ context.Context, r models.Ref) (activities.SyncResult, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.record("SyncObject", r)
	w.syncN[r]++
	o, ok := w.objs[r]
	if w.syncHook != nil {
		if res, err, handled := w.syncHook(r, w.syncN[r], o); handled {
			return res, err
		}
	}
	switch {
	case !ok:
		return activities.SyncResult{Outcome: activities.OutcomeGone}, nil
	case !o.pending:
		return activities.SyncResult{Outcome: activities.OutcomeSkipped}, nil
	}
	o.pending, o.synced, o.code, o.status = false, true, models.CodeOK, "OK"
	return activities.SyncResult{Outcome: activities.OutcomeOK}, nil
}

func (w *world) DeleteObject(_ context.Context, r models.Ref) (activities.Outcome, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.record("DeleteObject", r)
	w.deleteN[r]++
	o, ok := w.objs[r]
	if w.deleteHook != nil {
		if out, err, handled := w.deleteHook(r, w.deleteN[r], o); handled {
			return out, err
		}
	}
	switch {
	case !ok:
		return activities.OutcomeGone, nil
	case !o.deleted || o.writeProtect:
		return activities.OutcomeSkipped, nil
	}
	delete(w.objs, r)
	return activities.OutcomeOK, nil
}

func (w *world) Dependents(_ context.Context, r models.Ref) ([]models.Dependent, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.record("Dependents", r)
	var out []models.Dependent
	for dr, o := range w.objs {
		if slices.Contains(o.deps, r) {
			out = append(out, models.Dependent{Ref: dr, Deleted: o.deleted, WriteProtect: o.writeProtect})
		}
	}
	slices.SortFunc(out, func(a, b models.Dependent) int {
		if c := strings.Compare(a.Model, b.Model); c != 0 {
			return c
		}
		return int(a.ID - b.ID)
	})
	return out, nil
}

func (w *world) RecordStatus(_ context.Context, r models.Ref, code int, status string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.record("RecordStatus", r)
	w.statuses = append(w.statuses, statusRecord{Ref: r, Code: code, Text: status})
	if o, ok := w.objs[r]; ok {
		o.code, o.status = code, status
	}
	return nil
}

// ---------------------------------------------------------------------------
// The test environment.

// start is one activity attempt's start, on the workflow clock.
type start struct {
	Activity string
	Ref      models.Ref
	At       time.Time
	Attempt  int32
}

type harness struct {
	env *testsuite.TestWorkflowEnvironment
	w   *world
	t0  time.Time

	mu          sync.Mutex
	starts      []start
	childStarts []string
	childErrors []string
}

type harnessOptions struct {
	// syncDelay delays the SyncObject result of these objects on the test
	// clock.
	syncDelay map[models.Ref]time.Duration
	// subscribeDelay delays every SignalSubscribe signal on the test clock
	// (see delaySubscribe).
	subscribeDelay time.Duration
}

// watchdog is the workflow time after which a test is deemed stuck. The test
// clock skips ahead when every workflow is blocked, so a deadlock reaches it
// at once.
const watchdog = time.Hour

func newHarness(t *testing.T, w *world, opts harnessOptions) *harness {
	t.Helper()
	var suite testsuite.WorkflowTestSuite
	suite.SetLogger(log.NewStructuredLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))))
	env := suite.NewTestWorkflowEnvironment()
	// The SDK's 1s (wall time) deadlock detector trips on a loaded machine
	// (the first workflow task of a test binary is slow under -race).
	wopts := worker.Options{DeadlockDetectionTimeout: 30 * time.Second}
	if opts.subscribeDelay > 0 {
		wopts.Interceptors = []interceptor.WorkerInterceptor{&delaySubscribe{delay: opts.subscribeDelay}}
	}
	env.SetWorkerOptions(wopts)
	env.SetTestTimeout(time.Minute)
	env.RegisterWorkflow(workflows.SyncWorkflow)
	env.RegisterWorkflow(workflows.DeleteWorkflow)
	env.RegisterActivity(&activities.Activities{})

	// The fakes are Maybe: tests assert the calls the world recorded.
	env.OnActivity(acts.Inspect, mock.Anything, mock.Anything).Return(w.Inspect).Maybe()
	for r, d := range opts.syncDelay {
		env.OnActivity(acts.SyncObject, mock.Anything, r).After(d).Return(w.SyncObject).Maybe()
	}
	env.OnActivity(acts.SyncObject, mock.Anything, mock.MatchedBy(func(r models.Ref) bool {
		_, delayed := opts.syncDelay[r]
		return !delayed
	})).Return(w.SyncObject).Maybe()
	env.OnActivity(acts.DeleteObject, mock.Anything, mock.Anything).Return(w.DeleteObject).Maybe()
	env.OnActivity(acts.Dependents, mock.Anything, mock.Anything).Return(w.Dependents).Maybe()
	env.OnActivity(acts.RecordStatus, mock.Anything, mock.Anything, mock.Anything, mock.Anything).Return(w.RecordStatus).Maybe()

	h := &harness{env: env, w: w, t0: env.Now()}
	env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, args converter.EncodedValues) {
		var r models.Ref
		if err := args.Get(&r); err != nil {
			t.Errorf("decode activity args: %v", err)
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		h.starts = append(h.starts, start{Activity: info.ActivityType.Name, Ref: r, At: env.Now(), Attempt: info.Attempt})
	})
	// Inspect, Dependents and RecordStatus run as local activities.
	env.SetOnLocalActivityStartedListener(func(info *activity.Info, _ context.Context, args []any) {
		r, _ := args[0].(models.Ref)
		h.mu.Lock()
		defer h.mu.Unlock()
		h.starts = append(h.starts, start{Activity: info.ActivityType.Name, Ref: r, At: env.Now(), Attempt: info.Attempt})
	})
	env.SetOnChildWorkflowStartedListener(func(info *workflow.Info, _ workflow.Context, _ converter.EncodedValues) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.childStarts = append(h.childStarts, info.WorkflowExecution.ID)
	})
	env.SetOnChildWorkflowCompletedListener(func(info *workflow.Info, _ converter.EncodedValue, err error) {
		if err == nil {
			return
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		h.childErrors = append(h.childErrors, info.WorkflowExecution.ID+": "+err.Error())
	})
	// Delayed callbacks run on the test's goroutine (the environment's main
	// loop), so FailNow is allowed here.
	env.RegisterDelayedCallback(func() {
		t.Fatalf("stuck: nothing completed in %v of workflow time (deadlock); activity calls: %q", watchdog, w.callLog())
	}, watchdog)
	t.Cleanup(func() {
		env.AssertExpectations(t)
		h.mu.Lock()
		defer h.mu.Unlock()
		require.Empty(t, h.childErrors, "child workflows failed")
	})
	return h
}

// startsOf returns the starts of activity (on ref, unless ref is zero).
func (h *harness) startsOf(activity string, r models.Ref) []start {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []start
	for _, s := range h.starts {
		if s.Activity == activity && (r == models.Ref{} || s.Ref == r) {
			out = append(out, s)
		}
	}
	return out
}

// childRuns returns how many child workflows started under id.
func (h *harness) childRuns(id string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, s := range h.childStarts {
		if s == id {
			n++
		}
	}
	return n
}

// offsets returns the start times relative to the test's start.
func (h *harness) offsets(starts []start) []time.Duration {
	var out []time.Duration
	for _, s := range starts {
		out = append(out, s.At.Sub(h.t0))
	}
	return out
}

func gaps(starts []start) []time.Duration {
	var out []time.Duration
	for i := 1; i < len(starts); i++ {
		out = append(out, starts[i].At.Sub(starts[i-1].At))
	}
	return out
}

// runSync runs SyncWorkflow for r as root, under r's workflow ID.
func (h *harness) runSync(t *testing.T, r models.Ref, p workflows.Params) (workflows.Result, error) {
	t.Helper()
	return h.run(t, workflows.SyncWorkflow, r, p)
}

func (h *harness) runDelete(t *testing.T, r models.Ref, p workflows.Params) (workflows.Result, error) {
	t.Helper()
	return h.run(t, workflows.DeleteWorkflow, r, p)
}

func (h *harness) run(t *testing.T, fn any, r models.Ref, p workflows.Params) (workflows.Result, error) {
	t.Helper()
	h.env.SetStartWorkflowOptions(workflowOptions(workflows.WorkflowID(p.Synchronizer, r)))
	h.env.ExecuteWorkflow(fn, workflows.Request{Object: r, Params: p})
	require.True(t, h.env.IsWorkflowCompleted(), "workflow did not complete")
	if err := h.env.GetWorkflowError(); err != nil {
		return workflows.Result{}, err
	}
	var res workflows.Result
	require.NoError(t, h.env.GetWorkflowResult(&res))
	return res, nil
}

func inSync(t *testing.T, w *world, refs ...models.Ref) {
	t.Helper()
	for _, r := range refs {
		o, ok := w.get(r)
		require.True(t, ok, "%s exists", r)
		require.False(t, o.pending, "%s pending", r)
		require.True(t, o.synced, "%s synced", r)
		require.Equal(t, models.CodeOK, o.code, "%s code", r)
		require.Equal(t, "OK", o.status, "%s status", r)
	}
}

func workflowOptions(id string) client.StartWorkflowOptions {
	return client.StartWorkflowOptions{ID: id, TaskQueue: "tsync-test"}
}

// ---------------------------------------------------------------------------
// Tests.

// A chain Site <- Slice <- Instance, all pending: the Instance's workflow
// syncs its dependencies first, by child workflows, each exactly once.
func TestSyncChainSyncsDependenciesFirst(t *testing.T) {
	w := newWorld()
	site, slice, instance := ref("Site", 1), ref("Slice", 1), ref("Instance", 1)
	w.add(site, object{pending: true})
	w.add(slice, object{pending: true, deps: []models.Ref{site}})
	w.add(instance, object{pending: true, deps: []models.Ref{slice}})
	h := newHarness(t, w, harnessOptions{})

	res, err := h.runSync(t, instance, testParams)
	require.NoError(t, err)
	require.Equal(t, workflows.Result{Object: instance, Outcome: workflows.OutcomeInSync}, res)
	require.Equal(t, []models.Ref{site, slice, instance}, w.callsOf("SyncObject"))
	require.Empty(t, w.statusRecords())
	inSync(t, w, site, slice, instance)
}

// A diamond A->B, A->C, B->D, C->D: the shared D is synced once, before B
// and C (one of which subscribes to D's running workflow), and A is last.
//
// The subscription is delayed by 100ms of workflow time: without it, the
// subscriber's signal can reach D's child workflow in the same dispatch as
// the other dependent starts it, before the test environment has installed
// its signal handler, and the test environment then panics inside the
// subscriber (a nil signal handler: an SDK test-environment limitation; a
// Temporal server accepts a signal to a workflow as soon as it is started).
// (While an activity runs, the test environment fires a timer after its
// duration in wall time, so the delay must not be tiny.)
func TestSyncDiamondSyncsSharedDependencyOnce(t *testing.T) {
	w := newWorld()
	a, b, c, d := ref("A", 1), ref("B", 1), ref("C", 1), ref("D", 1)
	w.add(d, object{pending: true})
	w.add(b, object{pending: true, deps: []models.Ref{d}})
	w.add(c, object{pending: true, deps: []models.Ref{d}})
	w.add(a, object{pending: true, deps: []models.Ref{b, c}})
	h := newHarness(t, w, harnessOptions{
		syncDelay:      map[models.Ref]time.Duration{d: time.Second},
		subscribeDelay: 100 * time.Millisecond,
	})

	res, err := h.runSync(t, a, testParams)
	require.NoError(t, err)
	require.Equal(t, workflows.Result{Object: a, Outcome: workflows.OutcomeInSync}, res)
	synced := w.callsOf("SyncObject")
	require.Len(t, synced, 4, "%v", synced)
	require.Equal(t, d, synced[0], "D first: %v", synced)
	require.ElementsMatch(t, []models.Ref{b, c}, synced[1:3])
	require.Equal(t, a, synced[3], "A last: %v", synced)
	// One workflow each: the dependent that did not start D waited for it.
	for _, id := range []string{"t/B/1", "t/C/1", "t/D/1"} {
		require.Equal(t, 1, h.childRuns(id), id)
	}
	require.Len(t, h.startsOf("Inspect", a), 1, "A was never held")
	require.Empty(t, w.statusRecords())
	// B, C and A synced as soon as D's 1s step ended.
	for _, r := range []models.Ref{a, b, c} {
		require.Equal(t, []time.Duration{time.Second}, h.offsets(h.startsOf("SyncObject", r)), "%s synced once D was", r)
	}
	inSync(t, w, a, b, c, d)
}

// samples-go style isolation: the dependency's child workflow is mocked, so
// only the parent's own logic runs.
func TestSyncWithMockedChildWorkflow(t *testing.T) {
	w := newWorld()
	site, slice := ref("Site", 1), ref("Slice", 1)
	w.add(site, object{pending: true})
	w.add(slice, object{pending: true, deps: []models.Ref{site}})
	h := newHarness(t, w, harnessOptions{})

	// OnWorkflow mocks also catch the root workflow's execution in the test
	// environment: the root (the Slice) runs the real SyncWorkflow.
	isSlice := mock.MatchedBy(func(req workflows.Request) bool { return req.Object == slice })
	h.env.OnWorkflow(workflows.SyncWorkflow, mock.Anything, isSlice).Return(workflows.SyncWorkflow).Once()
	isSite := mock.MatchedBy(func(req workflows.Request) bool { return req.Object == site })
	h.env.OnWorkflow(workflows.SyncWorkflow, mock.Anything, isSite).
		Return(workflows.Result{Object: site, Outcome: workflows.OutcomeInSync}, nil).Once()

	res, err := h.runSync(t, slice, testParams)
	require.NoError(t, err)
	require.Equal(t, workflows.Result{Object: slice, Outcome: workflows.OutcomeInSync}, res)
	// Only the Slice's step ran: the Site's workflow was the mock.
	require.Equal(t, []models.Ref{slice}, w.callsOf("SyncObject"))
	require.Equal(t, []models.Ref{slice}, w.callsOf("Inspect"))
	o, _ := w.get(site)
	require.True(t, o.pending, "the mocked child did not touch the Site")
	inSync(t, w, slice)
}

// sharedDependencyParent starts dep's SyncWorkflow as a child, then, a second
// later, the SyncWorkflows of dependents (which depend on dep) as children,
// and returns every result.
func sharedDependencyParent(ctx workflow.Context, p workflows.Params, dep models.Ref, dependents []models.Ref) ([]workflows.Result, error) {
	startChild := func(r models.Ref) workflow.ChildWorkflowFuture {
		cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{WorkflowID: workflows.WorkflowID(p.Synchronizer, r)})
		return workflow.ExecuteChildWorkflow(cctx, workflows.SyncWorkflow, workflows.Request{Object: r, Params: p})
	}
	futures := []workflow.ChildWorkflowFuture{startChild(dep)}
	if err := futures[0].GetChildWorkflowExecution().Get(ctx, nil); err != nil {
		return nil, err
	}
	if err := workflow.Sleep(ctx, time.Second); err != nil {
		return nil, err
	}
	for _, r := range dependents {
		futures = append(futures, startChild(r))
	}
	var results []workflows.Result
	for _, f := range futures {
		var res workflows.Result
		if err := f.Get(ctx, &res); err != nil {
			return nil, err
		}
		results = append(results, res)
	}
	return results, nil
}

// B and C depend on D, whose workflow is already running (its step takes 10s):
// their child starts of D fail as already started, so they subscribe, and D
// signals them when it ends.
func TestSyncWaitsForRunningDependency(t *testing.T) {
	w := newWorld()
	b, c, d := ref("B", 1), ref("C", 1), ref("D", 1)
	w.add(d, object{pending: true})
	w.add(b, object{pending: true, deps: []models.Ref{d}})
	w.add(c, object{pending: true, deps: []models.Ref{d}})
	h := newHarness(t, w, harnessOptions{syncDelay: map[models.Ref]time.Duration{d: 10 * time.Second}})
	h.env.RegisterWorkflow(sharedDependencyParent)

	h.env.SetStartWorkflowOptions(workflowOptions("t/parent"))
	h.env.ExecuteWorkflow(sharedDependencyParent, testParams, d, []models.Ref{b, c})
	require.True(t, h.env.IsWorkflowCompleted())
	require.NoError(t, h.env.GetWorkflowError())
	var results []workflows.Result
	require.NoError(t, h.env.GetWorkflowResult(&results))
	require.Equal(t, []workflows.Result{
		{Object: d, Outcome: workflows.OutcomeInSync},
		{Object: b, Outcome: workflows.OutcomeInSync},
		{Object: c, Outcome: workflows.OutcomeInSync},
	}, results)

	synced := w.callsOf("SyncObject")
	require.Len(t, synced, 3, "%v", synced)
	require.Equal(t, d, synced[0])
	require.ElementsMatch(t, []models.Ref{b, c}, synced[1:])
	// D's workflow ran once: B and C waited for it rather than running their own.
	for _, id := range []string{"t/B/1", "t/C/1", "t/D/1"} {
		require.Equal(t, 1, h.childRuns(id), id)
	}
	require.Len(t, h.startsOf("Inspect", b), 1, "B subscribed, was signalled, and synced")
	require.Len(t, h.startsOf("Inspect", c), 1, "C subscribed, was signalled, and synced")
	require.Empty(t, w.statusRecords())
	// B and C synced when D's 10s step ended, not before.
	for _, r := range []models.Ref{b, c} {
		require.Equal(t, []time.Duration{10 * time.Second}, h.offsets(h.startsOf("SyncObject", r)), "%s", r)
	}
	inSync(t, w, b, c, d)
}

// A DeferredError is not backed off: the step is tried again after the plain
// loop interval, every time.
func TestSyncDeferredRetriesAtLoopInterval(t *testing.T) {
	w := newWorld()
	site := ref("Site", 1)
	w.add(site, object{pending: true})
	w.syncHook = func(r models.Ref, n int, o *object) (activities.SyncResult, error, bool) {
		if n <= 2 {
			o.code, o.status = models.CodePending, "deferred: waiting for quota"
			return activities.SyncResult{}, temporal.NewNonRetryableApplicationError("waiting for quota", activities.ErrTypeDeferred, nil), true
		}
		return activities.SyncResult{}, nil, false
	}
	h := newHarness(t, w, harnessOptions{})

	res, err := h.runSync(t, site, testParams)
	require.NoError(t, err)
	require.Equal(t, workflows.OutcomeInSync, res.Outcome)
	starts := h.startsOf("SyncObject", site)
	require.Len(t, starts, 3)
	require.Equal(t, []time.Duration{time.Second, time.Second}, gaps(starts))
	for _, s := range starts {
		require.Equal(t, int32(1), s.Attempt, "each try is a new activity, not a Temporal retry")
	}
	inSync(t, w, site)
}

// A failed step is retried by the activity's retry policy: exponential
// backoff capped at Max, or a constant interval with Coefficient 1.
func TestSyncStepFailureRetriedWithBackoff(t *testing.T) {
	for _, tc := range []struct {
		name  string
		retry workflows.RetryParams
		gaps  []time.Duration
	}{
		{"exponential capped", workflows.RetryParams{Initial: time.Second, Max: 4 * time.Second, Coefficient: 2},
			[]time.Duration{1 * time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second, 4 * time.Second}},
		{"backoff disabled", workflows.RetryParams{Initial: time.Second, Max: 8 * time.Second, Coefficient: 1},
			[]time.Duration{time.Second, time.Second, time.Second, time.Second, time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld()
			site := ref("Site", 1)
			w.add(site, object{pending: true})
			w.syncHook = func(r models.Ref, n int, o *object) (activities.SyncResult, error, bool) {
				if n <= 5 {
					o.code, o.status = models.CodeError, "quota exceeded"
					return activities.SyncResult{}, temporal.NewApplicationError("quota exceeded", activities.ErrTypeStep), true
				}
				return activities.SyncResult{}, nil, false
			}
			h := newHarness(t, w, harnessOptions{})
			p := testParams
			p.Retry = tc.retry

			res, err := h.runSync(t, site, p)
			require.NoError(t, err)
			require.Equal(t, workflows.OutcomeInSync, res.Outcome)
			starts := h.startsOf("SyncObject", site)
			require.Len(t, starts, 6)
			require.Equal(t, tc.gaps, gaps(starts))
			// The first attempt runs alone (so the workflow shows the error at
			// once); then one activity, retried by Temporal.
			require.Equal(t, int32(1), starts[0].Attempt)
			for i, s := range starts[1:] {
				require.Equal(t, int32(i+1), s.Attempt, "one activity, retried by Temporal")
			}
			require.Len(t, h.startsOf("Inspect", site), 1, "the workflow waited for the retried activity")
			inSync(t, w, site)
		})
	}
}

// An object changed during its sync is synced again.
func TestSyncAgainWhenChangedDuringSync(t *testing.T) {
	w := newWorld()
	site := ref("Site", 1)
	w.add(site, object{pending: true})
	w.syncHook = func(r models.Ref, n int, o *object) (activities.SyncResult, error, bool) {
		if n == 1 {
			// Synced, but updated meanwhile: still pending.
			o.code, o.status = models.CodeOK, "OK"
			return activities.SyncResult{Outcome: activities.OutcomeOK, Pending: true}, nil, true
		}
		return activities.SyncResult{}, nil, false
	}
	h := newHarness(t, w, harnessOptions{})

	res, err := h.runSync(t, site, testParams)
	require.NoError(t, err)
	require.Equal(t, workflows.Result{Object: site, Outcome: workflows.OutcomeInSync}, res)
	require.Equal(t, []models.Ref{site, site}, w.callsOf("SyncObject"))
	require.Equal(t, []models.Ref{site, site}, w.callsOf("Inspect"))
	inSync(t, w, site)
}

// A deleted object's SyncWorkflow continues as new as its DeleteWorkflow.
func TestSyncOfDeletedObjectContinuesAsDelete(t *testing.T) {
	w := newWorld()
	site := ref("Site", 1)
	w.add(site, object{pending: true, deleted: true})
	h := newHarness(t, w, harnessOptions{})

	_, err := h.runSync(t, site, testParams)
	require.Error(t, err)
	var can *workflow.ContinueAsNewError
	require.True(t, errors.As(err, &can), "%v", err)
	require.Equal(t, "DeleteWorkflow", can.WorkflowType.Name)
	var req workflows.Request
	require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(can.Input, &req))
	require.Equal(t, workflows.Request{Object: site, Params: testParams}, req)
	require.Empty(t, w.callsOf("SyncObject"))
	require.Empty(t, w.callsOf("DeleteObject"))
}

// Deletion runs in reverse dependency order: deleted dependents first.
func TestDeleteDependentsFirst(t *testing.T) {
	w := newWorld()
	site, slice, instance := ref("Site", 1), ref("Slice", 1), ref("Instance", 1)
	w.add(site, object{deleted: true})
	w.add(slice, object{deleted: true, deps: []models.Ref{site}})
	w.add(instance, object{deleted: true, deps: []models.Ref{slice}})
	h := newHarness(t, w, harnessOptions{})

	res, err := h.runDelete(t, site, testParams)
	require.NoError(t, err)
	require.Equal(t, workflows.Result{Object: site, Outcome: workflows.OutcomeGone}, res)
	require.Equal(t, []models.Ref{instance, slice, site}, w.callsOf("DeleteObject"))
	require.Empty(t, w.statusRecords())
	for _, r := range []models.Ref{site, slice, instance} {
		_, ok := w.get(r)
		require.False(t, ok, "%s purged", r)
	}
}

// A deleted object that a live object still uses is held, with a status
// naming it, until the live object is gone.
func TestDeleteHeldWhileUsedByLiveObject(t *testing.T) {
	w := newWorld()
	site, slice := ref("Site", 1), ref("Slice", 2)
	w.add(site, object{deleted: true})
	w.add(slice, object{deps: []models.Ref{site}})
	h := newHarness(t, w, harnessOptions{})
	var purgedAt time.Duration
	h.env.RegisterDelayedCallback(func() {
		w.update(slice, func(o *object) { o.deleted = true })
		w.purge(slice)
		purgedAt = h.env.Now().Sub(h.t0)
	}, 3500*time.Millisecond)

	res, err := h.runDelete(t, site, testParams)
	require.NoError(t, err)
	require.Equal(t, workflows.Result{Object: site, Outcome: workflows.OutcomeGone}, res)
	require.Equal(t, 3500*time.Millisecond, purgedAt)

	held := statusRecord{Ref: site, Code: models.CodePending, Text: "deferred: cannot delete, still used by model Slice id 2"}
	require.Equal(t, []statusRecord{held, held, held, held}, w.statusRecords(), "held at 0s, 1s, 2s and 3s")
	require.Equal(t, []time.Duration{0, time.Second, 2 * time.Second, 3 * time.Second}, h.offsets(h.startsOf("RecordStatus", site)))
	require.Equal(t, []models.Ref{site}, w.callsOf("DeleteObject"))
	require.Equal(t, []time.Duration{4 * time.Second}, h.offsets(h.startsOf("DeleteObject", site)), "deleted only once the Slice was gone")
	_, ok := w.get(site)
	require.False(t, ok, "Site purged")
}

// delaySubscribe is a worker interceptor that delays every SignalSubscribe
// signal on the workflow clock, to open the window in which the dependency's
// workflow ends between the failed child start and the subscription.
type delaySubscribe struct {
	interceptor.WorkerInterceptorBase
	delay time.Duration
}

func (d *delaySubscribe) InterceptWorkflow(_ workflow.Context, next interceptor.WorkflowInboundInterceptor) interceptor.WorkflowInboundInterceptor {
	i := &delaySubscribeInbound{delay: d.delay}
	i.Next = next
	return i
}

type delaySubscribeInbound struct {
	interceptor.WorkflowInboundInterceptorBase
	delay time.Duration
}

func (i *delaySubscribeInbound) Init(outbound interceptor.WorkflowOutboundInterceptor) error {
	o := &delaySubscribeOutbound{delay: i.delay}
	o.Next = outbound
	return i.Next.Init(o)
}

type delaySubscribeOutbound struct {
	interceptor.WorkflowOutboundInterceptorBase
	delay time.Duration
}

func (o *delaySubscribeOutbound) SignalExternalWorkflow(ctx workflow.Context, workflowID, runID, signalName string, arg any) workflow.Future {
	if signalName != workflows.SignalSubscribe {
		return o.Next.SignalExternalWorkflow(ctx, workflowID, runID, signalName, arg)
	}
	f, s := workflow.NewFuture(ctx)
	workflow.Go(ctx, func(ctx workflow.Context) {
		if err := workflow.Sleep(ctx, o.delay); err != nil {
			s.SetError(err)
			return
		}
		s.Chain(o.Next.SignalExternalWorkflow(ctx, workflowID, runID, signalName, arg))
	})
	return f
}

// A dependency whose workflow ends just as the dependent subscribes: the
// subscription fails, and the dependent looks again and proceeds.
func TestSyncDependencyEndsAsWeSubscribe(t *testing.T) {
	w := newWorld()
	b, d := ref("B", 1), ref("D", 1)
	w.add(d, object{pending: true})
	w.add(b, object{pending: true, deps: []models.Ref{d}})
	h := newHarness(t, w, harnessOptions{
		syncDelay:      map[models.Ref]time.Duration{d: 2 * time.Second},
		subscribeDelay: 5 * time.Second,
	})
	h.env.RegisterWorkflow(sharedDependencyParent)

	h.env.SetStartWorkflowOptions(workflowOptions("t/parent"))
	h.env.ExecuteWorkflow(sharedDependencyParent, testParams, d, []models.Ref{b})
	require.True(t, h.env.IsWorkflowCompleted())
	require.NoError(t, h.env.GetWorkflowError())
	var results []workflows.Result
	require.NoError(t, h.env.GetWorkflowResult(&results))
	require.Equal(t, []workflows.Result{
		{Object: d, Outcome: workflows.OutcomeInSync},
		{Object: b, Outcome: workflows.OutcomeInSync},
	}, results)

	require.Equal(t, []models.Ref{d, b}, w.callsOf("SyncObject"))
	// B inspected at 1s (D pending, running: subscribe, delayed to 6s, finds
	// D's workflow ended at 2s), then again at 6s, and synced.
	require.Equal(t, []time.Duration{time.Second, 6 * time.Second}, h.offsets(h.startsOf("Inspect", b)))
	require.Equal(t, []time.Duration{6 * time.Second}, h.offsets(h.startsOf("SyncObject", b)))
	inSync(t, w, b, d)
}

// A missing dependency holds the object ("deferred: ... does not exist"); it
// is inspected again every loop interval and synced once the dependency is
// there.
func TestSyncHeldOnMissingDependency(t *testing.T) {
	w := newWorld()
	site, slice := ref("Site", 9), ref("Slice", 1)
	w.add(slice, object{pending: true, deps: []models.Ref{site}})
	h := newHarness(t, w, harnessOptions{})
	h.env.RegisterDelayedCallback(func() {
		w.add(site, object{synced: true, code: models.CodeOK, status: "OK"})
	}, 2500*time.Millisecond)

	res, err := h.runSync(t, slice, testParams)
	require.NoError(t, err)
	require.Equal(t, workflows.Result{Object: slice, Outcome: workflows.OutcomeInSync}, res)

	held := statusRecord{Ref: slice, Code: models.CodePending, Text: "deferred: dependency model Site id 9 does not exist"}
	require.Equal(t, []statusRecord{held, held, held}, w.statusRecords())
	require.Equal(t, []time.Duration{0, time.Second, 2 * time.Second, 3 * time.Second}, h.offsets(h.startsOf("Inspect", slice)))
	require.Equal(t, []models.Ref{slice}, w.callsOf("SyncObject"), "the Site, in sync, is not synced")
	require.Equal(t, []time.Duration{3 * time.Second}, h.offsets(h.startsOf("SyncObject", slice)))
	inSync(t, w, slice)
}

// deferOnce makes the first step call on ref return a DeferredError.
func deferOnce(ref models.Ref) (syncHook, deleteHook) {
	deferred := temporal.NewNonRetryableApplicationError("waiting for quota", activities.ErrTypeDeferred, nil)
	return func(r models.Ref, n int, o *object) (activities.SyncResult, error, bool) {
			return activities.SyncResult{}, deferred, r == ref && n == 1
		}, func(r models.Ref, n int, o *object) (activities.Outcome, error, bool) {
			return "", deferred, r == ref && n == 1
		}
}

// A dependency deleted while a dependent's workflow waits for its child
// SyncWorkflow: the child must not continue as the dependency's
// DeleteWorkflow, which its parent would then wait for while the deletion
// waits for the (deleted) dependent: a deadlock. It ends with
// OutcomeDeleted; the dependent is held, looks again, and, deleted itself,
// continues as its own DeleteWorkflow.
func TestSyncDependencyDeletedWhileDependentWaits(t *testing.T) {
	w := newWorld()
	site, slice := ref("Site", 1), ref("Slice", 1)
	w.add(site, object{pending: true})
	w.add(slice, object{pending: true, deps: []models.Ref{site}})
	w.syncHook, _ = deferOnce(site)
	h := newHarness(t, w, harnessOptions{})
	h.env.RegisterDelayedCallback(func() {
		w.update(site, func(o *object) { o.deleted, o.pending = true, false })
		w.update(slice, func(o *object) { o.deleted, o.pending = true, false })
	}, 500*time.Millisecond)

	_, err := h.runSync(t, slice, testParams)
	var can *workflow.ContinueAsNewError
	require.True(t, errors.As(err, &can), "%v", err)
	require.Equal(t, "DeleteWorkflow", can.WorkflowType.Name)
	require.Equal(t, 2*time.Second, h.env.Now().Sub(h.t0))

	require.Equal(t, []statusRecord{{Ref: slice, Code: models.CodePending, Text: "deferred: dependency model Site id 1 is deleted"}}, w.statusRecords())
	require.Equal(t, []time.Duration{0, time.Second}, h.offsets(h.startsOf("Inspect", site)))
	require.Equal(t, []time.Duration{0, 2 * time.Second}, h.offsets(h.startsOf("Inspect", slice)))
	require.Equal(t, 1, h.childRuns("t/Site/1"))
	require.Empty(t, w.callsOf("DeleteObject"))
	require.Empty(t, w.callsOf("Dependents"), "the Site's deletion is not run by the Slice's sync")
}

// The counterpart: a deleted dependent undeleted while the DeleteWorkflow
// of its dependency waits for its child DeleteWorkflow. The child must not
// continue as the dependent's SyncWorkflow (held while the dependency is
// deleted, and deadlocked with it once the dependency is undeleted too): it
// ends, and the dependency's deletion is held with a status naming the
// dependent, until the dependency is undeleted.
func TestDeleteDependentUndeletedWhileWaited(t *testing.T) {
	w := newWorld()
	site, slice := ref("Site", 1), ref("Slice", 1)
	w.add(site, object{deleted: true})
	w.add(slice, object{deleted: true, deps: []models.Ref{site}})
	_, w.deleteHook = deferOnce(slice)
	h := newHarness(t, w, harnessOptions{})
	h.env.RegisterDelayedCallback(func() {
		w.update(slice, func(o *object) { o.deleted, o.pending = false, true })
	}, 500*time.Millisecond)
	h.env.RegisterDelayedCallback(func() {
		w.update(site, func(o *object) { o.deleted, o.pending = false, true })
	}, 3500*time.Millisecond)

	_, err := h.runDelete(t, site, testParams)
	var can *workflow.ContinueAsNewError
	require.True(t, errors.As(err, &can), "%v", err)
	require.Equal(t, "SyncWorkflow", can.WorkflowType.Name)
	require.Equal(t, 4*time.Second, h.env.Now().Sub(h.t0))

	held := statusRecord{Ref: site, Code: models.CodePending, Text: "deferred: cannot delete, still used by model Slice id 1"}
	require.Equal(t, []statusRecord{held, held}, w.statusRecords())
	require.Equal(t, []time.Duration{2 * time.Second, 3 * time.Second}, h.offsets(h.startsOf("RecordStatus", site)))
	require.Equal(t, []models.Ref{slice}, w.callsOf("DeleteObject"), "only the deferred try")
	require.Equal(t, 1, h.childRuns("t/Slice/1"))
	require.Empty(t, w.callsOf("SyncObject"))
}
