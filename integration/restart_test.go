package integration

import (
	"context"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/tsync/tsync"
	"github.com/tsync/tsync/app"
	"github.com/tsync/tsync/internal/testenv"
	"github.com/tsync/tsync/internal/testmodels"
	"github.com/tsync/tsync/models"
)

// Temporal server outages (issue 7): the synchronizer runs on a dev server
// of its own that keeps its state in a SQLite file (--db-filename), so it can
// be stopped and started again at the same address with the same workflows.

// durableServer starts nothing: it returns the test's own dev server on a
// free port with its database in a temporary directory, killed when the
// test ends, whatever happens.
func durableServer(t *testing.T) *testenv.DurableTemporal {
	t.Helper()
	port, err := testenv.FreePort()
	require.NoError(t, err)
	srv, err := testenv.NewDurableTemporal(filepath.Join(t.TempDir(), "temporal.db"), port)
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Kill() })
	return srv
}

// startServer (re)starts srv and returns when it serves.
func startServer(t *testing.T, srv *testenv.DurableTemporal) time.Time {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	begin := time.Now()
	require.NoError(t, srv.Start(ctx))
	t.Logf("server serving at %s after %s", srv.HostPort(), time.Since(begin).Round(time.Millisecond))
	return time.Now()
}

// restartEnv is a synchronizer whose worker and starter run as their
// processes do (app.RunWorker, app.RunStarter), against srv, logging to logs.
type restartEnv struct {
	*env
	srv  *testenv.DurableTemporal
	logs *testenv.SyncBuffer
	// exited receives the error of the worker or starter should either
	// return before the test ends.
	exited chan error
}

// openWhileDown opens the app while srv is down: app.Open must say that it
// waits for Temporal and keep trying, then return once srv is started.
func openWhileDown(t *testing.T, srv *testenv.DurableTemporal) *restartEnv {
	t.Helper()
	require.False(t, srv.Running())
	_, schema := testenv.Schema(t)
	cfg := testenv.Config(t, srv.HostPort(), schema)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	rec := newRecorder()
	logs := &testenv.SyncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))

	type opened struct {
		a   *app.App
		err error
	}
	openc := make(chan opened, 1)
	go func() {
		a, err := app.Open(ctx, cfg, tsync.Synchronizer{Models: registry(), Steps: []tsync.Step{rec}}, log)
		openc <- opened{a, err}
	}()
	var got *opened
	t.Cleanup(func() {
		if got == nil { // the test failed before Open returned
			cancel()
			if o := <-openc; o.a != nil {
				o.a.Close()
			}
		}
	})
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "waiting for temporal") }, 30*time.Second, 50*time.Millisecond,
		"app.Open does not say it waits for the server: %s", logs)
	select {
	case o := <-openc:
		got = &o
		t.Fatalf("app.Open returned while the server was down: %v", o.err)
	default:
	}
	t.Logf("app.Open waits while the server is down: %s", firstLine(logs.String(), "waiting for temporal"))
	startServer(t, srv)
	select {
	case o := <-openc:
		got = &o
	case <-time.After(60 * time.Second):
		t.Fatalf("app.Open still waiting 60s after the server came up: %s", logs)
	}
	require.NoError(t, got.err)
	t.Cleanup(got.a.Close)
	return &restartEnv{
		env:    &env{t: t, ctx: ctx, cfg: cfg, app: got.a, rec: rec},
		srv:    srv,
		logs:   logs,
		exited: make(chan error, 2),
	}
}

// run runs the app's worker and starter, as their commands do, until the
// test ends.
func (e *restartEnv) run() {
	for name, fn := range map[string]func(context.Context) error{"worker": e.app.RunWorker, "starter": e.app.RunStarter} {
		ctx, cancel := context.WithCancel(e.ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			err := fn(ctx)
			if ctx.Err() == nil {
				e.exited <- fmt.Errorf("%s returned before the test ended: %v", name, err)
			}
		}()
		e.t.Cleanup(func() { cancel(); <-done })
	}
}

// checkAlive fails the test if the worker or the starter has returned.
func (e *restartEnv) checkAlive() {
	e.t.Helper()
	select {
	case err := <-e.exited:
		e.t.Fatalf("%v (logs: %s)", err, e.logs)
	default:
	}
}

// insertMix inserts sites sites, each with 3 slices of 4 instances (a
// dependency chain Site <- Slice <- Instance), and items independent Items.
func (e *restartEnv) insertMix(tag string, sites, items int) []models.Ref {
	refs := e.insertTree(tag+"-", sites, 3, 4)
	for i := range items {
		refs = append(refs, e.insert(&testmodels.Item{Name: fmt.Sprintf("%s-item-%d", tag, i)}))
	}
	return refs
}

// endInSync waits until every ref is in sync, logs how long that took
// after since (when what happened), and asserts the end state of an outage
// test: the worker and the starter alive, no concurrent step calls, no
// workflow left open or failed; then it logs the step calls (report).
func (e *restartEnv) endInSync(refs []models.Ref, since time.Time, what string) {
	e.t.Helper()
	e.waitInSync(60*time.Second, refs...)
	e.t.Logf("all %d objects in sync %s after %s", len(refs), time.Since(since).Round(time.Millisecond), what)
	e.checkAlive()
	e.settled(refs)
	e.noFailedWorkflows()
	e.report(refs)
}

// succeeded returns how many step calls have succeeded.
func (e *restartEnv) succeeded() int {
	n := 0
	for _, c := range e.rec.Calls() {
		if c.Err == nil {
			n++
		}
	}
	return n
}

// inSyncCount returns how many of refs are in sync.
func (e *restartEnv) inSyncCount(refs []models.Ref) int {
	n := 0
	for _, r := range refs {
		if inSync(e.get(r)) {
			n++
		}
	}
	return n
}

// recovered waits until a step call started after since has succeeded, and
// returns how long after since that call ended.
func (e *restartEnv) recovered(since time.Time) time.Duration {
	e.t.Helper()
	var took time.Duration
	require.Eventually(e.t, func() bool {
		for _, c := range e.rec.Calls() {
			if c.Err == nil && !c.Start.Before(since) {
				took = c.End.Sub(since)
				return true
			}
		}
		return false
	}, 60*time.Second, 20*time.Millisecond, "no step call succeeded after the restart (logs: %s)", e.logs)
	return took
}

// report logs the step calls against the objects. A call repeated (the same
// operation on the same content of an object, after an outage) is allowed,
// concurrent ones are not (settled checks).
func (e *restartEnv) report(refs []models.Ref) {
	calls := e.rec.Calls()
	type content struct {
		op      string
		ref     models.Ref
		updated time.Time
	}
	per := map[content]int{}
	for _, c := range calls {
		per[content{c.Op, c.Ref, c.Updated.UTC()}]++
	}
	repeated := 0
	for _, n := range per {
		repeated += n - 1
	}
	e.t.Logf("objects %d, step calls %d, of which %d repeated a call on the same content", len(refs), len(calls), repeated)
}

// noFailedWorkflows asserts that no workflow of the task queue closed other
// than completed or continued as new (a failed one, restarted by a later
// scan, would not show in the objects' end state), and logs how many ran.
func (e *restartEnv) noFailedWorkflows() {
	e.t.Helper()
	count := func(query string) int64 {
		resp, err := e.app.Client.CountWorkflow(e.ctx, &workflowservice.CountWorkflowExecutionsRequest{
			Query: fmt.Sprintf("TaskQueue = %q AND %s", e.cfg.Temporal.TaskQueue, query),
		})
		require.NoError(e.t, err)
		return resp.GetCount()
	}
	var failed []string
	var token []byte
	for {
		resp, err := e.app.Client.ListWorkflow(e.ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Query:         fmt.Sprintf("TaskQueue = %q AND ExecutionStatus != 'Running' AND ExecutionStatus != 'Completed' AND ExecutionStatus != 'ContinuedAsNew'", e.cfg.Temporal.TaskQueue),
			NextPageToken: token,
		})
		require.NoError(e.t, err)
		for _, x := range resp.Executions {
			failed = append(failed, fmt.Sprintf("%s: %s", x.Execution.WorkflowId, x.Status))
		}
		if token = resp.NextPageToken; len(token) == 0 {
			break
		}
	}
	require.Empty(e.t, failed, "workflows closed without completing")
	e.t.Logf("workflow runs %d (continued as new: %d)", count("ExecutionStatus = 'Completed'")+count("ExecutionStatus = 'ContinuedAsNew'"),
		count("ExecutionStatus = 'ContinuedAsNew'"))
}

// lazy is a message argument computed when a failure is reported, not when
// the assertion is called.
type lazy func() string

func (l lazy) String() string { return l() }

// firstLine returns the first line of s that contains sub.
func firstLine(s, sub string) string {
	for line := range strings.SplitSeq(s, "\n") {
		if strings.Contains(line, sub) {
			return line
		}
	}
	return ""
}

// The Temporal server is down when the synchronizer starts: app.Open says it
// waits for it and keeps trying; then, with the server stopped again (after
// Open), the worker and the starter started meanwhile say so and keep trying
// too. Once it is up, every object syncs.
func TestTemporalDownAtStart(t *testing.T) {
	t.Parallel()
	srv := durableServer(t)
	e := openWhileDown(t, srv)

	require.NoError(t, srv.Stop())
	refs := e.insertMix("down", 1, 20)
	e.run()
	// A worker's start fails once the server has not answered for the
	// SDK's request timeout (10 s): it must be tried again, not given up.
	require.Eventually(t, func() bool {
		e.checkAlive()
		return strings.Contains(e.logs.String(), "worker cannot start")
	}, 40*time.Second, 50*time.Millisecond, "the worker does not say it cannot start: %s", e.logs)
	require.Eventually(t, func() bool {
		e.checkAlive()
		return strings.Contains(e.logs.String(), "scan failed")
	}, 40*time.Second, 50*time.Millisecond, "the starter does not say its scans fail: %s", e.logs)
	t.Logf("worker: %s", firstLine(e.logs.String(), "worker cannot start"))
	scanFailed := firstLine(e.logs.String(), "scan failed")
	t.Logf("starter: %s", scanFailed)
	// Starts fail for every model alike: the scan stops at the first
	// failure rather than wait out the request timeout of each model's.
	require.Equal(t, 1, strings.Count(scanFailed, "start workflow of"), "the scan went on after a failed start: %s", scanFailed)
	require.Empty(t, e.rec.Calls())

	up := startServer(t, srv)
	e.endInSync(refs, up, "the server came up")
}

// The Temporal server is stopped gracefully while a few hundred objects (a
// dependency chain part and independent items) sync, kept down a few
// seconds while more objects are inserted, and started again on the same
// port and database file; later it is killed (SIGKILL) and started again
// the same way. The worker and the starter ride out both outages: every
// object ends in sync, no step call overlaps another of the same object,
// and no workflow is left open.
func TestTemporalRestartMidRun(t *testing.T) {
	t.Parallel()
	srv := durableServer(t)
	e := openWhileDown(t, srv)
	var running atomic.Int64 // step calls under way
	e.rec.SetHook(func(ctx context.Context, op string, ref models.Ref, obj models.Object) error {
		running.Add(1)
		defer running.Add(-1)
		time.Sleep(time.Duration(50+mrand.IntN(200)) * time.Millisecond)
		return nil
	})
	refs := e.insertMix("first", 3, 100) // 3*(1+3+12) + 100 = 148 objects
	e.run()

	// outage takes the server down with down for downFor, and returns when
	// it serves again.
	outage := func(name string, down func() error, downFor time.Duration, tag string) time.Time {
		t.Helper()
		// Down while syncs are under way: some progress made, and step
		// calls running.
		before := e.succeeded()
		require.Eventually(t, func() bool { e.checkAlive(); return e.succeeded() >= before+20 && running.Load() >= 2 },
			60*time.Second, time.Millisecond, "no progress before the %s (logs: %s)", name, e.logs)
		inFlight := running.Load()
		begin := time.Now()
		require.NoError(t, down())
		t.Logf("%s: server down after %s, with %d of %d objects in sync, %d step calls made, %d running",
			name, time.Since(begin).Round(time.Millisecond), e.inSyncCount(refs), len(refs), len(e.rec.Calls()), inFlight)
		// Changes made during the outage: their announcements come while
		// no server answers.
		refs = append(refs, e.insertMix(tag, 1, 20)...)
		time.Sleep(time.Until(begin.Add(downFor)))
		e.checkAlive()
		up := startServer(t, srv)
		t.Logf("%s: down %s; first step call started after the restart succeeded %s after it",
			name, up.Sub(begin).Round(time.Millisecond), e.recovered(up).Round(time.Millisecond))
		return up
	}
	outage("graceful stop", srv.Stop, 3*time.Second, "second")
	// Longer than the SDK's request timeout (10 s): the completions of the
	// steps under way are lost, not just late.
	up := outage("SIGKILL", srv.Kill, 12*time.Second, "third")

	e.endInSync(refs, up, "the last restart")
}

// Steps that outlast an outage: Temporal is killed once ten steps have
// begun (five syncs of updated objects, five deletions), and comes back
// only after they have ended and their attempts' heartbeat timeout has
// passed. The SDK then cancels the activities, whose steps had succeeded:
// their outcome must be recorded all the same (an updated object in sync, a
// deleted one purged), so that no step runs twice.
func TestTemporalOutageDuringLongSteps(t *testing.T) {
	t.Parallel()
	srv := durableServer(t)
	e := openWhileDown(t, srv)
	var running, begun atomic.Int64 // step calls under way, slow ones begun
	var slow atomic.Bool
	e.rec.SetHook(func(ctx context.Context, op string, ref models.Ref, obj models.Object) error {
		running.Add(1)
		defer running.Add(-1)
		if slow.Load() {
			begun.Add(1)
			// Longer than the heartbeat timeout (5 s), and deaf to the
			// activity's cancellation, as a step past its point of no
			// return would be.
			time.Sleep(6 * time.Second)
		}
		return nil
	})
	var synced, deleted []models.Ref
	for i := range 5 {
		synced = append(synced, e.insert(&testmodels.Item{Name: fmt.Sprintf("synced-%d", i)}))
		deleted = append(deleted, e.insert(&testmodels.Item{Name: fmt.Sprintf("deleted-%d", i)}))
	}
	e.run()
	e.waitInSync(60*time.Second, append(synced, deleted...)...)

	slow.Store(true)
	for i := range synced {
		require.NoError(t, e.app.Store.Touch(e.ctx, "Item", synced[i].ID))
		require.NoError(t, e.app.Store.Delete(e.ctx, "Item", deleted[i].ID))
	}
	require.Eventually(t, func() bool { e.checkAlive(); return begun.Load() == 10 }, 60*time.Second, time.Millisecond,
		"the ten steps do not begin (%s; logs: %s)", lazy(func() string {
			return fmt.Sprintf("%d do; %s", begun.Load(), e.describe(append(synced, deleted...)...))
		}), e.logs)
	inFlight := running.Load()
	begin := time.Now()
	require.NoError(t, srv.Kill())
	t.Logf("server killed with %d of the 10 steps running", inFlight)
	require.Positive(t, inFlight)
	time.Sleep(time.Until(begin.Add(8 * time.Second)))
	require.Zero(t, running.Load(), "the steps outlast the outage")
	up := startServer(t, srv)

	require.Eventually(t, func() bool {
		e.checkAlive()
		for _, r := range deleted {
			if e.exists(r) {
				return false
			}
		}
		return true
	}, 60*time.Second, 20*time.Millisecond, "deleted objects not purged: %s", lazy(func() string { return e.describe(deleted...) }))
	e.waitInSync(60*time.Second, synced...)
	t.Logf("after the restart: objects in sync or purged %s later", time.Since(up).Round(time.Millisecond))
	e.settled(synced)
	e.noFailedWorkflows()
	e.report(append(synced, deleted...))
	for i := range synced {
		require.Len(t, e.rec.CallsOf("sync", synced[i]), 2, "%s: synced once, then once after its update", synced[i])
		require.Len(t, e.rec.CallsOf("delete", deleted[i]), 1, "%s: deleted once", deleted[i])
	}
}
