package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/tsync/tsync"
	"github.com/tsync/tsync/app"
	"github.com/tsync/tsync/config"
	"github.com/tsync/tsync/internal/testenv"
	"github.com/tsync/tsync/internal/testmodels"
	"github.com/tsync/tsync/models"
)

// countRuns returns how many runs (open or closed) of workflow id exist.
func (e *env) countRuns(id string) int {
	e.t.Helper()
	resp, err := e.app.Client.ListWorkflow(e.ctx, &workflowservice.ListWorkflowExecutionsRequest{
		Query: fmt.Sprintf("WorkflowId = %q", id),
	})
	require.NoError(e.t, err)
	return len(resp.Executions)
}

// openWorkflows returns the IDs of the running workflows of the test's
// task queue.
func (e *env) openWorkflows() []string {
	e.t.Helper()
	ids, err := e.listOpen()
	require.NoError(e.t, err)
	return ids
}

// listOpen is openWorkflows, returning visibility's error.
func (e *env) listOpen() ([]string, error) {
	resp, err := e.app.Client.ListWorkflow(e.ctx, &workflowservice.ListWorkflowExecutionsRequest{
		Query: fmt.Sprintf("TaskQueue = %q AND ExecutionStatus = 'Running'", e.cfg.Temporal.TaskQueue),
	})
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, x := range resp.Executions {
		ids = append(ids, x.Execution.WorkflowId)
	}
	return ids, nil
}

// waitNoneOpen waits until visibility shows no workflow of the task queue
// running. A failed list is "not yet" (a test may have just restarted the
// server); the failure names what was left open, or the last error.
func (e *env) waitNoneOpen(timeout time.Duration) {
	e.t.Helper()
	var ids []string
	var err error
	if !assert.Eventually(e.t, func() bool {
		ids, err = e.listOpen()
		return err == nil && len(ids) == 0
	}, timeout, 100*time.Millisecond) {
		e.t.Fatalf("workflows left open: %v (last list error: %v)", ids, err)
	}
}

// runsOf describes every run of workflow id, newest first: run ID, type,
// status and close time (for a test's failure message).
func (e *env) runsOf(id string) []string {
	e.t.Helper()
	resp, err := e.app.Client.ListWorkflow(e.ctx, &workflowservice.ListWorkflowExecutionsRequest{
		Query: fmt.Sprintf("WorkflowId = %q", id),
	})
	if err != nil {
		return []string{err.Error()}
	}
	var runs []string
	for _, x := range resp.Executions {
		runs = append(runs, fmt.Sprintf("%s %s %s closed %v", x.GetExecution().GetRunId(), x.GetType().GetName(), x.GetStatus(), x.GetCloseTime().AsTime()))
	}
	return runs
}

// 9. A starter scanning again and again while a sync runs starts no second
// workflow for the object.
func TestStarterNeverStartsTwoWorkflows(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *config.Config) { c.LoopInterval = 20 * time.Millisecond })
	e.rec.SetHook(func(ctx context.Context, op string, ref models.Ref, obj models.Object) error {
		time.Sleep(2 * time.Second)
		return nil
	})
	item := e.insert(&testmodels.Item{Name: "slow"})
	e.startWorker()
	st := e.app.NewStarter()
	e.background(st.Run)

	e.waitInSync(20*time.Second, item)
	require.Greater(t, st.Scans(), int64(20), "the starter must have scanned many times while the sync ran")
	require.Len(t, e.rec.CallsOf("sync", item), 1)
	require.Empty(t, e.rec.Violations())
	id := fmt.Sprintf("%s/Item/%d", e.cfg.ObserverName, item.ID)
	require.Eventually(t, func() bool { return e.countRuns(id) == 1 }, 10*time.Second, 100*time.Millisecond)
	require.Equal(t, 1, e.countRuns(id), "one workflow run for the object")
}

// TestHelperWorker is not a test: it is the worker process that
// TestWorkerKilledMidSync starts and kills. Its config comes from TSYNC_*.
func TestHelperWorker(t *testing.T) {
	marker := os.Getenv("TSYNC_HELPER_MARKER")
	if marker == "" {
		t.Skip("helper process of TestWorkerKilledMidSync")
	}
	cfg, err := config.Load("", os.Environ())
	require.NoError(t, err)
	step := tsync.StepOf[testmodels.Item](tsync.StepFuncs[testmodels.Item]{Sync: func(ctx context.Context, it *testmodels.Item) error {
		if err := os.WriteFile(marker, []byte("started"), 0o600); err != nil {
			return err
		}
		<-ctx.Done() // hang until killed
		return ctx.Err()
	}})
	reg := testmodels.Registry(new(testmodels.Item))
	a, err := app.Open(context.Background(), cfg, tsync.Synchronizer{Models: reg, Steps: []tsync.Step{step}}, nil)
	require.NoError(t, err)
	_ = a.RunWorker(context.Background())
}

// 10. A worker killed in the middle of SyncRecord: a new worker finishes the
// sync and nothing is left stuck.
func TestWorkerKilledMidSync(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *config.Config) { c.HeartbeatTimeout = 2 * time.Second })
	// Only Item objects, so the helper's one-model registry matches.
	items := []models.Ref{e.insert(&testmodels.Item{Name: "a"})}
	marker := filepath.Join(t.TempDir(), "started")
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperWorker$", "-test.v")
	cmd.Env = append(append(os.Environ(), e.cfg.Environ()...),
		"TSYNC_HELPER_MARKER="+marker,
	)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	e.startStarter()

	require.Eventually(t, func() bool { _, err := os.Stat(marker); return err == nil }, 30*time.Second, 20*time.Millisecond, "helper never ran the step: %s", &out)
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	_ = cmd.Wait()
	b := e.get(items[0])
	require.Nil(t, b.Enacted, "killed mid-sync: not enacted")

	e.startWorker()
	e.waitInSync(30*time.Second, items...)
	e.assertInSync(items...)
	require.Len(t, e.rec.CallsOf("sync", items[0]), 1, "the new worker synced it once")
	e.waitNoneOpen(10 * time.Second)
}

// 11. no_sync and lazy_blocked objects are never synced; write_protect
// objects are never deleted from the backend.
func TestFlagsNoSyncLazyBlockedWriteProtect(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	noSync := e.insert(&testmodels.Item{Name: "no-sync", Base: models.Base{NoSync: true}})
	lazy := e.insert(&testmodels.Item{Name: "lazy", Base: models.Base{LazyBlocked: true}})
	protected := e.insert(&testmodels.Item{Name: "protected", Base: models.Base{WriteProtect: true}})
	site := e.insert(&testmodels.Site{Name: "blocked-site", Base: models.Base{NoSync: true}})
	slice := e.insert(&testmodels.Slice{Name: "behind-blocked", SiteID: site.ID})
	e.startWorker()
	e.startStarter()
	e.waitInSync(20*time.Second, protected)
	want := fmt.Sprintf("deferred: dependency model Site id %d is not synced (no_sync or lazy_blocked)", site.ID)
	require.Eventually(t, func() bool { return e.get(slice).BackendStatus == want }, 20*time.Second, 20*time.Millisecond, e.describe(slice))

	e.delete(protected)
	time.Sleep(1500 * time.Millisecond)
	for _, r := range []models.Ref{noSync, lazy, site} {
		b := e.get(r)
		require.Empty(t, e.rec.CallsOf("sync", r), "%s synced", r)
		require.Equal(t, models.CodePending, b.BackendCode)
		require.Empty(t, b.BackendStatus)
		require.Nil(t, b.Enacted)
		require.False(t, b.BackendNeedDelete)
	}
	require.Empty(t, e.rec.CallsOf("sync", slice))
	require.Empty(t, e.rec.CallsOf("delete", protected), "write_protect: never deleted from the backend")
	require.True(t, e.exists(protected), "write_protect: row kept")
	require.True(t, e.get(protected).Deleted)
}

// 12. Bad model definitions and a config without observer_name stop
// start-up with one clear error.
func TestStartupErrors(t *testing.T) {
	t.Parallel()
	cfg := config.Default()
	cfg.ObserverName = "startup"
	cfg.Temporal.HostPort = temporalServer.HostPort()
	open := func(reg *models.Registry) error {
		a, err := app.Open(context.Background(), cfg, tsync.Synchronizer{Models: reg}, nil)
		if err == nil {
			a.Close()
		}
		return err
	}

	cycle := models.NewRegistry()
	models.MustRegister[testmodels.B](cycle, "B", models.Link{Dest: "D", Via: "d_id"})
	models.MustRegister[testmodels.D](cycle, "D", models.Link{Dest: "A", Via: "name"})
	models.MustRegister[testmodels.A](cycle, "A", models.Link{Dest: "B", Via: "b_id"})
	err := open(cycle)
	require.Error(t, err)
	require.Contains(t, err.Error(), "must be an integer id", "a string Via is refused before the cycle check")

	type Loop struct {
		models.Base
		PrevID int64 `db:"prev_id"`
	}
	type Other struct {
		models.Base
		LoopID int64 `db:"loop_id"`
	}
	cyc := models.NewRegistry()
	models.MustRegister[Loop](cyc, "Loop", models.Link{Dest: "Other", Via: "prev_id"})
	models.MustRegister[Other](cyc, "Other", models.Link{Dest: "Loop", Via: "loop_id"})
	require.EqualError(t, open(cyc), "synchronizer: dependency cycle: Loop -> Other -> Loop")

	unknownModel := models.NewRegistry()
	models.MustRegister[testmodels.Slice](unknownModel, "Slice", models.Link{Dest: "Site", Via: "site_id"})
	require.EqualError(t, open(unknownModel), `synchronizer: model Slice: link to unknown model "Site"`)

	unknownField := models.NewRegistry()
	models.MustRegister[testmodels.Site](unknownField, "Site")
	models.MustRegister[testmodels.Slice](unknownField, "Slice", models.Link{Dest: "Site", Via: "site"})
	require.EqualError(t, open(unknownField), `synchronizer: model Slice: link to Site: unknown field "site"`)

	// A model-deps file that disagrees with the links refuses start-up; one
	// that agrees is fine.
	chain := models.NewRegistry()
	models.MustRegister[testmodels.Site](chain, "Site")
	models.MustRegister[testmodels.Slice](chain, "Slice", models.Link{Dest: "Site", Via: "site_id"})
	depsFile := filepath.Join(t.TempDir(), "model-deps.json")
	require.NoError(t, os.WriteFile(depsFile, []byte(`{"Site": [], "Slice": []}`), 0o600))
	cfg.ObserverDependencyGraph = depsFile
	cfg.DatabaseURL = testenv.DatabaseURL()
	_, cfg.DatabaseSchema = testenv.Schema(t)
	require.EqualError(t, open(chain), "observer_dependency_graph "+depsFile+
		": model-deps file disagrees with the code: model Slice: the file says [], the code says [Site] (regenerate it with `tsync deps`)")
	g, err := chain.Graph()
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(depsFile, g.DepsFile(), 0o600))
	require.NoError(t, open(chain))
	cfg.ObserverDependencyGraph = ""

	_, err = config.Parse([]byte("loop_interval: 1s\n"), nil)
	require.Error(t, err)
	require.NotContains(t, err.Error(), "\n", "one line")
	require.Contains(t, err.Error(), "observer_name")
}

// 13. observer_disabled: nothing is synced and no status is written.
func TestObserverDisabled(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *config.Config) { c.ObserverDisabled = true })
	item := e.insert(&testmodels.Item{Name: "x"})
	site := e.insert(&testmodels.Site{Name: "s"})
	e.delete(site)
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan struct{}, 2)
	go func() { _ = e.app.RunWorker(ctx); done <- struct{}{} }()
	go func() { _ = e.app.RunStarter(ctx); done <- struct{}{} }()
	time.Sleep(1500 * time.Millisecond)
	cancel()
	<-done
	<-done
	require.Empty(t, e.rec.Calls())
	b := e.get(item)
	require.Equal(t, models.CodePending, b.BackendCode)
	require.Empty(t, b.BackendStatus)
	require.Nil(t, b.Enacted)
	require.False(t, b.BackendNeedDelete)
	require.True(t, e.exists(site), "not purged")
	require.Empty(t, e.openWorkflows())
}
