package watchers

import (
	"cmp"
	"context"
	"slices"

	"github.com/tsync/tsync/internal/engine"
	"github.com/tsync/tsync/internal/syncstate"
	"github.com/tsync/tsync/internal/watchset"
	"github.com/tsync/tsync/models"
)

// Target is one watcher to run for one affected object.
type Target struct {
	Watcher string
	Object  models.Ref
}

// route is one path of one watcher, indexed by its watched model.
type route struct {
	watcher string
	path    watchset.Path
}

// Router finds, for a change, the watchers it fires and the objects they
// are told about.
type Router struct {
	store  *syncstate.Store
	routes map[string][]route
}

// NewRouter indexes sync's watchers by watched model.
func NewRouter(sync *engine.Synchronizer, store *models.Store) *Router {
	r := &Router{store: syncstate.New(store), routes: map[string][]route{}}
	for _, w := range sync.Watchers() {
		for _, p := range w.Paths {
			r.routes[p.Watched()] = append(r.routes[p.Watched()], route{watcher: w.Name, path: p})
		}
	}
	return r
}

// Watched reports whether any watcher watches model.
func (r *Router) Watched(model string) bool { return len(r.routes[model]) > 0 }

// Targets returns the (watcher, object) pairs a change fires, each once, in
// a stable order: for every path of every watcher watching the changed
// model that the change fires, the objects of the path's synchronized model
// that reach the changed object along the path (following its links in
// reverse).
func (r *Router) Targets(ctx context.Context, c models.Change) ([]Target, error) {
	var out []Target
	seen := map[Target]bool{}
	for _, rt := range r.routes[c.Model] {
		if !rt.path.Fires(c.Op, c.Fields) {
			continue
		}
		ids := []int64{c.ID}
		for i := len(rt.path.Hops) - 1; i >= 0 && len(ids) > 0; i-- {
			h := rt.path.Hops[i]
			var err error
			if ids, err = r.store.Referrers(ctx, h.From, h.Via, ids); err != nil {
				return nil, err
			}
		}
		for _, id := range ids {
			t := Target{Watcher: rt.watcher, Object: models.Ref{Model: rt.path.Model, ID: id}}
			if !seen[t] {
				seen[t] = true
				out = append(out, t)
			}
		}
	}
	slices.SortFunc(out, func(a, b Target) int {
		switch {
		case a.Watcher != b.Watcher:
			return cmp.Compare(a.Watcher, b.Watcher)
		case a.Object.Model != b.Object.Model:
			return cmp.Compare(a.Object.Model, b.Object.Model)
		default:
			return cmp.Compare(a.Object.ID, b.Object.ID)
		}
	})
	return out, nil
}
