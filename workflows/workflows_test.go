package workflows_test

import (
	"context"
	"errors"
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
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/tsync/tsync/activities"
	"github.com/tsync/tsync/models"
	"github.com/tsync/tsync/workflows"
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
	code         int
	status       string
	deps         []models.Ref
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

type world struct {
	mu       sync.Mutex
	objs     map[models.Ref]*object
	calls    []call
	statuses []statusRecord
	syncN    map[models.Ref]int
	syncHook syncHook
}

func newWorld() *world {
	return &world{objs: map[models.Ref]*object{}, syncN: map[models.Ref]int{}}
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
			ds.Exists, ds.Deleted, ds.Blocked, ds.Pending = true, do.deleted, do.blocked, do.pending
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
	o.pending, o.code, o.status = false, models.CodeOK, "OK"
	return activities.SyncResult{Outcome: activities.OutcomeOK}, nil
}

func (w *world) DeleteObject(_ context.Context, r models.Ref) (activities.Outcome, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.record("DeleteObject", r)
	o, ok := w.objs[r]
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
	env    *testsuite.TestWorkflowEnvironment
	w      *world
	t0     time.Time
	mu     sync.Mutex
	starts []start
}

type harnessOptions struct {
	// syncDelay delays the SyncObject result of these objects on the test
	// clock.
	syncDelay map[models.Ref]time.Duration
	// workerOptions, when set, are applied to the environment.
	workerOptions *worker.Options
}

func newHarness(t *testing.T, w *world, opts harnessOptions) *harness {
	t.Helper()
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	if opts.workerOptions != nil {
		env.SetWorkerOptions(*opts.workerOptions)
	}
	env.SetTestTimeout(time.Minute)
	env.RegisterWorkflow(workflows.SyncWorkflow)
	env.RegisterWorkflow(workflows.DeleteWorkflow)
	env.RegisterActivity(&activities.Activities{})

	env.OnActivity(acts.Inspect, mock.Anything, mock.Anything).Return(w.Inspect)
	for r, d := range opts.syncDelay {
		env.OnActivity(acts.SyncObject, mock.Anything, r).After(d).Return(w.SyncObject)
	}
	env.OnActivity(acts.SyncObject, mock.Anything, mock.MatchedBy(func(r models.Ref) bool {
		_, delayed := opts.syncDelay[r]
		return !delayed
	})).Return(w.SyncObject)
	env.OnActivity(acts.DeleteObject, mock.Anything, mock.Anything).Return(w.DeleteObject)
	env.OnActivity(acts.Dependents, mock.Anything, mock.Anything).Return(w.Dependents)
	env.OnActivity(acts.RecordStatus, mock.Anything, mock.Anything, mock.Anything, mock.Anything).Return(w.RecordStatus)

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
	t.Cleanup(func() { env.AssertExpectations(t) })
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
		require.Equal(t, models.CodeOK, o.code, "%s code", r)
		require.Equal(t, "OK", o.status, "%s status", r)
	}
}

func workflowOptions(id string) client.StartWorkflowOptions {
	return client.StartWorkflowOptions{ID: id, TaskQueue: "tsync-test"}
}

func indexOf(refs []models.Ref, r models.Ref) int { return slices.Index(refs, r) }

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
func TestSyncDiamondSyncsSharedDependencyOnce(t *testing.T) {
	w := newWorld()
	a, b, c, d := ref("A", 1), ref("B", 1), ref("C", 1), ref("D", 1)
	w.add(d, object{pending: true})
	w.add(b, object{pending: true, deps: []models.Ref{d}})
	w.add(c, object{pending: true, deps: []models.Ref{d}})
	w.add(a, object{pending: true, deps: []models.Ref{b, c}})
	h := newHarness(t, w, harnessOptions{})

	res, err := h.runSync(t, a, testParams)
	require.NoError(t, err)
	require.Equal(t, workflows.OutcomeInSync, res.Outcome)
	synced := w.callsOf("SyncObject")
	require.Len(t, synced, 4, "%v", synced)
	require.Equal(t, 0, indexOf(synced, d), "D first: %v", synced)
	require.ElementsMatch(t, []models.Ref{b, c}, synced[1:3])
	require.Equal(t, a, synced[3], "A last: %v", synced)
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
	var mu sync.Mutex
	var childStarts []string
	h.env.SetOnChildWorkflowStartedListener(func(info *workflow.Info, _ workflow.Context, _ converter.EncodedValues) {
		mu.Lock()
		defer mu.Unlock()
		childStarts = append(childStarts, info.WorkflowExecution.ID)
	})

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
	mu.Lock()
	require.Equal(t, 1, strings.Count(strings.Join(childStarts, ","), "t/D/1"), "%v", childStarts)
	mu.Unlock()
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
			for i, s := range starts {
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
		syncDelay:     map[models.Ref]time.Duration{d: 2 * time.Second},
		workerOptions: &worker.Options{Interceptors: []interceptor.WorkerInterceptor{&delaySubscribe{delay: 5 * time.Second}}},
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
		w.add(site, object{code: models.CodeOK, status: "OK"})
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
