// Package workflows holds tsync's per-object Temporal workflows.
//
// SyncWorkflow brings one object in sync: it first makes sure every object it
// depends on is in sync (starting a child SyncWorkflow for each dependency
// that is pending or in error, or waiting for the one already running), then
// runs the object's step in one activity that loads the object fresh and
// records the outcome. DeleteWorkflow deletes one deleted object after the
// deleted objects that depend on it, then purges it.
//
// Both run under the workflow ID "<synchronizer>/<model>/<id>", so an object
// is never synced or deleted by two workflows at once. A workflow that needs
// an object whose workflow is already running cannot join it as a child
// (Temporal has no USE_EXISTING policy for children); it subscribes instead,
// with SignalSubscribe, and the running workflow signals SignalDone to every
// subscriber when it finishes. A subscriber whose signal finds no running
// workflow checks the object again.
package workflows

import (
	"fmt"
	"time"

	"github.com/tsync/tsync/internal/engine"
	"github.com/tsync/tsync/models"
	"go.temporal.io/sdk/workflow"
)

// Signal names.
const (
	// SignalSubscribe asks a running object workflow to signal SignalDone to
	// the workflow named in the Subscription when it finishes.
	SignalSubscribe = "tsync-subscribe"
	// SignalDone carries a Done to a subscriber.
	SignalDone = "tsync-done"
	// SignalChanged, with a Changed, tells an object's running workflow
	// (top-level or a dependent's child) that the object changed: the
	// starter signals it, with signal-with-start, for every announced
	// change. A run waiting (step backoff, held, deferred, awaiting its
	// dependencies or dependents) looks at the object again at once; if
	// its content (updated, deleted, blocked) changed, it goes on from
	// there (a failing step runs again at once, its backoff restarting at
	// Initial), else it resumes waiting for what remains of the wait.
	SignalChanged = "tsync-changed"
)

// Changed is the payload of SignalChanged.
type Changed struct{}

// RetryState is a failing step's backoff, carried across continue-as-new:
// the attempts made for the content updated at Updated.
type RetryState struct {
	Step    string
	Attempt int
	Updated time.Time
}

// The workflow type names of the object workflows. Each workflow function
// is registered under two: the current name (SyncType, DeleteType), which
// starters start, and under which parents start children and runs continue
// as new; and its legacy name (SyncWorkflow, DeleteWorkflow), for the runs
// started before the current names, which keep their family. A run of a
// current name takes every change made before that name without
// workflow.GetVersion (see initChanges): each change ID a run records
// costs it a marker event and a search-attribute upsert
// (TemporalChangeVersion), a billable action. A change of the commands
// the workflows issue either calls GetVersion in both families, or gives
// the current family new names (see the README's "Changing workflow
// code").
const (
	SyncType   = "SyncWorkflow3"
	DeleteType = "DeleteWorkflow3"

	legacySyncType   = "SyncWorkflow"
	legacyDeleteType = "DeleteWorkflow"
)

// Registry is where workflows are registered: a worker, or the SDK's test
// environment.
type Registry interface {
	RegisterWorkflowWithOptions(w any, options workflow.RegisterOptions)
}

// Register registers SyncWorkflow and DeleteWorkflow in r under their
// current and legacy type names.
func Register(r Registry) {
	r.RegisterWorkflowWithOptions(SyncWorkflow, workflow.RegisterOptions{Name: SyncType})
	r.RegisterWorkflowWithOptions(DeleteWorkflow, workflow.RegisterOptions{Name: DeleteType})
	r.RegisterWorkflowWithOptions(SyncWorkflow, workflow.RegisterOptions{Name: legacySyncType})
	r.RegisterWorkflowWithOptions(DeleteWorkflow, workflow.RegisterOptions{Name: legacyDeleteType})
}

// WorkflowOf returns the current workflow type name of op (SyncType or
// DeleteType), to start.
func WorkflowOf(op engine.Op) string { return typeOf(op, true) }

// typeOf returns the workflow type name of op in the current family, or
// in the legacy one.
func typeOf(op engine.Op, current bool) string {
	switch {
	case op == engine.OpSync && current:
		return SyncType
	case op == engine.OpSync:
		return legacySyncType
	case op == engine.OpDelete && current:
		return DeleteType
	case op == engine.OpDelete:
		return legacyDeleteType
	}
	panic(fmt.Sprintf("workflows: unknown operation %q", string(op)))
}

// isCurrentType reports whether name is a type name of the current family.
func isCurrentType(name string) bool { return name == SyncType || name == DeleteType }

// Params are the settings every object workflow runs with; children inherit
// them from their parent.
type Params struct {
	// Synchronizer is the synchronizer's name (observer_name).
	Synchronizer string
	// LoopInterval is the pause before trying a deferred or held object again.
	LoopInterval time.Duration
	// Retry is the step activity's retry policy.
	Retry RetryParams
	// StepTimeout bounds one SyncRecord or DeleteRecord call.
	StepTimeout time.Duration
	// HeartbeatTimeout is how long a step activity may go silent before it is
	// retried elsewhere (it heartbeats while the step runs).
	HeartbeatTimeout time.Duration
	// SearchAttributes turns on the Tsync* search attributes, which must be
	// registered on the namespace (see SearchAttributes).
	SearchAttributes bool `json:",omitempty"`
}

// RetryParams is the retry policy of step activities: exponential backoff
// from Initial by Coefficient up to Max, forever; Coefficient 1 keeps the
// interval constant (observer_backoff_disabled).
type RetryParams struct {
	Initial     time.Duration
	Max         time.Duration
	Coefficient float64
}

// Request starts an object workflow.
type Request struct {
	// Object is the object to sync or delete.
	Object models.Ref
	// Params are the settings.
	Params Params
	// Subscribers are the IDs of workflows waiting for this one; they are
	// carried across continue-as-new.
	Subscribers []string `json:",omitempty"`
	// Retry is the backoff of a failing step, carried across
	// continue-as-new.
	Retry *RetryState `json:",omitempty"`
	// Waits is the starter's hint that the object's dependencies are
	// likely pending too (objects of the models it links to were started
	// by the same scan): the workflow then first looks at it with the
	// Inspect local activity, which costs less than SyncReady, an activity,
	// when it must wait anyway (see run.look).
	Waits bool `json:",omitempty"`
}

// Result is what an object workflow returns, and what it signals to its
// subscribers.
type Result struct {
	Object models.Ref
	// Outcome is the State the workflow ended in: one of the terminal
	// states (StateInSync, StateGone, StateBlocked, StateDeleted,
	// StateWriteProtected, StateFailed), or StateRecheck. (Named Outcome
	// for the JSON of recorded histories and signals.)
	Outcome State
}

// Subscription is the payload of SignalSubscribe.
type Subscription struct {
	WorkflowID string
}

// Done is the payload of SignalDone.
type Done struct {
	WorkflowID string
	Result     Result
}

// WorkflowID returns the workflow ID of ref's workflows in synchronizer name.
func WorkflowID(synchronizer string, ref models.Ref) string {
	return fmt.Sprintf("%s/%s/%d", synchronizer, ref.Model, ref.ID)
}
