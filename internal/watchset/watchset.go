// Package watchset computes what a watcher watches: from the dependency
// graph and a watcher's declaration (its synchronized models and either a
// WatchDegree or explicit Watched links), the paths along which a change to
// a watched model reaches the objects the watcher synchronizes.
//
// A path runs from a synchronized model outward, along links, to a watched
// model:
//
//	Instance --slice_id--> Slice --site_id--> Site
//
// A change to Site 3 reaches, in reverse, every Slice whose site_id is 3, and
// every Instance whose slice_id is one of those slices: those instances are
// the affected objects the watcher is told about.
//
// The watched set is implicit or explicit:
//
//   - WatchDegree d (no Watched links): every path of 1 to d links from a
//     synchronized model through its dependencies, so the watched set is the
//     models within distance d. A self-link (a tree's parent link) is one
//     link of distance: degree 2 on a tree model watches parents and
//     grandparents. Degree 0 watches nothing. The Into of a path
//     is the Into of its last link (as declared on the model).
//   - Watched links (WatchDegree is then ignored): each link names a Dest
//     model and, optionally, Via, a column of the synchronized model holding
//     the id of a Dest object (one hop, whether or not it is a declared
//     link); without Via, every dependency path from the synchronized model
//     to Dest that follows no self-link (so finitely many: a tree's parent
//     link, followed, would give one path per level). A link whose Dest is
//     the synchronized model itself, without
//     Via, watches the model's own objects (an empty path). The link's Into
//     is the path's Into.
//
// A path with Into fires for an update only when that column changed; every
// path fires for a create or a delete (the object as a whole appeared or
// went), and a path without Into fires for every change.
package watchset

import (
	"fmt"
	"slices"
	"strings"

	"github.com/tsync/tsync/models"
)

// Hop is one link of a path: objects of From hold, in column Via, the id of
// an object of Dest.
type Hop struct {
	From string
	Via  string
	Dest string
}

// Path is how a change to a watched model reaches objects of a synchronized
// model.
type Path struct {
	// Model is the synchronized model.
	Model string
	// Hops lead from Model to the watched model; empty when a model watches
	// its own objects.
	Hops []Hop
	// Into is the column of the watched model whose change fires the path;
	// "" fires on any change.
	Into string
}

// Watched returns the watched model: the Dest of the last hop, or Model for
// an empty path.
func (p Path) Watched() string {
	if len(p.Hops) == 0 {
		return p.Model
	}
	return p.Hops[len(p.Hops)-1].Dest
}

// String formats the path as "Instance -slice_id-> Slice -site_id-> Site
// [into name]".
func (p Path) String() string {
	var b strings.Builder
	b.WriteString(p.Model)
	for _, h := range p.Hops {
		fmt.Fprintf(&b, " -%s-> %s", h.Via, h.Dest)
	}
	if len(p.Hops) == 0 {
		b.WriteString(" (itself)")
	}
	if p.Into != "" {
		fmt.Fprintf(&b, " [into %s]", p.Into)
	}
	return b.String()
}

// Fires reports whether a change (op "create", "update" or "delete", with
// the changed columns of an update) fires the path: always, unless the path
// has an Into and the change is an update that left that column alone.
func (p Path) Fires(op models.Op, fields []string) bool {
	if p.Into == "" || op != models.OpUpdate {
		return true
	}
	return slices.Contains(fields, p.Into)
}

func (p Path) equal(q Path) bool {
	return p.Model == q.Model && p.Into == q.Into && slices.Equal(p.Hops, q.Hops)
}

// Compute returns the paths of a watcher synchronizing the given models,
// from explicit Watched links when there are any, from degree otherwise. It
// fails on a negative degree, an unknown model or column, or a Watched link
// that no synchronized model reaches.
func Compute(g *models.Graph, synchronizes []string, degree int, watched []models.Link) ([]Path, error) {
	if len(synchronizes) == 0 {
		return nil, fmt.Errorf("synchronizes no model")
	}
	for _, name := range synchronizes {
		if _, ok := g.Model(name); !ok {
			return nil, fmt.Errorf("synchronizes unknown model %q", name)
		}
	}
	var out []Path
	add := func(p Path) {
		for _, q := range out {
			if q.equal(p) {
				return
			}
		}
		out = append(out, p)
	}
	if len(watched) > 0 {
		for _, l := range watched {
			paths, err := explicit(g, synchronizes, l)
			if err != nil {
				return nil, err
			}
			for _, p := range paths {
				add(p)
			}
		}
		return out, nil
	}
	if degree < 0 {
		return nil, fmt.Errorf("WatchDegree %d is negative", degree)
	}
	for _, name := range synchronizes {
		walk(g, name, nil, degree, true, func(hops []Hop, last models.Link) {
			add(Path{Model: name, Hops: hops, Into: last.Into})
		})
	}
	return out, nil
}

// walk calls fn with every path of 1 to max links from model (via prefix),
// and the last link of each; self-links are followed only when self is set.
func walk(g *models.Graph, model string, prefix []Hop, max int, self bool, fn func([]Hop, models.Link)) {
	if len(prefix) >= max {
		return
	}
	for _, l := range g.Dependencies(model) {
		if l.Dest == model && !self {
			continue
		}
		hops := append(slices.Clone(prefix), Hop{From: model, Via: l.Via, Dest: l.Dest})
		fn(hops, l)
		walk(g, l.Dest, hops, max, self, fn)
	}
}

// explicit resolves one Watched link for every synchronized model it
// applies to.
func explicit(g *models.Graph, synchronizes []string, l models.Link) ([]Path, error) {
	dest, ok := g.Model(l.Dest)
	if !ok {
		return nil, fmt.Errorf("watches unknown model %q", l.Dest)
	}
	if l.Into != "" {
		if _, ok := dest.Field(l.Into); !ok && !isBaseColumn(l.Into) {
			return nil, fmt.Errorf("watches %s into unknown field %q", l.Dest, l.Into)
		}
	}
	var out []Path
	if l.Via != "" {
		for _, name := range synchronizes {
			m, _ := g.Model(name)
			f, ok := m.Field(l.Via)
			if !ok {
				continue
			}
			if !f.Integer {
				return nil, fmt.Errorf("watches %s via %s.%s, which is not an integer id (%s)", l.Dest, name, l.Via, f.SQLType)
			}
			out = append(out, Path{Model: name, Hops: []Hop{{From: name, Via: l.Via, Dest: l.Dest}}, Into: l.Into})
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("watches %s via %q, which is not a column of %s", l.Dest, l.Via, strings.Join(synchronizes, " or "))
		}
		return out, nil
	}
	// No Via: every dependency path to Dest (the graph without its
	// self-links is acyclic, so there are finitely many), or the model
	// itself.
	depth := len(g.Order())
	for _, name := range synchronizes {
		if name == l.Dest {
			out = append(out, Path{Model: name, Into: l.Into})
			continue
		}
		walk(g, name, nil, depth, false, func(hops []Hop, _ models.Link) {
			if hops[len(hops)-1].Dest == l.Dest {
				out = append(out, Path{Model: name, Hops: hops, Into: l.Into})
			}
		})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("watches %s, which %s does not depend on (give Via: a column holding a %s id)", l.Dest, strings.Join(synchronizes, " or "), l.Dest)
	}
	return out, nil
}

// isBaseColumn reports whether column is one of the sync-state columns of
// models.Base that a save can change (the operator flags).
func isBaseColumn(column string) bool {
	switch column {
	case "no_sync", "lazy_blocked", "write_protect":
		return true
	}
	return false
}

// Models returns the watched set of paths: their watched models, sorted,
// each once.
func Models(paths []Path) []string {
	var out []string
	for _, p := range paths {
		if !slices.Contains(out, p.Watched()) {
			out = append(out, p.Watched())
		}
	}
	slices.Sort(out)
	return out
}
