package watchers_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/tsync/tsync"
	"github.com/tsync/tsync/app"
	"github.com/tsync/tsync/config"
	"github.com/tsync/tsync/internal/engine"
	"github.com/tsync/tsync/internal/outbox"
	"github.com/tsync/tsync/internal/testenv"
	"github.com/tsync/tsync/internal/testmodels"
	"github.com/tsync/tsync/internal/watchers"
	"github.com/tsync/tsync/models"
)

func TestCompileWatchers(t *testing.T) {
	rec := newRecorder()
	compile := func(ws ...tsync.Watcher) error {
		_, err := engine.Compile(tsync.Synchronizer{Models: registry(), Watchers: ws})
		return err
	}
	require.NoError(t, compile(rec.Watcher("a", 1), rec.Watcher("b", 2)))
	require.ErrorContains(t, compile(rec.Watcher("a", 1), rec.Watcher("a", 2)), `two watchers are named "a" (give each a Name)`)
	require.ErrorContains(t, compile(nil), "watcher 0 is nil")
	require.ErrorContains(t, compile(rec.Watcher("a/b", 1)), `name "a/b" must match`)
	require.ErrorContains(t, compile(rec.Watcher("w", 0, models.Link{Dest: "Nope"})), `synchronizer: watcher w: watches unknown model "Nope"`)
	require.ErrorContains(t, compile(rec.Watcher("w", -1)), "synchronizer: watcher w: WatchDegree -1 is negative")
	type Nope struct{ models.Base }
	require.ErrorContains(t, compile(tsync.WatcherOf[Nope](tsync.WatcherFuncs[Nope]{Degree: 1})), `type watchers_test.Nope is not a registered model`)

	c, err := engine.Compile(tsync.Synchronizer{Models: registry(), Watchers: []tsync.Watcher{
		rec.Watcher("deg0", 0), rec.Watcher("deg1", 1), rec.Watcher("deg2", 2),
		rec.Watcher("explicit", 2, models.Link{Dest: "Network", Via: "network_id"}),
		tsync.WatcherOf[testmodels.Slice](tsync.WatcherFuncs[testmodels.Slice]{Degree: 1}),
	}})
	require.NoError(t, err)
	watched := map[string][]string{}
	for _, w := range c.Watchers() {
		watched[w.Name] = w.WatchedModels()
	}
	require.Equal(t, map[string][]string{
		"deg0":     nil,
		"deg1":     {"Network", "Slice"},
		"deg2":     {"Network", "Site", "Slice"},
		"explicit": {"Network"},
		"Slice":    {"Site"}, // a typed watcher without a Name is named after its model
	}, watched)
	_, ok := c.Watcher("deg1")
	require.True(t, ok)
}

// startAll runs a worker, a relay and a dispatcher for e.
func (e *env) startAll() *watchers.Dispatcher {
	e.startWorker()
	e.startRelay(watchers.RelayOptions{})
	d := e.newDispatcher(nil)
	e.run("dispatcher", d.Run)
	return d
}

// requireOncePerChange fails when a (watcher, object, change) was handled
// more than once.
func requireOncePerChange(t *testing.T, rec *Recorder) {
	t.Helper()
	seen := map[string]int{}
	for _, c := range rec.Calls() {
		seen[c.key()]++
	}
	for k, n := range seen {
		require.Equal(t, 1, n, "handled %d times: %s", n, k)
	}
}

func TestDegreeWatchedSets(t *testing.T) {
	e := newEnv(t, nil, func(r *Recorder) []tsync.Watcher {
		return []tsync.Watcher{r.Watcher("deg0", 0), r.Watcher("deg1", 1), r.Watcher("deg2", 2)}
	})
	f := e.fixture()
	e.discardOutbox()
	e.startAll()
	i1, i2, i3 := f.inst[0].ID, f.inst[1].ID, f.inst[2].ID

	f.slice1.Name = "slice1b"
	e.save(f.slice1) // deg1, deg2: i1, i2
	f.site.Name = "site-b"
	e.save(f.site) // deg2: i1, i2, i3 (through the slices and the network, each once)
	f.net.Name = "net-b"
	e.save(f.net) // nothing: the links into Network are into its cidr
	f.net.CIDR = "10.0.1.0/24"
	e.save(f.net) // deg1, deg2: i1, i2, i3
	f.otherSite.Name = "x"
	e.save(f.otherSite) // deg2: the other instance only
	e.settled(30 * time.Second)

	want := []string{
		fmt.Sprintf("deg1 %d <- Slice %d update", i1, f.slice1.ID),
		fmt.Sprintf("deg1 %d <- Slice %d update", i2, f.slice1.ID),
		fmt.Sprintf("deg2 %d <- Slice %d update", i1, f.slice1.ID),
		fmt.Sprintf("deg2 %d <- Slice %d update", i2, f.slice1.ID),
		fmt.Sprintf("deg2 %d <- Site %d update", i1, f.site.ID),
		fmt.Sprintf("deg2 %d <- Site %d update", i2, f.site.ID),
		fmt.Sprintf("deg2 %d <- Site %d update", i3, f.site.ID),
		fmt.Sprintf("deg1 %d <- Network %d update", i1, f.net.ID),
		fmt.Sprintf("deg1 %d <- Network %d update", i2, f.net.ID),
		fmt.Sprintf("deg1 %d <- Network %d update", i3, f.net.ID),
		fmt.Sprintf("deg2 %d <- Network %d update", i1, f.net.ID),
		fmt.Sprintf("deg2 %d <- Network %d update", i2, f.net.ID),
		fmt.Sprintf("deg2 %d <- Network %d update", i3, f.net.ID),
		fmt.Sprintf("deg2 %d <- Site %d update", f.inst[3].ID, f.otherSite.ID),
	}
	slices.Sort(want)
	require.Equal(t, want, e.rec.Summary())
	requireOncePerChange(t, e.rec)
	for _, c := range e.rec.Calls() {
		if c.Event.Changed.Model == "Network" {
			require.Equal(t, []string{"cidr"}, c.Event.Fields)
		}
	}
}

func TestExplicitWatchedOverridesDegree(t *testing.T) {
	e := newEnv(t, nil, func(r *Recorder) []tsync.Watcher {
		return []tsync.Watcher{
			// Degree 2 would watch Slice, Network and Site: the explicit link wins.
			r.Watcher("net", 2, models.Link{Dest: "Network", Via: "network_id"}),
			// No Via: every path to Site, into its name.
			r.Watcher("site", 0, models.Link{Dest: "Site", Into: "name"}),
		}
	})
	f := e.fixture()
	e.discardOutbox()
	e.startAll()
	i1, i2, i3 := f.inst[0].ID, f.inst[1].ID, f.inst[2].ID

	f.slice1.Name = "slice1b"
	e.save(f.slice1) // nothing
	f.net.Name = "net-b"
	e.save(f.net) // net: i1, i2, i3 (no Into: any column)
	f.site.Name = "site-b"
	e.save(f.site) // site: i1, i2, i3
	e.settled(30 * time.Second)

	want := []string{
		fmt.Sprintf("net %d <- Network %d update", i1, f.net.ID),
		fmt.Sprintf("net %d <- Network %d update", i2, f.net.ID),
		fmt.Sprintf("net %d <- Network %d update", i3, f.net.ID),
		fmt.Sprintf("site %d <- Site %d update", i1, f.site.ID),
		fmt.Sprintf("site %d <- Site %d update", i2, f.site.ID),
		fmt.Sprintf("site %d <- Site %d update", i3, f.site.ID),
	}
	slices.Sort(want)
	require.Equal(t, want, e.rec.Summary())
	requireOncePerChange(t, e.rec)
}

func TestIntoFiresOnlyWhenThatFieldChanged(t *testing.T) {
	e := newEnv(t, nil, func(r *Recorder) []tsync.Watcher {
		return []tsync.Watcher{r.Watcher("cidr", 0, models.Link{Dest: "Network", Via: "network_id", Into: "cidr"})}
	})
	f := e.fixture()
	e.discardOutbox()
	e.startAll()

	f.net.Name = "net-b"
	e.save(f.net) // not the cidr: nothing
	e.settled(30 * time.Second)
	require.Empty(t, e.rec.Calls())

	f.net.CIDR = "10.0.2.0/24"
	e.save(f.net)
	e.settled(30 * time.Second)
	calls := e.rec.Calls()
	require.Len(t, calls, 3)
	for _, c := range calls {
		require.Equal(t, []string{"cidr"}, c.Event.Fields)
		require.Equal(t, models.Ref{Model: "Network", ID: f.net.ID}, c.Event.Changed)
	}

	f.net.Name, f.net.CIDR = "net-c", "10.0.3.0/24"
	e.save(f.net)
	e.settled(30 * time.Second)
	require.Len(t, e.rec.Calls(), 6)
	require.ElementsMatch(t, []string{"name", "cidr"}, e.rec.Calls()[5].Event.Fields)

	// A delete fires whatever the Into; deleted instances are skipped.
	require.NoError(t, e.app.Store.Delete(e.ctx, "Instance", f.inst[2].ID))
	require.NoError(t, e.app.Store.Delete(e.ctx, "Network", f.net.ID))
	e.settled(30 * time.Second)
	var deletes []int64
	for _, c := range e.rec.Calls() {
		if c.Event.Op == "delete" {
			deletes = append(deletes, c.Object.ID)
		}
	}
	slices.Sort(deletes)
	require.Equal(t, []int64{f.inst[0].ID, f.inst[1].ID}, deletes)
	requireOncePerChange(t, e.rec)
}

var errCrash = errors.New("killed")

// A dispatcher killed after reading events (before starting their
// workflows, or after starting them and before acknowledging) loses none:
// another dispatcher claims them, and each handler runs once per change.
func TestDispatcherKilledBetweenReadAndAck(t *testing.T) {
	for _, where := range []string{"after read", "before ack"} {
		t.Run(where, func(t *testing.T) {
			e := newEnv(t, nil, func(r *Recorder) []tsync.Watcher { return []tsync.Watcher{r.Watcher("w", 1)} })
			f := e.fixture()
			e.discardOutbox()
			e.startWorker()
			e.startRelay(watchers.RelayOptions{})
			const changes = 10
			for i := range changes {
				f.slice1.Name = fmt.Sprintf("slice1-%d", i)
				e.save(f.slice1)
			}
			require.Eventually(t, func() bool {
				c, err := outbox.New(e.app.Store).Counts(e.ctx)
				return err == nil && c == outbox.Counts{Published: changes}
			}, 10*time.Second, 20*time.Millisecond, "all published, none handled")

			crash := func([]string) error { return errCrash }
			a := e.newDispatcher(func(o *watchers.Options) {
				o.Consumer = "a"
				if where == "after read" {
					o.Hooks.AfterRead = crash
				} else {
					o.Hooks.BeforeAck = crash
				}
			})
			select {
			case err := <-e.run("dispatcher a", a.Run):
				require.ErrorIs(t, err, errCrash)
			case <-time.After(20 * time.Second):
				t.Fatal("dispatcher a did not crash")
			}
			require.EqualValues(t, changes, a.Stats().Read)
			require.Zero(t, a.Stats().Acked)
			require.EqualValues(t, changes, e.pending(), "the events read stay pending")
			if where == "before ack" {
				require.EqualValues(t, 2*changes, a.Stats().Started)
			} else {
				require.Zero(t, a.Stats().Started)
			}

			b := e.newDispatcher(func(o *watchers.Options) { o.Consumer = "b" })
			e.run("dispatcher b", b.Run)
			e.settled(30 * time.Second)
			require.Len(t, e.rec.Calls(), 2*changes)
			requireOncePerChange(t, e.rec)
			stats := b.Stats()
			require.EqualValues(t, changes, stats.Acked)
			// b gives every change again; after "before ack" the workflows
			// had them from a, and skip them.
			require.EqualValues(t, 2*changes, stats.Started)
			require.Zero(t, e.pending())
		})
	}
}

// A relay that dies after adding events to the stream and before deleting
// them from the outbox publishes them again; the handlers still run once
// per change.
func TestRelayKilledAfterPublishRunsHandlersOnce(t *testing.T) {
	e := newEnv(t, nil, func(r *Recorder) []tsync.Watcher { return []tsync.Watcher{r.Watcher("w", 1)} })
	f := e.fixture()
	e.discardOutbox()
	e.startWorker()
	var once sync.Once
	relay := e.startRelay(watchers.RelayOptions{AfterPublish: func(es []outbox.Entry) error {
		err := error(nil)
		once.Do(func() { err = errCrash })
		return err
	}})
	d := e.newDispatcher(nil)
	e.run("dispatcher", d.Run)
	const changes = 3
	for i := range changes {
		f.slice1.Name = fmt.Sprintf("slice1-%d", i)
		e.save(f.slice1)
	}
	e.settled(30 * time.Second)
	require.Greater(t, relay.Published(), int64(changes), "some events were published twice")
	require.Len(t, e.rec.Calls(), 2*changes)
	requireOncePerChange(t, e.rec)
	require.Greater(t, d.Stats().Started, int64(2*changes), "changes given twice, handled once")
}

func TestBurstOf1000Events(t *testing.T) {
	e := newEnv(t, nil, func(r *Recorder) []tsync.Watcher {
		return []tsync.Watcher{r.Watcher("cidr", 0, models.Link{Dest: "Network", Via: "network_id", Into: "cidr"})}
	})
	site := &testmodels.Site{Name: "s"}
	e.insert(site)
	slice := &testmodels.Slice{Name: "s", SiteID: site.ID}
	e.insert(slice)
	const networks, rounds = 100, 10
	const total = networks * rounds
	var nets []*testmodels.Network
	for n := range networks {
		net := &testmodels.Network{Name: fmt.Sprint(n), CIDR: "10.0.0.0/24", SiteID: site.ID}
		e.insert(net)
		nets = append(nets, net)
		e.insert(&testmodels.Instance{Name: fmt.Sprint(n), SliceID: slice.ID, NetworkID: net.ID})
	}
	e.discardOutbox()
	e.startWorker()
	e.startRelay(watchers.RelayOptions{})
	d := e.newDispatcher(func(o *watchers.Options) { o.Concurrency, o.BatchSize = 32, 200 })
	e.run("dispatcher", d.Run)

	begin := time.Now()
	var wg sync.WaitGroup
	for w := range 10 {
		wg.Go(func() {
			for r := range rounds {
				for n := w; n < networks; n += 10 {
					net := *nets[n]
					net.CIDR = fmt.Sprintf("10.%d.%d.0/24", r+1, n)
					if err := e.app.Store.Save(e.ctx, &net); err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	written := time.Since(begin)
	var started time.Duration
	require.Eventually(t, func() bool {
		if started == 0 && d.Stats().Started >= total {
			started = time.Since(begin)
		}
		return len(e.rec.Calls()) >= total
	}, 3*time.Minute, 50*time.Millisecond, "handled %d of %d", len(e.rec.Calls()), total)
	handled := time.Since(begin)
	t.Logf("burst: %d changes committed in %s; their %d watcher workflows started within %s and all handled within %s of the first change: %.0f events/s end to end",
		total, written.Round(time.Millisecond), total, started.Round(time.Millisecond), handled.Round(time.Millisecond), float64(total)/handled.Seconds())
	e.settled(time.Minute)
	require.Len(t, e.rec.Calls(), total)
	requireOncePerChange(t, e.rec)
	perObject := map[int64]int{}
	for _, c := range e.rec.Calls() {
		perObject[c.Object.ID]++
	}
	require.Len(t, perObject, networks)
	for id, n := range perObject {
		require.Equal(t, rounds, n, "instance %d", id)
	}
	st := d.Stats()
	require.EqualValues(t, total, st.Acked)
	require.EqualValues(t, total, st.Started)
	require.Zero(t, st.DeadLettered)

	// Every event is acknowledged: a sweep trims the stream to nothing.
	require.NoError(t, d.Sweep(e.ctx))
	n, err := e.rdb.XLen(e.ctx, e.stream()).Result()
	require.NoError(t, err)
	require.Zero(t, n)
}

func TestMalformedEventsGoToDeadLetter(t *testing.T) {
	e := newEnv(t, nil, func(r *Recorder) []tsync.Watcher { return []tsync.Watcher{r.Watcher("w", 1)} })
	f := e.fixture()
	e.discardOutbox()
	d := e.startAll()

	bad := []map[string]any{
		{watchers.FieldChange: `{"model": "Slice", "id": 1, "op": "upd`},
		{watchers.FieldChange: `{"model": "Nope", "id": 1, "op": "update"}`},
		{watchers.FieldChange: `{"model": "Slice", "op": "update"}`},
		{watchers.FieldChange: `{"id": 1, "op": "update"}`},
		{watchers.FieldChange: `{"model": "Slice", "id": 1, "op": "rename"}`},
		{"something": "else"},
		{watchers.FieldEvent: "not/an id", watchers.FieldChange: `{"model": "Slice", "id": 1, "op": "update"}`},
	}
	reasons := []string{"bad JSON", `unknown model "Nope"`, "missing or bad id (0)", "no model", `unknown operation "rename"`, `no "change" field`, `bad event id "not/an id"`}
	for _, v := range bad {
		require.NoError(t, e.rdb.XAdd(e.ctx, &redis.XAddArgs{Stream: e.stream(), Values: v}).Err())
	}
	// Processing goes on: a good event after them is handled.
	f.slice1.Name = "slice1b"
	e.save(f.slice1)
	e.settled(30 * time.Second)
	require.Len(t, e.rec.Calls(), 2)

	dead, err := e.rdb.XRange(e.ctx, watchers.DeadLetterName(e.stream()), "-", "+").Result()
	require.NoError(t, err)
	require.Len(t, dead, len(bad))
	for i, m := range dead {
		require.Contains(t, m.Values["dead_reason"], reasons[i])
		require.Equal(t, e.cfg.ObserverName, m.Values["dead_group"])
		require.NotEmpty(t, m.Values["dead_id"])
		for k, v := range bad[i] {
			require.Equal(t, v, m.Values[k], "the original fields are kept")
		}
	}
	require.EqualValues(t, len(bad), d.Stats().DeadLettered)
	require.Zero(t, e.pending())
}

// A failing handler is retried with backoff, a deferred one after the loop
// interval, until it succeeds.
func TestHandlerErrorsAreRetried(t *testing.T) {
	e := newEnv(t, nil, func(r *Recorder) []tsync.Watcher { return []tsync.Watcher{r.Watcher("w", 1)} })
	f := e.fixture()
	e.discardOutbox()
	e.rec.setFail(func(c Call, attempt int) error {
		switch attempt {
		case 1:
			return errors.New("backend down")
		case 2:
			return tsync.Deferf("backend busy")
		case 3:
			panic("oops")
		}
		return nil
	})
	e.startAll()
	f.slice1.Name = "slice1b"
	e.save(f.slice1)
	e.settled(30 * time.Second)
	require.Len(t, e.rec.Calls(), 2)
	require.Len(t, e.rec.Attempts(), 6, "two failures and a deferral each") // the panic is not recorded
}

// A hybrid synchronizer: steps and watchers in one worker, with the starter
// and the dispatcher, all as the app runs them.
func TestHybridStepsAndWatchers(t *testing.T) {
	steps := testmodels.NewRecorder(testmodels.ChainNetwork()...)
	e := newEnv(t, []tsync.Step{steps}, func(r *Recorder) []tsync.Watcher { return []tsync.Watcher{r.Watcher("w", 1)} })
	e.run("worker", e.app.RunWorker)
	e.run("starter", e.app.RunStarter)
	e.run("dispatcher", e.app.RunDispatcher)

	f := e.fixture()
	inSync := func(refs ...models.Ref) func() bool {
		return func() bool {
			for _, r := range refs {
				obj, err := e.app.Store.Get(e.ctx, r.Model, r.ID)
				if err != nil {
					return false
				}
				b := obj.SyncState()
				if b.BackendCode != models.CodeOK || b.Enacted == nil || !b.Enacted.Equal(b.Updated) {
					return false
				}
			}
			return true
		}
	}
	slice := models.Ref{Model: "Slice", ID: f.slice1.ID}
	i1 := models.Ref{Model: "Instance", ID: f.inst[0].ID}
	require.Eventually(t, inSync(slice, i1), 30*time.Second, 20*time.Millisecond)
	before := len(steps.CallsOf("sync", slice))

	f.slice1.Name = "slice1b"
	e.save(f.slice1)
	// The step syncs the slice again...
	require.Eventually(t, func() bool { return len(steps.CallsOf("sync", slice)) > before && inSync(slice)() }, 30*time.Second, 20*time.Millisecond)
	// ...and the watcher is told about both of its instances.
	require.Eventually(t, func() bool {
		n := 0
		for _, c := range e.rec.Calls() {
			if c.Event.Changed == slice && c.Event.Op == "update" && slices.Equal(c.Event.Fields, []string{"name"}) {
				n++
			}
		}
		return n == 2
	}, 30*time.Second, 20*time.Millisecond)
	requireOncePerChange(t, e.rec)

	// The watcher workflows carry the Tsync* search attributes.
	require.True(t, e.app.Params().SearchAttributes)
	require.Eventually(t, func() bool {
		resp, err := e.app.Client.CountWorkflow(e.ctx, &workflowservice.CountWorkflowExecutionsRequest{
			Namespace: e.cfg.Temporal.Namespace,
			Query: fmt.Sprintf(`TsyncOperation = %q AND TsyncSynchronizer = %q AND TsyncModel = "Instance" AND TsyncObjectID = %d`,
				watchers.OperationWatch, e.cfg.ObserverName, i1.ID),
		})
		return err == nil && resp.GetCount() >= 1
	}, 10*time.Second, 50*time.Millisecond)
}

func TestWatchersDisabled(t *testing.T) {
	e := newEnv(t, nil, func(r *Recorder) []tsync.Watcher { return []tsync.Watcher{r.Watcher("w", 1)} },
		func(c *config.Config) { c.ObserverEnableWatchers = false })
	require.Nil(t, e.app.Redis)
	require.False(t, e.app.Store.OutboxEnabled())
	e.fixture()
	n, err := outbox.New(e.app.Store).Len(e.ctx)
	require.NoError(t, err)
	require.Zero(t, n, "nothing is written to the outbox")
	err = e.app.RunDispatcher(e.ctx)
	require.ErrorContains(t, err, "observer_enable_watchers is off")

	// With watchers on, an unreachable Redis stops Open with one clear error.
	_, schema := testenv.Schema(t)
	cfg := testenv.Config(t, temporalServer.HostPort(), schema)
	cfg.ObserverEnableWatchers = true
	cfg.RedisURL = "redis://127.0.0.1:1/0"
	_, err = app.Open(e.ctx, cfg, tsync.Synchronizer{Models: registry()}, nil)
	require.ErrorContains(t, err, "redis redis://127.0.0.1:1/0 is unreachable")
	require.True(t, strings.Contains(err.Error(), "observer_enable_watchers"))
}
