// Package netfaults puts a fault-injecting TCP proxy (Shopify's toxiproxy,
// in process) between the worker and both Temporal and PostgreSQL, and
// checks that a bad network loses nothing and syncs nothing concurrently:
// added latency, a bandwidth limit, connections reset mid-call and a 30 s
// blackhole. It prints the time each fault took to recover from.
package netfaults

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync"
	"github.com/tsync/tsync/app"
	"github.com/tsync/tsync/internal/testenv"
	"github.com/tsync/tsync/internal/testmodels"
	"github.com/tsync/tsync/models"
)

var temporalServer *testenv.Temporal

func TestMain(m *testing.M) {
	// The toxics log every interruption through zerolog's global logger.
	zerolog.SetGlobalLevel(zerolog.WarnLevel)
	os.Exit(testenv.Main(m, &temporalServer, false))
}

// proxy is one toxiproxy proxy, listening on a free port.
type proxy struct {
	p *toxiproxy.Proxy
}

func newProxy(t *testing.T, srv *toxiproxy.ApiServer, name, upstream string) *proxy {
	t.Helper()
	p := toxiproxy.NewProxy(srv, name, "127.0.0.1:0", upstream)
	require.NoError(t, p.Start())
	t.Cleanup(p.Stop)
	return &proxy{p: p}
}

func (p *proxy) addr() string { return p.p.Listen }

// add adds a toxic (toxiproxy's JSON: name, type, stream, attributes).
func (p *proxy) add(t *testing.T, toxic string) {
	t.Helper()
	_, err := p.p.Toxics.AddToxicJson(strings.NewReader(toxic))
	require.NoError(t, err, toxic)
}

func (p *proxy) reset() { p.p.Toxics.ResetToxics(context.Background()) }

// fault is one bad network condition, on both proxies.
type fault struct {
	name   string
	toxics []string
	// hold is how long the fault lasts; changes are made meanwhile.
	hold time.Duration
}

func TestBadNetwork(t *testing.T) {
	if testing.Short() {
		t.Skip("a few minutes of network faults")
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
	dbURL, err := url.Parse(testenv.DatabaseURL())
	require.NoError(t, err)
	temporalProxy := newProxy(t, srv, "temporal", temporalServer.HostPort())
	pgProxy := newProxy(t, srv, "postgres", dbURL.Host)

	_, schema := testenv.Schema(t)
	cfg := testenv.Config(t, temporalServer.HostPort(), schema)
	cfg.StepTimeout = 20 * time.Second
	cfg.HeartbeatTimeout = 5 * time.Second
	cfg.Retry.MaxInterval = 2 * time.Second
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))

	// The starter reaches both directly; the worker only through the proxies.
	rec := testmodels.NewRecorder(testmodels.ChainDiamond()...)
	rec.SetHook(func(ctx context.Context, _ string, _ models.Ref, _ models.Object) error {
		select {
		case <-time.After(30 * time.Millisecond):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	starterApp, err := app.Open(ctx, cfg, tsync.Synchronizer{Models: testmodels.Registry(testmodels.ChainDiamond()...), Steps: []tsync.Step{testmodels.NewRecorder(testmodels.ChainDiamond()...)}}, log)
	require.NoError(t, err)
	t.Cleanup(starterApp.Close)
	workerCfg := cfg
	workerCfg.Temporal.HostPort = temporalProxy.addr()
	dbURL.Host = pgProxy.addr()
	workerCfg.DatabaseURL = dbURL.String()
	workerApp, err := app.Open(ctx, workerCfg, tsync.Synchronizer{Models: testmodels.Registry(testmodels.ChainDiamond()...), Steps: []tsync.Step{rec}}, log)
	require.NoError(t, err)
	t.Cleanup(workerApp.Close)
	done := map[string]chan error{"worker": make(chan error, 1), "starter": make(chan error, 1)}
	wctx, stop := context.WithCancel(ctx)
	go func() { done["worker"] <- workerApp.RunWorker(wctx) }()
	go func() { done["starter"] <- starterApp.RunStarter(wctx) }()
	t.Cleanup(func() { stop(); <-done["worker"]; <-done["starter"] })

	store := starterApp.Store
	var refs []models.Ref
	insert := func(n int, prefix string) {
		for i := range n {
			site := &testmodels.Site{Name: fmt.Sprintf("%s-site-%d", prefix, i)}
			require.NoError(t, store.Insert(ctx, site))
			slice := &testmodels.Slice{Name: fmt.Sprintf("%s-slice-%d", prefix, i), SiteID: site.ID}
			require.NoError(t, store.Insert(ctx, slice))
			item := &testmodels.Item{Name: fmt.Sprintf("%s-item-%d", prefix, i)}
			require.NoError(t, store.Insert(ctx, item))
			refs = append(refs, models.Ref{Model: "Site", ID: site.ID}, models.Ref{Model: "Slice", ID: slice.ID}, models.Ref{Model: "Item", ID: item.ID})
		}
	}
	pending := func() int {
		n := 0
		for _, r := range refs {
			obj, err := store.Get(ctx, r.Model, r.ID)
			require.NoError(t, err)
			if b := obj.SyncState(); b.BackendCode != models.CodeOK || b.Enacted == nil || !b.Enacted.Equal(b.Updated) {
				n++
			}
		}
		return n
	}
	waitInSync := func(what string, within time.Duration) time.Duration {
		t.Helper()
		start := time.Now()
		require.Eventually(t, func() bool { return pending() == 0 }, within, 50*time.Millisecond, "%s: %d objects not in sync", what, pending())
		return time.Since(start)
	}
	insert(10, "before")
	waitInSync("before the faults", time.Minute)

	faults := []fault{
		{name: "latency 200 ms", hold: 5 * time.Second, toxics: []string{
			`{"name": "latency", "type": "latency", "stream": "downstream", "attributes": {"latency": 200}}`}},
		{name: "bandwidth 16 KB/s", hold: 5 * time.Second, toxics: []string{
			`{"name": "down", "type": "bandwidth", "stream": "downstream", "attributes": {"rate": 16}}`,
			`{"name": "up", "type": "bandwidth", "stream": "upstream", "attributes": {"rate": 16}}`}},
		{name: "connections reset mid-call", hold: 5 * time.Second, toxics: []string{
			`{"name": "reset", "type": "reset_peer", "stream": "downstream", "attributes": {"timeout": 300}}`}},
		{name: "30 s blackhole", hold: 30 * time.Second, toxics: []string{
			`{"name": "blackhole", "type": "timeout", "stream": "upstream", "attributes": {"timeout": 0}}`}},
	}
	callsBefore := len(rec.Calls())
	for i, f := range faults {
		begin := time.Now()
		for _, toxic := range f.toxics {
			temporalProxy.add(t, toxic)
			pgProxy.add(t, toxic)
		}
		// Changes while the network is bad: new objects, and new content
		// for some synced ones.
		insert(5, fmt.Sprintf("fault%d", i))
		for _, r := range refs[:6] {
			require.NoError(t, store.Touch(ctx, r.Model, r.ID))
		}
		// Under the fault: in sync despite it, or not.
		under := "not in sync under it"
		for time.Since(begin) < f.hold {
			if pending() == 0 {
				under = fmt.Sprintf("all in sync under it after %v", time.Since(begin).Round(10*time.Millisecond))
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		time.Sleep(time.Until(begin.Add(f.hold)))
		stillPending := pending()
		calls := len(rec.Calls())
		temporalProxy.reset()
		pgProxy.reset()
		recovered := waitInSync(f.name, 3*time.Minute)
		t.Logf("%s for %v: %s; %d of %d objects not in sync at its end, all in sync %v after it ended; %d step calls during it",
			f.name, f.hold, under, stillPending, len(refs), recovered.Round(10*time.Millisecond), calls-callsBefore)
		callsBefore = len(rec.Calls())
	}

	for name, ch := range done {
		select {
		case err := <-ch:
			t.Fatalf("the %s stopped: %v", name, err)
		default:
		}
	}
	require.Empty(t, rec.Violations(), "concurrent or stale calls")
	// Nothing lost: every object's current content was synced by a call.
	for _, r := range refs {
		obj, err := store.Get(ctx, r.Model, r.ID)
		require.NoError(t, err)
		synced := false
		for _, c := range rec.CallsOf("sync", r) {
			synced = synced || (c.Err == nil && c.Updated.Equal(obj.SyncState().Updated))
		}
		require.True(t, synced, "%s: its current content was never synced", r)
	}
	repeats := 0
	seen := map[string]bool{}
	for _, c := range rec.Calls() {
		key := c.Ref.String() + c.Updated.String()
		if c.Err == nil && seen[key] {
			repeats++
		}
		seen[key] = c.Err == nil || seen[key]
	}
	t.Logf("%d objects, %d step calls, %d repeats of a content already synced (a success whose record the fault cut)", len(refs), len(rec.Calls()), repeats)
}
