package watchers

import (
	"context"
	"fmt"
	"strings"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/tsync/tsync"
	"github.com/tsync/tsync/internal/workflows"
)

// OperationWatch is the TsyncOperation search attribute of watcher
// workflows (when the namespace has the Tsync* attributes).
const OperationWatch = "watch"

// signal gives the WatchObjectWorkflow of t the change c, starting the
// workflow when none runs (signal-with-start). A change given twice is
// handled once: the workflow skips the event ids it has handled or queued.
func (d *Dispatcher) signal(ctx context.Context, t Target, c Change) error {
	id := ObjectWorkflowID(d.opts.Params.Synchronizer, t.Watcher, t.Object)
	opts := client.StartWorkflowOptions{
		ID:                    id,
		TaskQueue:             d.opts.TaskQueue,
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		Memo:                  map[string]any{"change": describeChange(c.Event)},
	}
	if d.opts.Params.SearchAttributes {
		// Found with TsyncOperation="watch" (and the object's model and id).
		opts.TypedSearchAttributes = temporal.NewSearchAttributes(
			workflows.AttrSynchronizer.ValueSet(d.opts.Params.Synchronizer),
			workflows.AttrModel.ValueSet(t.Object.Model),
			workflows.AttrObjectID.ValueSet(t.Object.ID),
			workflows.AttrOperation.ValueSet(OperationWatch))
	}
	req := ObjectRequest{Watcher: t.Watcher, Object: t.Object, Params: d.opts.Params, Linger: d.opts.Linger}
	if _, err := d.client.SignalWithStartWorkflow(ctx, id, SignalChange, c, opts, WatchObjectWorkflow, req); err != nil {
		return fmt.Errorf("signal %s: %w", id, err)
	}
	d.started.Add(1)
	return nil
}

// describeChange is the memo text of a change: "Network update 3 [cidr]".
func describeChange(ev tsync.WatchEvent) string {
	what := fmt.Sprintf("%s %s %d", ev.Changed.Model, ev.Op, ev.Changed.ID)
	if len(ev.Fields) > 0 {
		what += " [" + strings.Join(ev.Fields, " ") + "]"
	}
	return what
}
