package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

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
	a, err := app.Open(ctx, b.config(schema), synchronizer(step), b.log)
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

// run runs a worker and a starter until the returned stop is called (see
// runWorkers and runStarter).
func (e *env) run(ctx context.Context) (stop func()) {
	stopWorkers, err := e.runWorkers(ctx)
	if err != nil {
		fail(err)
	}
	stopStarter := e.runStarter(ctx)
	return func() { stopStarter(); stopWorkers() }
}

// runWorkers runs the workers until the returned stop is called: one in
// this process, or e.workers worker processes (their warnings in
// var/bench/processes.log). It returns once they all poll the task queue,
// as the raw runs' workers do before their clock starts.
func (e *env) runWorkers(ctx context.Context) (stop func(), err error) {
	if e.workers > 0 {
		roles := make([]string, e.workers)
		for i := range roles {
			roles[i] = "worker"
		}
		log, stopRoles, err := e.startLogged(roles...)
		if err != nil {
			return nil, err
		}
		stop = func() { stopRoles(); log.Close() }
	} else {
		stop = inBackground(ctx, e.app.RunWorker)
	}
	if err := waitPolling(ctx, e.app.Client, e.app.Config.Temporal.TaskQueue, max(e.workers, 1)); err != nil {
		stop()
		return nil, err
	}
	return stop, nil
}

// runStarter runs the starter, in this process or (with e.workers) as a
// process, until the returned stop is called.
func (e *env) runStarter(ctx context.Context) (stop func()) {
	if e.workers > 0 {
		log, stopRoles, err := e.startLogged("starter")
		if err != nil {
			fail(err)
		}
		return func() { stopRoles(); log.Close() }
	}
	return inBackground(ctx, e.app.RunStarter)
}

// inBackground runs run in a goroutine until the returned stop is called,
// which cancels its context and waits for it to return.
func inBackground(ctx context.Context, run func(context.Context) error) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = run(ctx) }()
	return func() { cancel(); <-done }
}

// startLogged starts processes of roles, their output appended to
// var/bench/processes.log.
func (e *env) startLogged(roles ...string) (*os.File, func(), error) {
	log, err := os.OpenFile(filepath.Join("var", "bench", "processes.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, nil, err
	}
	_, stop, err := e.startRoles(log, roles...)
	if err != nil {
		log.Close()
		return nil, nil, err
	}
	return log, stop, nil
}

// waitPolling waits until n workers poll queue, for workflow tasks and for
// activity tasks, as the server's DescribeTaskQueue lists them.
func waitPolling(ctx context.Context, c client.Client, queue string, n int) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		polling := 0
		for _, kind := range []enumspb.TaskQueueType{enumspb.TASK_QUEUE_TYPE_WORKFLOW, enumspb.TASK_QUEUE_TYPE_ACTIVITY} {
			resp, err := c.DescribeTaskQueue(ctx, queue, kind)
			if err == nil && len(resp.GetPollers()) >= n {
				polling++
			}
		}
		if polling == 2 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("workers polling task queue %s: fewer than %d after a minute", queue, n)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// waitInSync waits until no object of the tables is pending. It asks
// whether any is, which stops at the first pending row: a count of them,
// 50 times a second, cost PostgreSQL about 0.3 ms of CPU per object of a
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
