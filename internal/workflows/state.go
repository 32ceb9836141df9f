package workflows

import (
	"unicode/utf8"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// State is where an object workflow is: the live state its query answers
// and its TsyncState search attribute show. A workflow ends in one of the
// terminal states (in-sync, gone, blocked, deleted, write-protected,
// failed), which its Result carries as its Outcome; StateRecheck is a
// result only.
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

	// Terminal states: how a workflow ended, also its Result's Outcome.

	// StateInSync: done, the object is in sync.
	StateInSync State = "in-sync"
	// StateGone: done, the object does not exist: deleted from the backend
	// and purged, or it never existed.
	StateGone State = "gone"
	// StateBlocked: done, the object is no_sync or lazy_blocked, so not
	// synced.
	StateBlocked State = "blocked"
	// StateDeleted: done, the object is deleted; its deletion goes on in a
	// DeleteWorkflow.
	StateDeleted State = "deleted"
	// StateWriteProtected: done, the object is deleted but write_protect, so
	// it stays in the backend.
	StateWriteProtected State = "write-protected"
	// StateFailed: the workflow failed or was cancelled.
	StateFailed State = "failed"

	// StateRecheck is a result only, never a live state nor a TsyncState:
	// no result, check the object again (a subscriber whose subscription
	// found no running workflow, or a child DeleteWorkflow whose object was
	// undeleted). A run that ends with it shows StatePending meanwhile.
	StateRecheck State = "recheck"
)

// QueryState is the name of the query that returns a workflow's LiveState.
const QueryState = "tsync-state"

// LiveState is what QueryState returns: the live state of a sync.
type LiveState struct {
	Object string
	// Operation is the engine.Op, as a string.
	Operation string
	State     State
	// Status is the latest status text (error, deferral or hold reason).
	Status string
}

// memoStatus is the memo key holding the status text.
const memoStatus = "status"

// maxMemoStatus is the most bytes of status text the memo holds: the SDK
// warns above 2 KiB of memo, and a status of syncstate.MaxStatusLen
// characters may take three times as many bytes. The query and the
// object's backend_status hold the whole status.
const maxMemoStatus = 1536

// memoText cuts status to maxMemoStatus bytes, at a character boundary,
// ending with an ellipsis when cut.
func memoText(status string) string {
	if len(status) <= maxMemoStatus {
		return status
	}
	cut := maxMemoStatus - len("…")
	for cut > 0 && !utf8.RuneStart(status[cut]) {
		cut--
	}
	return status[:cut] + "…"
}

// startState sets up the query handler and the search attributes of a new
// run.
func (r *run) startState(ctx workflow.Context) {
	r.live = LiveState{Object: r.ref().String(), Operation: string(r.op), State: StatePending}
	_ = workflow.SetQueryHandler(ctx, QueryState, func() (LiveState, error) { return r.live, nil })
	if !r.req.Params.SearchAttributes {
		return
	}
	// Starters and parents set them at start (StartAttributes), which costs
	// no extra visibility write; upsert only what is missing or stale (a
	// workflow started otherwise, or continued as the other operation).
	want := StartAttributes(r.req.Params.Synchronizer, r.ref(), r.op)
	have := workflow.GetTypedSearchAttributes(ctx)
	var stale []temporal.SearchAttributeUpdate
	for _, u := range want.updates {
		if !u.have(have) {
			stale = append(stale, u.set)
		}
	}
	if len(stale) > 0 {
		r.upsert(ctx, workflow.UpsertTypedSearchAttributes(ctx, stale...))
	}
	if s, ok := have.GetKeyword(AttrState); ok && s != string(StatePending) && len(stale) == 0 {
		r.shown = State(s)
	} else {
		r.shown = StatePending
	}
}

// transient states are answered by the query but not written to the
// TsyncState search attribute, which keeps the last lasting state: each
// write is a visibility update, and most syncs pass through these in
// milliseconds.
var transient = map[State]bool{StatePending: true, StateRunning: true}

// setState records the run's state and status: in the query's answer
// always; in the TsyncState search attribute and the status memo when they
// change, except for transient states (and for the "OK" of a sync that
// never showed another status).
func (r *run) setState(ctx workflow.Context, state State, status string) {
	r.live.State, r.live.Status = state, status
	if transient[state] {
		return
	}
	if state != r.shown && r.req.Params.SearchAttributes {
		r.upsert(ctx, workflow.UpsertTypedSearchAttributes(ctx, AttrState.ValueSet(string(state))))
		r.shown = state
	}
	memo := r.memoNext
	r.memoNext = nil
	if status != r.memo && (r.memo != "" || status != "OK") {
		if memo == nil {
			memo = map[string]any{}
		}
		memo[memoStatus] = memoText(status)
		r.memo = status
	}
	if memo != nil {
		r.upsert(ctx, workflow.UpsertMemo(ctx, memo))
	}
}

func (r *run) upsert(ctx workflow.Context, err error) {
	if err != nil {
		workflow.GetLogger(ctx).Warn("upsert of search attributes or memo failed", "error", err)
	}
}
