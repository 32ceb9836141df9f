package integration

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/tsync/tsync"
	"github.com/tsync/tsync/app"
	"github.com/tsync/tsync/config"
	"github.com/tsync/tsync/internal/testenv"
	"github.com/tsync/tsync/internal/testmodels"
	"github.com/tsync/tsync/internal/workflows"
	"github.com/tsync/tsync/models"
	"github.com/tsync/tsync/worker"
)

// temporalServer is the dev server of this package's tests.
var temporalServer *testenv.Temporal

func TestMain(m *testing.M) {
	// A helper worker process (see TestHelperWorker) uses its parent's dev
	// server: one of its own would be left running when the parent kills it.
	helper := os.Getenv("TSYNC_HELPER_MARKER") != "" || os.Getenv("TSYNC_HELPER_CALLS") != ""
	os.Exit(testenv.Main(m, &temporalServer, helper))
}

// registry is the models of these tests (testmodels.ChainDiamond): the
// chain Site <- Slice <- Instance, the diamond A -> B, C -> D, and
// independent Items and Blobs.
func registry() *models.Registry { return testmodels.Registry(testmodels.ChainDiamond()...) }

// newRecorder returns a recording step for every model of registry.
func newRecorder() *testmodels.Recorder { return testmodels.NewRecorder(testmodels.ChainDiamond()...) }

// env is one test's synchronizer on the real services.
type env struct {
	t   *testing.T
	ctx context.Context
	cfg config.Config
	app *app.App
	rec *testmodels.Recorder
}

func newEnv(t *testing.T, mutate ...func(*config.Config)) *env {
	t.Helper()
	return newEnvWithPolicies(t, nil, mutate...)
}

// newEnvWithPolicies is newEnv with model policies.
func newEnvWithPolicies(t *testing.T, policies []tsync.Policy, mutate ...func(*config.Config)) *env {
	t.Helper()
	_, schema := testenv.Schema(t)
	cfg := testenv.Config(t, temporalServer.HostPort(), schema)
	for _, m := range mutate {
		m(&cfg)
	}
	rec := newRecorder()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	e := openEnv(t, cfg, tsync.Synchronizer{Models: registry(), Steps: []tsync.Step{rec}, Policies: policies}, log)
	e.rec = rec
	return e
}

// openEnv opens the app of sync with cfg (and opts) for one test, and
// closes it when the test ends. Its rec is nil.
func openEnv(t *testing.T, cfg config.Config, sync tsync.Synchronizer, log *slog.Logger, opts ...app.Option) *env {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	a, err := app.Open(ctx, cfg, sync, log, opts...)
	require.NoError(t, err)
	t.Cleanup(a.Close)
	return &env{t: t, ctx: ctx, cfg: cfg, app: a}
}

// startWorker starts an in-process worker, stopped at the end of the test.
func (e *env) startWorker() sdkworker.Worker {
	e.t.Helper()
	if e.cfg.ObserverDisabled {
		return nil
	}
	w, err := worker.New(e.app.Client, worker.Options{TaskQueue: e.cfg.Temporal.TaskQueue, StopTimeout: time.Second}, e.app.Activities())
	require.NoError(e.t, err)
	require.NoError(e.t, w.Start())
	e.t.Cleanup(w.Stop)
	return w
}

// startStarter runs the starter until the test ends.
func (e *env) startStarter() { e.background(e.app.RunStarter) }

// background runs fn until the test ends, then cancels its context and
// waits for it to return. The channel it returns is closed once fn has
// returned.
func (e *env) background(fn func(context.Context) error) <-chan struct{} {
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = fn(ctx)
	}()
	e.t.Cleanup(func() { cancel(); <-done })
	return done
}

// insert inserts obj, of any model of the app, and returns its reference.
func (e *env) insert(obj models.Object) models.Ref {
	e.t.Helper()
	require.NoError(e.t, e.app.Store.Insert(e.ctx, obj))
	m, err := e.app.Store.Graph().ModelOf(obj)
	require.NoError(e.t, err)
	return models.Ref{Model: m.Name, ID: obj.SyncState().ID}
}

// insertChain inserts a chain Site "s" <- Slice "sl" <- Instance "i".
func (e *env) insertChain() (site, slice, inst models.Ref) {
	e.t.Helper()
	site = e.insert(&testmodels.Site{Name: "s"})
	slice = e.insert(&testmodels.Slice{Name: "sl", SiteID: site.ID})
	inst = e.insert(&testmodels.Instance{Name: "i", SliceID: slice.ID})
	return site, slice, inst
}

// insertTree inserts sites Sites, each with slices Slices of instances
// Instances (the chain Site <- Slice <- Instance), named after prefix and
// their indexes ("site-0", "slice-0-1", "inst-0-1-2" with no prefix), and
// returns their references in insertion order.
func (e *env) insertTree(prefix string, sites, slices, instances int) []models.Ref {
	e.t.Helper()
	var refs []models.Ref
	for s := range sites {
		site := e.insert(&testmodels.Site{Name: fmt.Sprintf("%ssite-%d", prefix, s)})
		refs = append(refs, site)
		for l := range slices {
			slice := e.insert(&testmodels.Slice{Name: fmt.Sprintf("%sslice-%d-%d", prefix, s, l), SiteID: site.ID})
			refs = append(refs, slice)
			for i := range instances {
				refs = append(refs, e.insert(&testmodels.Instance{Name: fmt.Sprintf("%sinst-%d-%d-%d", prefix, s, l, i), SliceID: slice.ID}))
			}
		}
	}
	return refs
}

func (e *env) get(ref models.Ref) *models.Base {
	e.t.Helper()
	obj, err := e.app.Store.Get(e.ctx, ref.Model, ref.ID)
	require.NoError(e.t, err)
	return obj.SyncState()
}

func (e *env) exists(ref models.Ref) bool {
	_, err := e.app.Store.Get(e.ctx, ref.Model, ref.ID)
	return err == nil
}

// inSync reports whether ref is synced: code 1, "OK", enacted = updated.
func inSync(b *models.Base) bool {
	return b.BackendCode == models.CodeOK && b.BackendStatus == "OK" && b.Enacted != nil && b.Enacted.Equal(b.Updated)
}

// waitInSync waits until every ref is in sync. A failed read is "not yet":
// fault tests cut the app's connections, the harness's reads among them.
func (e *env) waitInSync(timeout time.Duration, refs ...models.Ref) {
	e.t.Helper()
	var left []models.Ref
	deadline := time.Now().Add(timeout)
	for {
		left = left[:0]
		for _, r := range refs {
			obj, err := e.app.Store.Get(e.ctx, r.Model, r.ID)
			if err != nil || !inSync(obj.SyncState()) {
				left = append(left, r)
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			// The state of those left when the wait ended, not when it began,
			// and the runs of the first few.
			runs := ""
			for _, r := range left[:min(len(left), 5)] {
				runs += fmt.Sprintf("\n%s: %v", r, e.runsOf(workflows.WorkflowID(e.cfg.ObserverName, r)))
			}
			e.t.Fatalf("%d of %d objects not in sync after %s: %s%s", len(left), len(refs), timeout, e.describe(left...), runs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// describe returns the sync state of each of refs, as read now.
func (e *env) describe(refs ...models.Ref) string {
	s := ""
	for _, r := range refs {
		obj, err := e.app.Store.Get(e.ctx, r.Model, r.ID)
		if err != nil {
			s += fmt.Sprintf("[%s: %v] ", r, err)
			continue
		}
		b := obj.SyncState()
		s += fmt.Sprintf("[%s: code %d %q enacted %v updated %v policed %v] ", r, b.BackendCode, b.BackendStatus, b.Enacted, b.Updated, b.Policed)
	}
	return s
}

// assertSyncedInSync asserts the full success state of ref.
func (e *env) assertInSync(refs ...models.Ref) {
	e.t.Helper()
	for _, r := range refs {
		b := e.get(r)
		require.Equal(e.t, models.CodeOK, b.BackendCode, "%s", r)
		require.Equal(e.t, "OK", b.BackendStatus, "%s", r)
		require.NotNil(e.t, b.Enacted, "%s", r)
		require.True(e.t, b.Enacted.Equal(b.Updated), "%s: enacted %v != updated %v", r, b.Enacted, b.Updated)
		require.True(e.t, b.BackendNeedDelete, "%s", r)
	}
}
