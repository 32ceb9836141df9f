package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"sync/atomic"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"golang.org/x/sync/errgroup"

	"github.com/tsync/tsync/config"
	"github.com/tsync/tsync/internal/engine"
	"github.com/tsync/tsync/internal/testenv"
	"github.com/tsync/tsync/internal/workflows"
	"github.com/tsync/tsync/models"
)

// The baseline: raw Temporal, straight on the SDK, on the server tsync
// runs on.

// Baseline is the minimal workflow: one no-op activity. With upsert (see
// -raw-attributes), it then sets the TsyncState search attribute, as a
// tsync workflow does when its object is in sync.
func Baseline(ctx workflow.Context, upsert bool) error {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute})
	if err := workflow.ExecuteActivity(ctx, Noop).Get(ctx, nil); err != nil {
		return err
	}
	if upsert {
		return workflow.UpsertTypedSearchAttributes(ctx, workflows.AttrState.ValueSet(string(workflows.StateInSync)))
	}
	return nil
}

// rawStart returns the options and argument of the raw workflow i on
// queue: with b.rawAttributes, tsync's search attributes for an object i+1
// of model item, and the final upsert; with b.rawEager, an eager start.
func (b *bench) rawStart(queue string, i int) (client.StartWorkflowOptions, bool) {
	opts := client.StartWorkflowOptions{ID: fmt.Sprintf("%s/%d", queue, i), TaskQueue: queue, EnableEagerStart: b.rawEager}
	if b.rawAttributes {
		opts.TypedSearchAttributes = workflows.StartAttributes(queue, models.Ref{Model: "item", ID: int64(i + 1)}, engine.OpSync).Typed
	}
	return opts, b.rawAttributes
}

// Noop does nothing.
func Noop(context.Context) error { return nil }

// workerOptions are the options both the baseline and tsync's workers use.
const pollers = 8

// baseline runs n Baseline workflows and returns their rate, and (with
// cost) what one costs. With the worker in this process, the run ends when
// the last activity has run, as tsync's ends when the last object is
// marked in sync (in its activity): waiting for each workflow's result
// would cost the server a history read per workflow that tsync's run does
// not pay. With worker processes, it ends when every workflow has
// returned.
func (b *bench) baseline(ctx context.Context, n int, cost bool) (float64, Cost, error) {
	c, err := client.DialContext(ctx, rawOptions(b.temporal))
	if err != nil {
		return 0, Cost{}, err
	}
	defer c.Close()
	queue := "bench-baseline-" + testenv.Random(4)
	var ran atomic.Int64
	if b.workers > 0 {
		// As many raw worker processes as tsync gets.
		stop, err := b.rawWorkers(queue)
		if err != nil {
			return 0, Cost{}, err
		}
		defer stop()
	} else {
		w := newRawWorker(c, queue, func() { ran.Add(1) })
		if err := w.Start(); err != nil {
			return 0, Cost{}, err
		}
		defer w.Stop()
	}
	// The clock starts once the workers poll, as tsync's (runWorkers).
	if err := waitPolling(ctx, c, queue, max(b.workers, 1)); err != nil {
		return 0, Cost{}, err
	}
	start := time.Now()
	runs := make([]client.WorkflowRun, n)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for i := range n {
		g.Go(func() error {
			opts, upsert := b.rawStart(queue, i)
			run, err := c.ExecuteWorkflow(gctx, opts, Baseline, upsert)
			runs[i] = run
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return 0, Cost{}, err
	}
	var elapsed time.Duration
	if b.workers == 0 {
		for ran.Load() < int64(n) {
			if err := ctx.Err(); err != nil {
				return 0, Cost{}, err
			}
			time.Sleep(20 * time.Millisecond)
		}
		elapsed = time.Since(start)
		if !cost {
			return float64(n) / elapsed.Seconds(), Cost{}, nil
		}
	}
	g, gctx = errgroup.WithContext(ctx)
	g.SetLimit(64)
	for _, run := range runs {
		g.Go(func() error { return run.Get(gctx, nil) })
	}
	if err := g.Wait(); err != nil {
		return 0, Cost{}, err
	}
	if elapsed == 0 {
		elapsed = time.Since(start)
	}
	rate := float64(n) / elapsed.Seconds()
	if !cost {
		return rate, Cost{}, nil
	}
	c1, err := costOf(ctx, c, queue, "", n)
	return rate, c1, err
}

// rawPickup measures, at idle, the time from a raw workflow's start to its
// activity starting on the worker: the pickup latency of Temporal alone
// (with b.rawEager, of an eager start).
func (b *bench) rawPickup(ctx context.Context, samples int) (p50, p99 time.Duration, err error) {
	c, err := client.DialContext(ctx, rawOptions(b.temporal))
	if err != nil {
		return 0, 0, err
	}
	defer c.Close()
	queue := "bench-pickup-" + testenv.Random(4)
	started := make(chan time.Time, 1)
	w := worker.New(c, queue, worker.Options{MaxConcurrentWorkflowTaskPollers: pollers, MaxConcurrentActivityTaskPollers: pollers})
	w.RegisterWorkflow(Baseline)
	w.RegisterActivityWithOptions(func(context.Context) error {
		select {
		case started <- time.Now():
		default:
		}
		return nil
	}, activity.RegisterOptions{Name: "Noop"})
	if err := w.Start(); err != nil {
		return 0, 0, err
	}
	defer w.Stop()
	time.Sleep(2 * time.Second) // idle: pollers waiting
	return sampleLatency(samples, started, "raw pickup: no activity", func(i int) error {
		opts := client.StartWorkflowOptions{ID: fmt.Sprintf("%s/%d", queue, i), TaskQueue: queue, EnableEagerStart: b.rawEager}
		_, err := c.ExecuteWorkflow(ctx, opts, Baseline, false)
		return err
	})
}

// newRawWorker returns the baseline's worker on queue; ran (if not nil)
// is called after each run of the activity.
func newRawWorker(c client.Client, queue string, ran func()) worker.Worker {
	w := worker.New(c, queue, worker.Options{
		MaxConcurrentWorkflowTaskPollers: pollers, MaxConcurrentActivityTaskPollers: pollers,
		MaxConcurrentActivityExecutionSize: 100, MaxConcurrentWorkflowTaskExecutionSize: 200,
	})
	w.RegisterWorkflow(Baseline)
	w.RegisterActivityWithOptions(func(ctx context.Context) error {
		err := Noop(ctx)
		if ran != nil {
			ran()
		}
		return err
	}, activity.RegisterOptions{Name: "Noop"})
	return w
}

// rawWorkers starts b.workers processes of this binary running the
// baseline's worker on queue, and returns a func that kills them.
func (b *bench) rawWorkers(queue string) (func(), error) {
	var cmds []*exec.Cmd
	stop := func() {
		for _, cmd := range cmds {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}
	for range b.workers {
		cmd := exec.Command(os.Args[0], "-role", "raw-worker")
		cmd.Env = append(os.Environ(), "TSYNC_TEMPORAL_HOST_PORT="+b.temporal, "TSYNC_TEMPORAL_TASK_QUEUE="+queue)
		cmd.Stderr = os.Stderr
		dieWithParent(cmd)
		if err := cmd.Start(); err != nil {
			stop()
			return nil, err
		}
		cmds = append(cmds, cmd)
	}
	return stop, nil
}

// runRawWorker runs the baseline's worker, for TSYNC_TEMPORAL_HOST_PORT
// and TSYNC_TEMPORAL_TASK_QUEUE, until killed.
func runRawWorker() error {
	c, err := client.Dial(rawOptions(os.Getenv("TSYNC_TEMPORAL_HOST_PORT")))
	if err != nil {
		return err
	}
	defer c.Close()
	return newRawWorker(c, os.Getenv("TSYNC_TEMPORAL_TASK_QUEUE"), nil).Run(worker.InterruptCh())
}

// rawOptions are the raw baseline's client options for the server at
// hostPort: the SDK's defaults, but for compression, which is tsync's with
// its default config (temporal.grpc_compression auto), so that raw and
// tsync are compared on the same kind of connection.
func rawOptions(hostPort string) client.Options {
	o := client.Options{HostPort: hostPort, Logger: quietSDK()}
	t := config.Default().Temporal
	t.HostPort = hostPort
	if !t.Compresses() {
		o.ConnectionOptions.GrpcCompression = &client.GrpcCompressionNone{}
	}
	return o
}

func quietSDK() *sdkLogger { return &sdkLogger{} }

// sdkLogger discards the SDK's logs.
type sdkLogger struct{}

func (*sdkLogger) Debug(string, ...any) {}
func (*sdkLogger) Info(string, ...any)  {}
func (*sdkLogger) Warn(string, ...any)  {}
func (*sdkLogger) Error(string, ...any) {}
