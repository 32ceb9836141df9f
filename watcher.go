package tsync

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/tsync/tsync/internal/watchset"
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
// each, in its own durable Temporal workflow: once per watcher, object and
// change, even when the change is delivered twice. Objects that are deleted,
// no_sync or lazy_blocked, or gone by the time the handler runs, are
// skipped. Watchers run only with observer_enable_watchers.
//
// HandleWatchedObject gets the affected object loaded fresh from the
// database and the change that fired. It must be idempotent: after a crash,
// a timeout or a retry it can run again for the same change. Two changes in
// quick succession can run it concurrently for one object. What the
// returned error means:
//   - nil: handled.
//   - an error wrapping *InnocuousError (see Innocuous): handled, with a note
//     in the worker's log.
//   - an error wrapping *DeferredError (see Defer): a temporary condition;
//     the handler runs again after the loop interval, without backoff.
//   - any other error, or a panic: retried with exponential backoff
//     (constant intervals when observer_backoff_disabled) until it succeeds.
//
// Watchers record nothing in the objects' sync state: that is the work of
// steps. A model may have both a step and watchers (a hybrid synchronizer).
type Watcher interface {
	// Synchronizes names the models whose objects the watcher handles.
	Synchronizes() []string
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
// its synchronized models joined by "+". Names must be unique in a
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
	// Op is "create", "update" or "delete".
	Op string `json:"op"`
	// Fields lists the columns an update changed.
	Fields []string `json:"fields,omitempty"`
}

// TypedWatcher adapts a watcher of model's struct T, given as WatchedFuncs,
// to Watcher.
func TypedWatcher[T any](model string, f WatchedFuncs[T]) Watcher {
	return &typedWatcher[T]{model: model, f: f}
}

// WatchedFuncs declares a watcher of one model's struct T: its watched set
// and its handler. The zero WatchDegree with no Watched links watches
// nothing.
type WatchedFuncs[T any] struct {
	// Name names the watcher (see NamedWatcher); "" is the model's name.
	Name string
	// WatchDegree is the distance of the implicit watched set.
	WatchDegree int
	// Watched are explicit watched links; they override WatchDegree.
	Watched []models.Link
	// Handle is HandleWatchedObject, with the object as a *T. nil handles
	// nothing.
	Handle func(ctx context.Context, obj *T, ev WatchEvent) error
}

type typedWatcher[T any] struct {
	model string
	f     WatchedFuncs[T]
}

func (w *typedWatcher[T]) Name() string {
	if w.f.Name != "" {
		return w.f.Name
	}
	return w.model
}

func (w *typedWatcher[T]) Synchronizes() []string { return []string{w.model} }

func (w *typedWatcher[T]) WatchDegree() int { return w.f.WatchDegree }

func (w *typedWatcher[T]) Watched() []models.Link { return w.f.Watched }

func (w *typedWatcher[T]) HandleWatchedObject(ctx context.Context, obj models.Object, ev WatchEvent) error {
	o, ok := any(obj).(*T)
	if !ok {
		return fmt.Errorf("watcher %s: got %T, want %T", w.Name(), obj, o)
	}
	if w.f.Handle == nil {
		return nil
	}
	return w.f.Handle(ctx, o, ev)
}

// CompiledWatcher is a validated watcher with its watched paths.
type CompiledWatcher struct {
	// Name is the watcher's name, unique in the synchronizer.
	Name string
	// Watcher is the watcher.
	Watcher Watcher
	// Paths lead from its synchronized models to its watched models.
	Paths []watchset.Path
}

// WatchedModels returns the watcher's watched set.
func (w *CompiledWatcher) WatchedModels() []string { return watchset.Models(w.Paths) }

var watcherName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.+-]*$`)

// compileWatchers validates ws against g and computes their paths.
func compileWatchers(g *models.Graph, ws []Watcher) ([]*CompiledWatcher, error) {
	var out []*CompiledWatcher
	names := map[string]bool{}
	for i, w := range ws {
		if w == nil {
			return nil, fmt.Errorf("synchronizer: watcher %d is nil", i)
		}
		name := strings.Join(w.Synchronizes(), "+")
		if n, ok := w.(NamedWatcher); ok {
			name = n.Name()
		}
		if !watcherName.MatchString(name) {
			return nil, fmt.Errorf("synchronizer: watcher %d (%T): name %q must match %s", i, w, name, watcherName)
		}
		if names[name] {
			return nil, fmt.Errorf("synchronizer: two watchers are named %q (give each a Name)", name)
		}
		names[name] = true
		paths, err := watchset.Compute(g, w.Synchronizes(), w.WatchDegree(), w.Watched())
		if err != nil {
			return nil, fmt.Errorf("synchronizer: watcher %s: %w", name, err)
		}
		out = append(out, &CompiledWatcher{Name: name, Watcher: w, Paths: paths})
	}
	return out, nil
}

// Watchers returns the synchronizer's watchers, in declaration order.
func (c *Compiled) Watchers() []*CompiledWatcher { return c.watchers }

// Watcher returns the watcher of the given name.
func (c *Compiled) Watcher(name string) (*CompiledWatcher, bool) {
	for _, w := range c.watchers {
		if w.Name == name {
			return w, true
		}
	}
	return nil, false
}
