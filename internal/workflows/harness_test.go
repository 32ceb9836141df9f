package workflows_test

import (
	"context"
	"log/slog"
	"os"
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
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/tsync/tsync/internal/activities"
	"github.com/tsync/tsync/internal/workflows"
	"github.com/tsync/tsync/models"
)

// The test environment: the SDK's test suite with the real workflows over
// the world's fake activities, recording every activity and child start on
// the workflow clock.

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

// start is one activity attempt's start, on the workflow clock.
type start struct {
	Activity string
	Ref      models.Ref
	At       time.Time
	Attempt  int32
	// Local is set for a local activity.
	Local bool
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
	// stepDelay delays the SyncObject (SyncReady) and DeleteObject results
	// of these objects on the test clock.
	stepDelay map[models.Ref]time.Duration
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
	workflows.Register(env)
	env.RegisterActivity(&activities.Activities{})

	// The fakes are Maybe: tests assert the calls the world recorded.
	env.OnActivity(acts.Inspect, mock.Anything, mock.Anything).Return(w.Inspect).Maybe()
	for r, d := range opts.stepDelay {
		env.OnActivity(acts.SyncObject, mock.Anything, r).After(d).Return(w.SyncObject).Maybe()
		env.OnActivity(acts.SyncReady, mock.Anything, r).After(d).Return(w.SyncReady).Maybe()
		env.OnActivity(acts.DeleteObject, mock.Anything, r).After(d).Return(w.DeleteObject).Maybe()
	}
	notDelayed := mock.MatchedBy(func(r models.Ref) bool {
		_, delayed := opts.stepDelay[r]
		return !delayed
	})
	env.OnActivity(acts.SyncObject, mock.Anything, notDelayed).Return(w.SyncObject).Maybe()
	env.OnActivity(acts.SyncReady, mock.Anything, notDelayed).Return(w.SyncReady).Maybe()
	env.OnActivity(acts.DeleteObject, mock.Anything, notDelayed).Return(w.DeleteObject).Maybe()
	env.OnActivity(acts.RunPolicy, mock.Anything, mock.Anything).Return(w.RunPolicy).Maybe()
	env.OnActivity(acts.Dependents, mock.Anything, mock.Anything).Return(w.Dependents).Maybe()
	env.OnActivity(acts.RecordStatus, mock.Anything, mock.Anything, mock.Anything, mock.Anything).Return(w.RecordStatus).Maybe()

	h := &harness{env: env, w: w, t0: env.Now()}
	env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, args converter.EncodedValues) {
		var r models.Ref
		if err := args.Get(&r); err != nil {
			t.Errorf("decode activity args: %v", err)
		}
		if info.ActivityType.Name == "SyncReady" {
			// It stands for an Inspect and, when the object is ready, a
			// SyncObject: the tests count those.
			ready := w.ready(r)
			h.mu.Lock()
			defer h.mu.Unlock()
			h.starts = append(h.starts, start{Activity: "Inspect", Ref: r, At: env.Now(), Attempt: info.Attempt})
			if ready {
				h.starts = append(h.starts, start{Activity: "SyncObject", Ref: r, At: env.Now(), Attempt: info.Attempt})
			}
			return
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
		h.starts = append(h.starts, start{Activity: info.ActivityType.Name, Ref: r, At: env.Now(), Attempt: info.Attempt, Local: true})
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
	return h.run(t, workflows.SyncType, r, p)
}

func (h *harness) runDelete(t *testing.T, r models.Ref, p workflows.Params) (workflows.Result, error) {
	t.Helper()
	return h.run(t, workflows.DeleteType, r, p)
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
