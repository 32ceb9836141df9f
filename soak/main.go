// Command soak runs tsync for a bounded time against a dev server and
// PostgreSQL: it creates, updates and deletes objects and injects step
// failures and deferrals at random, while the worker is stopped and replaced
// by a worker process, which is SIGKILLed in turn and replaced again; then it
// waits for quiescence and prints an audit. Every step call, in either
// process, is recorded in a table of the soak's schema, from which the audit
// counts. It exits 1 when an object is lost (not in sync, or deleted but not
// purged, after quiescence), when two calls of one object's step ever ran at
// once, or when a call got an older version of its object than an earlier
// call had.
//
//	go run ./soak -duration 2m     (make soak SOAK_FLAGS='-duration 5m')
//
// The files: main.go the flags and the run, step.go the step and its calls
// table, load.go the changes, worker.go the workers and their hand-overs,
// audit.go quiescence and the audit.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/tsync/tsync/app"
	"github.com/tsync/tsync/config"
	"github.com/tsync/tsync/internal/testenv"
)

func main() {
	duration := flag.Duration("duration", 2*time.Minute, "how long to create, update and delete objects")
	quiesce := flag.Duration("quiesce", 3*time.Minute, "how long to wait for quiescence afterwards")
	rate := flag.Duration("every", 100*time.Millisecond, "time between two changes")
	temporalAddr := flag.String("temporal", "", "host:port of a Temporal server (default: start a dev server)")
	workerProcess := flag.Bool("worker", false, "internal: run as the worker process the soak starts and kills (config from TSYNC_*)")
	flag.Parse()
	if *workerProcess {
		if err := runWorkerProcess(); err != nil {
			fmt.Fprintln(os.Stderr, "soak worker:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*duration, *quiesce, *rate, *temporalAddr); err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
}

// soak is one run: its synchronizer, its workers, and the objects its load
// made.
type soak struct {
	cfg  config.Config
	app  *app.App
	pool *pgxpool.Pool
	step *step

	// worker is the in-process worker (stopped while the worker process
	// runs); child is the worker process once started, and killedAt a time
	// of PostgreSQL's clock after it died.
	worker   sdkworker.Worker
	child    *exec.Cmd
	killedAt time.Time

	// The ids of the live objects the load made, and its counts.
	sites, slices, items      []int64
	created, updates, deleted int
}

func run(duration, quiesce, every time.Duration, temporalAddr string) error {
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
	schema := "soak_" + testenv.Random(4)
	cfg := config.Default()
	cfg.ObserverName = "soak-" + testenv.Random(4)
	cfg.Temporal.HostPort = temporalAddr
	cfg.Temporal.TaskQueue = cfg.ObserverName
	cfg.DatabaseURL = testenv.DatabaseURL()
	cfg.DatabaseSchema = schema
	cfg.LoopInterval = 500 * time.Millisecond
	cfg.Retry.InitialInterval = 100 * time.Millisecond
	cfg.Retry.MaxInterval = 2 * time.Second
	cfg.HeartbeatTimeout = 2 * time.Second
	if err := cfg.Validate(); err != nil {
		return err
	}
	pool, err := pgxpool.New(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	defer pool.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE") //nolint:errcheck

	s := &soak{cfg: cfg, pool: pool, step: &step{pool: pool, calls: pgx.Identifier{schema, "soak_calls"}.Sanitize()}}
	s.step.chaos.Store(true)
	quiet := slog.New(slog.DiscardHandler)
	if s.app, err = app.Open(ctx, cfg, synchronizer(s.step), quiet); err != nil {
		return err
	}
	defer s.app.Close()
	if _, err := pool.Exec(ctx, fmt.Sprintf(callsDDL, s.step.calls)); err != nil {
		return fmt.Errorf("calls table: %w", err)
	}
	fmt.Printf("soak: temporal %s, schema %s, task queue %s, %s of changes\n", temporalAddr, schema, cfg.Temporal.TaskQueue, duration)

	if err := s.startWorker(); err != nil {
		return err
	}
	defer func() { s.worker.Stop() }()
	sctx, scancel := context.WithCancel(ctx)
	starterDone := make(chan struct{})
	go func() { defer close(starterDone); _ = s.app.NewStarter().Run(sctx) }()
	defer func() { scancel(); <-starterDone }()
	defer s.killChild()

	if err := s.load(ctx, duration, every); err != nil {
		return err
	}
	s.step.chaos.Store(false)
	fmt.Printf("changes done after %s; waiting up to %s for quiescence\n", time.Since(start).Round(time.Millisecond), quiesce)
	return s.report(ctx, start, quiesce)
}
