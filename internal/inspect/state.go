package inspect

import (
	"fmt"
	"strings"
	"time"

	"github.com/tsync/tsync/internal/workflows"
	"github.com/tsync/tsync/models"
)

// State is an object's sync state as operators see it.
type State string

// States.
const (
	// StateInSync: code 1, enacted at or after updated, not deleted.
	StateInSync State = "in-sync"
	// StatePending: any other object not below: new, changed, being
	// synced or deleted, or not synced at all (no_sync, lazy_blocked).
	StatePending State = "pending"
	// StateDeferred: code 0 and a status "deferred: ..." that is not about
	// a dependency: its step deferred it.
	StateDeferred State = "deferred"
	// StateHeld: held behind a dependency: code 0 and a status "deferred:
	// dependency ..." (or "waiting for dependency ..."), or code 2 and a
	// status "Failed due to error in model M id N: ...".
	StateHeld State = "held"
	// StateError: code 2 otherwise: its own step failed.
	StateError State = "error"
)

// States lists every State, in the order the views show them.
var States = []State{StateInSync, StatePending, StateDeferred, StateHeld, StateError}

// ParseState returns the State named s, case-insensitive, with "-", "_"
// or nothing between words ("in-sync", "in_sync", "insync").
func ParseState(s string) (State, error) {
	norm := strings.NewReplacer("-", "", "_", "", " ", "").Replace(strings.ToLower(strings.TrimSpace(s)))
	for _, st := range States {
		if strings.ReplaceAll(string(st), "-", "") == norm {
			return st, nil
		}
	}
	names := make([]string, len(States))
	for i, st := range States {
		names[i] = string(st)
	}
	return "", fmt.Errorf("unknown state %q, want one of %s", s, strings.Join(names, ", "))
}

// Row is one object's sync-state columns and the State they give.
type Row struct {
	Model       string
	ID          int64
	Code        int
	Status      string
	Deleted     bool
	NoSync      bool
	LazyBlocked bool
	Updated     time.Time
	Enacted     *time.Time
	// State is Classify(row), or, for Inspector.Object, the running
	// workflow's live state when it says more.
	State State
}

// Ref returns the object's reference.
func (r Row) Ref() models.Ref { return models.Ref{Model: r.Model, ID: r.ID} }

// Statuses the engine writes (see internal/workflows' deps.go and
// syncstate.FailedDueTo).
const (
	deferredPrefix   = "deferred: "
	failedDuePrefix  = "Failed due to error in "
	depReasonPrefix  = "dependency "
	waitingDepPrefix = "waiting for dependency "
)

// Classify returns the State the columns of r give.
func Classify(r Row) State {
	switch r.Code {
	case models.CodeError:
		if strings.HasPrefix(r.Status, failedDuePrefix) {
			return StateHeld
		}
		return StateError
	case models.CodePending:
		if rest, ok := strings.CutPrefix(r.Status, deferredPrefix); ok {
			if strings.HasPrefix(rest, depReasonPrefix) || strings.HasPrefix(rest, waitingDepPrefix) {
				return StateHeld
			}
			return StateDeferred
		}
	}
	if !r.Deleted && r.Code == models.CodeOK && r.Enacted != nil && !r.Enacted.Before(r.Updated) {
		return StateInSync
	}
	return StatePending
}

// liveState returns the State a running workflow's live state gives, or
// "" when it says nothing beyond the columns.
func liveState(s workflows.State) State {
	switch s {
	case workflows.StateHeld:
		return StateHeld
	case workflows.StateDeferred:
		return StateDeferred
	case workflows.StateError:
		return StateError
	case workflows.StatePending, workflows.StateRunning, workflows.StateWaiting:
		return StatePending
	}
	return ""
}
