package app

import (
	"context"
	"fmt"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/tsync/tsync/internal/watchers"
)

// watcherActivities returns the activities of the synchronizer's watchers,
// or nil when it has none. Workers register them whether or not
// observer_enable_watchers is on, so that a worker can serve a dispatcher
// started with it on.
func (a *App) watcherActivities() *watchers.Activities {
	if len(a.sync.Watchers()) == 0 {
		return nil
	}
	acts := watchers.NewActivities(a.sync, a.Store)
	if a.Log != nil {
		acts.Log = a.Log.With("component", "watchers")
	}
	return acts
}

// Stream returns the Redis stream of the changes of the app's schema.
func (a *App) Stream() string { return watchers.StreamName(a.Config.DatabaseSchema) }

// newRelay returns the relay of the app's outbox to its stream.
func (a *App) newRelay() *watchers.Relay {
	return watchers.NewRelay(a.Store, a.Redis, watchers.RelayOptions{
		Stream:    a.Stream(),
		BatchSize: a.Config.FetchBatch,
		Interval:  a.Config.LoopInterval,
		Logger:    a.Log.With("component", "relay"),
	})
}

// newDispatcher returns the dispatcher of the app's watchers: consumer
// group observer_name on the app's stream.
func (a *App) newDispatcher() (*watchers.Dispatcher, error) {
	return watchers.NewDispatcher(a.Redis, a.Client, a.sync, a.Store, watchers.Options{
		Stream:      a.Stream(),
		Group:       a.Config.ObserverName,
		TaskQueue:   a.Config.Temporal.TaskQueue,
		Params:      a.Params(),
		Concurrency: a.Config.Concurrency.Starts,
		Logger:      a.Log.With("component", "dispatcher"),
	})
}

// RunDispatcher runs the event-based path until ctx is done: the relay,
// which publishes the committed changes of the outbox to the Redis stream,
// and the dispatcher, which starts a watcher workflow for every watcher and
// object each change affects. Run any number of them; workers run the
// workflows. It fails unless observer_enable_watchers is on; with
// observer_disabled it runs nothing and only waits. While it runs, it logs
// when the database becomes unreachable and when it is back
// (watchDatabase); it does not exit for it.
func (a *App) RunDispatcher(ctx context.Context) error {
	if !a.Config.ObserverEnableWatchers || a.Redis == nil {
		return a.runDispatcher(ctx)
	}
	defer a.watchingDatabase(ctx)()
	return a.runDispatcher(ctx)
}

func (a *App) runDispatcher(ctx context.Context) error {
	if !a.Config.ObserverEnableWatchers || a.Redis == nil {
		return fmt.Errorf("dispatcher: observer_enable_watchers is off, so there are no changes to dispatch (set it, or TSYNC_OBSERVER_ENABLE_WATCHERS=true)")
	}
	// Readiness: Redis answers, and no shutdown has begun.
	a.shutdownWith(ctx)
	a.Health.Set(redisCheck(a.Redis))
	if a.Config.ObserverDisabled {
		a.Log.Warn("observer_disabled is set: the dispatcher runs nothing")
		<-ctx.Done()
		return nil
	}
	d, err := a.newDispatcher()
	if err != nil {
		return err
	}
	if len(a.sync.Watchers()) == 0 {
		a.Log.Warn("the synchronizer has no watchers: the dispatcher acknowledges every change and starts nothing")
	}
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return a.newRelay().Run(ctx) })
	g.Go(func() error { return d.Run(ctx) })
	return g.Wait()
}

// Run runs the worker, the starter and, with observer_enable_watchers, the
// dispatcher, until ctx is done: a whole synchronizer in one process. The
// first of them to fail stops the others, and Run returns its error, named
// ("starter: ..."). One database watcher serves them all.
//
// The starter begins once the worker polls: the starts of its first scan,
// often a whole backlog, are then eager, each run's first workflow task
// handed back to this process's worker in the start's response, rather
// than queued for any worker polling.
func (a *App) Run(ctx context.Context) error {
	defer a.watchingDatabase(ctx)()
	up := make(chan struct{})
	var once sync.Once
	procs := map[string]func(context.Context) error{
		"worker": func(ctx context.Context) error {
			return a.runWorker(ctx, func() { once.Do(func() { close(up) }) })
		},
		"starter": func(ctx context.Context) error {
			if !a.Config.ObserverDisabled {
				select {
				case <-up:
				case <-ctx.Done():
					return nil
				}
			}
			return a.runStarter(ctx)
		},
	}
	if a.Config.ObserverEnableWatchers {
		procs["dispatcher"] = a.runDispatcher
	}
	g, ctx := errgroup.WithContext(ctx)
	for name, run := range procs {
		g.Go(func() error {
			if err := run(ctx); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			return nil
		})
	}
	return g.Wait()
}
