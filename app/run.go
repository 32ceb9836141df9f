package app

import (
	"context"

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
	acts.Ansible = ansible.NewRunner(ansible.FromConfig(a.Config, a.Log.With("component", "ansible")))
	return acts
}

// RunWorker runs a worker until ctx is done. With observer_disabled it runs
// nothing and only waits.
func (a *App) RunWorker(ctx context.Context) error {
	if a.Config.ObserverDisabled {
		a.Log.Warn("observer_disabled is set: the worker runs nothing")
		<-ctx.Done()
		return nil
	}
	a.Log.Info("worker running", "task_queue", a.Config.Temporal.TaskQueue, "namespace", a.Config.Temporal.Namespace)
	return worker.Run(ctx, a.Client, worker.Options{
		TaskQueue:  a.Config.Temporal.TaskQueue,
		Workflows:  a.Config.Concurrency.Workflows,
		Activities: a.Config.Concurrency.Activities,
		Watchers:   a.watcherActivities(),
		Logger:     a.Log.With("component", "worker"),
	}, a.Activities())
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

// RunStarter runs the starter until ctx is done. With observer_disabled it
// starts nothing and only waits.
func (a *App) RunStarter(ctx context.Context) error {
	if a.Config.ObserverDisabled {
		a.Log.Warn("observer_disabled is set: the starter starts nothing")
		<-ctx.Done()
		return nil
	}
	a.Log.Info("starter running", "loop_interval", a.Config.LoopInterval)
	return a.NewStarter().Run(ctx)
}
