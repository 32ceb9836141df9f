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
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/tsync/tsync"
	"github.com/tsync/tsync/app"
	"github.com/tsync/tsync/config"
	"github.com/tsync/tsync/internal/testenv"
	"github.com/tsync/tsync/models"
	"github.com/tsync/tsync/worker"
)

type (
	Site struct {
		models.Base
		Name string `db:"name"`
	}
	Slice struct {
		models.Base
		Name   string `db:"name"`
		SiteID int64  `db:"site_id"`
	}
	Item struct {
		models.Base
		Name string `db:"name"`
	}
)

func registry() *models.Registry {
	reg := models.NewRegistry()
	models.MustRegister[Site](reg, "Site")
	models.MustRegister[Slice](reg, "Slice", models.Link{Dest: "Site", Via: "site_id"})
	models.MustRegister[Item](reg, "Item")
	return reg
}

// step syncs every model, failing or deferring at random while chaos is on,
// and records each call in the table calls (see callsDDL).
type step struct {
	chaos atomic.Bool
	pool  *pgxpool.Pool
	calls string // the calls table, quoted
}

// callsDDL creates the calls table: one row a step call, from either
// worker process; end_at and outcome stay NULL for a call its process's
// death cut short.
const callsDDL = `CREATE TABLE %s (call bigserial PRIMARY KEY, pid int NOT NULL, op text NOT NULL,
	model text NOT NULL, object bigint NOT NULL, updated timestamptz NOT NULL,
	start_at timestamptz NOT NULL, end_at timestamptz, outcome text)`

func (s *step) Synchronizes() []models.Object {
	return []models.Object{new(Site), new(Slice), new(Item)}
}

func ref(obj models.Object) models.Ref {
	b := obj.SyncState()
	switch obj.(type) {
	case *Site:
		return models.Ref{Model: "Site", ID: b.ID}
	case *Slice:
		return models.Ref{Model: "Slice", ID: b.ID}
	}
	return models.Ref{Model: "Item", ID: b.ID}
}

// record runs body as a call of op on obj, recorded in the calls table from
// its start to its outcome.
func (s *step) record(ctx context.Context, op string, obj models.Object, body func(context.Context) (string, error)) error {
	r := ref(obj)
	var call int64
	if err := s.pool.QueryRow(ctx, `INSERT INTO `+s.calls+` (pid, op, model, object, updated, start_at)
		VALUES ($1, $2, $3, $4, $5, clock_timestamp()) RETURNING call`, os.Getpid(), op, r.Model, r.ID, obj.SyncState().Updated).Scan(&call); err != nil {
		return fmt.Errorf("record the call: %w", err)
	}
	outcome, err := body(ctx)
	if _, rerr := s.pool.Exec(context.WithoutCancel(ctx), `UPDATE `+s.calls+` SET end_at = clock_timestamp(), outcome = $2 WHERE call = $1`, call, outcome); rerr != nil {
		return errors.Join(err, fmt.Errorf("record the outcome: %w", rerr))
	}
	return err
}

func (s *step) SyncRecord(ctx context.Context, obj models.Object) error {
	return s.record(ctx, "sync", obj, func(ctx context.Context) (string, error) {
		select {
		case <-time.After(time.Duration(rand.IntN(20)) * time.Millisecond):
		case <-ctx.Done():
			return "cancelled", ctx.Err()
		}
		if s.chaos.Load() {
			switch n := rand.IntN(100); {
			case n < 10:
				return "error", errors.New("injected failure")
			case n < 15:
				return "deferred", tsync.Deferf("injected deferral")
			}
		}
		return "ok", nil
	})
}

func (s *step) DeleteRecord(ctx context.Context, obj models.Object) error {
	return s.record(ctx, "delete", obj, func(ctx context.Context) (string, error) {
		if s.chaos.Load() && rand.IntN(100) < 10 {
			return "error", errors.New("injected delete failure")
		}
		return "ok", nil
	})
}

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

// callsEnv names the calls table for the worker process.
const callsEnv = "SOAK_CALLS_TABLE"

// runWorkerProcess is the worker process: the same step, chaos on, until it
// is killed.
func runWorkerProcess() error {
	ctx := context.Background()
	cfg, err := config.Load("", os.Environ())
	if err != nil {
		return err
	}
	pool, err := pgxpool.New(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	st := &step{pool: pool, calls: os.Getenv(callsEnv)}
	st.chaos.Store(true)
	a, err := app.Open(ctx, cfg, tsync.Synchronizer{Models: registry(), Steps: []tsync.Step{st}}, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer a.Close()
	return a.RunWorker(ctx)
}

// startWorkerProcess starts this program as a worker process of cfg's
// synchronizer.
func startWorkerProcess(cfg config.Config, calls string) (*exec.Cmd, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "-worker")
	cmd.Env = append(append(os.Environ(), cfg.Environ()...), callsEnv+"="+calls)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.SysProcAttr = testenv.ServerProcAttr() // dies with the soak
	return cmd, cmd.Start()
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

	st := &step{pool: pool, calls: pgx.Identifier{schema, "soak_calls"}.Sanitize()}
	st.chaos.Store(true)
	quiet := slog.New(slog.DiscardHandler)
	a, err := app.Open(ctx, cfg, tsync.Synchronizer{Models: registry(), Steps: []tsync.Step{st}}, quiet)
	if err != nil {
		return err
	}
	defer a.Close()
	if _, err := pool.Exec(ctx, fmt.Sprintf(callsDDL, st.calls)); err != nil {
		return fmt.Errorf("calls table: %w", err)
	}
	fmt.Printf("soak: temporal %s, schema %s, task queue %s, %s of changes\n", temporalAddr, schema, cfg.Temporal.TaskQueue, duration)

	newWorker := func() (sdkworker.Worker, error) {
		w, err := worker.New(a.Client, worker.Options{TaskQueue: cfg.Temporal.TaskQueue, StopTimeout: time.Second}, a.Activities())
		if err != nil {
			return nil, err
		}
		return w, w.Start()
	}
	w, err := newWorker()
	if err != nil {
		return err
	}
	defer func() { w.Stop() }()
	sctx, scancel := context.WithCancel(ctx)
	starterDone := make(chan struct{})
	go func() { defer close(starterDone); _ = a.NewStarter().Run(sctx) }()
	defer func() { scancel(); <-starterDone }()

	// The changes: creates, updates, deletes. At 1/3 of the time the
	// in-process worker stops (gracefully) and a worker process takes over;
	// at 2/3 that process is SIGKILLed and an in-process worker takes over.
	var sites, slices, items []int64
	var created, updates, deleted int
	var child *exec.Cmd
	var killedAt time.Time // PostgreSQL's clock, after the child died
	defer func() {
		if child != nil && killedAt.IsZero() {
			_ = child.Process.Kill()
			_ = child.Wait()
		}
	}()
	end := time.Now().Add(duration)
	switchAt := []time.Time{time.Now().Add(duration / 3), time.Now().Add(2 * duration / 3)}
	pick := func(ids *[]int64) (int64, bool) {
		if len(*ids) == 0 {
			return 0, false
		}
		return (*ids)[rand.IntN(len(*ids))], true
	}
	remove := func(ids *[]int64, id int64) {
		for i, x := range *ids {
			if x == id {
				*ids = append((*ids)[:i], (*ids)[i+1:]...)
				return
			}
		}
	}
	for time.Now().Before(end) {
		if len(switchAt) > 0 && time.Now().After(switchAt[0]) {
			switchAt = switchAt[1:]
			if child == nil {
				w.Stop()
				if child, err = startWorkerProcess(cfg, st.calls); err != nil {
					return fmt.Errorf("start the worker process: %w", err)
				}
			} else {
				// Kill it with a step call under way, when one comes within 2s.
				for wait := time.Now().Add(2 * time.Second); time.Now().Before(wait); time.Sleep(time.Millisecond) {
					var busy bool
					if err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT FROM `+st.calls+` WHERE pid = $1 AND end_at IS NULL)`, child.Process.Pid).Scan(&busy); err != nil {
						return err
					}
					if busy {
						break
					}
				}
				if err := child.Process.Signal(syscall.SIGKILL); err != nil {
					return fmt.Errorf("kill the worker process: %w", err)
				}
				_ = child.Wait()
				if err := pool.QueryRow(ctx, `SELECT clock_timestamp()`).Scan(&killedAt); err != nil {
					return err
				}
				time.Sleep(time.Duration(rand.IntN(1000)) * time.Millisecond)
				if w, err = newWorker(); err != nil {
					return err
				}
			}
		}
		n := rand.IntN(100)
		switch {
		case n < 5 || len(sites) == 0:
			s := &Site{Name: fmt.Sprintf("site-%d", created)}
			if err := a.Store.Insert(ctx, s); err != nil {
				return err
			}
			sites, created = append(sites, s.ID), created+1
		case n < 20:
			site, _ := pick(&sites)
			s := &Slice{Name: fmt.Sprintf("slice-%d", created), SiteID: site}
			if err := a.Store.Insert(ctx, s); err != nil {
				return err
			}
			slices, created = append(slices, s.ID), created+1
		case n < 60:
			it := &Item{Name: fmt.Sprintf("item-%d", created)}
			if err := a.Store.Insert(ctx, it); err != nil {
				return err
			}
			items, created = append(items, it.ID), created+1
		case n < 85:
			id, ok := pick(&items)
			if !ok {
				continue
			}
			obj, err := a.Store.Get(ctx, "Item", id)
			if err != nil {
				return err
			}
			obj.(*Item).Name += "+"
			if err := a.Store.Save(ctx, obj); err != nil {
				return err
			}
			updates++
		case n < 95:
			id, ok := pick(&items)
			if !ok {
				continue
			}
			if err := a.Store.Delete(ctx, "Item", id); err != nil {
				return err
			}
			remove(&items, id)
			deleted++
		default:
			id, ok := pick(&slices)
			if !ok {
				continue
			}
			if err := a.Store.Delete(ctx, "Slice", id); err != nil {
				return err
			}
			remove(&slices, id)
			deleted++
		}
		time.Sleep(every)
	}
	st.chaos.Store(false)
	fmt.Printf("changes done after %s; waiting up to %s for quiescence\n", time.Since(start).Round(time.Millisecond), quiesce)

	// Quiescence: nothing pending (every live object in sync, every deleted
	// one purged) and no workflow running.
	lost := func() (notSynced, notPurged int, err error) {
		for _, name := range []string{"Site", "Slice", "Item"} {
			m, _ := a.Store.Graph().Model(name)
			t := pgx.Identifier{schema, m.Table}.Sanitize()
			var ns, np int
			if err := pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE NOT deleted AND NOT (backend_code = 1 AND enacted IS NOT DISTINCT FROM updated)),
				count(*) FILTER (WHERE deleted) FROM `+t).Scan(&ns, &np); err != nil {
				return 0, 0, err
			}
			notSynced, notPurged = notSynced+ns, notPurged+np
		}
		return notSynced, notPurged, nil
	}
	deadline := time.Now().Add(quiesce)
	var notSynced, notPurged int
	for {
		if notSynced, notPurged, err = lost(); err != nil {
			return err
		}
		if notSynced+notPurged == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	var live int
	for _, name := range []string{"Site", "Slice", "Item"} {
		m, _ := a.Store.Graph().Model(name)
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{schema, m.Table}.Sanitize()).Scan(&n); err != nil {
			return err
		}
		live += n
	}
	lostN := notSynced + notPurged
	if child == nil || killedAt.IsZero() {
		return fmt.Errorf("the worker process was not started and killed: run longer (-duration)")
	}
	a2 := audit{childPid: child.Process.Pid, killedAt: killedAt}
	if err := a2.read(ctx, pool, st.calls); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	fmt.Printf("audit after %s:\n", time.Since(start).Round(time.Millisecond))
	fmt.Printf("  objects     %d created, %d live, %d updates, %d deleted\n", created, live, updates, deleted)
	fmt.Printf("  worker      replaced by a worker process (pid %d), which was SIGKILLed with %d step calls under way, then replaced\n", a2.childPid, a2.cut)
	fmt.Printf("  syncs       %d step calls (%d by the killed process), %d succeeded\n", a2.calls, a2.childCalls, a2.synced)
	fmt.Printf("  retries     %d (calls of an object version called before)\n", a2.retries)
	fmt.Printf("  deferrals   %d\n", a2.deferrals)
	fmt.Printf("  errors      %d (injected)\n", a2.errs)
	fmt.Printf("  deletes     %d\n", a2.deletes)
	fmt.Printf("  concurrent  %d\n", a2.concurrent)
	fmt.Printf("  stale       %d (calls on an older version than an earlier call saw)\n", a2.stale)
	fmt.Printf("  lost        %d (%d not in sync, %d deleted but not purged)\n", lostN, notSynced, notPurged)
	if lostN > 0 || a2.concurrent > 0 || a2.stale > 0 {
		return fmt.Errorf("%d objects lost, %d concurrent step calls, %d stale step calls", lostN, a2.concurrent, a2.stale)
	}
	return nil
}

// audit is what the calls table says of the step calls.
type audit struct {
	childPid int
	killedAt time.Time

	calls, childCalls, cut, synced, deletes, errs, deferrals, retries, concurrent, stale int
}

// read counts from the calls table. A call the kill cut short ended when
// the process died, at the latest; any other call without an end never
// ended, and overlaps everything after it.
func (a *audit) read(ctx context.Context, pool *pgxpool.Pool, calls string) error {
	if err := pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE pid = $1), count(*) FILTER (WHERE pid = $1 AND end_at IS NULL),
		count(*) FILTER (WHERE op = 'sync' AND outcome = 'ok'), count(*) FILTER (WHERE op = 'delete' AND outcome = 'ok'),
		count(*) FILTER (WHERE outcome = 'error'), count(*) FILTER (WHERE outcome = 'deferred'),
		count(*) - count(DISTINCT (op, model, object, updated)) FROM `+calls, a.childPid).
		Scan(&a.calls, &a.childCalls, &a.cut, &a.synced, &a.deletes, &a.errs, &a.deferrals, &a.retries); err != nil {
		return err
	}
	ended := `coalesce(end_at, CASE WHEN pid = $1 THEN $2::timestamptz ELSE 'infinity' END)`
	if err := pool.QueryRow(ctx, `WITH c AS (SELECT call, model, object, start_at, `+ended+` AS end_at FROM `+calls+`)
		SELECT count(*) FROM c AS x JOIN c AS y ON x.model = y.model AND x.object = y.object AND x.call < y.call
		AND y.start_at < x.end_at AND x.start_at < y.end_at`, a.childPid, a.killedAt).Scan(&a.concurrent); err != nil {
		return err
	}
	return pool.QueryRow(ctx, `SELECT count(*) FROM (SELECT updated < max(updated) OVER (PARTITION BY op, model, object ORDER BY start_at, call
		ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS stale FROM `+calls+`) AS s WHERE stale`).Scan(&a.stale)
}
