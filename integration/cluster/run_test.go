package cluster_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/tsync/tsync/app"
	"github.com/tsync/tsync/internal/cluster"
	"github.com/tsync/tsync/internal/testenv"
	"github.com/tsync/tsync/internal/testmodels"
	"github.com/tsync/tsync/models"
)

// A run of the cluster tests: two tsync worker processes and a starter sync
// a DAG of 500 objects on a cluster while the test harms it (startRun); the
// test follows its progress in the database (state, waitFor, resumed) and
// makes the same final checks of every run (checkRun).

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
	// taskQueue is the task queue of the run's workflows.
	taskQueue string
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

// since formats t as a time after begin.
func since(begin, t time.Time) string { return "+" + t.Sub(begin).Round(time.Millisecond).String() }

// startRun opens the starter's app on c, creates the call table and the
// 500 objects (10 Sites, each with 7 Slices of 6 Instances), and starts two
// worker processes and the starter; everything stops when the test ends. It
// logs how long the app took to open.
func startRun(t *testing.T, c *cluster.Cluster) *run {
	t.Helper()
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

	r := &run{t: t, ctx: ctx, app: a, calls: pgx.Identifier{schema, "step_calls"}.Sanitize(), starter: make(chan error, 1), logs: logs,
		taskQueue: cfg.Temporal.TaskQueue}
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
	return r
}

// checkRun makes the final checks of a run whose objects are all in sync,
// touched the objects that got new content mid-run (once each), and logs
// its figures: each object's current content was synced by a completed
// call; checkCalls (died: the worker processes that died) finds no
// violation; the contents synced are every object's first and the new
// ones; a call saw the object's enacted (what checkCalls' rule of repeats
// relies on) only for a new content, older than it; no workflow is left
// running or closed other than completed (workflowsSettled); the worker
// processes and the starter still run.
func (r *run) checkRun(touched []models.Ref, died map[int]time.Time) {
	r.t.Helper()
	schema := r.app.Store.Schema()
	rows, err := r.app.Store.Pool().Query(r.ctx, `SELECT o.model, o.id FROM (
		SELECT 'Site' AS model, id, updated FROM `+pgx.Identifier{schema, "site"}.Sanitize()+`
		UNION ALL SELECT 'Slice', id, updated FROM `+pgx.Identifier{schema, "slice"}.Sanitize()+`
		UNION ALL SELECT 'Instance', id, updated FROM `+pgx.Identifier{schema, "instance"}.Sanitize()+`) o
		WHERE NOT EXISTS (SELECT 1 FROM `+r.calls+` c WHERE c.model = o.model AND c.id = o.id AND c.updated = o.updated AND c.outcome = $1)`, outcomeOK)
	require.NoError(r.t, err)
	notSynced, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (string, error) {
		var ref models.Ref
		err := row.Scan(&ref.Model, &ref.ID)
		return ref.String(), err
	})
	require.NoError(r.t, err)
	require.Empty(r.t, notSynced, "objects in sync whose current content no step call completed")

	calls, err := readCalls(r.ctx, r.app.Store.Pool(), r.calls)
	require.NoError(r.t, err)
	rep := checkCalls(calls, died)
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
		r.t.Logf("step calls under way when the %s died: %d", k.service, n)
	}
	newContent := ""
	if len(touched) > 0 {
		newContent = fmt.Sprintf(" (%d objects got new content mid-run)", len(touched))
	}
	r.t.Logf("objects %d; contents synced %d%s; step calls %d (worker 1: %d, worker 2: %d); by a retried activity attempt %d; cut short %d; "+
		"duplicate calls (same object and content) %d, of which %d after a call cut short and %d after a completion not recorded",
		len(r.refs), rep.Contents, newContent, rep.Calls, perWorker[1], perWorker[2], retried, rep.Cut, rep.Repeats, rep.RepeatsAfterCut, rep.RepeatsAfterUnrecorded)
	require.Empty(r.t, rep.Violations)
	require.Equal(r.t, len(r.refs)+len(touched), rep.Contents, "contents synced: every object's first, and the new contents")
	isTouched := map[models.Ref]bool{}
	for _, ref := range touched {
		isTouched[ref] = true
	}
	type content struct {
		ref     models.Ref
		updated int64
	}
	resynced := map[content]bool{}
	for _, c := range calls {
		if c.EnactedBefore == nil {
			continue
		}
		require.True(r.t, isTouched[c.Ref], "call %d of %s: the object was synced before, though it got no new content", c.Call, c.Ref)
		require.True(r.t, c.EnactedBefore.Before(c.Updated), "call %d of %s: enacted %v covers its content %v", c.Call, c.Ref, c.EnactedBefore, c.Updated)
		resynced[content{c.Ref, c.Updated.UnixMicro()}] = true
	}
	require.Len(r.t, resynced, len(touched), "contents synced over an earlier one")

	r.workflowsSettled()
	r.alive()
}

// workflowsSettled asserts that no workflow of the run's task queue is left
// running (after a while: a workflow may still be ending) and that none
// closed other than completed or continued as new.
func (r *run) workflowsSettled() {
	r.t.Helper()
	count := func(query string) int64 {
		resp, err := r.app.Client.CountWorkflow(r.ctx, &workflowservice.CountWorkflowExecutionsRequest{
			Query: fmt.Sprintf("TaskQueue = %q AND %s", r.taskQueue, query),
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
