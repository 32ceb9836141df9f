package cli

import (
	"context"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	taskqueuepb "go.temporal.io/api/taskqueue/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/tsync/tsync/app"
	"github.com/tsync/tsync/internal/inspect"
	"github.com/tsync/tsync/internal/workflows"
	"github.com/tsync/tsync/models"
)

// inspector is an Inspector of store (and cl's workflows, when not nil)
// for this config.
func (c *CLI) inspector(ctx context.Context, store *models.Store, cl client.Client) *inspect.Inspector {
	return inspect.New(store, cl, inspect.Options{
		Synchronizer: c.cfg.ObserverName,
		Namespace:    c.cfg.Temporal.Namespace,
		UIURL:        c.webUIBase(ctx),
	})
}

// dialTemporal dials Temporal for a one-shot command, waiting at most
// statusDialWait; it logs why and returns nil when it cannot.
func (c *CLI) dialTemporal(ctx context.Context, what string) client.Client {
	ctx, cancel := context.WithTimeout(ctx, statusDialWait)
	defer cancel()
	cl, err := app.DialTemporal(ctx, c.cfg, c.log, c.appOptions()...)
	if err != nil {
		c.log.Warn(what+" not shown: Temporal is unreachable", "host_port", c.cfg.Temporal.HostPort)
		c.log.Debug("dial temporal", "error", err)
		return nil
	}
	return cl
}

// addWorkflows fills in the running workflow of each object, from a
// visibility query; it says so and goes on when Temporal cannot answer.
func (c *CLI) addWorkflows(ctx context.Context, cl client.Client, objs []ObjectState) {
	ctx, cancel := context.WithTimeout(ctx, statusDialWait)
	defer cancel()
	type run struct {
		state   string
		attempt int
		next    *time.Time
	}
	running := map[string]run{}
	var token []byte
	for {
		resp, err := cl.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Query:         fmt.Sprintf("TsyncSynchronizer = %q AND ExecutionStatus = 'Running'", c.cfg.ObserverName),
			NextPageToken: token,
		})
		if err != nil {
			c.log.Warn("running workflows not shown", "error", err)
			return
		}
		for _, x := range resp.Executions {
			n, next := inspect.MemoRetry(x.GetMemo())
			running[x.Execution.WorkflowId] = run{state: string(workflows.ListedState(x)), attempt: n, next: next}
		}
		if token = resp.NextPageToken; len(token) == 0 {
			break
		}
	}
	for i, o := range objs {
		id := workflows.WorkflowID(c.cfg.ObserverName, models.Ref{Model: o.Model, ID: o.ID})
		if r, ok := running[id]; ok {
			objs[i].Workflow, objs[i].WorkflowState = id, r.state
			objs[i].Attempt, objs[i].NextRetry = r.attempt, r.next
		}
	}
}

// Pollers are the workers polling a task queue, by task type.
type Pollers struct {
	// Queue is the task queue's name.
	Queue string
	// Workflow and Activity poll its workflow and activity tasks.
	Workflow, Activity []*taskqueuepb.PollerInfo
}

// pollers asks Temporal who polls the configured task queue.
func (c *CLI) pollers(ctx context.Context, cl client.Client) (Pollers, error) {
	ctx, cancel := context.WithTimeout(ctx, statusDialWait)
	defer cancel()
	p := Pollers{Queue: c.cfg.Temporal.TaskQueue}
	for _, t := range []enumspb.TaskQueueType{enumspb.TASK_QUEUE_TYPE_WORKFLOW, enumspb.TASK_QUEUE_TYPE_ACTIVITY} {
		resp, err := cl.DescribeTaskQueue(ctx, p.Queue, t)
		if err != nil {
			return p, fmt.Errorf("describe task queue %s: %w", p.Queue, err)
		}
		if t == enumspb.TASK_QUEUE_TYPE_WORKFLOW {
			p.Workflow = resp.GetPollers()
		} else {
			p.Activity = resp.GetPollers()
		}
	}
	return p, nil
}

// noWorker is the warning when a task type of the queue has no poller, ""
// when both have one.
func (c *CLI) noWorker(p Pollers) string {
	if len(p.Workflow) > 0 && len(p.Activity) > 0 {
		return ""
	}
	return fmt.Sprintf("no worker polls task queue %s: start `%s worker` (or `%s run`)", p.Queue, c.def.Name, c.def.Name)
}

// warnNoWorker writes the no-worker warning to stderr, when it applies.
func (c *CLI) warnNoWorker(ctx context.Context, cl client.Client) {
	p, err := c.pollers(ctx, cl)
	if err != nil {
		c.log.Warn("task queue pollers not shown", "error", err)
		return
	}
	if w := c.noWorker(p); w != "" {
		fmt.Fprintln(c.stderr, "warning: "+w)
	}
}
