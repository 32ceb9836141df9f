package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tsync/tsync"
	"github.com/tsync/tsync/app"
	"github.com/tsync/tsync/config"
	"github.com/tsync/tsync/internal/testenv"
	"github.com/tsync/tsync/internal/testmodels"
	"github.com/tsync/tsync/models"
)

// benchModels is the benchmark's models: independent Items, and the demo's
// diamond (the chain Site <- Slice <- Instance, with the Networks of each
// Site that Instances attach to).
func benchModels() []models.Object {
	return append([]models.Object{new(testmodels.Item)}, testmodels.ChainNetwork()...)
}

// synchronizer is the benchmark synchronizer: step on every model.
func synchronizer(step tsync.Step) tsync.Synchronizer {
	return tsync.Synchronizer{Models: testmodels.Registry(benchModels()...), Steps: []tsync.Step{step}}
}

// noop is a step for every model that does nothing but tell when it starts.
type noop struct {
	started chan<- time.Time // nil: nobody listens
}

func (noop) Synchronizes() []models.Object { return benchModels() }

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

// env is a synchronizer of the benchmark models in a fresh schema.
type env struct {
	app    *app.App
	schema string
	pool   *pgxpool.Pool
	// workers is the number of worker processes run runs (0: a worker and
	// a starter in this process).
	workers int
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

func (b *bench) open(ctx context.Context, step tsync.Step) (*env, func(), error) {
	pool, err := pgxpool.New(ctx, b.dbURL)
	if err != nil {
		return nil, nil, err
	}
	schema := "bench_" + testenv.Random(4)
	a, err := app.Open(ctx, b.config(schema), synchronizer(step), b.quiet)
	if err != nil {
		pool.Close()
		return nil, nil, err
	}
	cleanup := func() {
		a.Close()
		_, _ = pool.Exec(context.Background(), "DROP SCHEMA "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
		pool.Close()
	}
	return &env{app: a, schema: schema, pool: pool, workers: b.workers}, cleanup, nil
}

func (e *env) table(name string) string { return pgx.Identifier{e.schema, name}.Sanitize() }

// insertItems inserts n pending Items, ids 1 to n.
func (e *env) insertItems(ctx context.Context, n int) error {
	_, err := e.pool.Exec(ctx, `INSERT INTO `+e.table("item")+` (name) SELECT 'item-' || g FROM generate_series(1, $1::int) g`, n)
	return err
}

// run runs a worker and a starter until the returned stop is called: in
// this process, or as e.workers worker processes and a starter process
// (their warnings in var/bench/processes.log).
func (e *env) run(ctx context.Context) (stop func()) {
	if e.workers > 0 {
		roles := []string{"starter"}
		for range e.workers {
			roles = append(roles, "worker")
		}
		log, err := os.OpenFile(filepath.Join("var", "bench", "processes.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			fail(err)
		}
		_, stop, err := e.startRoles(log, roles...)
		if err != nil {
			fail(err)
		}
		return func() { stop(); log.Close() }
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = e.app.RunWorker(ctx) }()
	go func() { defer wg.Done(); _ = e.app.RunStarter(ctx) }()
	return func() { cancel(); wg.Wait() }
}

// waitInSync waits until no object of the tables is pending. It asks
// whether any is, which stops at the first pending row: a count of them,
// 50 times a second, cost PostgreSQL about 0.5 ms of CPU per object of a
// 2,000-object run, charged to tsync's side.
func (e *env) waitInSync(ctx context.Context, tables ...string) error {
	deadline := time.Now().Add(30 * time.Minute)
	for time.Now().Before(deadline) {
		pending := false
		for _, t := range tables {
			if err := e.pool.QueryRow(ctx, `SELECT EXISTS (SELECT FROM `+e.table(t)+` WHERE `+models.PendingPredicate+`)`).Scan(&pending); err != nil {
				return err
			}
			if pending {
				break
			}
		}
		if !pending {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("not in sync after 30 minutes")
}
