// Command bench measures tsync against raw Temporal on the same server, in
// one run, and prints the figures (it measures; it asserts nothing):
//
//  1. baseline: minimal workflows with one no-op activity each, straight on
//     the SDK (workflows/s);
//  2. independent: N pending objects with a no-op step (objects/s), and the
//     ratio to the baseline;
//  3. dag: a Site/Network/Slice/Instance graph with shared networks: wall
//     time until all are in sync, and its ratio to N / baseline rate;
//  4. pickup latency at idle, from a model save to SyncRecord starting;
//  5. FetchPending on a large table with few pending objects, and its plan;
//  6. peak RSS of a worker and a starter process with many objects pending.
//
// Run it with `make bench`; flags change the sizes; -json prints a record.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"golang.org/x/sync/errgroup"

	"github.com/tsync/tsync"
	"github.com/tsync/tsync/app"
	"github.com/tsync/tsync/config"
	"github.com/tsync/tsync/internal/syncstate"
	"github.com/tsync/tsync/internal/testenv"
	"github.com/tsync/tsync/models"
)

// Benchmark models: independent Items, and the demo's diamond.
type (
	Item struct {
		models.Base
		Name string `db:"name"`
	}
	Site struct {
		models.Base
		Name string `db:"name"`
	}
	Network struct {
		models.Base
		Name   string `db:"name"`
		SiteID int64  `db:"site_id"`
	}
	Slice struct {
		models.Base
		Name   string `db:"name"`
		SiteID int64  `db:"site_id"`
	}
	Instance struct {
		models.Base
		Name      string `db:"name"`
		SliceID   int64  `db:"slice_id"`
		NetworkID int64  `db:"network_id"`
	}
)

func registry() *models.Registry {
	reg := models.NewRegistry()
	models.MustRegister[Item](reg, "Item")
	models.MustRegister[Site](reg, "Site")
	models.MustRegister[Network](reg, "Network", models.Link{Dest: "Site", Via: "site_id"})
	models.MustRegister[Slice](reg, "Slice", models.Link{Dest: "Site", Via: "site_id"})
	models.MustRegister[Instance](reg, "Instance", models.Link{Dest: "Slice", Via: "slice_id"}, models.Link{Dest: "Network", Via: "network_id"})
	return reg
}

// noop is a step for every model that does nothing but tell when it starts.
type noop struct {
	started chan<- time.Time // nil: nobody listens
}

func (noop) Synchronizes() []models.Object {
	return []models.Object{new(Item), new(Site), new(Network), new(Slice), new(Instance)}
}

func (n noop) SyncRecord(ctx context.Context, obj models.Object) error {
	if n.started != nil {
		select {
		case n.started <- time.Now():
		default:
		}
	}
	return nil
}

func (noop) DeleteRecord(context.Context, models.Object) error { return nil }

// Result is what -json prints.
type Result struct {
	BaselineN         int     `json:"baseline_n"`
	BaselineRate      float64 `json:"baseline_workflows_per_s"`
	IndependentN      int     `json:"independent_n"`
	IndependentRate   float64 `json:"independent_objects_per_s"`
	IndependentRatio  float64 `json:"independent_ratio"`
	DAGN              int     `json:"dag_n"`
	DAGSeconds        float64 `json:"dag_wall_s"`
	DAGIdealSeconds   float64 `json:"dag_n_over_baseline_s"`
	DAGRatio          float64 `json:"dag_ratio"`
	PickupP50Ms       float64 `json:"pickup_p50_ms"`
	PickupP99Ms       float64 `json:"pickup_p99_ms"`
	FetchRows         int     `json:"fetch_rows"`
	FetchPending      int     `json:"fetch_pending"`
	FetchP50Ms        float64 `json:"fetch_pending_p50_ms"`
	FetchPlan         string  `json:"fetch_pending_plan"`
	RSSPending        int     `json:"rss_pending"`
	WorkerPeakRSSMiB  float64 `json:"worker_peak_rss_mib"`
	StarterPeakRSSMiB float64 `json:"starter_peak_rss_mib"`
}

type bench struct {
	temporal string
	dbURL    string
	quiet    *slog.Logger
	out      io.Writer
}

func main() {
	role := flag.String("role", "", "internal: run as a worker or starter process for the RSS measure")
	n := flag.Int("n", 1000, "objects (and baseline workflows) for the independent run")
	sites := flag.Int("sites", 50, "dag: sites")
	slicesPer := flag.Int("slices", 4, "dag: slices per site")
	instances := flag.Int("instances", 5, "dag: instances per slice")
	networks := flag.Int("networks", 2, "dag: networks per site, shared by its instances")
	samples := flag.Int("samples", 50, "pickup latency samples")
	rows := flag.Int("rows", 1_000_000, "FetchPending: rows in the table")
	pending := flag.Int("pending", 1000, "FetchPending: pending rows among them")
	rssPending := flag.Int("rss-pending", 10_000, "RSS: objects pending")
	skip := flag.String("skip", "", "comma-separated parts to skip: baseline,independent,dag,pickup,fetch,rss")
	asJSON := flag.Bool("json", false, "print the result as JSON too")
	temporalAddr := flag.String("temporal", "", "host:port of a Temporal server to use (default: start a dev server from bin/temporal, in memory)")
	flag.Parse()

	if *role != "" {
		if err := runRole(*role); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	ctx := context.Background()
	b := &bench{dbURL: testenv.DatabaseURL(), quiet: slog.New(slog.DiscardHandler), out: os.Stdout}
	if *temporalAddr == "" {
		srv, err := testenv.StartTemporal(ctx)
		if err != nil {
			fail(err)
		}
		defer srv.Stop() //nolint:errcheck
		b.temporal = srv.HostPort()
	} else {
		b.temporal = *temporalAddr
	}
	skipped := map[string]bool{}
	for _, s := range strings.Split(*skip, ",") {
		skipped[strings.TrimSpace(s)] = true
	}
	var r Result
	fmt.Fprintf(b.out, "tsync bench: temporal %s, database %s, GOMAXPROCS default\n", b.temporal, b.dbURL)
	if !skipped["baseline"] {
		r.BaselineN = *n
		r.BaselineRate = must(b.baseline(ctx, *n))
		fmt.Fprintf(b.out, "baseline: %d workflows with one no-op activity: %.1f workflows/s\n", *n, r.BaselineRate)
	}
	if !skipped["independent"] {
		r.IndependentN = *n
		r.IndependentRate = must(b.independent(ctx, *n))
		fmt.Fprintf(b.out, "independent: %d objects with a no-op step: %.1f objects/s\n", *n, r.IndependentRate)
		if r.BaselineRate > 0 {
			r.IndependentRatio = r.IndependentRate / r.BaselineRate
			fmt.Fprintf(b.out, "independent ratio: %.2f\n", r.IndependentRatio)
		}
	}
	if !skipped["dag"] {
		count, wall := must2(b.dag(ctx, *sites, *networks, *slicesPer, *instances))
		r.DAGN, r.DAGSeconds = count, wall.Seconds()
		fmt.Fprintf(b.out, "dag: %d objects (%d sites x (%d networks + %d slices x %d instances)): all in sync after %.2fs\n",
			count, *sites, *networks, *slicesPer, *instances, wall.Seconds())
		if r.BaselineRate > 0 {
			r.DAGIdealSeconds = float64(count) / r.BaselineRate
			r.DAGRatio = r.DAGSeconds / r.DAGIdealSeconds
			fmt.Fprintf(b.out, "dag ratio: %.2f (N / baseline rate = %.2fs)\n", r.DAGRatio, r.DAGIdealSeconds)
		}
	}
	if !skipped["pickup"] {
		p50, p99 := must2(b.pickup(ctx, *samples))
		r.PickupP50Ms, r.PickupP99Ms = ms(p50), ms(p99)
		fmt.Fprintf(b.out, "pickup latency at idle (save -> SyncRecord starts, %d samples): p50 %.1f ms, p99 %.1f ms\n", *samples, r.PickupP50Ms, r.PickupP99Ms)
	}
	if !skipped["fetch"] {
		p50, plan := must2(b.fetch(ctx, *rows, *pending))
		r.FetchRows, r.FetchPending, r.FetchP50Ms, r.FetchPlan = *rows, *pending, ms(p50), plan
		fmt.Fprintf(b.out, "fetch pending: %d pending of %d rows: p50 %.2f ms; plan: %s\n", *pending, *rows, r.FetchP50Ms, plan)
	}
	if !skipped["rss"] {
		w, s := must2(b.rss(ctx, *rssPending))
		r.RSSPending, r.WorkerPeakRSSMiB, r.StarterPeakRSSMiB = *rssPending, w, s
		fmt.Fprintf(b.out, "peak rss with %d pending: worker %.1f MiB, starter %.1f MiB\n", *rssPending, w, s)
	}
	if *asJSON {
		data, _ := json.MarshalIndent(r, "", "  ")
		fmt.Fprintln(b.out, string(data))
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}

func must[T any](v T, err error) T {
	if err != nil {
		fail(err)
	}
	return v
}

func must2[A, B any](a A, b B, err error) (A, B) {
	if err != nil {
		fail(err)
	}
	return a, b
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Baseline is the minimal workflow: one no-op activity.
func Baseline(ctx workflow.Context) error {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute})
	return workflow.ExecuteActivity(ctx, Noop).Get(ctx, nil)
}

// Noop does nothing.
func Noop(context.Context) error { return nil }

// workerOptions are the options both the baseline and tsync's workers use.
const pollers = 8

func (b *bench) baseline(ctx context.Context, n int) (float64, error) {
	c, err := client.DialContext(ctx, client.Options{HostPort: b.temporal, Logger: quietSDK()})
	if err != nil {
		return 0, err
	}
	defer c.Close()
	queue := "bench-baseline-" + testenv.Random(4)
	w := worker.New(c, queue, worker.Options{
		MaxConcurrentWorkflowTaskPollers: pollers, MaxConcurrentActivityTaskPollers: pollers,
		MaxConcurrentActivityExecutionSize: 100, MaxConcurrentWorkflowTaskExecutionSize: 200,
	})
	w.RegisterWorkflow(Baseline)
	w.RegisterActivity(Noop)
	if err := w.Start(); err != nil {
		return 0, err
	}
	defer w.Stop()
	start := time.Now()
	runs := make([]client.WorkflowRun, n)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for i := range n {
		g.Go(func() error {
			run, err := c.ExecuteWorkflow(gctx, client.StartWorkflowOptions{ID: fmt.Sprintf("%s/%d", queue, i), TaskQueue: queue}, Baseline)
			runs[i] = run
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return 0, err
	}
	g, gctx = errgroup.WithContext(ctx)
	g.SetLimit(64)
	for _, run := range runs {
		g.Go(func() error { return run.Get(gctx, nil) })
	}
	if err := g.Wait(); err != nil {
		return 0, err
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

func quietSDK() *sdkLogger { return &sdkLogger{} }

// sdkLogger discards the SDK's logs.
type sdkLogger struct{}

func (*sdkLogger) Debug(string, ...any) {}
func (*sdkLogger) Info(string, ...any)  {}
func (*sdkLogger) Warn(string, ...any)  {}
func (*sdkLogger) Error(string, ...any) {}

// env is a synchronizer of the benchmark models in a fresh schema.
type env struct {
	app    *app.App
	schema string
	pool   *pgxpool.Pool
}

func (b *bench) config(schema string) config.Config {
	cfg := config.Default()
	cfg.ObserverName = "bench-" + testenv.Random(4)
	cfg.Temporal.HostPort = b.temporal
	cfg.Temporal.TaskQueue = cfg.ObserverName
	cfg.DatabaseURL = b.dbURL
	cfg.DatabaseSchema = schema
	cfg.LoopInterval = time.Second
	return cfg
}

func (b *bench) open(ctx context.Context, step noop) (*env, func(), error) {
	pool, err := pgxpool.New(ctx, b.dbURL)
	if err != nil {
		return nil, nil, err
	}
	schema := "bench_" + testenv.Random(4)
	a, err := app.Open(ctx, b.config(schema), tsync.Synchronizer{Models: registry(), Steps: []tsync.Step{step}}, b.quiet)
	if err != nil {
		pool.Close()
		return nil, nil, err
	}
	cleanup := func() {
		a.Close()
		_, _ = pool.Exec(context.Background(), "DROP SCHEMA "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
		pool.Close()
	}
	return &env{app: a, schema: schema, pool: pool}, cleanup, nil
}

func (e *env) table(name string) string { return pgx.Identifier{e.schema, name}.Sanitize() }

// run runs a worker and a starter until the returned stop is called.
func (e *env) run(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = e.app.RunWorker(ctx) }()
	go func() { defer wg.Done(); _ = e.app.RunStarter(ctx) }()
	return func() { cancel(); wg.Wait() }
}

// waitInSync waits until no object of the tables is pending.
func (e *env) waitInSync(ctx context.Context, tables ...string) error {
	deadline := time.Now().Add(30 * time.Minute)
	for time.Now().Before(deadline) {
		total := 0
		for _, t := range tables {
			var n int
			if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM `+e.table(t)+` WHERE `+models.PendingPredicate).Scan(&n); err != nil {
				return err
			}
			total += n
		}
		if total == 0 {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("not in sync after 30 minutes")
}

func (b *bench) independent(ctx context.Context, n int) (float64, error) {
	e, cleanup, err := b.open(ctx, noop{})
	if err != nil {
		return 0, err
	}
	defer cleanup()
	if _, err := e.pool.Exec(ctx, `INSERT INTO `+e.table("item")+` (name) SELECT 'item-' || g FROM generate_series(1, $1) g`, n); err != nil {
		return 0, err
	}
	start := time.Now()
	stop := e.run(ctx)
	defer stop()
	if err := e.waitInSync(ctx, "item"); err != nil {
		return 0, err
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

func (b *bench) dag(ctx context.Context, sites, networks, slicesPer, instances int) (int, time.Duration, error) {
	e, cleanup, err := b.open(ctx, noop{})
	if err != nil {
		return 0, 0, err
	}
	defer cleanup()
	// Ids are dense from 1, in insertion order, so children can name parents.
	stmts := []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO ` + e.table("site") + ` (name) SELECT 'site-' || s FROM generate_series(1, $1) s`, []any{sites}},
		{`INSERT INTO ` + e.table("network") + ` (name, site_id) SELECT 'net-' || s || '-' || k, s FROM generate_series(1, $1) s, generate_series(1, $2) k ORDER BY s, k`, []any{sites, networks}},
		{`INSERT INTO ` + e.table("slice") + ` (name, site_id) SELECT 'slice-' || s || '-' || k, s FROM generate_series(1, $1) s, generate_series(1, $2) k ORDER BY s, k`, []any{sites, slicesPer}},
		{`INSERT INTO ` + e.table("instance") + ` (name, slice_id, network_id)
			SELECT 'vm-' || sl || '-' || i, sl, ((sl - 1) / $2::int) * $3::int + 1 + (i % $3::int)
			FROM generate_series(1, $1::int * $2::int) sl, generate_series(1, $4::int) i ORDER BY sl, i`, []any{sites, slicesPer, networks, instances}},
	}
	for _, s := range stmts {
		if _, err := e.pool.Exec(ctx, s.sql, s.args...); err != nil {
			return 0, 0, err
		}
	}
	count := sites * (1 + networks + slicesPer + slicesPer*instances)
	start := time.Now()
	stop := e.run(ctx)
	defer stop()
	if err := e.waitInSync(ctx, "site", "network", "slice", "instance"); err != nil {
		return 0, 0, err
	}
	return count, time.Since(start), nil
}

func (b *bench) pickup(ctx context.Context, samples int) (time.Duration, time.Duration, error) {
	started := make(chan time.Time, 1)
	e, cleanup, err := b.open(ctx, noop{started: started})
	if err != nil {
		return 0, 0, err
	}
	defer cleanup()
	stop := e.run(ctx)
	defer stop()
	time.Sleep(2 * time.Second) // idle: worker polling, starter listening
	var lat []time.Duration
	for range samples {
		saved := time.Now()
		if err := e.app.Store.Insert(ctx, &Item{Name: "pickup"}); err != nil {
			return 0, 0, err
		}
		select {
		case at := <-started:
			lat = append(lat, at.Sub(saved))
		case <-time.After(30 * time.Second):
			return 0, 0, fmt.Errorf("pickup: no SyncRecord within 30s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	slices.Sort(lat)
	return percentile(lat, 50), percentile(lat, 99), nil
}

func percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := (len(sorted)*p + 99) / 100
	return sorted[min(max(i-1, 0), len(sorted)-1)]
}

func (b *bench) fetch(ctx context.Context, rows, pending int) (time.Duration, string, error) {
	e, cleanup, err := b.open(ctx, noop{})
	if err != nil {
		return 0, "", err
	}
	defer cleanup()
	t := e.table("item")
	// In sync rows, then pending ones spread over the id range.
	if _, err := e.pool.Exec(ctx, `INSERT INTO `+t+` (name, updated, enacted, backend_code, backend_status)
		SELECT 'row-' || g, now(), now(), 1, 'OK' FROM generate_series(1, $1) g`, rows); err != nil {
		return 0, "", err
	}
	if _, err := e.pool.Exec(ctx, `UPDATE `+t+` SET enacted = NULL, backend_code = 0 WHERE id % ($1::bigint / $2::bigint) = 0`, rows, pending); err != nil {
		return 0, "", err
	}
	if _, err := e.pool.Exec(ctx, `ANALYZE `+t); err != nil {
		return 0, "", err
	}
	var times []time.Duration
	for range 30 {
		start := time.Now()
		ids, err := syncstate.New(e.app.Store).FetchPending(ctx, "Item", false, 0, pending)
		if err != nil {
			return 0, "", err
		}
		times = append(times, time.Since(start))
		if len(ids) != pending {
			return 0, "", fmt.Errorf("fetch: got %d pending, want %d", len(ids), pending)
		}
	}
	slices.Sort(times)
	var plan []string
	rowsPlan, err := e.pool.Query(ctx, `EXPLAIN SELECT id FROM `+t+` WHERE `+models.PendingPredicate+` AND id > $1 ORDER BY id LIMIT $2`, 0, pending)
	if err != nil {
		return 0, "", err
	}
	for rowsPlan.Next() {
		var line string
		if err := rowsPlan.Scan(&line); err != nil {
			return 0, "", err
		}
		plan = append(plan, strings.TrimSpace(line))
	}
	rowsPlan.Close()
	return percentile(times, 50), strings.Join(plan, " | "), nil
}

// rss runs a worker and a starter as processes of this binary, with n
// objects pending, and returns their peak RSS (VmHWM) in MiB once all are
// in sync.
func (b *bench) rss(ctx context.Context, n int) (float64, float64, error) {
	e, cleanup, err := b.open(ctx, noop{})
	if err != nil {
		return 0, 0, err
	}
	defer cleanup()
	if _, err := e.pool.Exec(ctx, `INSERT INTO `+e.table("item")+` (name) SELECT 'item-' || g FROM generate_series(1, $1) g`, n); err != nil {
		return 0, 0, err
	}
	cfg := e.app.Config
	env := append(os.Environ(),
		"TSYNC_OBSERVER_NAME="+cfg.ObserverName, "TSYNC_TEMPORAL_HOST_PORT="+cfg.Temporal.HostPort,
		"TSYNC_TEMPORAL_TASK_QUEUE="+cfg.Temporal.TaskQueue, "TSYNC_DATABASE_URL="+cfg.DatabaseURL,
		"TSYNC_DATABASE_SCHEMA="+cfg.DatabaseSchema)
	start := func(role string) (*exec.Cmd, error) {
		cmd := exec.Command(os.Args[0], "-role", role)
		cmd.Env = env
		cmd.Stderr = os.Stderr
		return cmd, cmd.Start()
	}
	w, err := start("worker")
	if err != nil {
		return 0, 0, err
	}
	defer func() { _ = w.Process.Kill(); _ = w.Wait() }()
	s, err := start("starter")
	if err != nil {
		return 0, 0, err
	}
	defer func() { _ = s.Process.Kill(); _ = s.Wait() }()
	if err := e.waitInSync(ctx, "item"); err != nil {
		return 0, 0, err
	}
	wr, err := peakRSS(w.Process.Pid)
	if err != nil {
		return 0, 0, err
	}
	sr, err := peakRSS(s.Process.Pid)
	return wr, sr, err
}

// peakRSS reads VmHWM of pid, in MiB.
func peakRSS(pid int) (float64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, err := strconv.ParseFloat(f[1], 64)
			return kb / 1024, err
		}
	}
	return 0, fmt.Errorf("no VmHWM for pid %d", pid)
}

// runRole runs a worker or a starter of the benchmark synchronizer, with
// config from TSYNC_*, until killed.
func runRole(role string) error {
	cfg, err := config.Load("", os.Environ())
	if err != nil {
		return err
	}
	ctx := context.Background()
	a, err := app.Open(ctx, cfg, tsync.Synchronizer{Models: registry(), Steps: []tsync.Step{noop{}}}, nil)
	if err != nil {
		return err
	}
	defer a.Close()
	switch role {
	case "worker":
		return a.RunWorker(ctx)
	case "starter":
		return a.RunStarter(ctx)
	}
	return fmt.Errorf("unknown role %q", role)
}
