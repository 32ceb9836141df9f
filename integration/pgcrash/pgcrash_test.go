// Package pgcrash crashes PostgreSQL itself under a running synchronizer: a
// private server (pginstance) holds the models, is killed with SIGKILL
// (postmaster and backends) while steps run and objects are inserted and
// deleted, and restarts after a few seconds (crash recovery). Every object
// must end in sync or purged, with no step repeated for the same content
// except calls the outage cut short, and no process may exit.
//
// With PGCRASH_LOGS set, the tests log the processes' logs even when they
// pass.
package pgcrash

import (
	"context"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync"
	"github.com/tsync/tsync/app"
	"github.com/tsync/tsync/config"
	"github.com/tsync/tsync/internal/testenv"
	"github.com/tsync/tsync/internal/testenv/pginstance"
	"github.com/tsync/tsync/internal/testmodels"
	"github.com/tsync/tsync/models"
)

// temporalServer is the dev server of this package's tests.
var temporalServer *testenv.Temporal

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, &temporalServer, false))
}

// registry is the models of these tests (testmodels.ChainDiamond).
func registry() *models.Registry { return testmodels.Registry(testmodels.ChainDiamond()...) }

// env is one test's synchronizer on a private PostgreSQL.
type env struct {
	t   *testing.T
	ctx context.Context
	pg  *pginstance.Instance
	cfg config.Config
	rec *testmodels.Recorder
	// inflight is the number of step calls running.
	inflight atomic.Int32
	// store is the test's own store (its own pool), to insert and check.
	store *models.Store
}

func newEnv(t *testing.T) *env {
	t.Helper()
	pg := pginstance.Start(t)
	cfg := testenv.Config(t, temporalServer.HostPort(), "public")
	cfg.DatabaseURL = pg.URL()
	cfg.Concurrency.Activities = 20
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	e := &env{t: t, ctx: ctx, pg: pg, cfg: cfg, rec: testmodels.NewRecorder(testmodels.ChainDiamond()...)}
	// Each step takes 50 to 150 ms, or until it is cancelled.
	e.rec.SetHook(func(ctx context.Context, _ string, _ models.Ref, _ models.Object) error {
		e.inflight.Add(1)
		defer e.inflight.Add(-1)
		select {
		case <-time.After(time.Duration(50+mrand.IntN(101)) * time.Millisecond):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	return e
}

// build is the synchronizer of the tests: the recorder for every model.
func (e *env) build(*models.Store) (tsync.Synchronizer, error) {
	return tsync.Synchronizer{Models: registry(), Steps: []tsync.Step{e.rec}}, nil
}

// openStore opens the test's own store, migrating the schema.
func (e *env) openStore() {
	e.t.Helper()
	a, err := app.OpenStore(e.ctx, e.cfg, registry(), e.build, true, nil)
	require.NoError(e.t, err)
	e.t.Cleanup(a.Close)
	e.store = a.Store
}

// process is a long-running process of the synchronizer (worker, starter
// or both) in this test process: its own app, pool and log.
type process struct {
	name string
	log  *testenv.SyncBuffer
	// opened is closed once the app is open; done once run has returned.
	opened, done chan struct{}
	err          error
}

// start opens an app and runs run on it, as a process would, until the
// test ends. The app waits for the database if it is down.
func (e *env) start(name string, run func(*app.App, context.Context) error) *process {
	p := &process{name: name, log: &testenv.SyncBuffer{}, opened: make(chan struct{}), done: make(chan struct{})}
	ctx, cancel := context.WithCancel(e.ctx)
	log := slog.New(slog.NewTextHandler(p.log, &slog.HandlerOptions{Level: slog.LevelInfo})).With("process", name)
	go func() {
		defer close(p.done)
		a, err := app.OpenWithStore(ctx, e.cfg, registry(), e.build, log)
		if err != nil {
			p.err = fmt.Errorf("open: %w", err)
			return
		}
		defer a.Close()
		close(p.opened)
		p.err = run(a, ctx)
	}()
	e.t.Cleanup(func() {
		cancel()
		<-p.done
		if e.t.Failed() || os.Getenv("PGCRASH_LOGS") != "" {
			e.t.Logf("log of %s:\n%s", name, p.log)
		}
	})
	return p
}

// running fails the test if p has returned.
func (p *process) running(t *testing.T) {
	t.Helper()
	select {
	case <-p.done:
		t.Fatalf("%s exited: %v", p.name, p.err)
	default:
	}
}

// insert inserts obj and returns its reference.
func (e *env) insert(obj models.Object) models.Ref {
	e.t.Helper()
	require.NoError(e.t, e.store.Insert(e.ctx, obj))
	return testmodels.RefOf(obj)
}

// insertTree inserts sites sites, each with slices slices of instances
// instances, and returns the instances.
func (e *env) insertTree(sites, slices, instances int) (all, leaves []models.Ref) {
	e.t.Helper()
	for s := range sites {
		site := e.insert(&testmodels.Site{Name: fmt.Sprintf("site-%d", s)})
		all = append(all, site)
		for l := range slices {
			slice := e.insert(&testmodels.Slice{Name: fmt.Sprintf("slice-%d-%d", s, l), SiteID: site.ID})
			all = append(all, slice)
			for i := range instances {
				inst := e.insert(&testmodels.Instance{Name: fmt.Sprintf("inst-%d-%d-%d", s, l, i), SliceID: slice.ID})
				all, leaves = append(all, inst), append(leaves, inst)
			}
		}
	}
	return all, leaves
}

// churn inserts Items, renames and soft-deletes Instances and Items every
// tick until ctx is done, whether or not the database answers, and returns
// through the channel the objects it tried to delete (deleted or not: the
// final check reads the database).
func (e *env) churn(ctx context.Context, leaves []models.Ref) <-chan map[models.Ref]bool {
	out := make(chan map[models.Ref]bool, 1)
	go func() {
		deleted := map[models.Ref]bool{}
		defer func() { out <- deleted }()
		pool := append([]models.Ref(nil), leaves...)
		ticker := time.NewTicker(40 * time.Millisecond)
		defer ticker.Stop()
		for n := 0; ; n++ {
			select {
			case <-ctx.Done():
				return
			case <-ticker.C:
			}
			octx, cancel := context.WithTimeout(ctx, time.Second)
			item := &testmodels.Item{Name: fmt.Sprintf("churn-%d", n)}
			if err := e.store.Insert(octx, item); err == nil {
				pool = append(pool, testmodels.RefOf(item))
			}
			i := mrand.IntN(len(pool))
			ref := pool[i]
			if n%3 == 0 {
				pool = append(pool[:i], pool[i+1:]...)
				deleted[ref] = true
				_ = e.store.Delete(octx, ref.Model, ref.ID)
			} else if obj, err := e.store.Get(octx, ref.Model, ref.ID); err == nil {
				if inst, ok := obj.(*testmodels.Instance); ok {
					inst.Name += "'"
					_ = e.store.Save(octx, inst)
				}
			}
			cancel()
		}
	}()
	return out
}
