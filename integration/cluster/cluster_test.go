// Package cluster_test is the cluster test suite (issue 12): tsync on a
// production-shaped Temporal cluster (internal/cluster: the frontend,
// history, matching and worker services as separate processes, persisting
// to PostgreSQL), whose service processes are SIGKILLed and restarted while
// objects sync. The other end-to-end tests (integration/) run on the dev
// server, which starts in a second.
//
// It needs the cluster's binaries (bin/temporal-server and
// bin/temporal-sql-tool, or those in TSYNC_CLUSTER_BIN): without them it
// is skipped, or fails under CI (CI=true).
package cluster_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/tsync/tsync"
	"github.com/tsync/tsync/app"
	"github.com/tsync/tsync/config"
	"github.com/tsync/tsync/internal/cluster"
	"github.com/tsync/tsync/internal/cluster/clustertest"
	"github.com/tsync/tsync/internal/testenv"
	"github.com/tsync/tsync/internal/testmodels"
	"github.com/tsync/tsync/models"
)

// startCluster starts a cluster of the test's own (its databases named at
// random, every port free), gone when the test ends. Its services persist to
// the PostgreSQL of databaseURL; "": the shared one (testenv.DatabaseURL).
func startCluster(t *testing.T, databaseURL string) *cluster.Cluster {
	t.Helper()
	return clustertest.Start(t, "tsync_ct_", cluster.Options{DatabaseURL: databaseURL})
}

// synchronizer is the models Site <- Slice <- Instance, each synced by
// book's step.
func synchronizer(book *callBook) tsync.Synchronizer {
	return tsync.Synchronizer{
		Models: testmodels.Registry(new(testmodels.Site), new(testmodels.Slice), new(testmodels.Instance)),
		Steps: []tsync.Step{
			tsync.StepOf[testmodels.Site](tsync.StepFuncs[testmodels.Site]{Sync: func(ctx context.Context, o *testmodels.Site) error { return book.sync(ctx, o) }}),
			tsync.StepOf[testmodels.Slice](tsync.StepFuncs[testmodels.Slice]{Sync: func(ctx context.Context, o *testmodels.Slice) error { return book.sync(ctx, o) }}),
			tsync.StepOf[testmodels.Instance](tsync.StepFuncs[testmodels.Instance]{Sync: func(ctx context.Context, o *testmodels.Instance) error { return book.sync(ctx, o) }}),
		},
	}
}

// Environment of a worker process (TestHelperClusterWorker), besides its
// configuration's TSYNC_* entries.
const (
	callsEnv  = "TSYNC_CLUSTER_TEST_CALLS"  // the call table, quoted
	workerEnv = "TSYNC_CLUSTER_TEST_WORKER" // the worker's number
)

// TestHelperClusterWorker is not a test: it is a worker process of
// TestClusterServicesKilledMidRun, run from the test binary with its
// configuration in the environment. Its steps record their calls in the
// call table (callBook).
func TestHelperClusterWorker(t *testing.T) {
	table := os.Getenv(callsEnv)
	if table == "" {
		t.Skip("worker process of TestClusterServicesKilledMidRun")
	}
	worker, err := strconv.Atoi(os.Getenv(workerEnv))
	require.NoError(t, err)
	cfg, err := config.Load("", os.Environ())
	require.NoError(t, err)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	var a *app.App
	book := &callBook{table: table, schema: cfg.DatabaseSchema, worker: worker, pool: func() *pgxpool.Pool { return a.Store.Pool() }}
	a, err = app.Open(context.Background(), cfg, synchronizer(book), log)
	require.NoError(t, err)
	// It runs until the test kills it: returning is a failure.
	err = a.RunWorker(context.Background())
	t.Fatalf("the worker returned: %v", err)
}

// workerProc is a worker process of the test.
type workerProc struct {
	n   int
	cmd *exec.Cmd
	out *testenv.SyncBuffer
	// exited is closed once the process has exited; err is then its
	// exit error.
	exited chan struct{}
	err    error
}

// startWorker starts worker process n with cfg, recording its calls in
// table; it is killed when the test ends.
func startWorker(t *testing.T, cfg config.Config, table string, n int) *workerProc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperClusterWorker$", "-test.v")
	cmd.Env = append(append(os.Environ(), cfg.Environ()...), callsEnv+"="+table, workerEnv+"="+strconv.Itoa(n))
	w := &workerProc{n: n, cmd: cmd, out: &testenv.SyncBuffer{}, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = w.out, w.out
	cmd.SysProcAttr = testenv.ServerProcAttr() // dies with the test process
	require.NoError(t, cmd.Start())
	go func() {
		w.err = cmd.Wait()
		close(w.exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-w.exited
		if t.Failed() {
			t.Logf("worker %d output:\n%s", n, tail(w.out.String(), 40))
		}
	})
	return w
}

// alive fails the test if the worker has exited.
func (w *workerProc) alive(t *testing.T) {
	t.Helper()
	select {
	case <-w.exited:
		t.Fatalf("worker %d exited: %v\n%s", w.n, w.err, tail(w.out.String(), 40))
	default:
	}
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// run is the test's view of a run: the starter's app, the call table, the
// objects, and the worker processes.
type run struct {
	t       *testing.T
	ctx     context.Context
	app     *app.App
	calls   string // the call table, quoted
	refs    []models.Ref
	workers []*workerProc
	starter chan error // receives the starter's error should it return
	logs    *testenv.SyncBuffer
	begin   time.Time
	kills   []kill
}

// kill is a service's SIGKILL: which, and when it was sent.
type kill struct {
	service string
	at      time.Time
}

// state is the progress of a run.
type state struct {
	InSync   int // objects in sync
	InFlight int // step calls under way
	// Fresh is how many of those began less than 10 ms ago (a step takes
	// 20 ms or more): a kill now finds them under way.
	Fresh int
	Calls int // step calls begun
}

func (s state) String() string {
	return fmt.Sprintf("%d objects in sync, %d step calls made, %d under way", s.InSync, s.Calls, s.InFlight)
}

// inSyncWhere is the condition of an object in sync, as the integration
// harness's inSync has it: backend code 1, status "OK", and enacted not
// older than updated.
const inSyncWhere = `backend_code = 1 AND backend_status = 'OK' AND enacted >= updated AND NOT deleted`

// state reads the run's progress from the database.
func (r *run) state() state {
	r.t.Helper()
	var s state
	schema := r.app.Store.Schema()
	var counts []string
	for _, m := range []string{"site", "slice", "instance"} {
		counts = append(counts, `(SELECT count(*) FROM `+pgx.Identifier{schema, m}.Sanitize()+` WHERE `+inSyncWhere+`)`)
	}
	err := r.app.Store.Pool().QueryRow(r.ctx, `SELECT `+strings.Join(counts, " + ")+`,
		(SELECT count(*) FILTER (WHERE end_at IS NULL) FROM `+r.calls+`),
		(SELECT count(*) FILTER (WHERE end_at IS NULL AND start_at > clock_timestamp() - interval '10 milliseconds') FROM `+r.calls+`),
		(SELECT count(*) FROM `+r.calls+`)`).
		Scan(&s.InSync, &s.InFlight, &s.Fresh, &s.Calls)
	require.NoError(r.t, err)
	return s
}

// inSyncRefs returns the objects in sync, by model and id.
func (r *run) inSyncRefs() []models.Ref {
	r.t.Helper()
	schema := r.app.Store.Schema()
	var parts []string
	for _, m := range []string{"Site", "Slice", "Instance"} {
		parts = append(parts, `SELECT '`+m+`' AS model, id FROM `+pgx.Identifier{schema, strings.ToLower(m)}.Sanitize()+
			` WHERE `+inSyncWhere)
	}
	rows, err := r.app.Store.Pool().Query(r.ctx, strings.Join(parts, " UNION ALL ")+` ORDER BY model, id`)
	require.NoError(r.t, err)
	refs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (models.Ref, error) {
		var ref models.Ref
		err := row.Scan(&ref.Model, &ref.ID)
		return ref, err
	})
	require.NoError(r.t, err)
	return refs
}

// stuck describes the first objects not in sync and the step calls under
// way, for a failure.
func (r *run) stuck() string {
	schema := r.app.Store.Schema()
	var parts []string
	for _, m := range []string{"Site", "Slice", "Instance"} {
		parts = append(parts, `SELECT '`+m+`' AS model, id, backend_code, backend_status, enacted, updated FROM `+
			pgx.Identifier{schema, strings.ToLower(m)}.Sanitize()+` WHERE NOT (`+inSyncWhere+`)`)
	}
	var b strings.Builder
	rows, err := r.app.Store.Pool().Query(r.ctx, strings.Join(parts, " UNION ALL ")+` ORDER BY model, id LIMIT 10`)
	if err == nil {
		for rows.Next() {
			var model, status string
			var id int64
			var code int
			var enacted *time.Time
			var updated time.Time
			if rows.Scan(&model, &id, &code, &status, &enacted, &updated) == nil {
				fmt.Fprintf(&b, "not in sync: %s %d: code %d %q, enacted %v, updated %v\n", model, id, code, status, enacted, updated)
			}
		}
		rows.Close()
	}
	rows, err = r.app.Store.Pool().Query(r.ctx, `SELECT call, worker, model, id, start_at FROM `+r.calls+` WHERE end_at IS NULL ORDER BY call LIMIT 10`)
	if err == nil {
		for rows.Next() {
			var call int64
			var worker int
			var model string
			var id int64
			var start time.Time
			if rows.Scan(&call, &worker, &model, &id, &start) == nil {
				fmt.Fprintf(&b, "under way: call %d of %s %d on worker %d since %s\n", call, model, id, worker, stamp(start))
			}
		}
		rows.Close()
	}
	return b.String()
}

// alive fails the test if a worker or the starter has stopped.
func (r *run) alive() {
	r.t.Helper()
	for _, w := range r.workers {
		w.alive(r.t)
	}
	select {
	case err := <-r.starter:
		r.t.Fatalf("the starter returned: %v\n%s", err, tail(r.logs.String(), 40))
	default:
	}
}

// waitFor waits until cond holds of the run's state, checking that the
// workers and the starter run, and fails after timeout saying what it
// waited for.
func (r *run) waitFor(what string, timeout time.Duration, cond func(state) bool) state {
	r.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		r.alive()
		s := r.state()
		if cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("waited %s for %s; %s\n%s\nstarter log: %s", timeout, what, s, r.stuck(), tail(r.logs.String(), 40))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// resumed waits until a step call begun after since has completed, and
// returns how long after since it ended: how long progress took to resume.
func (r *run) resumed(since time.Time, what string) time.Duration {
	r.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		r.alive()
		var end *time.Time
		require.NoError(r.t, r.app.Store.Pool().QueryRow(r.ctx, `SELECT min(end_at) FROM `+r.calls+
			` WHERE start_at > $1 AND outcome = $2`, since, outcomeOK).Scan(&end))
		if end != nil {
			return end.Sub(since)
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("no step call completed in 90s after %s; %s\nstarter log: %s", what, r.state(), tail(r.logs.String(), 40))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// downFor is how long a killed service stays down before its restart: the
// steps under way end meanwhile, and their completions find no service.
const downFor = 2 * time.Second

// killRestart SIGKILLs service, restarts it after downFor, waits until a
// step call begun after the restart has completed, logs the figures, and
// returns when the restart began.
func (r *run) killRestart(c *cluster.Cluster, service string, at state) time.Time {
	r.t.Helper()
	r.kills = append(r.kills, kill{service, time.Now()})
	require.NoError(r.t, c.Kill(service))
	killed := time.Now() // dead
	r.t.Logf("%s SIGKILLed at %s: %s, of %d objects", service, since(r.begin, killed), at, len(r.refs))
	time.Sleep(time.Until(killed.Add(downFor)))
	r.alive()
	ctx, cancel := context.WithTimeout(r.ctx, 90*time.Second)
	defer cancel()
	begin := time.Now()
	require.NoError(r.t, c.Restart(ctx, service), "restart %s", service)
	up := time.Now()
	// From the process's start: a step call that begins after it went
	// through the new process (an activity starts through the frontend and
	// is recorded started by the history service).
	took := r.resumed(begin, service+"'s restart")
	r.t.Logf("%s restarted (down %s; Restart took %s); progress resumed %s after the restart began (a step call begun after it completed); %s",
		service, begin.Sub(killed).Round(time.Millisecond), up.Sub(begin).Round(time.Millisecond), took.Round(time.Millisecond), r.state())
	return begin
}

// since formats t as a time after begin.
func since(begin, t time.Time) string { return "+" + t.Sub(begin).Round(time.Millisecond).String() }

// Two tsync worker processes and a starter sync a DAG of 500 objects (10
// Sites, each with 7 Slices of 6 Instances) on a cluster. While they sync,
// the history service is SIGKILLed and restarted; up to 25 objects in sync get
// new content; then the matching service is SIGKILLed and restarted;
// later, with objects still not in sync, the frontend is. Every object ends in sync, with its current
// content synced by a step call that completed; no two step calls of one
// object overlapped; no content was synced twice except after a call cut
// short (checkCalls says exactly what is allowed); no workflow is left
// open or closed other than completed.
func TestClusterServicesKilledMidRun(t *testing.T) {
	c := startCluster(t, "")
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	_, schema := testenv.Schema(t)
	cfg := testenv.Config(t, c.HostPort(), schema)
	cfg.Temporal.Namespace = c.Namespace()
	require.NoError(t, cfg.Validate())

	// The starter's app, in this process (its steps never run here: no
	// worker), registers the search attributes: a new cluster's namespace
	// serves them only seconds later, and app.Open waits for them.
	logs := &testenv.SyncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	opened := time.Now()
	a, err := app.Open(ctx, cfg, synchronizer(nil), log)
	require.NoError(t, err, "open: %s", logs)
	t.Cleanup(a.Close)
	t.Logf("app opened (search attributes registered) in %s", time.Since(opened).Round(time.Millisecond))

	r := &run{t: t, ctx: ctx, app: a, calls: pgx.Identifier{schema, "step_calls"}.Sanitize(), starter: make(chan error, 1), logs: logs}
	_, err = a.Store.Pool().Exec(ctx, callsDDL(r.calls))
	require.NoError(t, err)
	for s := range 10 {
		site := &testmodels.Site{Name: fmt.Sprintf("site-%d", s)}
		require.NoError(t, a.Store.Insert(ctx, site))
		r.refs = append(r.refs, testmodels.RefOf(site))
		for l := range 7 {
			slice := &testmodels.Slice{Name: fmt.Sprintf("slice-%d-%d", s, l), SiteID: site.ID}
			require.NoError(t, a.Store.Insert(ctx, slice))
			r.refs = append(r.refs, testmodels.RefOf(slice))
			for i := range 6 {
				inst := &testmodels.Instance{Name: fmt.Sprintf("inst-%d-%d-%d", s, l, i), SliceID: slice.ID}
				require.NoError(t, a.Store.Insert(ctx, inst))
				r.refs = append(r.refs, testmodels.RefOf(inst))
			}
		}
	}
	require.Len(t, r.refs, 500)

	for n := range 2 {
		r.workers = append(r.workers, startWorker(t, cfg, r.calls, n+1))
	}
	r.begin = time.Now()
	sctx, stopStarter := context.WithCancel(ctx)
	starterDone := make(chan struct{})
	go func() {
		defer close(starterDone)
		if err := a.RunStarter(sctx); sctx.Err() == nil {
			r.starter <- err
		}
	}()
	t.Cleanup(func() { stopStarter(); <-starterDone })

	// The history service, once a tenth of the objects are in sync, with a
	// step call under way.
	at := r.waitFor("a tenth of the objects in sync and a step call just begun", 120*time.Second,
		func(s state) bool { return s.InSync >= len(r.refs)/10 && s.Fresh > 0 })
	r.killRestart(c, "history", at)

	// New content for every other object in sync (up to 25; Sites and
	// Slices, the dependencies of the Instances still to sync): each must
	// be synced again, once, at its new version.
	inSync := r.inSyncRefs()
	var touched []models.Ref
	for i := 0; i < len(inSync) && len(touched) < 25; i += 2 {
		require.NoError(t, a.Store.Touch(ctx, inSync[i].Model, inSync[i].ID))
		touched = append(touched, inSync[i])
	}
	t.Logf("new content for %d objects in sync", len(touched))

	// The matching service (task queues: every poll and every task goes
	// through it), at three tenths, with a step call under way.
	at = r.waitFor("three tenths of the objects in sync and a step call just begun", 120*time.Second,
		func(s state) bool { return s.InSync >= 3*len(r.refs)/10 && s.Fresh > 0 })
	r.killRestart(c, "matching", at)

	// The frontend, once half the objects are in sync, with a step call
	// under way: still mid-run.
	at = r.waitFor("half the objects in sync and a step call just begun", 120*time.Second,
		func(s state) bool { return s.InSync >= len(r.refs)/2 && s.Fresh > 0 })
	require.Less(t, at.InSync, len(r.refs), "every object was in sync before the frontend's kill")
	lastUp := r.killRestart(c, "frontend", at)

	end := r.waitFor("every object in sync", 120*time.Second, func(s state) bool { return s.InSync == len(r.refs) && s.InFlight == 0 })
	done := time.Now()
	t.Logf("all %d objects in sync %s after the frontend's restart began, %s after the start; %s",
		len(r.refs), done.Sub(lastUp).Round(time.Millisecond), done.Sub(r.begin).Round(time.Millisecond), end)

	// Each object's current content was synced by a completed call.
	var notSynced []string
	rows, err := a.Store.Pool().Query(ctx, `SELECT o.model, o.id FROM (
		SELECT 'Site' AS model, id, updated FROM `+pgx.Identifier{schema, "site"}.Sanitize()+`
		UNION ALL SELECT 'Slice', id, updated FROM `+pgx.Identifier{schema, "slice"}.Sanitize()+`
		UNION ALL SELECT 'Instance', id, updated FROM `+pgx.Identifier{schema, "instance"}.Sanitize()+`) o
		WHERE NOT EXISTS (SELECT 1 FROM `+r.calls+` c WHERE c.model = o.model AND c.id = o.id AND c.updated = o.updated AND c.outcome = $1)`, outcomeOK)
	require.NoError(t, err)
	for rows.Next() {
		var ref models.Ref
		require.NoError(t, rows.Scan(&ref.Model, &ref.ID))
		notSynced = append(notSynced, ref.String())
	}
	require.NoError(t, rows.Err())
	require.Empty(t, notSynced, "objects in sync whose current content no step call completed")

	calls, err := readCalls(ctx, a.Store.Pool(), r.calls)
	require.NoError(t, err)
	// No worker process died (alive checked it): a call was cut short only
	// by its activity's cancellation, and none may have been left without
	// an end.
	rep := checkCalls(calls, nil)
	perWorker := map[int]int{}
	retried := 0 // calls by an activity's second or later attempt
	for _, c := range calls {
		perWorker[c.Worker]++
		if !strings.HasSuffix(c.Attempt, "/1") {
			retried++
		}
	}
	for _, k := range r.kills {
		n := 0
		for _, c := range calls {
			if c.Start.Before(k.at) && (c.End == nil || c.End.After(k.at)) {
				n++
			}
		}
		t.Logf("step calls under way when the %s died: %d", k.service, n)
	}
	t.Logf("objects %d; contents synced %d (%d objects got new content mid-run); step calls %d (worker 1: %d, worker 2: %d); "+
		"by a retried activity attempt %d; cut short %d; duplicate calls (same object and content) %d, of which %d after a call cut short and %d after a completion not recorded",
		len(r.refs), rep.Contents, len(touched), rep.Calls, perWorker[1], perWorker[2], retried, rep.Cut, rep.Repeats, rep.RepeatsAfterCut, rep.RepeatsAfterUnrecorded)
	require.Empty(t, rep.Violations)
	require.Equal(t, len(r.refs)+len(touched), rep.Contents, "contents synced: every object's first, and the new contents")
	// The calls saw the objects' enacted (what the rule of repeats relies
	// on): set only for the new contents of objects synced before.
	type content struct {
		ref     models.Ref
		updated int64
	}
	resynced := map[content]bool{}
	for _, c := range calls {
		if c.EnactedBefore != nil {
			require.True(t, c.EnactedBefore.Before(c.Updated), "call %d of %s: enacted %v covers its content %v", c.Call, c.Ref, c.EnactedBefore, c.Updated)
			resynced[content{c.Ref, c.Updated.UnixMicro()}] = true
		}
	}
	require.Len(t, resynced, len(touched), "contents synced over an earlier one")

	r.workflowsSettled(cfg.Temporal.TaskQueue)
	r.alive()
}

// workflowsSettled asserts that no workflow of the task queue is left
// running (after a while: a workflow may still be ending) and that none
// closed other than completed or continued as new.
func (r *run) workflowsSettled(taskQueue string) {
	r.t.Helper()
	count := func(query string) int64 {
		resp, err := r.app.Client.CountWorkflow(r.ctx, &workflowservice.CountWorkflowExecutionsRequest{
			Query: fmt.Sprintf("TaskQueue = %q AND %s", taskQueue, query),
		})
		require.NoError(r.t, err)
		return resp.GetCount()
	}
	require.Eventually(r.t, func() bool { return count("ExecutionStatus = 'Running'") == 0 }, 60*time.Second, 200*time.Millisecond,
		"workflows left running")
	bad := count("ExecutionStatus != 'Running' AND ExecutionStatus != 'Completed' AND ExecutionStatus != 'ContinuedAsNew'")
	require.Zero(r.t, bad, "workflows closed without completing")
	// The search attributes serve: every Instance's workflow is found by
	// its model.
	require.True(r.t, r.app.Params().SearchAttributes, "the app runs without the search attributes")
	require.GreaterOrEqual(r.t, count("TsyncModel = 'Instance'"), int64(420), "workflows found by TsyncModel")
	r.t.Logf("workflow runs %d", count("ExecutionStatus = 'Completed'")+count("ExecutionStatus = 'ContinuedAsNew'"))
}
