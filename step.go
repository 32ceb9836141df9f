package tsync

import (
	"context"
	"fmt"

	"github.com/tsync/tsync/models"
)

// Step is a work-based synchronizer module (an XOS sync step): it makes the
// backend match the objects of the models it synchronizes.
//
// SyncRecord must make the backend match obj. It is called for an object
// whose content changed since its last successful sync, after every object it
// depends on (through its model's links) is in sync. It must be idempotent:
// after a crash, a timeout or a retry it can run again for the same content
// and must converge to the same backend state. obj is loaded fresh from the
// database for each call.
//
// DeleteRecord must remove obj from the backend; it is called for a deleted
// object that was synced at least once (backend_need_delete), after every
// deleted object depending on it is gone, and the row is purged when it
// returns nil. It must be idempotent too: deleting what is already gone
// succeeds.
//
// What the returned error means:
//   - nil: success. The object is recorded with code 1 and status "OK".
//   - an error wrapping *DeferredError (see Defer): a temporary condition. The
//     status becomes "deferred: <text>" with code 0, and the call is tried
//     again after the loop interval, with no backoff and no error state.
//   - an error wrapping *InnocuousError (see Innocuous): success with a note.
//     The text is recorded with code 1; nothing is held or retried.
//   - any other error, or a panic: failure. The object gets code 2 and the
//     error text at once, every pending dependent is held with "Failed due to
//     error in model M id N: <text>", and the call is retried with
//     exponential backoff (constant intervals when observer_backoff_disabled)
//     until it succeeds.
//
// ctx is cancelled when the call times out (step_timeout) or the sync is
// cancelled; a step must return promptly then.
type Step interface {
	// Synchronizes names the models the step synchronizes.
	Synchronizes() []string
	// SyncRecord makes the backend match obj.
	SyncRecord(ctx context.Context, obj models.Object) error
	// DeleteRecord removes obj from the backend.
	DeleteRecord(ctx context.Context, obj models.Object) error
}

// PendingFetcher is implemented by steps that choose their pending objects
// themselves (the XOS fetch_pending override). Without it, tsync uses
// PendingQuery.Default.
type PendingFetcher interface {
	// FetchPending returns up to q.Limit ids above q.AfterID, in ascending
	// order, of objects of q.Model pending for sync (or for deletion when
	// q.Deletion). Fewer than q.Limit ids means there are no more.
	FetchPending(ctx context.Context, q PendingQuery) ([]int64, error)
}

// PendingQuery asks a step for a batch of pending objects.
type PendingQuery struct {
	// Model is the model asked for.
	Model string
	// Deletion asks for deleted objects pending for deletion instead.
	Deletion bool
	// AfterID is the id after which to start; 0 for the first batch.
	AfterID int64
	// Limit is the largest number of ids to return.
	Limit int
	// Store is the model store.
	Store *models.Store
}

// Default runs the default query: the XOS pending predicate, by index, in id
// order (see models.PendingPredicate).
func (q PendingQuery) Default(ctx context.Context) ([]int64, error) {
	return q.Store.FetchPending(ctx, q.Model, q.Deletion, q.AfterID, q.Limit)
}

// FetchPending runs step's FetchPending override when it has one, the
// default query otherwise.
func FetchPending(ctx context.Context, step Step, q PendingQuery) ([]int64, error) {
	if f, ok := step.(PendingFetcher); ok {
		ids, err := f.FetchPending(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("fetch pending %s: %w", q.Model, err)
		}
		return ids, nil
	}
	return q.Default(ctx)
}

// TypedStep is a step written against one model's struct T. Turn it into a
// Step with Typed.
type TypedStep[T any] interface {
	SyncRecord(ctx context.Context, obj *T) error
	DeleteRecord(ctx context.Context, obj *T) error
}

// Typed adapts a step of model's struct T to Step. When s also implements
// PendingFetcher, the adapter forwards FetchPending to it.
func Typed[T any](model string, s TypedStep[T]) Step {
	return &typed[T]{model: model, step: s}
}

type typed[T any] struct {
	model string
	step  TypedStep[T]
}

func (t *typed[T]) Synchronizes() []string { return []string{t.model} }

func (t *typed[T]) cast(obj models.Object) (*T, error) {
	o, ok := any(obj).(*T)
	if !ok {
		return nil, fmt.Errorf("step for %s: got %T, want %T", t.model, obj, o)
	}
	return o, nil
}

func (t *typed[T]) SyncRecord(ctx context.Context, obj models.Object) error {
	o, err := t.cast(obj)
	if err != nil {
		return err
	}
	return t.step.SyncRecord(ctx, o)
}

func (t *typed[T]) DeleteRecord(ctx context.Context, obj models.Object) error {
	o, err := t.cast(obj)
	if err != nil {
		return err
	}
	return t.step.DeleteRecord(ctx, o)
}

func (t *typed[T]) FetchPending(ctx context.Context, q PendingQuery) ([]int64, error) {
	if f, ok := t.step.(PendingFetcher); ok {
		return f.FetchPending(ctx, q)
	}
	return q.Default(ctx)
}

// StepFuncs is a TypedStep made of two functions, for small synchronizers and
// tests. A nil Delete deletes nothing from the backend.
type StepFuncs[T any] struct {
	Sync   func(ctx context.Context, obj *T) error
	Delete func(ctx context.Context, obj *T) error
}

// SyncRecord calls f.Sync.
func (f StepFuncs[T]) SyncRecord(ctx context.Context, obj *T) error {
	if f.Sync == nil {
		return nil
	}
	return f.Sync(ctx, obj)
}

// DeleteRecord calls f.Delete.
func (f StepFuncs[T]) DeleteRecord(ctx context.Context, obj *T) error {
	if f.Delete == nil {
		return nil
	}
	return f.Delete(ctx, obj)
}
