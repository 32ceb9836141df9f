package app

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/tsync/tsync/config"
	"github.com/tsync/tsync/internal/activities"
	"github.com/tsync/tsync/internal/ansible"
	"github.com/tsync/tsync/internal/starter"
	"github.com/tsync/tsync/internal/workflows"
	"github.com/tsync/tsync/worker"
)

// Params returns the workflow settings of the app.
func (a *App) Params() workflows.Params {
	p := Params(a.Config)
	p.SearchAttributes = a.searchAttributes
	return p
}

// Params returns the workflow settings from config (without search
// attributes, which need a registered namespace: see App.Params).
func Params(cfg config.Config) workflows.Params {
	coefficient := cfg.Retry.BackoffCoefficient
	if cfg.ObserverBackoffDisabled {
		coefficient = 1
	}
	return workflows.Params{
		Synchronizer: cfg.ObserverName,
		LoopInterval: cfg.LoopInterval,
		Retry: workflows.RetryParams{
			Initial:     cfg.Retry.InitialInterval,
			Max:         cfg.Retry.MaxInterval,
			Coefficient: coefficient,
		},
		StepTimeout:      cfg.StepTimeout,
		HeartbeatTimeout: cfg.HeartbeatTimeout,
	}
}

// Activities returns the synchronizer's activities.
func (a *App) Activities() *activities.Activities {
	acts := activities.New(a.sync, a.Store)
	acts.Metrics = a.Metrics
	acts.Log = a.Log.With("component", "activities")
	acts.Ansible = ansible.NewRunner(ansible.FromConfig(a.Config, a.Log.With("component", "ansible")))
	return acts
}

// RunWorker runs a worker until ctx is done, then stops it gracefully: it
// stops polling at once, lets the running steps finish for up to
// shutdown_timeout, cancels those still running and returns nil. The
// app's readiness fails from the moment ctx is done, and whenever the
// worker does not poll. With observer_disabled it runs nothing and only
// waits. While it runs, it logs when the database becomes unreachable and
// when it is back (watchDatabase); it does not exit for it.
func (a *App) RunWorker(ctx context.Context) error {
	defer a.watchingDatabase(ctx)()
	return a.runWorker(ctx, nil)
}

// runWorker is RunWorker; started, when not nil, is called once the worker
// polls.
func (a *App) runWorker(ctx context.Context, started func()) error {
	a.shutdownWith(ctx)
	if a.Config.ObserverDisabled {
		a.Log.Warn("observer_disabled is set: the worker runs nothing")
		<-ctx.Done()
		return nil
	}
	var polling atomic.Int32
	a.Health.Set(pollingCheck(&polling, a.Config.Temporal.TaskQueue))
	acts := a.Activities()
	defer activities.CloseLocks(acts)
	a.Log.Info("worker running", "task_queue", a.Config.Temporal.TaskQueue, "namespace", a.Config.Temporal.Namespace)
	return worker.Run(ctx, a.Client, worker.Options{
		TaskQueue:   a.Config.Temporal.TaskQueue,
		Workflows:   a.Config.Concurrency.Workflows,
		Activities:  a.Config.Concurrency.Activities,
		StopTimeout: a.Config.ShutdownTimeout,
		Watchers:    a.watcherActivities(),
		Logger:      a.Log.With("component", "worker"),
		Polling: func(p bool) {
			if p {
				polling.Store(pollingOn)
				if started != nil {
					started()
				}
			} else {
				polling.Store(pollingStopped)
			}
		},
	}, acts)
}

// shutdownWith marks the app's shutdown on its health (readiness fails)
// as soon as ctx, a process's context, is done.
func (a *App) shutdownWith(ctx context.Context) {
	context.AfterFunc(ctx, a.Health.Shutdown)
}

// NewStarter returns the synchronizer's starter.
func (a *App) NewStarter() *starter.Starter {
	return starter.New(a.Client, a.sync, a.Store, starter.Options{
		TaskQueue:    a.Config.Temporal.TaskQueue,
		LoopInterval: a.Config.LoopInterval,
		BatchSize:    a.Config.FetchBatch,
		Concurrency:  a.Config.Concurrency.Starts,
		Params:       a.Params(),
		Logger:       a.Log.With("component", "starter"),
		Metrics:      a.Metrics,
	})
}

// RunStarter runs the starter until ctx is done. The app's readiness fails
// from the moment ctx is done, and when the starter has neither begun a
// scan nor started a workflow for a while (several loop intervals, at
// least 2 minutes). With observer_disabled it starts nothing and only
// waits. While it runs, it logs when the database becomes unreachable and
// when it is back (watchDatabase); it does not exit for it.
func (a *App) RunStarter(ctx context.Context) error {
	defer a.watchingDatabase(ctx)()
	return a.runStarter(ctx)
}

func (a *App) runStarter(ctx context.Context) error {
	a.shutdownWith(ctx)
	if a.Config.ObserverDisabled {
		a.Log.Warn("observer_disabled is set: the starter starts nothing")
		<-ctx.Done()
		return nil
	}
	a.Log.Info("starter running", "loop_interval", a.Config.LoopInterval)
	s := a.NewStarter()
	a.Health.Set(progressCheck("starter", func() int64 { return s.Scans() + s.Started() }, starterWindow(a.Config.LoopInterval), time.Now))
	return s.Run(ctx)
}
