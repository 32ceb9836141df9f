package tsync

import (
	"context"
	"fmt"

	"github.com/tsync/tsync/models"
)

// Policy is a model policy (XOS model_policies): code run when an object of
// its model is created, updated or deleted, before the object is synced (or
// deleted from the backend). An object is synced only after its policies
// ran for its latest update; the store records that in the object's policed
// column.
//
// Handle must be idempotent, like a step: it can run again after a crash.
// It may change obj's fields: tsync saves those changes together with the
// policed mark, so they do not make the object need its policies again. It
// must not save obj itself through the store (that would be a new update,
// which runs the policies again). It may create, change or delete other
// objects.
//
// A nil error marks the object policed. A DeferredError is tried again
// after the loop interval. Any other error (or a panic) is recorded on the
// object like a step error (code 2, "model policy <op> failed: <text>"),
// holds its dependents, and is retried with backoff; the object is not
// synced meanwhile.
type Policy interface {
	// Model returns an object of the model the policy handles (new(Slice));
	// the registry names the model.
	Model() models.Object
	// Handle runs the policy for op on obj.
	Handle(ctx context.Context, op models.Op, obj models.Object) error
}

// TypedPolicy is a policy written against one model's struct T; make it a
// Policy with PolicyOf.
type TypedPolicy[T any] interface {
	HandleCreate(ctx context.Context, obj *T) error
	HandleUpdate(ctx context.Context, obj *T) error
	HandleDelete(ctx context.Context, obj *T) error
}

// PolicyOf adapts a policy of model struct T to Policy: it handles the
// objects of the model registered as T.
func PolicyOf[T any, PT models.ObjectPtr[T]](p TypedPolicy[T]) Policy {
	return &typedPolicy[T, PT]{p: p}
}

type typedPolicy[T any, PT models.ObjectPtr[T]] struct {
	typedModel[T, PT]
	p TypedPolicy[T]
}

func (t *typedPolicy[T, PT]) Model() models.Object { return t.Synchronizes()[0] }

func (t *typedPolicy[T, PT]) Handle(ctx context.Context, op models.Op, obj models.Object) error {
	o, err := t.cast("policy", obj)
	if err != nil {
		return err
	}
	switch op {
	case models.OpCreate:
		return t.p.HandleCreate(ctx, o)
	case models.OpUpdate:
		return t.p.HandleUpdate(ctx, o)
	case models.OpDelete:
		return t.p.HandleDelete(ctx, o)
	}
	return fmt.Errorf("policy of %T: unknown operation %q", obj, op)
}

// PolicyFuncs is a TypedPolicy made of functions; a nil one does nothing.
type PolicyFuncs[T any] struct {
	Create, Update, Delete func(ctx context.Context, obj *T) error
}

// HandleCreate calls f.Create.
func (f PolicyFuncs[T]) HandleCreate(ctx context.Context, obj *T) error {
	return call(ctx, f.Create, obj)
}

// HandleUpdate calls f.Update.
func (f PolicyFuncs[T]) HandleUpdate(ctx context.Context, obj *T) error {
	return call(ctx, f.Update, obj)
}

// HandleDelete calls f.Delete.
func (f PolicyFuncs[T]) HandleDelete(ctx context.Context, obj *T) error {
	return call(ctx, f.Delete, obj)
}
