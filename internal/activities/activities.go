// Package activities holds the Temporal activities of tsync's sync and
// delete workflows. Activities load objects fresh from PostgreSQL: workflow
// histories hold references (model, id), never object contents.
package activities

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/tsync/tsync/internal/ansible"
	"github.com/tsync/tsync/internal/engine"
	"github.com/tsync/tsync/internal/syncstate"
	"github.com/tsync/tsync/metrics"
	"github.com/tsync/tsync/models"
)

// ErrTypeDeferred is the application error type of a step's DeferredError.
// Activities return it non-retryable, so that Temporal does not back off; the
// workflow tries again after the loop interval.
const ErrTypeDeferred = "DeferredError"

// ErrTypeStep is the application error type of a failed step. It is retried
// by the activity's retry policy.
const ErrTypeStep = "StepError"

// Activities are the activities of a synchronizer's workflows.
type Activities struct {
	// Sync is the synchronizer whose steps run.
	Sync *engine.Synchronizer
	// Store is the model store.
	Store *models.Store
	// Metrics records step calls; nil records nothing.
	Metrics *metrics.Metrics
	// Log receives one line per step call's outcome (StepLogMessage: model,
	// id, operation, outcome, attempt, duration, error, workflow_id): at
	// warn for a failure, at info otherwise. Nil logs nothing.
	Log *slog.Logger
	// Ansible runs the playbooks of steps that are tsync.AnsibleSteps (see
	// ansible.go); nil uses a runner with zero ansible.Options.
	Ansible *ansible.Runner

	// lockOnce makes locks, the sessions holding the locks of its step
	// calls (exclusive.go), at the first call: an Activities must not be
	// copied once used.
	lockOnce sync.Once
	locks    *locker
	// running counts the step calls under way (see Drain).
	running atomic.Int64
}

// drainPoll is how often Drain looks whether step calls still run.
const drainPoll = 10 * time.Millisecond

// Drain waits until no step call of a runs, or ctx ends, and reports
// whether none runs. (A function, as the exported methods of Activities
// are registered as activities.) A stopping worker calls it once the
// SDK's worker has stopped: that cancels the contexts of the steps still
// running when its stop timeout ends, and returns without waiting for
// them, so the steps may still be cleaning up (an Ansible step ending its
// playbook's processes) or recording their end.
func Drain(ctx context.Context, a *Activities) bool {
	t := time.NewTicker(drainPoll)
	defer t.Stop()
	for a.running.Load() > 0 {
		select {
		case <-ctx.Done():
			return a.running.Load() == 0
		case <-t.C:
		}
	}
	return true
}

// New returns the activities of synchronizer sync over store.
func New(sync *engine.Synchronizer, store *models.Store) *Activities {
	return &Activities{Sync: sync, Store: store}
}

// state returns the store with its sync-state writers.
func (a *Activities) state() *syncstate.Store { return syncstate.New(a.Store) }

// DepState is the sync state of one dependency of an object.
type DepState struct {
	models.Ref
	// Exists is false when no row has the id the link holds.
	Exists bool
	// Deleted, Blocked (no_sync or lazy_blocked) and Pending describe the row.
	Deleted bool
	Blocked bool
	Pending bool
	// Synced reports that its current content was synced: enacted is set
	// and not older than updated.
	Synced bool
	// Code and Status are its backend_code and backend_status.
	Code   int
	Status string
	// Synchronized reports whether this synchronizer has a step for its model.
	Synchronized bool
	// Distant reports a distant dependency: not linked to directly, but
	// reached through objects in sync (see Inspect). False in histories
	// recorded before distant dependencies.
	Distant bool
}

// InSync reports whether the dependency needs no sync now: it exists, is not
// deleted, its current content was synced and it is not in error.
func (d DepState) InSync() bool {
	return d.Exists && !d.Deleted && d.Synced && d.Code != models.CodeError
}

// Inspection is what a workflow needs to know of its object.
type Inspection struct {
	Exists       bool
	Deleted      bool
	WriteProtect bool
	// Blocked is no_sync or lazy_blocked.
	Blocked bool
	Pending bool
	// NeedsPolicy reports that its model policies have not run since its
	// last update.
	NeedsPolicy bool
	Code        int
	Updated     time.Time
	// Deps are the objects it links to, in link order, then its distant
	// dependencies (Distant).
	Deps []DepState
	// Cycle is the cycle of objects it is on through its model's self-links,
	// from itself back to itself; nil when none (and in histories recorded
	// before trees).
	Cycle []models.Ref
}

// Inspect loads ref and the sync state of every object it links to.
func (a *Activities) Inspect(ctx context.Context, ref models.Ref) (Inspection, error) {
	obj, err := a.Store.Get(ctx, ref.Model, ref.ID)
	if errors.Is(err, models.ErrNotFound) {
		return Inspection{}, nil
	}
	if err != nil {
		return Inspection{}, fmt.Errorf("inspect %s %d: %w", ref.Model, ref.ID, err)
	}
	b := obj.SyncState()
	ins := Inspection{
		Exists: true, Deleted: b.Deleted, WriteProtect: b.WriteProtect, Blocked: b.NoSync || b.LazyBlocked,
		Pending: b.Pending(), Code: b.BackendCode, Updated: b.Updated,
	}
	m, _ := a.Store.Graph().Model(ref.Model)
	ins.NeedsPolicy = m.NeedsPolicy(b)
	for _, l := range m.Links {
		id, ok := m.LinkTarget(obj, l)
		if !ok {
			continue
		}
		d := DepState{Ref: models.Ref{Model: l.Dest, ID: id}}
		_, d.Synchronized = a.Sync.Step(l.Dest)
		dep, err := a.Store.Get(ctx, l.Dest, id)
		switch {
		case errors.Is(err, models.ErrNotFound):
		case err != nil:
			return Inspection{}, fmt.Errorf("inspect %s %d: dependency: %w", ref.Model, ref.ID, err)
		default:
			db := dep.SyncState()
			d.Exists, d.Deleted, d.Blocked, d.Pending = true, db.Deleted, db.NoSync || db.LazyBlocked, db.Pending()
			d.Synced = db.Enacted != nil && !db.Enacted.Before(db.Updated)
			d.Code, d.Status = db.BackendCode, db.BackendStatus
		}
		ins.Deps = append(ins.Deps, d)
	}
	if err := a.inspectGraph(ctx, ref, &ins); err != nil {
		return Inspection{}, fmt.Errorf("inspect %s %d: %w", ref.Model, ref.ID, err)
	}
	return ins, nil
}

// Outcome of a SyncObject or DeleteObject call.
type Outcome string

// Outcomes.
const (
	// OutcomeOK: synced (or deleted and purged).
	OutcomeOK Outcome = "ok"
	// OutcomeGone: the object no longer exists.
	OutcomeGone Outcome = "gone"
	// OutcomeSkipped: the object was not pending (or not deleted) any more.
	OutcomeSkipped Outcome = "skipped"
)

// SyncResult is the result of SyncObject.
type SyncResult struct {
	Outcome Outcome
	// Enacted is the updated value the sync saw when it began.
	Enacted time.Time
	// Pending reports that the object changed during the sync.
	Pending bool
}

// SyncObject loads ref fresh, runs its step's SyncRecord and records the
// outcome at once: code 1 and "OK" (or the InnocuousError text) with enacted
// set to the updated value seen at the start; "deferred: <text>" with code 0
// for a DeferredError (returned as a non-retryable ErrTypeDeferred error); and
// for any other error or panic, code 2 with the error, every pending dependent
// held with "Failed due to error in ...", and a retryable ErrTypeStep error.
func (a *Activities) SyncObject(ctx context.Context, ref models.Ref) (SyncResult, error) {
	ctx, stop := KeepAlive(ctx)
	defer stop()
	step, ok := a.Sync.Step(ref.Model)
	if !ok {
		return SyncResult{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf("sync %s %d: no step synchronizes model %s", ref.Model, ref.ID, ref.Model), "NoStep", nil)
	}
	obj, err := a.state().BeginSync(ctx, ref)
	if errors.Is(err, models.ErrNotFound) {
		return SyncResult{Outcome: OutcomeGone}, nil
	}
	if err != nil {
		return SyncResult{}, fmt.Errorf("sync %s %d: %w", ref.Model, ref.ID, err)
	}
	b := obj.SyncState()
	m, _ := a.Store.Graph().Model(ref.Model)
	if !b.Pending() || m.NeedsPolicy(b) {
		// In sync already, or its policies must run first.
		return SyncResult{Outcome: OutcomeSkipped}, nil
	}
	enacted := b.Updated
	stepErr := a.call(ctx, ref, "sync", func(ctx context.Context) error { return a.syncRecord(ctx, step, ref, obj) })
	status := "OK"
	switch engine.Classify(stepErr) {
	case engine.Succeeded:
	case engine.Noted:
		status = stepErr.Error()
	default:
		return SyncResult{}, a.recordFailure(ctx, ref, stepErr, true, enacted)
	}
	rctx, cancel := afterStep(ctx)
	defer cancel()
	pending, err := a.state().RecordSuccess(rctx, ref, enacted, status)
	if err != nil {
		return SyncResult{}, fmt.Errorf("sync %s %d: %w", ref.Model, ref.ID, err)
	}
	return SyncResult{Outcome: OutcomeOK, Enacted: enacted, Pending: pending}, nil
}

// outcomeTimeout bounds the recording of a step's success (see afterStep).
const outcomeTimeout = 30 * time.Second

// afterStep returns the context that records the success of a step that has
// run (RecordSuccess, Purge): not cancelled with the activity's. The SDK
// cancels that one when the attempt's heartbeats cannot reach Temporal (an
// outage of the server) or the server has timed it out meanwhile; by then
// the backend is in step, and a success not recorded would have the step
// run again for nothing. A failure is not recorded this way: a step cut
// short by the activity's cancellation has not failed.
func afterStep(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), outcomeTimeout)
}

// recordFailure records a step's error and returns the activity's error.
//
// The text is made a status first (valid UTF-8, no NUL, at most
// syncstate.MaxStatusLen characters): the same text then goes to the database
// and to Temporal, whose failure messages must be valid UTF-8 and whose
// payloads are limited in size; a step error quoting a huge or binary field
// would otherwise fail the activity's completion and wait out step_timeout.
//
// seen is the updated value a sync attempt began with (zero for deletes
// and policies): when a sync of that content has succeeded meanwhile (by an
// attempt that replaced this one after a timeout), neither the error nor
// the deferral is recorded over that success.
func (a *Activities) recordFailure(ctx context.Context, ref models.Ref, stepErr error, holdDependents bool, seen time.Time) error {
	text := syncstate.StatusText(stepErr.Error())
	if engine.Classify(stepErr) == engine.Deferred {
		if _, err := a.state().RecordDeferral(ctx, ref, seen, "deferred: "+text); err != nil {
			return fmt.Errorf("%s %d: %w", ref.Model, ref.ID, err)
		}
		return temporal.NewNonRetryableApplicationError(text, ErrTypeDeferred, nil)
	}
	recorded, err := a.state().RecordSyncError(ctx, ref, seen, text)
	if err != nil {
		return fmt.Errorf("%s %d: %w (step error: %s)", ref.Model, ref.ID, err, text)
	}
	if recorded && holdDependents {
		if _, err := a.state().HoldDependents(ctx, ref, text); err != nil {
			activity.GetLogger(ctx).Warn("holding dependents failed", "object", ref.String(), "error", err)
		}
	}
	return temporal.NewApplicationError(text, ErrTypeStep)
}

// DeleteObject deletes a deleted object from the backend (DeleteRecord, only
// when a sync was ever attempted) and purges its row. Errors are recorded and
// returned as by SyncObject.
func (a *Activities) DeleteObject(ctx context.Context, ref models.Ref) (Outcome, error) {
	ctx, stop := KeepAlive(ctx)
	defer stop()
	step, ok := a.Sync.Step(ref.Model)
	if !ok {
		return "", temporal.NewNonRetryableApplicationError(fmt.Sprintf("delete %s %d: no step synchronizes model %s", ref.Model, ref.ID, ref.Model), "NoStep", nil)
	}
	obj, err := a.Store.Get(ctx, ref.Model, ref.ID)
	if errors.Is(err, models.ErrNotFound) {
		return OutcomeGone, nil
	}
	if err != nil {
		return "", fmt.Errorf("delete %s %d: %w", ref.Model, ref.ID, err)
	}
	b := obj.SyncState()
	if !b.Deleted || b.WriteProtect {
		return OutcomeSkipped, nil
	}
	if b.BackendNeedDelete {
		if err := a.call(ctx, ref, "delete", func(ctx context.Context) error { return a.deleteRecord(ctx, step, ref, obj) }); err != nil && engine.Classify(err) != engine.Noted {
			return "", a.recordFailure(ctx, ref, err, false, time.Time{})
		}
	}
	rctx, cancel := afterStep(ctx)
	defer cancel()
	if err := a.state().Purge(rctx, ref); err != nil {
		return "", fmt.Errorf("delete %s %d: %w", ref.Model, ref.ID, err)
	}
	return OutcomeOK, nil
}

// Dependents lists the objects that link to ref.
func (a *Activities) Dependents(ctx context.Context, ref models.Ref) ([]syncstate.Dependent, error) {
	return a.state().Dependents(ctx, ref)
}

// RecordStatus sets ref's code and status (for objects a workflow holds).
func (a *Activities) RecordStatus(ctx context.Context, ref models.Ref, code int, status string) error {
	return a.state().RecordStatus(ctx, ref, code, status)
}

// call runs a step call fn for operation op on ref by RunStep, under ref's
// lock (exclusive.go), and records its outcome and duration in the metrics.
func (a *Activities) call(ctx context.Context, ref models.Ref, op string, fn func(context.Context) error) error {
	a.running.Add(1)
	defer a.running.Add(-1)
	start := time.Now()
	stepCtx := ctx
	if deadline, ok := ctx.Deadline(); ok {
		// The step's deadline comes a little before the activity's
		// (step_timeout), so that the outcome of a step that runs into it is
		// still recorded (code 2) rather than lost with the activity.
		margin := min(time.Until(deadline)/10, 2*time.Second)
		var cancel context.CancelFunc
		stepCtx, cancel = context.WithDeadline(ctx, deadline.Add(-margin))
		defer cancel()
	}
	err := RunStep(stepCtx, a.exclusive(ref, fn))
	if err != nil && ctx.Err() == nil && errors.Is(stepCtx.Err(), context.DeadlineExceeded) {
		err = fmt.Errorf("step timed out (step_timeout): %w", err)
	}
	took := time.Since(start)
	class := engine.Classify(err)
	outcome := OutcomeLabel(class)
	a.Metrics.Step(ref.Model, op, outcome, took)
	a.logOutcome(ctx, ref, op, class, outcome, took, err)
	return err
}

// OutcomeLabel is the word for class in metrics and log lines: ok,
// deferred, innocuous or error (the metrics.Outcome* labels).
func OutcomeLabel(class engine.Outcome) string {
	switch class {
	case engine.Deferred:
		return metrics.OutcomeDeferred
	case engine.Noted:
		return metrics.OutcomeInnocuous
	case engine.Failed:
		return metrics.OutcomeError
	}
	return metrics.OutcomeOK
}

// StepLogMessage is the message of the line logged for every step call's
// outcome (see Activities.Log).
const StepLogMessage = "step"

// logOutcome logs the outcome of one step call: at warn for a failure,
// with the error's text; at info for a success, a deferral or an
// innocuous error (with its text).
func (a *Activities) logOutcome(ctx context.Context, ref models.Ref, op string, class engine.Outcome, outcome string, took time.Duration, err error) {
	log := a.logger()
	level := slog.LevelInfo
	if class == engine.Failed {
		level = slog.LevelWarn
	}
	if !log.Enabled(ctx, level) {
		return
	}
	attrs := []slog.Attr{
		slog.String("model", ref.Model),
		slog.Int64("id", ref.ID),
		slog.String("operation", op),
		slog.String("outcome", outcome),
		slog.Int("attempt", int(attempt(ctx))),
		slog.Duration("duration", took),
	}
	if err != nil {
		attrs = append(attrs, slog.String("error", syncstate.StatusText(err.Error())))
	}
	if activity.IsActivity(ctx) {
		attrs = append(attrs, slog.String("workflow_id", activity.GetInfo(ctx).WorkflowExecution.ID))
	}
	log.LogAttrs(ctx, level, StepLogMessage, attrs...)
}

// logger is a.Log, or when nil, a discarding logger.
func (a *Activities) logger() *slog.Logger {
	if a.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return a.Log
}

// attempt is the number of the step call running in ctx within its
// activity. Workflows on the current code run each attempt as an activity
// of its own, limited to one attempt, after a durable timer: their calls
// are all attempt 1 here, and the workflow's memo counts the retries
// (internal/workflows runStep). Runs of the older code ran a step's first
// attempt alone and its retries as another activity whose attempts count
// from 1 again: the attempts of an activity that may retry are one more
// than its own count. A call outside an activity is attempt 1.
func attempt(ctx context.Context) int32 {
	if !activity.IsActivity(ctx) {
		return 1
	}
	info := activity.GetInfo(ctx)
	n := max(info.Attempt, 1)
	if rp := info.RetryPolicy; rp != nil && rp.MaximumAttempts != 1 {
		n++
	}
	return n
}
