package watchers_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/workflowservice/v1"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/tsync/tsync"
	"github.com/tsync/tsync/app"
	"github.com/tsync/tsync/config"
	"github.com/tsync/tsync/internal/engine"
	"github.com/tsync/tsync/internal/outbox"
	"github.com/tsync/tsync/internal/testenv"
	"github.com/tsync/tsync/internal/testmodels"
	"github.com/tsync/tsync/internal/watchers"
	"github.com/tsync/tsync/models"
	"github.com/tsync/tsync/worker"
)

// temporalServer is the dev server of this package's tests.
var temporalServer *testenv.Temporal

func TestMain(m *testing.M) {
	flag.Parse()
	// Fuzzing (make fuzz) needs no dev server.
	fuzzing := flag.Lookup("test.fuzz") != nil && flag.Lookup("test.fuzz").Value.String() != ""
	os.Exit(testenv.Main(m, &temporalServer, fuzzing))
}

// redisURL is the test Redis: TSYNC_TEST_REDIS_URL, or the local one.
func redisURL() string {
	if u := os.Getenv("TSYNC_TEST_REDIS_URL"); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379/0"
}

// registry is the models of these tests (testmodels.ChainNetwork): the
// chain Site <- Slice <- Instance, and a Network of each site that instances
// attach to (the link into its cidr).
func registry() *models.Registry { return testmodels.Registry(testmodels.ChainNetwork()...) }

// Call is one handler call seen by a Recorder.
type Call struct {
	Watcher string
	Object  models.Ref
	Event   tsync.WatchEvent
	Err     error
}

// key identifies a (watcher, object, change).
func (c Call) key() string { return fmt.Sprintf("%s %s %s", c.Watcher, c.Object, c.Event.ID) }

// Recorder records the calls of the watchers it makes.
type Recorder struct {
	mu    sync.Mutex
	calls []Call
	// fail, when set, decides a call's error.
	fail  func(c Call, attempt int) error
	tries map[string]int
}

func newRecorder() *Recorder { return &Recorder{tries: map[string]int{}} }

// Watcher returns a watcher of Instance named name.
func (r *Recorder) Watcher(name string, degree int, watched ...models.Link) tsync.Watcher {
	return tsync.WatcherOf[testmodels.Instance](tsync.WatcherFuncs[testmodels.Instance]{
		Name: name, Degree: degree, Links: watched,
		Handle: func(_ context.Context, i *testmodels.Instance, ev tsync.WatchEvent) error {
			c := Call{Watcher: name, Object: testmodels.RefOf(i), Event: ev}
			r.mu.Lock()
			defer r.mu.Unlock()
			r.tries[c.key()]++
			if r.fail != nil {
				c.Err = r.fail(c, r.tries[c.key()])
			}
			r.calls = append(r.calls, c)
			return c.Err
		},
	})
}

func (r *Recorder) setFail(f func(c Call, attempt int) error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fail = f
}

// Calls returns the calls that succeeded.
func (r *Recorder) Calls() []Call {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Call
	for _, c := range r.calls {
		if c.Err == nil {
			out = append(out, c)
		}
	}
	return out
}

// Attempts returns every call, failed or not.
func (r *Recorder) Attempts() []Call {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

// Summary lists "watcher Instance id <- Model op" for every successful call,
// sorted, to compare with what a test expects.
func (r *Recorder) Summary() []string {
	var out []string
	for _, c := range r.Calls() {
		out = append(out, fmt.Sprintf("%s %d <- %s %d %s", c.Watcher, c.Object.ID, c.Event.Changed.Model, c.Event.Changed.ID, c.Event.Op))
	}
	slices.Sort(out)
	return out
}

// env is one test's synchronizer with watchers on the real services.
type env struct {
	t   *testing.T
	ctx context.Context
	cfg config.Config
	app *app.App
	rdb *redis.Client
	rec *Recorder
	// sync is the synchronizer the app runs, compiled.
	sync *engine.Synchronizer
}

// newEnv opens an app with watchers enabled, its own schema, task queue,
// stream and group. The synchronizer's watchers come from makeWatchers(rec).
func newEnv(t *testing.T, steps []tsync.Step, makeWatchers func(*Recorder) []tsync.Watcher, mutate ...func(*config.Config)) *env {
	t.Helper()
	_, schema := testenv.Schema(t)
	cfg := testenv.Config(t, temporalServer.HostPort(), schema)
	cfg.ObserverEnableWatchers = true
	cfg.RedisURL = redisURL()
	for _, m := range mutate {
		m(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	rec := newRecorder()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	s := tsync.Synchronizer{Models: registry(), Steps: steps, Watchers: makeWatchers(rec)}
	compiled, err := engine.Compile(s)
	require.NoError(t, err)
	a, err := app.Open(ctx, cfg, s, log)
	require.NoError(t, err)
	t.Cleanup(a.Close)
	e := &env{t: t, ctx: ctx, cfg: cfg, app: a, rdb: a.Redis, rec: rec, sync: compiled}
	if e.rdb != nil {
		t.Cleanup(func() {
			_ = e.rdb.Del(context.Background(), e.stream(), watchers.DeadLetterName(e.stream())).Err()
		})
	}
	return e
}

func (e *env) stream() string { return e.app.Stream() }

// startWorker runs an in-process worker with the watcher workflows.
func (e *env) startWorker() sdkworker.Worker {
	e.t.Helper()
	w, err := worker.New(e.app.Client, worker.Options{
		TaskQueue: e.cfg.Temporal.TaskQueue, StopTimeout: time.Second, Watchers: watchers.NewActivities(e.sync, e.app.Store),
	}, e.app.Activities())
	require.NoError(e.t, err)
	require.NoError(e.t, w.Start())
	e.t.Cleanup(w.Stop)
	return w
}

// startRelay runs a relay of the outbox until the test ends.
func (e *env) startRelay(opts watchers.RelayOptions) *watchers.Relay {
	opts.Stream = e.stream()
	if opts.Interval == 0 {
		opts.Interval = 100 * time.Millisecond
	}
	r := watchers.NewRelay(e.app.Store, e.rdb, opts)
	e.run("relay", r.Run)
	return r
}

// newDispatcher returns a dispatcher of the test's stream and group.
func (e *env) newDispatcher(mutate func(*watchers.Options)) *watchers.Dispatcher {
	e.t.Helper()
	opts := watchers.Options{
		Stream:        e.stream(),
		Group:         e.cfg.ObserverName,
		TaskQueue:     e.cfg.Temporal.TaskQueue,
		Params:        e.app.Params(),
		Block:         100 * time.Millisecond,
		ClaimMinIdle:  500 * time.Millisecond,
		SweepInterval: 100 * time.Millisecond,
		Linger:        3 * time.Second,
	}
	if mutate != nil {
		mutate(&opts)
	}
	d, err := watchers.NewDispatcher(e.rdb, e.app.Client, e.sync, e.app.Store, opts)
	require.NoError(e.t, err)
	return d
}

// run runs fn until the test ends, and returns a channel with its result.
func (e *env) run(name string, fn func(context.Context) error) <-chan error {
	ctx, cancel := context.WithCancel(e.ctx)
	result := make(chan error, 1)
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		err := fn(ctx)
		if err != nil && ctx.Err() == nil && !errors.Is(err, errCrash) {
			e.t.Logf("%s: %v", name, err)
		}
		result <- err
	}()
	e.t.Cleanup(func() {
		cancel()
		select {
		case <-stopped:
		case <-time.After(10 * time.Second):
			e.t.Errorf("%s did not stop", name)
		}
	})
	return result
}

func (e *env) insert(obj models.Object) int64 {
	e.t.Helper()
	require.NoError(e.t, e.app.Store.Insert(e.ctx, obj))
	return obj.SyncState().ID
}

func (e *env) save(obj models.Object) {
	e.t.Helper()
	require.NoError(e.t, e.app.Store.Save(e.ctx, obj))
}

// discardOutbox drops the changes made so far (the fixtures), so that a
// test sees only the changes it makes afterwards.
func (e *env) discardOutbox() {
	e.t.Helper()
	_, err := e.app.Store.Pool().Exec(e.ctx, `DELETE FROM `+pgx.Identifier{e.app.Store.Schema(), models.OutboxTable}.Sanitize())
	require.NoError(e.t, err)
}

// settled waits until the outbox is empty and the group has read and
// acknowledged every event of the stream, and no watcher workflow of the
// test runs; then it waits a little more for stragglers.
func (e *env) settled(timeout time.Duration) {
	e.t.Helper()
	require.Eventually(e.t, func() bool {
		n, err := outbox.New(e.app.Store).Len(e.ctx)
		if err != nil || n > 0 {
			return false
		}
		groups, err := e.rdb.XInfoGroups(e.ctx, e.stream()).Result()
		if err != nil {
			return false
		}
		for _, g := range groups {
			if g.Name == e.cfg.ObserverName {
				return g.Pending == 0 && g.Lag == 0 && e.running() == 0
			}
		}
		return false
	}, timeout, 50*time.Millisecond, "events not all handled")
	time.Sleep(300 * time.Millisecond)
}

// running counts the test's running watcher workflows.
func (e *env) running() int {
	resp, err := e.app.Client.CountWorkflow(e.ctx, &workflowservice.CountWorkflowExecutionsRequest{
		Namespace: e.cfg.Temporal.Namespace,
		Query:     fmt.Sprintf(`TaskQueue = %q AND ExecutionStatus = "Running"`, e.cfg.Temporal.TaskQueue),
	})
	if err != nil {
		return -1
	}
	return int(resp.GetCount())
}

// pending returns the number of events delivered to the group and not
// acknowledged.
func (e *env) pending() int64 {
	e.t.Helper()
	p, err := e.rdb.XPending(e.ctx, e.stream(), e.cfg.ObserverName).Result()
	require.NoError(e.t, err)
	return p.Count
}

// fixture is a site with two slices and a network; instances 1 and 2 are
// in slice 1, instance 3 in slice 2, all on the network; and an unrelated
// site with its own slice, network and instance.
type fixture struct {
	site, otherSite        *testmodels.Site
	slice1, slice2, slice3 *testmodels.Slice
	net, otherNet          *testmodels.Network
	inst                   []*testmodels.Instance // ids in order: 1, 2, 3, other
}

func (e *env) fixture() *fixture {
	e.t.Helper()
	f := &fixture{site: &testmodels.Site{Name: "site"}, otherSite: &testmodels.Site{Name: "other"}}
	e.insert(f.site)
	e.insert(f.otherSite)
	f.slice1 = &testmodels.Slice{Name: "slice1", SiteID: f.site.ID}
	f.slice2 = &testmodels.Slice{Name: "slice2", SiteID: f.site.ID}
	f.slice3 = &testmodels.Slice{Name: "slice3", SiteID: f.otherSite.ID}
	f.net = &testmodels.Network{Name: "net", CIDR: "10.0.0.0/24", SiteID: f.site.ID}
	f.otherNet = &testmodels.Network{Name: "other-net", CIDR: "10.9.0.0/24", SiteID: f.otherSite.ID}
	for _, o := range []models.Object{f.slice1, f.slice2, f.slice3, f.net, f.otherNet} {
		e.insert(o)
	}
	for _, i := range []*testmodels.Instance{
		{Name: "i1", SliceID: f.slice1.ID, NetworkID: f.net.ID},
		{Name: "i2", SliceID: f.slice1.ID, NetworkID: f.net.ID},
		{Name: "i3", SliceID: f.slice2.ID, NetworkID: f.net.ID},
		{Name: "other", SliceID: f.slice3.ID, NetworkID: f.otherNet.ID},
	} {
		e.insert(i)
		f.inst = append(f.inst, i)
	}
	return f
}
