package integration

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/tsync/tsync"
	"github.com/tsync/tsync/app"
	"github.com/tsync/tsync/config"
	"github.com/tsync/tsync/internal/testenv"
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

// Test models: a chain Site <- Slice <- Instance, a diamond A -> B, C -> D,
// and independent Items.
type (
	Site struct {
		models.Base
		Name string `db:"name"`
	}
	Slice struct {
		models.Base
		Name   string `db:"name"`
		SiteID int64  `db:"site_id"`
	}
	Instance struct {
		models.Base
		Name    string `db:"name"`
		SliceID int64  `db:"slice_id"`
	}
	D struct {
		models.Base
		Name string `db:"name"`
	}
	B struct {
		models.Base
		Name string `db:"name"`
		DID  int64  `db:"d_id"`
	}
	C struct {
		models.Base
		Name string `db:"name"`
		DID  int64  `db:"d_id"`
	}
	A struct {
		models.Base
		Name string `db:"name"`
		BID  int64  `db:"b_id"`
		CID  int64  `db:"c_id"`
	}
	Item struct {
		models.Base
		Name string `db:"name"`
	}
	// Blob holds binary data and JSON, for the tests of huge and non-UTF-8
	// values.
	Blob struct {
		models.Base
		Name string         `db:"name"`
		Data []byte         `db:"data"`
		Meta map[string]any `db:"meta"`
	}
)

func registry() *models.Registry {
	reg := models.NewRegistry()
	models.MustRegister[Site](reg, "Site")
	models.MustRegister[Slice](reg, "Slice", models.Link{Dest: "Site", Via: "site_id"})
	models.MustRegister[Instance](reg, "Instance", models.Link{Dest: "Slice", Via: "slice_id"})
	models.MustRegister[D](reg, "D")
	models.MustRegister[B](reg, "B", models.Link{Dest: "D", Via: "d_id"})
	models.MustRegister[C](reg, "C", models.Link{Dest: "D", Via: "d_id"})
	models.MustRegister[A](reg, "A", models.Link{Dest: "B", Via: "b_id"}, models.Link{Dest: "C", Via: "c_id"})
	models.MustRegister[Item](reg, "Item")
	models.MustRegister[Blob](reg, "Blob")
	return reg
}

// Call is one step call seen by the Recorder.
type Call struct {
	Op      string // "sync" or "delete"
	Ref     models.Ref
	Updated time.Time
	Start   time.Time
	End     time.Time
	Err     error
}

// Recorder is a step for every test model that records each call, runs
// the test's hook, and flags two kinds of violations: two concurrent calls
// for one object, and a call against stale data (an object older than one
// an earlier call of the same operation on it had already seen).
type Recorder struct {
	mu         sync.Mutex
	calls      []Call
	active     map[models.Ref]bool
	seen       map[string]time.Time // op + ref -> newest updated seen
	violations []string
	hook       func(ctx context.Context, op string, ref models.Ref, obj models.Object) error
	objs       []models.Object
}

func newRecorder() *Recorder {
	return &Recorder{active: map[models.Ref]bool{}, seen: map[string]time.Time{},
		objs: []models.Object{new(Site), new(Slice), new(Instance), new(A), new(B), new(C), new(D), new(Item), new(Blob)}}
}

// SetHook sets what every call does besides being recorded.
func (r *Recorder) SetHook(h func(ctx context.Context, op string, ref models.Ref, obj models.Object) error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hook = h
}

func (r *Recorder) Synchronizes() []models.Object { return r.objs }

func (r *Recorder) call(ctx context.Context, op string, obj models.Object) error {
	b := obj.SyncState()
	ref := models.Ref{Model: modelName(obj), ID: b.ID}
	r.mu.Lock()
	if r.active[ref] {
		r.violations = append(r.violations, fmt.Sprintf("concurrent %s of %s", op, ref))
	}
	r.active[ref] = true
	key := op + " " + ref.String()
	if newest := r.seen[key]; b.Updated.Before(newest) {
		r.violations = append(r.violations, fmt.Sprintf("stale %s of %s: updated %v, an earlier call saw %v", op, ref, b.Updated, newest))
	} else {
		r.seen[key] = b.Updated
	}
	hook := r.hook
	r.mu.Unlock()
	c := Call{Op: op, Ref: ref, Updated: b.Updated, Start: time.Now()}
	var err error
	if hook != nil {
		err = hook(ctx, op, ref, obj)
	}
	c.End, c.Err = time.Now(), err
	r.mu.Lock()
	delete(r.active, ref)
	r.calls = append(r.calls, c)
	r.mu.Unlock()
	return err
}

func (r *Recorder) SyncRecord(ctx context.Context, obj models.Object) error {
	return r.call(ctx, "sync", obj)
}

func (r *Recorder) DeleteRecord(ctx context.Context, obj models.Object) error {
	return r.call(ctx, "delete", obj)
}

// Calls returns the calls recorded so far, in the order they ended.
func (r *Recorder) Calls() []Call {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

// CallsOf returns the calls of one op on ref.
func (r *Recorder) CallsOf(op string, ref models.Ref) []Call {
	var out []Call
	for _, c := range r.Calls() {
		if c.Op == op && c.Ref == ref {
			out = append(out, c)
		}
	}
	return out
}

// Violations returns the concurrent and stale calls seen.
func (r *Recorder) Violations() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.violations)
}

func modelName(obj models.Object) string {
	switch obj.(type) {
	case *Site:
		return "Site"
	case *Slice:
		return "Slice"
	case *Instance:
		return "Instance"
	case *A:
		return "A"
	case *B:
		return "B"
	case *C:
		return "C"
	case *D:
		return "D"
	case *Item:
		return "Item"
	case *Blob:
		return "Blob"
	}
	return fmt.Sprintf("%T", obj)
}

// env is one test's synchronizer on the real services.
type env struct {
	t   *testing.T
	ctx context.Context
	cfg config.Config
	app *app.App
	rec *Recorder
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
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	rec := newRecorder()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	a, err := app.Open(ctx, cfg, tsync.Synchronizer{Models: registry(), Steps: []tsync.Step{rec}, Policies: policies}, log)
	require.NoError(t, err)
	t.Cleanup(a.Close)
	return &env{t: t, ctx: ctx, cfg: cfg, app: a, rec: rec}
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
func (e *env) startStarter() {
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = e.app.RunStarter(ctx)
	}()
	e.t.Cleanup(func() { cancel(); <-done })
}

func (e *env) insert(obj models.Object) models.Ref {
	e.t.Helper()
	require.NoError(e.t, e.app.Store.Insert(e.ctx, obj))
	return models.Ref{Model: modelName(obj), ID: obj.SyncState().ID}
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

// waitInSync waits until every ref is in sync.
func (e *env) waitInSync(timeout time.Duration, refs ...models.Ref) {
	e.t.Helper()
	require.Eventually(e.t, func() bool {
		for _, r := range refs {
			if !inSync(e.get(r)) {
				return false
			}
		}
		return true
	}, timeout, 20*time.Millisecond, "objects not in sync: %v", e.describe(refs...))
}

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

// order returns the refs of the sync calls that succeeded, in order of end.
func syncOrder(calls []Call) []models.Ref {
	var out []models.Ref
	for _, c := range calls {
		if c.Op == "sync" && c.Err == nil {
			out = append(out, c.Ref)
		}
	}
	return out
}

// The Recorder's checks can fail: two overlapping calls of one object and a
// call older than one already seen are flagged; calls of two objects, and a
// delete after a newer sync, are not.
func TestRecorderFlagsConcurrentAndStaleCalls(t *testing.T) {
	r := newRecorder()
	ctx := context.Background()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	item := func(id int64, updated time.Time) *Item {
		it := &Item{}
		it.ID, it.Updated = id, updated
		return it
	}
	inside := make(chan struct{})
	release := make(chan struct{})
	r.SetHook(func(ctx context.Context, op string, ref models.Ref, obj models.Object) error {
		if ref.ID == 1 && obj.SyncState().Updated.Equal(t0) {
			close(inside)
			<-release
		}
		return nil
	})
	done := make(chan struct{})
	go func() { defer close(done); _ = r.SyncRecord(ctx, item(1, t0)) }()
	<-inside
	require.NoError(t, r.SyncRecord(ctx, item(2, t0)))                  // another object: fine
	require.NoError(t, r.SyncRecord(ctx, item(1, t0.Add(time.Second)))) // overlaps call 1
	close(release)
	<-done
	require.NoError(t, r.SyncRecord(ctx, item(1, t0.Add(-time.Second)))) // older than seen
	require.NoError(t, r.DeleteRecord(ctx, item(2, t0)))                 // delete: own sequence
	require.Equal(t, []string{
		"concurrent sync of model Item id 1",
		"stale sync of model Item id 1: updated 2025-12-31 23:59:59 +0000 UTC, an earlier call saw 2026-01-01 00:00:01 +0000 UTC",
	}, r.Violations())
	require.Len(t, r.Calls(), 5)
}
