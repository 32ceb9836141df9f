// Package tsynctest tests a synchronizer's steps the way tsync runs them,
// in a few lines: New gives an Env holding the Temporal SDK's test
// environment (no server: time is skipped) with tsync's sync and delete
// workflows and activities registered over the synchronizer, and a model
// store on a real PostgreSQL, in a schema of its own that is dropped when
// the test ends.
//
//	func TestSiteStep(t *testing.T) {
//		env := tsynctest.New(t, mysync.Synchronizer(backend))
//		site := &mysync.Site{Name: "paris"}
//		env.Insert(site)
//		got := env.Sync(site)   // dependencies first, then the step, once
//		require.True(t, got.InSync(), got.Status)
//		got = env.Delete(site)  // DeleteRecord, then the row is purged
//		require.True(t, got.Purged)
//	}
//
// The database is TSYNC_DATABASE_URL, or
// postgres://postgres@127.0.0.1:5432/test; a test fails at once, saying so,
// when it cannot be reached.
package tsynctest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.temporal.io/sdk/testsuite"

	"github.com/tsync/tsync"
	"github.com/tsync/tsync/internal/activities"
	"github.com/tsync/tsync/internal/engine"
	"github.com/tsync/tsync/internal/testenv"
	"github.com/tsync/tsync/internal/workflows"
	"github.com/tsync/tsync/models"
)

// DefaultDatabaseURL is the database of New when TSYNC_DATABASE_URL is not
// set.
const DefaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// Env runs one synchronizer's workflows in the SDK's test environment over
// a real model store.
type Env struct {
	// Store is the model store, in a schema of its own.
	Store *models.Store

	t      testing.TB
	suite  testsuite.WorkflowTestSuite
	sync   *engine.Synchronizer
	acts   *activities.Activities
	params workflows.Params
}

// Result is an object's state after Sync or Delete.
type Result struct {
	// Purged reports that the object's row is gone (a delete completed, or
	// it never existed).
	Purged bool
	// Code and Status are its backend_code and backend_status.
	Code   int
	Status string
	// Enacted and Updated are its enacted and updated columns.
	Enacted *time.Time
	Updated time.Time
}

// InSync reports a successful sync of the object's current content: code 1
// and enacted = updated.
func (r Result) InSync() bool {
	return !r.Purged && r.Code == models.CodeOK && r.Enacted != nil && r.Enacted.Equal(r.Updated)
}

// InError reports a failed sync (code 2).
func (r Result) InError() bool { return !r.Purged && r.Code == models.CodeError }

// Deferred reports a deferred sync: code 0 and a "deferred: " status.
func (r Result) Deferred() bool {
	return !r.Purged && r.Code == models.CodePending && strings.HasPrefix(r.Status, "deferred: ")
}

// New returns an Env for s, whose steps need no store.
func New(t testing.TB, s tsync.Synchronizer) *Env {
	t.Helper()
	return NewWithStore(t, s.Models, func(*models.Store) (tsync.Synchronizer, error) { return s, nil })
}

// NewWithStore returns an Env for the synchronizer of reg that build builds
// over the Env's store (as app.OpenWithStore does). A synchronizer that
// does not compile fails the test with its error.
func NewWithStore(t testing.TB, reg *models.Registry, build func(*models.Store) (tsync.Synchronizer, error)) *Env {
	t.Helper()
	ctx := context.Background()
	url := os.Getenv("TSYNC_DATABASE_URL")
	if url == "" {
		url = DefaultDatabaseURL
	}
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatalf("tsynctest: database %s: %v", url, err)
	}
	t.Cleanup(pool.Close)
	schema := "tsynctest_" + testenv.Random(6)
	if _, err := pool.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize()); err != nil {
		t.Fatalf("tsynctest: PostgreSQL at %s is needed (set TSYNC_DATABASE_URL): %v", url, err)
	}
	t.Cleanup(func() {
		_, _ = pool.Exec(context.Background(), "DROP SCHEMA "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
	})
	sync, err := engine.Build(pool, schema, reg, build)
	if err != nil {
		t.Fatalf("tsynctest: %v", err)
	}
	store, err := models.NewStore(pool, schema, sync.Graph)
	if err != nil {
		t.Fatalf("tsynctest: %v", err)
	}
	if err := store.Migrate(ctx); err != nil {
		t.Fatalf("tsynctest: %v", err)
	}
	return &Env{
		Store: store, t: t, sync: sync,
		acts: activities.New(sync, store),
		params: workflows.Params{
			Synchronizer: "tsynctest",
			LoopInterval: time.Minute,
			Retry:        workflows.RetryParams{Initial: time.Minute, Max: time.Hour, Coefficient: 2},
			StepTimeout:  time.Minute,
		},
	}
}

// Insert stores new objects, as any writer of the data model would.
func (e *Env) Insert(objs ...models.Object) {
	e.t.Helper()
	for _, obj := range objs {
		if err := e.Store.Insert(context.Background(), obj); err != nil {
			e.t.Fatalf("tsynctest: %v", err)
		}
	}
}

// Save writes obj's changed content, as any writer of the data model would.
func (e *Env) Save(obj models.Object) {
	e.t.Helper()
	if err := e.Store.Save(context.Background(), obj); err != nil {
		e.t.Fatalf("tsynctest: %v", err)
	}
}

// Sync runs obj's sync workflow, as the starter would start it, until its
// first outcome: the objects it depends on are synced first (by child
// workflows), then its model policies and its step run once. A failed or
// deferred step is not retried: its state is the result. obj itself is not
// changed; the result is read from the database.
func (e *Env) Sync(obj models.Object) Result {
	e.t.Helper()
	return e.run(engine.OpSync, obj)
}

// Delete marks obj deleted (as the store's Delete does) and runs its delete
// workflow until its first outcome: DeleteRecord, when a sync was ever
// attempted, then the row is purged (Result.Purged). A failed DeleteRecord
// leaves the row, with the error.
func (e *Env) Delete(obj models.Object) Result {
	e.t.Helper()
	ref := e.ref(obj)
	if err := e.Store.Delete(context.Background(), ref.Model, ref.ID); err != nil {
		e.t.Fatalf("tsynctest: %v", err)
	}
	return e.run(engine.OpDelete, obj)
}

func (e *Env) ref(obj models.Object) models.Ref {
	e.t.Helper()
	m, err := e.sync.Graph.ModelOf(obj)
	if err != nil {
		e.t.Fatalf("tsynctest: %v", err)
	}
	if obj.SyncState().ID == 0 {
		e.t.Fatalf("tsynctest: %s has no id: Insert it first", m.Name)
	}
	return models.Ref{Model: m.Name, ID: obj.SyncState().ID}
}

// run runs op's workflow for obj and stops it before it would try again:
// retries and deferrals wait at least a minute of the environment's
// skipped time, and the run is cancelled after 30 seconds of it.
func (e *Env) run(op engine.Op, obj models.Object) Result {
	e.t.Helper()
	ref := e.ref(obj)
	env := e.suite.NewTestWorkflowEnvironment()
	workflows.Register(env)
	env.RegisterActivity(e.acts)
	env.RegisterDelayedCallback(env.CancelWorkflow, 30*time.Second)
	env.ExecuteWorkflow(workflows.WorkflowOf(op), workflows.Request{Object: ref, Params: e.params})
	if !env.IsWorkflowCompleted() {
		e.t.Fatalf("tsynctest: %s workflow of %s did not complete", op, ref)
	}
	return e.result(ref)
}

func (e *Env) result(ref models.Ref) Result {
	e.t.Helper()
	obj, err := e.Store.Get(context.Background(), ref.Model, ref.ID)
	if errors.Is(err, models.ErrNotFound) {
		return Result{Purged: true}
	}
	if err != nil {
		e.t.Fatalf("tsynctest: %v", err)
	}
	b := obj.SyncState()
	return Result{Code: b.BackendCode, Status: b.BackendStatus, Enacted: b.Enacted, Updated: b.Updated}
}

// String formats the result for test messages.
func (r Result) String() string {
	if r.Purged {
		return "purged"
	}
	return fmt.Sprintf("code %d, status %q", r.Code, r.Status)
}

// Check validates s as opening it would, without any service: models and
// links, that every step, watcher and policy is of a registered model and
// no model has two steps, watcher names and watched sets. It returns the
// first problem, as app.Open would report it.
func Check(s tsync.Synchronizer) error {
	_, err := engine.Compile(s)
	return err
}
