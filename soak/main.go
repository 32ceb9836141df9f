// Command soak runs tsync for a bounded time against a dev server and
// PostgreSQL: it creates, updates and deletes objects and injects step
// failures and deferrals at random, while two worker processes sync them
// and the soak process runs the starter. Every 15 to 45 s it injects a
// fault of a kind chosen at random (see faults.go): a SIGKILL of the second
// worker process (restarted at once), 200 ms of latency, connections reset,
// or a 30 s blackhole on the network between the worker processes and
// Temporal, PostgreSQL or both (Shopify's toxiproxy, in the soak process),
// or every PostgreSQL session of the soak cut. The first worker process is
// never killed: the memory and goroutine counts of every process, printed
// after the warm-up and again after quiescence, show a leak. Then it
// prints an audit. Every step call, in either process, is recorded in a
// table of the soak's schema, from which the audit counts. It exits 1 when
// an object is lost (not in sync, or deleted but not purged, after
// quiescence), when two calls of one object's step ever ran at once, or
// when a call got an older version of its object than an earlier call had.
//
//	go run ./soak -duration 3m     (make soak SOAK_FLAGS='-duration 30m')
//
// The files: main.go the flags and the run, step.go the step and its calls
// table, load.go the changes, worker.go the worker processes, faults.go the
// faults, usage.go the memory and goroutine counts, audit.go quiescence and
// the audit.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"

	"github.com/tsync/tsync/app"
	"github.com/tsync/tsync/config"
	"github.com/tsync/tsync/internal/testenv"
)

func main() {
	duration := flag.Duration("duration", 2*time.Minute, "how long to create, update and delete objects and inject faults")
	quiesce := flag.Duration("quiesce", 3*time.Minute, "how long to wait for quiescence afterwards")
	rate := flag.Duration("every", 100*time.Millisecond, "time between two changes")
	temporalAddr := flag.String("temporal", "", "host:port of a Temporal server (default: start a dev server)")
	kinds := flag.String("faults", strings.Join(allFaults(), ","), "the kinds of fault to inject, comma-separated")
	workerProcess := flag.Bool("worker", false, "internal: run as a worker process of the soak (config from TSYNC_*)")
	flag.Parse()
	if *workerProcess {
		if err := runWorkerProcess(); err != nil {
			fmt.Fprintln(os.Stderr, "soak worker:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*duration, *quiesce, *rate, *temporalAddr, *kinds); err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
}

// soak is one run: its synchronizer, its worker processes, its faults, and
// the objects its load made.
type soak struct {
	start time.Time
	// cfg is the starter's configuration (straight to Temporal and
	// PostgreSQL); workerCfg the worker processes' (through the proxies).
	cfg, workerCfg config.Config
	app            *app.App
	// pool is the soak's own (calls and deaths tables, audit): faults
	// never cut it. appName is the application_name of the synchronizer's
	// sessions, in every process; recordURL the URL of the worker
	// processes' pool for the calls table.
	pool      *pgxpool.Pool
	appName   string
	recordURL string
	step      *step

	proxies map[string]*toxiproxy.Proxy // "temporal", "postgres"
	workers []*proc                     // worker-1 (never killed), worker-2
	calm    atomic.Bool                 // no more injected step failures
	procs   atomic.Int64                // worker processes started
	faults  map[string]int              // by kind
	kinds   []string                    // to choose from, as often as listed

	// The ids of the live objects the load made, and its counts.
	sites, slices, items                []int64
	created, updates, deleted, loadErrs int
}

func run(duration, quiesce, every time.Duration, temporalAddr, kinds string) error {
	kindPool, err := faultPool(kinds)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := time.Now()
	if temporalAddr == "" {
		srv, err := testenv.StartTemporal(ctx)
		if err != nil {
			return err
		}
		defer srv.Stop() //nolint:errcheck
		temporalAddr = srv.HostPort()
	}
	appName := "soak_" + testenv.Random(4)
	cfg := config.Default()
	cfg.ObserverName = appName
	cfg.Temporal.HostPort = temporalAddr
	cfg.Temporal.TaskQueue = cfg.ObserverName
	cfg.DatabaseURL = withParam(testenv.DatabaseURL(), "application_name="+appName)
	cfg.DatabaseSchema = appName
	cfg.LoopInterval = 500 * time.Millisecond
	cfg.Retry.InitialInterval = 100 * time.Millisecond
	cfg.Retry.MaxInterval = 2 * time.Second
	cfg.HeartbeatTimeout = 2 * time.Second
	if err := cfg.Validate(); err != nil {
		return err
	}
	pool, err := pgxpool.New(ctx, withParam(testenv.DatabaseURL(), "application_name="+appName+"_audit"))
	if err != nil {
		return err
	}
	defer pool.Close()
	defer pool.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+pgx.Identifier{appName}.Sanitize()+" CASCADE") //nolint:errcheck

	s := &soak{start: start, cfg: cfg, pool: pool, appName: appName, faults: map[string]int{}, kinds: kindPool,
		recordURL: withParam(testenv.DatabaseURL(), "application_name="+appName+"_record"),
		step:      &step{pool: pool, calls: pgx.Identifier{appName, "soak_calls"}.Sanitize()}}
	if err := s.openProxies(); err != nil {
		return err
	}
	defer s.closeProxies()
	quiet := slog.New(slog.DiscardHandler)
	if s.app, err = app.Open(ctx, cfg, synchronizer(s.step), quiet); err != nil {
		return err
	}
	defer s.app.Close()
	if _, err := pool.Exec(ctx, fmt.Sprintf(callsDDL, s.step.calls)+"; "+fmt.Sprintf(deathsDDL, s.deaths())); err != nil {
		return fmt.Errorf("calls table: %w", err)
	}
	fmt.Printf("soak: temporal %s, schema %s, task queue %s, %s of changes and faults\n", temporalAddr, appName, cfg.Temporal.TaskQueue, duration)

	wctx, wcancel := context.WithCancel(ctx)
	defer s.stopWorkers(wcancel)
	if err := s.startWorkers(wctx); err != nil {
		return err
	}
	sctx, scancel := context.WithCancel(ctx)
	starterDone := make(chan struct{})
	go func() { defer close(starterDone); _ = s.app.NewStarter().Run(sctx) }()
	defer func() { scancel(); <-starterDone }()

	end := start.Add(duration)
	loadDone := make(chan struct{})
	go func() { defer close(loadDone); s.load(ctx, end, every) }()
	warm := min(max(duration/10, 10*time.Second), time.Minute)
	time.Sleep(time.Until(start.Add(warm)))
	before := s.usage(ctx)
	printUsage("after the warm-up", before)
	if err := s.inject(ctx, end); err != nil {
		cancel()
		<-loadDone
		return err
	}
	<-loadDone
	fmt.Printf("changes done after %s; waiting up to %s for quiescence\n", time.Since(start).Round(time.Millisecond), quiesce)
	return s.report(ctx, quiesce, before)
}

// withParam adds a query parameter to a PostgreSQL URL.
func withParam(url, kv string) string {
	if strings.Contains(url, "?") {
		return url + "&" + kv
	}
	return url + "?" + kv
}

// withHost returns a PostgreSQL URL with its host:port replaced.
func withHost(dbURL, hostPort string) (string, error) {
	u, err := url.Parse(dbURL)
	if err != nil {
		return "", fmt.Errorf("database URL: %w", err)
	}
	u.Host = hostPort
	return u.String(), nil
}

// openProxies starts toxiproxy's proxies to Temporal and PostgreSQL, and
// points the worker processes' configuration at them.
func (s *soak) openProxies() error {
	// The toxics log every interruption through zerolog's global logger.
	zerolog.SetGlobalLevel(zerolog.WarnLevel)
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
	u, err := url.Parse(testenv.DatabaseURL())
	if err != nil {
		return fmt.Errorf("database URL: %w", err)
	}
	s.proxies = map[string]*toxiproxy.Proxy{}
	for name, upstream := range map[string]string{"temporal": s.cfg.Temporal.HostPort, "postgres": u.Host} {
		p := toxiproxy.NewProxy(srv, name, "127.0.0.1:0", upstream)
		if err := p.Start(); err != nil {
			s.closeProxies()
			return fmt.Errorf("proxy to %s: %w", name, err)
		}
		s.proxies[name] = p
	}
	s.workerCfg = s.cfg
	s.workerCfg.Temporal.HostPort = s.proxies["temporal"].Listen
	s.workerCfg.DatabaseURL, err = withHost(s.cfg.DatabaseURL, s.proxies["postgres"].Listen)
	return err
}

func (s *soak) closeProxies() {
	for _, p := range s.proxies {
		p.Stop()
	}
}
