// Command soak runs tsync for a bounded time against a dev server and
// PostgreSQL: it creates, updates and deletes objects, injects step failures
// and deferrals at random, stops and replaces the worker, then waits for
// quiescence and prints an audit. It exits 1 when an object is lost: not in
// sync, or deleted but not purged, after quiescence (or when two calls of
// one object's step ever ran at once).
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
	"sync"
	"sync/atomic"
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
// and counts what it does.
type step struct {
	chaos                                        atomic.Bool
	calls, syncs, retries, deferrals, errs, dels atomic.Int64
	concurrent                                   atomic.Int64

	mu     sync.Mutex
	active map[models.Ref]bool
	seen   map[string]bool // "ref@updated" versions called at least once
}

func (s *step) Synchronizes() []string { return []string{"Site", "Slice", "Item"} }

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

func (s *step) enter(obj models.Object) func() {
	r := ref(obj)
	key := fmt.Sprintf("%s@%s", r, obj.SyncState().Updated.Format(time.RFC3339Nano))
	s.mu.Lock()
	if s.active[r] {
		s.concurrent.Add(1)
	}
	s.active[r] = true
	if s.seen[key] {
		s.retries.Add(1)
	}
	s.seen[key] = true
	s.mu.Unlock()
	return func() { s.mu.Lock(); delete(s.active, r); s.mu.Unlock() }
}

func (s *step) SyncRecord(ctx context.Context, obj models.Object) error {
	defer s.enter(obj)()
	s.calls.Add(1)
	select {
	case <-time.After(time.Duration(rand.IntN(20)) * time.Millisecond):
	case <-ctx.Done():
		return ctx.Err()
	}
	if s.chaos.Load() {
		switch n := rand.IntN(100); {
		case n < 10:
			s.errs.Add(1)
			return errors.New("injected failure")
		case n < 15:
			s.deferrals.Add(1)
			return tsync.Deferf("injected deferral")
		}
	}
	s.syncs.Add(1)
	return nil
}

func (s *step) DeleteRecord(ctx context.Context, obj models.Object) error {
	defer s.enter(obj)()
	if s.chaos.Load() && rand.IntN(100) < 10 {
		s.errs.Add(1)
		return errors.New("injected delete failure")
	}
	s.dels.Add(1)
	return nil
}

func main() {
	duration := flag.Duration("duration", 2*time.Minute, "how long to create, update and delete objects")
	quiesce := flag.Duration("quiesce", 3*time.Minute, "how long to wait for quiescence afterwards")
	rate := flag.Duration("every", 100*time.Millisecond, "time between two changes")
	temporalAddr := flag.String("temporal", "", "host:port of a Temporal server (default: start a dev server)")
	flag.Parse()
	if err := run(*duration, *quiesce, *rate, *temporalAddr); err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
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

	st := &step{active: map[models.Ref]bool{}, seen: map[string]bool{}}
	st.chaos.Store(true)
	quiet := slog.New(slog.DiscardHandler)
	a, err := app.Open(ctx, cfg, tsync.Synchronizer{Models: registry(), Steps: []tsync.Step{st}}, quiet)
	if err != nil {
		return err
	}
	defer a.Close()
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

	// The changes: creates, updates, deletes; the worker replaced at 1/3 and
	// 2/3 of the time.
	var sites, slices, items []int64
	var created, updates, deleted int
	restarts := 0
	end := time.Now().Add(duration)
	restartAt := []time.Time{time.Now().Add(duration / 3), time.Now().Add(2 * duration / 3)}
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
		if len(restartAt) > 0 && time.Now().After(restartAt[0]) {
			restartAt = restartAt[1:]
			w.Stop()
			time.Sleep(time.Duration(rand.IntN(1000)) * time.Millisecond)
			if w, err = newWorker(); err != nil {
				return err
			}
			restarts++
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
	fmt.Printf("audit after %s:\n", time.Since(start).Round(time.Millisecond))
	fmt.Printf("  objects     %d created, %d live, %d updates, %d deleted\n", created, live, updates, deleted)
	fmt.Printf("  worker      %d restarts\n", restarts)
	fmt.Printf("  syncs       %d step calls, %d succeeded\n", st.calls.Load(), st.syncs.Load())
	fmt.Printf("  retries     %d (calls of an object version called before)\n", st.retries.Load())
	fmt.Printf("  deferrals   %d\n", st.deferrals.Load())
	fmt.Printf("  errors      %d (injected)\n", st.errs.Load())
	fmt.Printf("  deletes     %d\n", st.dels.Load())
	fmt.Printf("  concurrent  %d\n", st.concurrent.Load())
	fmt.Printf("  lost        %d (%d not in sync, %d deleted but not purged)\n", lostN, notSynced, notPurged)
	if lostN > 0 || st.concurrent.Load() > 0 {
		return fmt.Errorf("%d objects lost, %d concurrent step calls", lostN, st.concurrent.Load())
	}
	return nil
}
