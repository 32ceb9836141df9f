package workflows

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// Search attributes every object workflow carries, so that operators find
// syncs by object and state in the Temporal Web UI or with
// `temporal workflow list --query 'TsyncState="error"'`. They must be
// registered on the namespace (SearchAttributes lists them; app.Open
// registers them, `tsync dev start` passes them to the dev server).
var (
	// AttrModel is the object's model.
	AttrModel = temporal.NewSearchAttributeKeyKeyword("TsyncModel")
	// AttrObjectID is the object's id.
	AttrObjectID = temporal.NewSearchAttributeKeyInt64("TsyncObjectID")
	// AttrOperation is "sync" or "delete".
	AttrOperation = temporal.NewSearchAttributeKeyKeyword("TsyncOperation")
	// AttrSynchronizer is the synchronizer's name (observer_name).
	AttrSynchronizer = temporal.NewSearchAttributeKeyKeyword("TsyncSynchronizer")
	// AttrState is the sync's State, kept current.
	AttrState = temporal.NewSearchAttributeKeyKeyword("TsyncState")
)

// SearchAttributes returns the search attributes to register, by name.
func SearchAttributes() map[string]enumspb.IndexedValueType {
	return map[string]enumspb.IndexedValueType{
		AttrModel.GetName():        enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		AttrObjectID.GetName():     enumspb.INDEXED_VALUE_TYPE_INT,
		AttrOperation.GetName():    enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		AttrSynchronizer.GetName(): enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		AttrState.GetName():        enumspb.INDEXED_VALUE_TYPE_KEYWORD,
	}
}

// DevServerArgs returns the `temporal server start-dev` flags that register
// the search attributes.
func DevServerArgs() []string {
	attrs := SearchAttributes()
	var args []string
	for _, name := range slices.Sorted(maps.Keys(attrs)) {
		kind := "Keyword"
		if attrs[name] == enumspb.INDEXED_VALUE_TYPE_INT {
			kind = "Int"
		}
		args = append(args, "--search-attribute", name+"="+kind)
	}
	return args
}

// State is where an object workflow is.
type State string

// States.
const (
	// StatePending: started, looking at the object.
	StatePending State = "pending"
	// StateWaiting: waiting for dependencies (or deleted dependents) to finish.
	StateWaiting State = "waiting"
	// StateHeld: cannot go on now (a dependency deleted, missing or not
	// synced, or live objects using a deleted one); tried again every loop.
	StateHeld State = "held"
	// StateRunning: the step runs.
	StateRunning State = "running"
	// StateDeferred: the step returned a DeferredError; tried again every loop.
	StateDeferred State = "deferred"
	// StateError: the step failed and is being retried with backoff.
	StateError State = "error"
	// StateInSync: done, the object is in sync.
	StateInSync State = "in-sync"
	// StateGone: done, the object is deleted from the backend and purged
	// (or never existed).
	StateGone State = "gone"
	// StateBlocked: done, the object is no_sync or lazy_blocked.
	StateBlocked State = "blocked"
	// StateDeleted: done, the object is deleted; a DeleteWorkflow takes over.
	StateDeleted State = "deleted"
	// StateWriteProtected: done, the deleted object is write_protect.
	StateWriteProtected State = "write-protected"
	// StateFailed: the workflow failed or was cancelled.
	StateFailed State = "failed"
)

// QueryState is the name of the query that returns a workflow's LiveState.
const QueryState = "tsync-state"

// LiveState is what QueryState returns: the live state of a sync.
type LiveState struct {
	Object    string
	Operation string
	State     State
	// Status is the latest status text (error, deferral or hold reason).
	Status string
}

// memoStatus is the memo key holding the status text.
const memoStatus = "status"

var outcomeStates = map[Outcome]State{
	OutcomeInSync:         StateInSync,
	OutcomeGone:           StateGone,
	OutcomeBlocked:        StateBlocked,
	OutcomeDeleted:        StateDeleted,
	OutcomeWriteProtected: StateWriteProtected,
	OutcomeFailed:         StateFailed,
	OutcomeRecheck:        StatePending,
}

// startState sets up the query handler and the search attributes of a new
// run of operation op.
func (r *run) startState(ctx workflow.Context, op string) {
	r.live = LiveState{Object: r.ref().String(), Operation: op, State: StatePending}
	_ = workflow.SetQueryHandler(ctx, QueryState, func() (LiveState, error) { return r.live, nil })
	if !r.req.Params.SearchAttributes {
		return
	}
	r.upsert(ctx, workflow.UpsertTypedSearchAttributes(ctx,
		AttrModel.ValueSet(r.ref().Model),
		AttrObjectID.ValueSet(r.ref().ID),
		AttrOperation.ValueSet(op),
		AttrSynchronizer.ValueSet(r.req.Params.Synchronizer),
		AttrState.ValueSet(string(StatePending)),
	))
}

// setState records the run's state and status: in the query's answer, the
// TsyncState search attribute and the memo, when they change.
func (r *run) setState(ctx workflow.Context, state State, status string) {
	if state == r.live.State && status == r.live.Status {
		return
	}
	stateChanged := state != r.live.State
	statusChanged := status != r.live.Status
	r.live.State, r.live.Status = state, status
	if stateChanged && r.req.Params.SearchAttributes {
		r.upsert(ctx, workflow.UpsertTypedSearchAttributes(ctx, AttrState.ValueSet(string(state))))
	}
	if statusChanged {
		r.upsert(ctx, workflow.UpsertMemo(ctx, map[string]any{memoStatus: status}))
	}
}

func (r *run) upsert(ctx workflow.Context, err error) {
	if err != nil {
		workflow.GetLogger(ctx).Warn("upsert of search attributes or memo failed", "error", err)
	}
}

// errorText is the message of an activity's failure, without the SDK's
// wrapping ("activity error (type: ..., ...): ").
func errorText(err error) string {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return appErr.Message()
	}
	var timeoutErr *temporal.TimeoutError
	if errors.As(err, &timeoutErr) {
		return fmt.Sprintf("step timed out (%s)", strings.ToLower(strings.TrimPrefix(timeoutErr.TimeoutType().String(), "TIMEOUT_TYPE_")))
	}
	return err.Error()
}
