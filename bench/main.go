// Command bench measures tsync against raw Temporal on the same server, in
// one run, and prints the figures (it measures; it asserts nothing):
//
//  1. baseline: minimal workflows with one no-op activity each, straight on
//     the SDK (workflows/s);
//  2. independent: N pending objects with a no-op step (objects/s), and the
//     ratio to the baseline;
//  3. dag: a Site/Network/Slice/Instance graph with shared networks: wall
//     time until all are in sync, and its ratio to N / baseline rate (2 and
//     3 run in rounds, each between two baseline runs: see rounds.go);
//  4. pickup latency at idle, from a model save to SyncRecord starting;
//  5. FetchPending on a large table with few pending objects, and its plan;
//  6. peak RSS of a worker and a starter process with many objects pending;
//  7. a starter restarted while objects' runs are at work: its first scan
//     against the first starter's.
//
// Run it with `make bench`; flags change the sizes; -json prints a record.
//
// The files: main.go the flags and the report, raw.go the raw Temporal
// baseline, env.go the benchmark synchronizer, scenarios.go the runs of
// tsync (2 to 5), rounds.go their alternation with the baseline, rss.go
// the processes of 6, cost.go the events and actions per object,
// backlog.go -backlog, restart.go 7, progress.go the samples of a
// backlog's runs from visibility, cpu.go the CPU time per object of each side (bench
// and workers, Temporal, PostgreSQL) and -cpuprofile.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/tsync/tsync/internal/testenv"
)

// Result is what -json prints.
type Result struct {
	// Workers is the number of worker processes (0: one in the bench's).
	Workers int `json:"workers"`
	// RawAttributes: the raw workflows carried tsync's search attributes
	// (-raw-attributes).
	RawAttributes bool `json:"raw_attributes"`
	// RawEager: the raw workflows were started eagerly (-raw-eager).
	RawEager          bool    `json:"raw_eager"`
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
	RawPickupP50Ms    float64 `json:"raw_pickup_p50_ms"`
	RawPickupP99Ms    float64 `json:"raw_pickup_p99_ms"`
	FetchRows         int     `json:"fetch_rows"`
	FetchPending      int     `json:"fetch_pending"`
	FetchP50Ms        float64 `json:"fetch_pending_p50_ms"`
	FetchPlan         string  `json:"fetch_pending_plan"`
	RSSPending        int     `json:"rss_pending"`
	WorkerPeakRSSMiB  float64 `json:"worker_peak_rss_mib"`
	StarterPeakRSSMiB float64 `json:"starter_peak_rss_mib"`
	// BaselineCost and Costs are the history events and billable actions
	// per object: the raw workflow's, and tsync's by kind of sync.
	BaselineCost Cost            `json:"baseline_cost"`
	Costs        map[string]Cost `json:"costs,omitempty"`
	// IndependentActionsRatio is an independent object's actions over
	// the raw workflow's.
	IndependentActionsRatio float64 `json:"independent_actions_ratio,omitempty"`
	// Rounds are the figures of every raw and tsync run (the fields
	// above hold their medians).
	Rounds *Rounds `json:"rounds,omitempty"`
	// Restart is a starter restarted with objects at work.
	Restart *Restart `json:"restart,omitempty"`
	// Backlog is the -backlog run.
	Backlog *Backlog `json:"backlog,omitempty"`
	// CPU is the CPU time per object of the baseline, independent and dag
	// runs, by side (see cpuUse).
	CPU map[string]CPUPerObject `json:"cpu_per_object,omitempty"`
}

type bench struct {
	// workers is the number of worker processes (0: in this process).
	workers  int
	temporal string
	dbURL    string
	// log receives the warnings of tsync in this process (var/bench/tsync.log).
	log *slog.Logger
	out io.Writer
	// renew replaces the dev server the bench started with a new, empty
	// one (nil with -temporal).
	renew func(ctx context.Context) error
	// rawAttributes gives the raw workflows tsync's search attributes
	// (-raw-attributes).
	rawAttributes bool
	// rawEager starts the raw workflows eagerly (-raw-eager).
	rawEager bool
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
	workers := flag.Int("workers", 0, "baseline, independent, dag, cost: run this many worker processes (and a starter process) rather than one worker in this process")
	costN := flag.Int("cost-n", 100, "cost: objects per kind of sync whose histories are counted")
	rounds := flag.Int("rounds", 3, "rounds of the independent and dag runs, each run between two raw baseline runs and its ratio against their mean (the ratios printed are the medians)")
	skip := flag.String("skip", "", "comma-separated parts to skip: baseline (and with it the rounds: independent and dag),independent,dag,pickup,cost,fetch,rss,restart")
	restartN := flag.Int("restart-n", 2000, "restart: objects at work when a starter restarts")
	backlog := flag.Int("backlog", 0, "backlog: objects inserted at once and synced by worker and starter processes, against raw for the same count (0: skip; e.g. 100000)")
	backlogDAG := flag.Bool("backlog-dag", false, "backlog: a graph of sites (networks, slices, instances) rather than independent objects")
	cpuProfile := flag.String("cpuprofile", "", "write CPU profiles of this process (its in-process worker and starter) for the baseline and independent runs to <prefix>-baseline.pprof and <prefix>-independent.pprof")
	asJSON := flag.Bool("json", false, "print the result as one JSON record on stdout (the lines go to stderr)")
	rawAttributes := flag.Bool("raw-attributes", false, "give the raw workflows tsync's search attributes (set at start, TsyncState upserted at the end), so the ratios measure what tsync adds to them")
	rawEager := flag.Bool("raw-eager", false, "start the raw workflows eagerly (the first workflow task in the start's response, to the worker in this process), as tsync's starter does when a worker runs in its process")
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
	b := &bench{dbURL: testenv.DatabaseURL(), out: os.Stdout}
	b.workers = *workers
	b.rawAttributes = *rawAttributes
	b.rawEager = *rawEager
	if *asJSON {
		// stdout holds the JSON record only; the lines go to stderr.
		b.out = os.Stderr
	}
	if err := os.MkdirAll(filepath.Join("var", "bench"), 0o755); err != nil {
		fail(err)
	}
	// The warnings and errors of tsync's in-process worker and starter go
	// to a file (its info lines, one per step, are left out, as the raw
	// side's SDK logs nothing).
	tsyncLog := must(os.Create(filepath.Join("var", "bench", "tsync.log")))
	defer tsyncLog.Close()
	b.log = slog.New(slog.NewTextHandler(tsyncLog, &slog.HandlerOptions{Level: slog.LevelWarn}))
	serverLog := ""
	if *temporalAddr == "" {
		// The dev server's own log lines go to a file, so that the
		// output holds only the bench's figures.
		serverLog = filepath.Join("var", "bench", "temporal.log")
		logFile := must(os.Create(serverLog))
		defer logFile.Close()
		srv, err := testenv.StartTemporalLogging(ctx, logFile)
		if err != nil {
			fail(err)
		}
		defer func() { _ = srv.Stop() }()
		b.temporal = srv.HostPort()
		b.renew = func(ctx context.Context) error {
			if err := srv.Stop(); err != nil {
				return fmt.Errorf("stop the dev server: %w", err)
			}
			next, err := testenv.StartTemporalLogging(ctx, logFile)
			if err != nil {
				return err
			}
			srv, b.temporal = next, next.HostPort()
			return nil
		}
	} else {
		b.temporal = *temporalAddr
	}
	skipped := map[string]bool{}
	for _, s := range strings.Split(*skip, ",") {
		skipped[strings.TrimSpace(s)] = true
	}
	r := Result{Workers: b.workers, RawAttributes: b.rawAttributes, RawEager: b.rawEager, CPU: map[string]CPUPerObject{}}
	procs := "worker in this process"
	if b.workers > 0 {
		procs = fmt.Sprintf("%d worker process(es) (raw and tsync alike)", b.workers)
	}
	fmt.Fprintf(b.out, "tsync bench: temporal %s, database %s, %s\n", b.temporal, b.dbURL, procs)
	if serverLog != "" {
		fmt.Fprintf(b.out, "dev server log: %s\n", serverLog)
	}
	plan := roundsPlan{rounds: *rounds, n: *n, cpuPrefix: *cpuProfile,
		dag: dagShape{sites: *sites, networks: *networks, slices: *slicesPer, instances: *instances}}
	for _, kind := range []string{"independent", "dag"} {
		if !skipped[kind] {
			plan.kinds = append(plan.kinds, kind)
		}
	}
	if !skipped["baseline"] {
		if plan.rounds < 1 {
			plan.kinds = nil
		}
		r.Rounds = &Rounds{}
		if err := b.rounds(ctx, plan, &r); err != nil {
			fail(err)
		}
	}
	if len(r.CPU) > 0 {
		var parts []string
		for _, k := range []string{"raw", "independent", "dag"} {
			if c, ok := r.CPU[k]; ok {
				parts = append(parts, k+": "+c.String())
			}
		}
		fmt.Fprintf(b.out, "cpu per object (ms): %s\n", strings.Join(parts, "; "))
	}
	if !skipped["pickup"] {
		p50, p99 := must2(b.pickup(ctx, *samples))
		r.PickupP50Ms, r.PickupP99Ms = ms(p50), ms(p99)
		fmt.Fprintf(b.out, "pickup latency at idle (save -> SyncRecord starts, %d samples): p50 %.1f ms, p99 %.1f ms\n", *samples, r.PickupP50Ms, r.PickupP99Ms)
		rp50, rp99 := must2(b.rawPickup(ctx, *samples))
		r.RawPickupP50Ms, r.RawPickupP99Ms = ms(rp50), ms(rp99)
		fmt.Fprintf(b.out, "raw pickup latency at idle (start -> activity starts, %d samples): p50 %.1f ms, p99 %.1f ms\n", *samples, r.RawPickupP50Ms, r.RawPickupP99Ms)
	}
	if !skipped["cost"] {
		r.Costs = must(b.costs(ctx, *costN))
		b.printCosts(&r)
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
	if !skipped["restart"] {
		rs := must(b.restart(ctx, *restartN))
		r.Restart = &rs
		rs.print(b.out)
	}
	if *backlog > 0 {
		bl := must(b.backlog(ctx, *backlog, *backlogDAG))
		r.Backlog = &bl
	}
	if *asJSON {
		data, _ := json.MarshalIndent(r, "", "  ")
		fmt.Println(string(data))
	}
}

// costOrder is the order in which the kinds of sync are printed.
var costOrder = []string{"independent", "dag object, dependency in sync", "failure with one retry", "deferral", "dag of sites at once"}

// printCosts prints the "events per object:" and "actions per object:"
// lines, the raw workflow's first.
func (b *bench) printCosts(r *Result) {
	events := []string{fmt.Sprintf("raw %.1f", r.BaselineCost.Events)}
	acts := []string{fmt.Sprintf("raw %s", r.BaselineCost)}
	for _, k := range costOrder {
		c := r.Costs[k]
		events = append(events, fmt.Sprintf("%s %.1f", k, c.Events))
		acts = append(acts, fmt.Sprintf("%s %s", k, c))
	}
	fmt.Fprintf(b.out, "events per object: %s\n", strings.Join(events, "; "))
	fmt.Fprintf(b.out, "actions per object: %s\n", strings.Join(acts, "; "))
	if r.BaselineCost.Actions > 0 {
		r.IndependentActionsRatio = r.Costs["independent"].Actions / r.BaselineCost.Actions
		fmt.Fprintf(b.out, "actions ratio (independent / raw): %.2f\n", r.IndependentActionsRatio)
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

// sampleLatency measures samples latencies at idle, 100 ms apart: from
// calling trigger(i) to the time started receives, and returns their p50
// and p99. missing names what did not come within 30 s.
func sampleLatency(samples int, started <-chan time.Time, missing string, trigger func(i int) error) (p50, p99 time.Duration, err error) {
	var lat []time.Duration
	for i := range samples {
		begin := time.Now()
		if err := trigger(i); err != nil {
			return 0, 0, err
		}
		select {
		case at := <-started:
			lat = append(lat, at.Sub(begin))
		case <-time.After(30 * time.Second):
			return 0, 0, fmt.Errorf("%s within 30s", missing)
		}
		time.Sleep(100 * time.Millisecond)
	}
	slices.Sort(lat)
	return percentile(lat, 50), percentile(lat, 99), nil
}

// percentile returns the p-th percentile of sorted durations.
func percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := (len(sorted)*p + 99) / 100
	return sorted[min(max(i-1, 0), len(sorted)-1)]
}
