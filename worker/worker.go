// Package worker runs a synchronizer's workflows and activities on its
// Temporal task queue. Scale out by running more workers on the same queue.
package worker

import (
	"context"
	"fmt"
	"time"

	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/tsync/tsync/activities"
	"github.com/tsync/tsync/watchers"
	"github.com/tsync/tsync/workflows"
)

// Options configure a worker. Zero values take the SDK's defaults.
type Options struct {
	// TaskQueue is the synchronizer's task queue (required).
	TaskQueue string
	// Workflows bounds the workflow tasks run at once.
	Workflows int
	// Activities bounds the activities (steps) run at once.
	Activities int
	// Pollers is the number of pollers of each kind (workflow and activity
	// tasks); more pollers pick up bursts of work faster. 0 means 8.
	Pollers int
	// StopTimeout is how long a stopping worker lets running steps finish.
	StopTimeout time.Duration
	// Watchers, when set, are the watcher activities: the worker then runs
	// the watcher workflows too (a hybrid synchronizer runs steps and
	// watchers in one worker). nil: no watchers.
	Watchers *watchers.Activities
}

// Register registers tsync's workflows and acts on r.
func Register(r sdkworker.Registry, acts *activities.Activities) {
	r.RegisterWorkflow(workflows.SyncWorkflow)
	r.RegisterWorkflow(workflows.DeleteWorkflow)
	r.RegisterActivity(acts)
}

// New returns a worker, not started, that runs tsync's workflows and acts.
func New(c client.Client, opts Options, acts *activities.Activities) (sdkworker.Worker, error) {
	if opts.TaskQueue == "" {
		return nil, fmt.Errorf("worker: no task queue")
	}
	if opts.Pollers <= 0 {
		opts.Pollers = 8
	}
	w := sdkworker.New(c, opts.TaskQueue, sdkworker.Options{
		MaxConcurrentWorkflowTaskPollers:       opts.Pollers,
		MaxConcurrentActivityTaskPollers:       opts.Pollers,
		MaxConcurrentActivityExecutionSize:     opts.Activities,
		MaxConcurrentWorkflowTaskExecutionSize: opts.Workflows,
		WorkerStopTimeout:                      opts.StopTimeout,
	})
	Register(w, acts)
	if opts.Watchers != nil {
		watchers.Register(w, opts.Watchers)
	}
	return w, nil
}

// Run runs a worker until ctx is done, then stops it.
func Run(ctx context.Context, c client.Client, opts Options, acts *activities.Activities) error {
	w, err := New(c, opts, acts)
	if err != nil {
		return err
	}
	if err := w.Start(); err != nil {
		return fmt.Errorf("worker on %s: %w", opts.TaskQueue, err)
	}
	<-ctx.Done()
	w.Stop()
	return nil
}
