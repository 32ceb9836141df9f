// Package worker runs a synchronizer's workflows and activities on its
// Temporal task queue. Scale out by running more workers on the same queue.
package worker

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/tsync/tsync/activities"
	stepcalls "github.com/tsync/tsync/internal/activities"
	"github.com/tsync/tsync/internal/watchers"
	"github.com/tsync/tsync/internal/workflows"
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
	// StopTimeout is how long a stopping worker lets running steps finish
	// (the SDK's WorkerStopTimeout): Stop stops polling at once, waits for
	// the running activities up to StopTimeout, then cancels their
	// contexts (with cause sdkworker.ErrWorkerShutdown) and returns. A step
	// done in time has its outcome recorded and reported; one cancelled
	// runs again, on a worker still running or the next one started, once
	// its attempt fails or misses its heartbeat. 0 cancels them at once.
	StopTimeout time.Duration
	// Watchers, when set, are the watcher activities: the worker then runs
	// the watcher workflows too (a hybrid synchronizer runs steps and
	// watchers in one worker). nil: no watchers.
	Watchers *watchers.Activities
	// OnFatalError is called when the worker stops by itself on an error
	// the SDK deems fatal (see sdkworker.Options.OnFatalError).
	OnFatalError func(error)
	// Polling, when set, is told by Run whether its worker polls the task
	// queue: true once a worker has started, false as soon as Run stops it
	// (ctx done, or a fatal error), before the running steps are waited
	// for. Readiness probes use it (see app.Health).
	Polling func(polling bool)
	// Logger receives Run's logs; nil discards them.
	Logger *slog.Logger
}

// Register registers tsync's workflows and acts on r: the object
// workflows under their current type names (workflows.SyncType,
// workflows.DeleteType) and their earlier ones, so that the runs started
// by an earlier version go on.
func Register(r sdkworker.Registry, acts *activities.Activities) {
	workflows.Register(r)
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
		OnFatalError:                           opts.OnFatalError,
	})
	Register(w, acts)
	if opts.Watchers != nil {
		watchers.Register(w, opts.Watchers)
	}
	return w, nil
}

// startRetry is Run's pause between two starts of a worker. While the
// server is down, a start itself fails only after the SDK's request timeout
// (10 s), which paces the attempts and their warnings; a longer pause would
// only delay the worker once the server is back.
const startRetry = time.Second

// Run runs a worker until ctx is done, then stops it, and returns nil.
//
// A worker cannot start while the Temporal server is unreachable (or does
// not serve the namespace yet): Run logs why and starts a new worker again,
// until one starts or ctx is done, so that a worker process started during
// an outage waits for the server instead of exiting. Once started, the SDK's
// pollers ride out outages by themselves. Should the worker stop on an error
// the SDK deems fatal (say, the namespace is gone for good), Run returns that
// error rather than idle with a stopped worker.
//
// Once the SDK's worker has stopped, Run waits up to 10 s (drainTimeout)
// for the step calls it cancelled (those still running at StopTimeout) to
// return.
func Run(ctx context.Context, c client.Client, opts Options, acts *activities.Activities) error {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	polling := func(p bool) {
		if opts.Polling != nil {
			opts.Polling(p)
		}
	}
	for attempt := 1; ; attempt++ {
		fatal := make(chan error, 1)
		wopts := opts
		wopts.OnFatalError = func(err error) {
			if opts.OnFatalError != nil {
				opts.OnFatalError(err)
			}
			select {
			case fatal <- err:
			default:
			}
		}
		w, err := New(c, wopts, acts)
		if err != nil {
			return err
		}
		if err := w.Start(); err != nil {
			// A worker starts once: this one is done with. Its Stop may
			// wait for the server a while, like the next start would.
			w.Stop()
			if ctx.Err() != nil {
				return nil
			}
			log.Warn("worker cannot start; trying again (is the Temporal server up, serving the namespace?)",
				"task_queue", opts.TaskQueue, "attempt", attempt, "retry_in", startRetry, "error", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(startRetry):
			}
			continue
		}
		if attempt > 1 {
			log.Info("worker started", "task_queue", opts.TaskQueue, "attempts", attempt)
		}
		polling(true)
		select {
		case <-ctx.Done():
			polling(false)
			log.Info("worker stopping: no new tasks; running steps may finish", "task_queue", opts.TaskQueue, "stop_timeout", opts.StopTimeout)
			begin := time.Now()
			w.Stop()
			drainSteps(log, acts, opts.TaskQueue)
			log.Info("worker stopped", "task_queue", opts.TaskQueue, "took", time.Since(begin).Round(time.Millisecond))
			return nil
		case err := <-fatal:
			polling(false)
			w.Stop()
			drainSteps(log, acts, opts.TaskQueue)
			return fmt.Errorf("worker on %s stopped: %w", opts.TaskQueue, err)
		}
	}
}

// drainTimeout bounds the wait of a stopping worker for the step calls that
// its stop cancelled: their contexts are done, and a step that honours
// them returns at once, after its clean-up.
const drainTimeout = 10 * time.Second

// drainSteps waits up to drainTimeout for acts' step calls to return,
// saying so when some do not.
func drainSteps(log *slog.Logger, acts *activities.Activities, queue string) {
	if acts == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	defer cancel()
	if !stepcalls.Drain(ctx, acts) {
		log.Warn("steps cancelled by the stop still running: not waiting for them", "task_queue", queue, "waited", drainTimeout)
	}
}
