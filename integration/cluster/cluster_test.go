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
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

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

// Two tsync worker processes and a starter sync a DAG of 500 objects (10
// Sites, each with 7 Slices of 6 Instances) on a cluster (startRun). While
// they sync, the history service is SIGKILLed and restarted; up to 25
// objects in sync get new content; then the matching service is SIGKILLed
// and restarted; later, with objects still not in sync, the frontend is.
// Every object ends in sync, with its current content synced by a step call
// that completed; no two step calls of one object overlapped; no content
// was synced twice except after a call cut short (checkCalls says exactly
// what is allowed); no workflow is left open or closed other than completed
// (checkRun).
func TestClusterServicesKilledMidRun(t *testing.T) {
	c := startCluster(t, "")
	r := startRun(t, c)

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
		require.NoError(t, r.app.Store.Touch(r.ctx, inSync[i].Model, inSync[i].ID))
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

	// No worker process died (alive checked it): a call was cut short only
	// by its activity's cancellation, and none may have been left without
	// an end.
	r.checkRun(touched, nil)
}
