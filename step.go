package tsync

import (
	"context"
	"fmt"

	"github.com/tsync/tsync/models"
)

// Step is a work-based synchronizer module (an XOS sync step): it makes the
// backend match the objects of the models it synchronizes. Most steps are
// written against one model's struct and made a Step with StepOf.
//
// Synchronizes names the models the step synchronizes by example: one
// object of each model's Go type, such as new(Site). The registry gives
// their names, so a step cannot name the wrong model.
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
// What the returned error means, the first match winning:
//   - nil: success. The object is recorded with code 1 and status "OK".
//   - an error wrapping a *DeferredError (see Defer), even if it wraps an
//     *InnocuousError too: a temporary condition. The status becomes
//     "deferred: <text>" with code 0, and the call is tried again after the
//     loop interval, with no backoff and no error state.
//   - an error wrapping an *InnocuousError (see Innocuous): success with a
//     note. The text is recorded with code 1; nothing is held or retried.
//   - any other error, or a panic: failure. The object gets code 2 and the
//     error text at once, every pending dependent is held with "Failed due to
//     error in model M id N: <text>", and the call is retried with
//     exponential backoff (constant intervals when observer_backoff_disabled)
//     until it succeeds.
//
// ctx is cancelled when the call times out (step_timeout) or the sync is
// cancelled; a step must return promptly then.
type Step interface {
	// Synchronizes returns one object of each model the step synchronizes.
	Synchronizes() []models.Object
	// SyncRecord makes the backend match obj.
	SyncRecord(ctx context.Context, obj models.Object) error
	// DeleteRecord removes obj from the backend.
	DeleteRecord(ctx context.Context, obj models.Object) error
}

// PendingFetcher is implemented by steps (and Ansible steps) that choose
// their pending objects themselves (the XOS fetch_pending override).
// Without it, tsync runs the default query (PendingQuery.Default).
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
	// Objects runs the default query and reads objects; it never writes.
	Objects PendingReader
}

// PendingReader is what a FetchPending override may use: the default query
// and read-only lookups of objects.
type PendingReader interface {
	// Pending runs the default query for q: the XOS pending predicate (see
	// models.PendingPredicate), by index, in id order.
	Pending(ctx context.Context, q PendingQuery) ([]int64, error)
	// Get loads object id of model, fresh from the database; an object that
	// does not exist is an error wrapping models.ErrNotFound.
	Get(ctx context.Context, model string, id int64) (models.Object, error)
}

// Default runs the default query.
func (q PendingQuery) Default(ctx context.Context) ([]int64, error) {
	if q.Objects == nil {
		return nil, fmt.Errorf("fetch pending %s: the query has no PendingReader", q.Model)
	}
	return q.Objects.Pending(ctx, q)
}

// TypedStep is a step written against one model's struct T. Make it a Step
// with StepOf.
type TypedStep[T any] interface {
	SyncRecord(ctx context.Context, obj *T) error
	DeleteRecord(ctx context.Context, obj *T) error
}

// StepOf adapts a step of model struct T to Step: it synchronizes the model
// registered as T. When s also implements PendingFetcher, the adapter
// forwards FetchPending to it.
//
//	tsync.StepOf[Site](tsync.StepFuncs[Site]{Sync: syncSite, Delete: deleteSite})
func StepOf[T any, PT models.ObjectPtr[T]](s TypedStep[T]) Step {
	return &typedStep[T, PT]{step: s}
}

// typedModel is what every typed adapter shares: the model is T's, and
// objects are cast to *T.
type typedModel[T any, PT models.ObjectPtr[T]] struct{}

func (typedModel[T, PT]) Synchronizes() []models.Object { return []models.Object{PT(new(T))} }

func (typedModel[T, PT]) cast(kind string, obj models.Object) (*T, error) {
	o, ok := obj.(PT)
	if !ok {
		return nil, fmt.Errorf("%s of %T: got %T", kind, PT(nil), obj)
	}
	return (*T)(o), nil
}

type typedStep[T any, PT models.ObjectPtr[T]] struct {
	typedModel[T, PT]
	step TypedStep[T]
}

func (t *typedStep[T, PT]) SyncRecord(ctx context.Context, obj models.Object) error {
	o, err := t.cast("step", obj)
	if err != nil {
		return err
	}
	return t.step.SyncRecord(ctx, o)
}

func (t *typedStep[T, PT]) DeleteRecord(ctx context.Context, obj models.Object) error {
	o, err := t.cast("step", obj)
	if err != nil {
		return err
	}
	return t.step.DeleteRecord(ctx, o)
}

func (t *typedStep[T, PT]) FetchPending(ctx context.Context, q PendingQuery) ([]int64, error) {
	if f, ok := t.step.(PendingFetcher); ok {
		return f.FetchPending(ctx, q)
	}
	return q.Default(ctx)
}

// StepFuncs is a TypedStep made of two functions, for small synchronizers and
// tests. A nil Sync or Delete does nothing and succeeds.
type StepFuncs[T any] struct {
	Sync   func(ctx context.Context, obj *T) error
	Delete func(ctx context.Context, obj *T) error
}

// SyncRecord calls f.Sync.
func (f StepFuncs[T]) SyncRecord(ctx context.Context, obj *T) error { return call(ctx, f.Sync, obj) }

// DeleteRecord calls f.Delete.
func (f StepFuncs[T]) DeleteRecord(ctx context.Context, obj *T) error {
	return call(ctx, f.Delete, obj)
}

func call[T any](ctx context.Context, fn func(context.Context, *T) error, obj *T) error {
	if fn == nil {
		return nil
	}
	return fn(ctx, obj)
}
