package watchers

import (
	"context"
	"errors"
	"fmt"
	"strings"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/tsync/tsync"
	"github.com/tsync/tsync/internal/workflows"
)

// OperationWatch is the TsyncOperation search attribute of watcher
// workflows (when the namespace has the Tsync* attributes).
const OperationWatch = "watch"

// start starts the workflow of t for ev; a workflow already started for
// them is a success.
func (d *Dispatcher) start(ctx context.Context, t Target, ev tsync.WatchEvent) error {
	id := WorkflowID(d.opts.Params.Synchronizer, t.Watcher, t.Object, ev.ID)
	what := fmt.Sprintf("%s %s %d", ev.Changed.Model, ev.Op, ev.Changed.ID)
	if len(ev.Fields) > 0 {
		what += " [" + strings.Join(ev.Fields, " ") + "]"
	}
	opts := client.StartWorkflowOptions{
		ID:                                       id,
		TaskQueue:                                d.opts.TaskQueue,
		WorkflowIDReusePolicy:                    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		WorkflowIDConflictPolicy:                 enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		Memo:                                     map[string]any{"change": what},
	}
	if d.opts.Params.SearchAttributes {
		// Found with TsyncOperation="watch" (and the object's model and id).
		opts.TypedSearchAttributes = temporal.NewSearchAttributes(
			workflows.AttrSynchronizer.ValueSet(d.opts.Params.Synchronizer),
			workflows.AttrModel.ValueSet(t.Object.Model),
			workflows.AttrObjectID.ValueSet(t.Object.ID),
			workflows.AttrOperation.ValueSet(OperationWatch))
	}
	_, err := d.client.ExecuteWorkflow(ctx, opts, WatchWorkflow, Request{Watcher: t.Watcher, Object: t.Object, Event: ev, Params: d.opts.Params})
	var already *serviceerror.WorkflowExecutionAlreadyStarted
	switch {
	case errors.As(err, &already):
		d.duplicates.Add(1)
		return nil
	case err != nil:
		return fmt.Errorf("start %s: %w", id, err)
	}
	d.started.Add(1)
	return nil
}
