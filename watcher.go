package tsync

import (
	"context"

	"github.com/tsync/tsync/models"
)

// Watcher is an event-based synchronizer module (an XOS watcher): it reacts
// to changes of the models it watches, for the objects of the models it
// synchronizes that those changes affect.
//
// The watched set is declared by WatchDegree or by Watched:
//
//   - Watched returns explicit links; when it returns any, WatchDegree is
//     ignored. Each link names a watched model (Dest) and optionally Via, a
//     column of the synchronized model holding the id of a Dest object;
//     without Via, the watcher follows every dependency path from the
//     synchronized model to Dest. A link whose Dest is the synchronized
//     model itself (no Via) watches the model's own objects.
//   - WatchDegree d watches the models within distance d of the synchronized
//     models in the dependency graph, following links from a model to the
//     models it depends on: 1 is the direct dependencies, 2 adds theirs, and
//     0 watches nothing. The Into of each path is the Into of its last link,
//     as declared on the model.
//
// A link with Into fires for an update only when that column changed;
// without Into, on any change. Creates and deletes of a watched object fire
// every link.
//
// For each committed change to an object of a watched model, tsync finds the
// affected objects (those of the synchronized models that reach the changed
// object through the links, in reverse) and runs HandleWatchedObject for
// each, in a durable Temporal workflow per watcher and object: once per
// change, even when the change is delivered twice, one call at a time, in
// the order of the changes. Different objects run concurrently. Objects that are deleted,
// no_sync or lazy_blocked, or gone by the time the handler runs, are
// skipped. Watchers run only with observer_enable_watchers.
//
// HandleWatchedObject gets the affected object loaded fresh from the
// database and the change that fired. For one object, calls never overlap
// and the next change waits until this one's call has succeeded, so a
// handler need not be idempotent; it runs again for the same change only
// after it failed (a retry), or when a worker died during the call. What the
// returned error means, the first match winning (as for Step):
//   - nil: handled.
//   - an error wrapping *DeferredError (see Defer): a temporary condition;
//     the handler runs again after the loop interval, without backoff.
//   - an error wrapping *InnocuousError (see Innocuous): handled, with a note
//     in the worker's log.
//   - any other error, or a panic: retried with exponential backoff
//     (constant intervals when observer_backoff_disabled) until it succeeds.
//
// Watchers record nothing in the objects' sync state: that is the work of
// steps. A model may have both a step and watchers (a hybrid synchronizer).
type Watcher interface {
	// Synchronizes returns one object of each model whose objects the
	// watcher handles (new(Instance)); the registry names the models.
	Synchronizes() []models.Object
	// WatchDegree is the distance of the implicit watched set (0: none).
	WatchDegree() int
	// Watched are the explicit watched links; when not empty, WatchDegree
	// is ignored.
	Watched() []models.Link
	// HandleWatchedObject reacts to change ev for the affected object obj.
	HandleWatchedObject(ctx context.Context, obj models.Object, ev WatchEvent) error
}

// NamedWatcher is implemented by watchers that choose their name. A
// watcher's name is part of its workflow IDs
// ("<synchronizer>/watch/<name>/<model>/<id>/<event>"); without Name it is
// the names of its synchronized models joined by "+" (so it is when Name
// returns ""). Names must be unique in a
// synchronizer and match ^[A-Za-z][A-Za-z0-9_.+-]*$.
type NamedWatcher interface {
	Name() string
}

// WatchEvent is the change that fired a watcher.
type WatchEvent struct {
	// ID identifies the change: it is the same for every watcher and object
	// the change is delivered to, and differs for every change.
	ID string `json:"id"`
	// Changed is the object that changed, of a watched model.
	Changed models.Ref `json:"changed"`
	// Op is what happened to it.
	Op models.Op `json:"op"`
	// Fields lists the columns an update changed.
	Fields []string `json:"fields,omitempty"`
}

// TypedWatcher is a watcher written against one model's struct T. Make it a
// Watcher with WatcherOf.
type TypedWatcher[T any] interface {
	WatchDegree() int
	Watched() []models.Link
	HandleWatchedObject(ctx context.Context, obj *T, ev WatchEvent) error
}

// WatcherOf adapts a watcher of model struct T to Watcher: it handles the
// objects of the model registered as T. When w also implements
// NamedWatcher, the adapter forwards Name to it.
func WatcherOf[T any, PT models.ObjectPtr[T]](w TypedWatcher[T]) Watcher {
	return &typedWatcher[T, PT]{w: w}
}

// WatcherFuncs is a TypedWatcher made of its declarations and a function.
// The zero Degree with no Links watches nothing.
type WatcherFuncs[T any] struct {
	// Name names the watcher (see NamedWatcher); "" is the model's name.
	Name string
	// Degree is the distance of the implicit watched set (WatchDegree).
	Degree int
	// Links are explicit watched links (Watched); they override Degree.
	Links []models.Link
	// Handle is HandleWatchedObject; nil handles nothing.
	Handle func(ctx context.Context, obj *T, ev WatchEvent) error
}

// WatchDegree returns f.Degree.
func (f WatcherFuncs[T]) WatchDegree() int { return f.Degree }

// Watched returns f.Links.
func (f WatcherFuncs[T]) Watched() []models.Link { return f.Links }

// HandleWatchedObject calls f.Handle.
func (f WatcherFuncs[T]) HandleWatchedObject(ctx context.Context, obj *T, ev WatchEvent) error {
	if f.Handle == nil {
		return nil
	}
	return f.Handle(ctx, obj, ev)
}

// name is the watcher's Name, "" for the default.
func (f WatcherFuncs[T]) name() string { return f.Name }

type typedWatcher[T any, PT models.ObjectPtr[T]] struct {
	typedModel[T, PT]
	w TypedWatcher[T]
}

// Name returns the typed watcher's name: its own (NamedWatcher, or a
// WatcherFuncs' Name) or, when empty, "": the engine then names it after
// its model.
func (t *typedWatcher[T, PT]) Name() string {
	switch w := t.w.(type) {
	case NamedWatcher:
		return w.Name()
	case interface{ name() string }:
		return w.name()
	}
	return ""
}

func (t *typedWatcher[T, PT]) WatchDegree() int { return t.w.WatchDegree() }

func (t *typedWatcher[T, PT]) Watched() []models.Link { return t.w.Watched() }

func (t *typedWatcher[T, PT]) HandleWatchedObject(ctx context.Context, obj models.Object, ev WatchEvent) error {
	o, err := t.cast("watcher", obj)
	if err != nil {
		return err
	}
	return t.w.HandleWatchedObject(ctx, o, ev)
}
