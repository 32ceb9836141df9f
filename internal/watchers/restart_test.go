package watchers_test

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/tsync/tsync"
	"github.com/tsync/tsync/config"
	"github.com/tsync/tsync/internal/outbox"
	"github.com/tsync/tsync/internal/testenv"
	"github.com/tsync/tsync/internal/testmodels"
	"github.com/tsync/tsync/internal/watchers"
	"github.com/tsync/tsync/models"
)

// redisServer is a private redis-server of one test, on a free port of
// 127.0.0.1, without persistence (--save "" --appendonly no, as Redis often
// runs, though an explicit SAVE still writes dump.rdb in its directory,
// which a restart loads): the test can kill it (SIGKILL) and start it
// again on the same port. It is killed when the test ends, passed or not.
type redisServer struct {
	t    *testing.T
	port int
	srv  *testenv.Server
}

// startRedisServer starts a private redis-server; the test fails at once,
// saying so, when there is no redis-server.
func startRedisServer(t *testing.T) *redisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	require.NoError(t, err, "this test needs redis-server (Debian package redis-server; `make tools` installs it)")
	// Below the ephemeral range: no outgoing connection takes the port
	// while the server is down.
	port, err := testenv.FreePort()
	require.NoError(t, err)
	dir := t.TempDir()
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	ping := func(ctx context.Context) error {
		c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
		defer c.Close()
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		return c.Ping(ctx).Err()
	}
	r := &redisServer{t: t, port: port, srv: testenv.NewServer("redis-server on port "+strconv.Itoa(port), bin,
		[]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir, "--daemonize", "no"},
		filepath.Join(dir, "redis.log"), ping)}
	t.Cleanup(r.kill)
	r.start()
	return r
}

// URL is the server's redis URL.
func (r *redisServer) URL() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", r.port) }

// start starts the server and waits until it answers.
func (r *redisServer) start() {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(r.t, r.srv.Start(ctx))
}

// kill kills the server with SIGKILL, if it runs, and waits until it is
// gone: everything it held is lost.
func (r *redisServer) kill() {
	if err := r.srv.Kill(); err != nil {
		r.t.Errorf("kill redis-server: %v", err)
	}
}

// Redis loses everything, without persistence, while changes flow: once
// with changes published and none handled yet, then twice more amid a steady
// stream of changes. No change is lost and each one's handler runs exactly
// once: the outbox keeps every change until the consumer group has handled
// it, the changes Redis lost are published again from it with their event
// id, and the dispatcher starts no workflow twice for an event id. (The
// guarantee is at least once per watcher, object and change; exactly once
// here because no worker dies mid-activity and Temporal retains the closed
// workflows.)
func TestRedisRestartLosesNoEvent(t *testing.T) {
	srv := startRedisServer(t)
	e := newEnv(t, nil, func(r *Recorder) []tsync.Watcher {
		return []tsync.Watcher{r.Watcher("cidr", 0, models.Link{Dest: "Network", Via: "network_id", Into: "cidr"})}
	}, func(c *config.Config) { c.RedisURL = srv.URL() })

	// Networks with an instance each: a change of a network's cidr fires the
	// watcher once, for its instance.
	const networks = 20
	site := &testmodels.Site{Name: "s"}
	e.insert(site)
	slice := &testmodels.Slice{Name: "s", SiteID: site.ID}
	e.insert(slice)
	var nets []*testmodels.Network
	instanceOf := map[int64]int64{} // network -> instance
	for n := range networks {
		net := &testmodels.Network{Name: fmt.Sprint(n), CIDR: "10.0.0.0/24", SiteID: site.ID}
		e.insert(net)
		nets = append(nets, net)
		instanceOf[net.ID] = e.insert(&testmodels.Instance{Name: fmt.Sprint(n), SliceID: slice.ID, NetworkID: net.ID})
	}
	e.discardOutbox()
	// change makes change i: a new cidr for network i % networks.
	change := func(i int) error {
		net := nets[i%networks]
		net.CIDR = fmt.Sprintf("10.%d.%d.0/24", i/networks+1, i%networks)
		return e.app.Store.Save(e.ctx, net)
	}

	e.startWorker()
	var mu sync.Mutex
	added := map[string]int{} // event id -> times added to the stream
	relay := e.startRelay(watchers.RelayOptions{AfterPublish: func(es []outbox.Entry) error {
		mu.Lock()
		defer mu.Unlock()
		for _, e := range es {
			added[e.Event]++
		}
		return nil
	}})
	kills := 0
	restart := func(down time.Duration) {
		srv.kill()
		kills++
		time.Sleep(down)
		srv.start()
	}

	// 1. Changes published, none handled (no dispatcher yet): Redis loses
	// them all.
	const first, second = 100, 200
	const total = first + second
	begin := time.Now()
	for i := range first {
		require.NoError(t, change(i))
	}
	require.Eventually(t, func() bool {
		c, err := outbox.New(e.app.Store).Counts(e.ctx)
		return err == nil && c == outbox.Counts{Published: first}
	}, time.Minute, 20*time.Millisecond, "all published, none handled")
	n, err := e.rdb.XLen(e.ctx, e.stream()).Result()
	require.NoError(t, err)
	require.EqualValues(t, first, n)
	restart(300 * time.Millisecond)

	// 2. A dispatcher, and a steady stream of changes, during which Redis
	// dies twice more.
	d := e.newDispatcher(nil)
	e.run("dispatcher", d.Run)
	var written atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := first; i < total; i++ {
			if err := change(i); err != nil {
				t.Errorf("change %d: %v", i, err)
				return
			}
			written.Add(1)
			time.Sleep(15 * time.Millisecond)
		}
	}()
	for _, at := range []int64{second / 3, 2 * second / 3} {
		require.Eventually(t, func() bool { return written.Load() >= at }, 2*time.Minute, 5*time.Millisecond)
		restart(500 * time.Millisecond)
	}
	select {
	case <-done:
	case <-time.After(3 * time.Minute):
		t.Fatal("the changes were not all written")
	}
	require.EqualValues(t, second, written.Load())
	e.settled(3 * time.Minute)
	elapsed := time.Since(begin)

	// Every change handled exactly once.
	calls := e.rec.Calls()
	require.Equal(t, total, len(calls), "changes handled")
	requireOncePerChange(t, e.rec)
	handled := map[string]bool{}
	perInstance := map[int64]int{}
	for _, c := range calls {
		require.Equal(t, "Network", c.Event.Changed.Model)
		require.Equal(t, models.OpUpdate, c.Event.Op)
		require.Equal(t, []string{"cidr"}, c.Event.Fields)
		require.Equal(t, instanceOf[c.Event.Changed.ID], c.Object.ID)
		handled[c.Event.ID] = true
		perInstance[c.Object.ID]++
	}
	require.Len(t, handled, total, "one change, one event id")
	mu.Lock()
	require.Len(t, added, total)
	for ev := range added {
		require.True(t, handled[ev], "event %s was published but never handled", ev)
	}
	mu.Unlock()
	require.Len(t, perInstance, networks)
	for id, n := range perInstance {
		require.Equal(t, total/networks, n, "instance %d", id)
	}
	// None running (one workflow per watcher and object handled them).
	require.Eventually(t, func() bool {
		resp, err := e.app.Client.CountWorkflow(e.ctx, &workflowservice.CountWorkflowExecutionsRequest{
			Namespace: e.cfg.Temporal.Namespace,
			Query:     fmt.Sprintf(`TaskQueue = %q AND ExecutionStatus = "Running"`, e.cfg.Temporal.TaskQueue),
		})
		return err == nil && resp.GetCount() == 0
	}, 30*time.Second, 100*time.Millisecond, "no watcher workflow left running")
	require.Zero(t, e.running())
	// Nothing dead-lettered, nothing left in the outbox.
	n, err = e.rdb.XLen(e.ctx, watchers.DeadLetterName(e.stream())).Result()
	require.NoError(t, err)
	require.Zero(t, n)
	c, err := outbox.New(e.app.Store).Counts(e.ctx)
	require.NoError(t, err)
	require.Zero(t, c.Total())

	st := d.Stats()
	recovered := relay.Recovered() + st.Recovered
	require.GreaterOrEqual(t, recovered, int64(first), "the changes lost in step 1 were published again")
	require.Zero(t, st.DeadLettered)
	t.Logf("redis restart: %d changes (%d published and lost before any was handled, %d in a steady stream), Redis killed %d times; "+
		"%d outbox entries found lost and published again (%d by the relay, %d by the dispatcher); %d stream additions for %d changes; "+
		"%d changes given to watcher workflows; every change handled exactly once, %s after the first change",
		total, first, second, kills, recovered, relay.Recovered(), st.Recovered, relay.Published(), total,
		st.Started, elapsed.Round(time.Millisecond))
}

// Redis comes back from an older RDB snapshot: it brings back changes
// handled since (delivered again, they start nothing), and lacks changes
// published since, handled or not (those not handled are published again
// from the outbox, found outside the restored stream's ends or, once the
// group has read past them, missing from it).
func TestRedisRestoredFromOlderSnapshot(t *testing.T) {
	srv := startRedisServer(t)
	e := newEnv(t, nil, func(r *Recorder) []tsync.Watcher {
		return []tsync.Watcher{r.Watcher("cidr", 0, models.Link{Dest: "Network", Via: "network_id", Into: "cidr"})}
	}, func(c *config.Config) { c.RedisURL = srv.URL() })
	site := &testmodels.Site{Name: "s"}
	e.insert(site)
	slice := &testmodels.Slice{Name: "s", SiteID: site.ID}
	e.insert(slice)
	net := &testmodels.Network{Name: "n", CIDR: "10.0.0.0/24", SiteID: site.ID}
	e.insert(net)
	e.insert(&testmodels.Instance{Name: "i", SliceID: slice.ID, NetworkID: net.ID})
	e.discardOutbox()
	changes := 0
	// batch makes n changes of the network's cidr.
	batch := func(n int) {
		t.Helper()
		for range n {
			changes++
			net.CIDR = fmt.Sprintf("10.%d.%d.0/24", changes/256, changes%256)
			e.save(net)
		}
	}
	published := func(want int64) {
		t.Helper()
		require.Eventually(t, func() bool {
			c, err := outbox.New(e.app.Store).Counts(e.ctx)
			return err == nil && c == outbox.Counts{Published: want}
		}, time.Minute, 20*time.Millisecond, "%d published, none handled", want)
	}
	handled := func() {
		t.Helper()
		e.settled(2 * time.Minute)
		require.Equal(t, changes, len(e.rec.Calls()), "changes handled")
	}
	var stats []func() watchers.Stats
	// dispatch runs a dispatcher until stop is called.
	dispatch := func() (stop func()) {
		d := e.newDispatcher(nil)
		stats = append(stats, d.Stats)
		ctx, cancel := context.WithCancel(e.ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			if err := d.Run(ctx); err != nil {
				t.Errorf("dispatcher: %v", err)
			}
		}()
		return func() {
			cancel()
			<-done
		}
	}
	e.startWorker()
	e.startRelay(watchers.RelayOptions{})

	// A: handled before the snapshot.
	stop := dispatch()
	batch(20)
	handled()
	stop()
	// B: published before the snapshot, handled after it.
	batch(20)
	published(20)
	require.NoError(t, e.rdb.Save(e.ctx).Err())
	stop = dispatch()
	handled()
	stop()
	// C: published after the snapshot; the first half handled, the second
	// not.
	stop = dispatch()
	batch(10)
	handled()
	stop()
	batch(10)
	published(10)

	// Redis dies and comes back from the snapshot: it has B again, not C.
	srv.kill()
	srv.start()
	n, err := e.rdb.XLen(e.ctx, e.stream()).Result()
	require.NoError(t, err)
	require.EqualValues(t, 20, n, "B is back")
	// D: published after the restart, before any dispatcher runs again, so
	// that the lost half of C lies between B and D.
	batch(10)
	published(20)

	stop = dispatch()
	defer stop()
	handled()
	requireOncePerChange(t, e.rec)
	last := stats[len(stats)-1]()
	require.GreaterOrEqual(t, last.Recovered, int64(10), "the unhandled half of C published again")
	t.Logf("redis snapshot: %d changes; after the restore, %d given to workflows (handled once each), %d found lost and published again",
		changes, last.Started, last.Recovered)
}
