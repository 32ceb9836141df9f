package activities

import (
	"context"
	"errors"

	"go.temporal.io/sdk/temporal"

	"github.com/tsync/tsync/models"
)

// Ready reports whether the object inspected can be synced now, with
// nothing to do or wait for first: it exists, is pending, not deleted nor
// blocked, its policies have run, it is on no cycle and every dependency
// is in sync. The sync workflow then runs its step at once (SyncReady).
func (ins Inspection) Ready() bool {
	if !ins.Exists || ins.Deleted || ins.Blocked || !ins.Pending || ins.NeedsPolicy || len(ins.Cycle) > 0 {
		return false
	}
	for _, d := range ins.Deps {
		if !d.InSync() {
			return false
		}
	}
	return true
}

// ReadySync is the result of SyncReady.
type ReadySync struct {
	// Inspection is what SyncReady saw before the step.
	Inspection Inspection
	// Ran reports that the object was Ready and its step ran: Sync is its
	// result. Otherwise the step did not run, and the workflow goes on
	// from Inspection.
	Ran  bool
	Sync SyncResult
}

// SyncReady inspects ref (Inspect) and, when it is Ready, syncs it
// (SyncObject) in the same activity. It is the sync workflow's first look
// at its object, in place of the Inspect local activity: an object with
// nothing to wait for, the common case, then costs its workflow one
// activity, as a workflow that only runs the step would.
//
// A failure of the step is returned as SyncObject returns it, with the
// inspection as the ApplicationError's details (FailedInspection reads
// it); a failure of the inspection is returned as it is.
func (a *Activities) SyncReady(ctx context.Context, ref models.Ref) (ReadySync, error) {
	ctx, stop := KeepAlive(ctx)
	defer stop()
	// The whole attempt heartbeats (KeepAlive): its queries may outlast
	// the heartbeat timeout on a slow database.
	return SyncIfReady(ctx, ref, a.Inspect, a.SyncObject)
}

// SyncIfReady is SyncReady with inspect for Inspect and sync for
// SyncObject.
func SyncIfReady(ctx context.Context, ref models.Ref,
	inspect func(context.Context, models.Ref) (Inspection, error),
	sync func(context.Context, models.Ref) (SyncResult, error),
) (ReadySync, error) {
	ins, err := inspect(ctx, ref)
	if err != nil {
		return ReadySync{}, err
	}
	if !ins.Ready() {
		return ReadySync{Inspection: ins}, nil
	}
	out, err := sync(ctx, ref)
	if err != nil {
		return ReadySync{}, withInspection(ctx, err, ins)
	}
	return ReadySync{Inspection: ins, Ran: true, Sync: out}, nil
}

// withInspection is err, a failure of the step of SyncReady, carrying
// ins, the inspection made before the step, as its details. An error of a
// cancelled attempt is left as it is, for the SDK to report the
// cancellation.
func withInspection(ctx context.Context, err error, ins Inspection) error {
	if ctx.Err() != nil {
		return err
	}
	opts := temporal.ApplicationErrorOptions{Details: []any{ins}}
	msg, typ := err.Error(), ""
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		msg, typ = appErr.Message(), appErr.Type()
		opts.NonRetryable, opts.Cause = appErr.NonRetryable(), appErr.Unwrap()
	}
	return temporal.NewApplicationErrorWithOptions(msg, typ, opts)
}

// FailedInspection is the inspection that the failed step of a SyncReady
// attempt began with (see withInspection); false when err does not carry
// one (the inspection failed, the attempt was cancelled, or err is not
// SyncReady's).
func FailedInspection(err error) (Inspection, bool) {
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || !appErr.HasDetails() {
		return Inspection{}, false
	}
	var ins Inspection
	if appErr.Details(&ins) != nil {
		return Inspection{}, false
	}
	return ins, true
}
