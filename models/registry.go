package models

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// Registry holds the models of an application. It is filled at start-up and
// read-only afterwards; Graph validates it.
type Registry struct {
	models map[string]*Model
	byType map[reflect.Type]*Model
	names  []string
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{models: map[string]*Model{}, byType: map[reflect.Type]*Model{}}
}

// Register adds model name, stored as struct T (which must embed Base as its
// first field), with its links. Links are checked by Graph, once every model
// is registered.
func Register[T any](r *Registry, name string, links ...Link) error {
	m, err := newModel(name, reflect.TypeFor[T](), links)
	if err != nil {
		return err
	}
	if _, dup := r.models[name]; dup {
		return fmt.Errorf("model %s: registered twice", name)
	}
	if other, dup := r.byType[m.typ]; dup {
		return fmt.Errorf("model %s: type %s is already registered as model %s", name, m.typ, other.Name)
	}
	for _, other := range r.models {
		if other.Table == m.Table {
			return fmt.Errorf("model %s: table %q is already used by model %s", name, m.Table, other.Name)
		}
	}
	r.models[name] = m
	r.byType[m.typ] = m
	r.names = append(r.names, name)
	return nil
}

// MustRegister is Register for start-up code: it panics on error.
func MustRegister[T any](r *Registry, name string, links ...Link) {
	if err := Register[T](r, name, links...); err != nil {
		panic(err)
	}
}

// Edge is a link seen from its destination: objects of model From depend,
// through Link, on objects of Link.Dest.
type Edge struct {
	From string
	Link Link
}

// Graph is the validated dependency graph of a registry: models as nodes,
// links as edges.
type Graph struct {
	models  map[string]*Model
	byType  map[reflect.Type]*Model
	order   []string
	reverse map[string][]Edge
}

// Graph validates every link (known destination, integer Via column, known
// Into column) and that the links are acyclic, and returns the graph. A cycle
// is reported by naming it: "dependency cycle: A -> B -> A".
//
// A self-link (a model linking to itself: Network.parent_id -> Network) is
// the one cycle allowed: it makes trees of objects, whose order is the
// objects' own (parents synced first, children deleted first; a cycle among
// objects is an error of those objects, see SelfLinks).
//
// The graph holds copies of the registry's models: building it (or
// WithPolicies) never changes the registry, which may be shared.
func (r *Registry) Graph() (*Graph, error) {
	names := slices.Clone(r.names)
	slices.Sort(names)
	g := &Graph{models: map[string]*Model{}, byType: map[reflect.Type]*Model{}, reverse: map[string][]Edge{}}
	for name, m := range r.models {
		c := *m
		c.Links = slices.Clone(m.Links)
		g.models[name] = &c
		g.byType[c.typ] = &c
	}
	for _, name := range names {
		m := g.models[name]
		for i, l := range m.Links {
			l, err := g.ResolveLink(l)
			if err != nil {
				return nil, fmt.Errorf("model %s: %w", name, err)
			}
			m.Links[i] = l
			dest := g.models[l.Dest]
			via, ok := m.Field(l.Via)
			if !ok {
				return nil, fmt.Errorf("model %s: link to %s: unknown field %q", name, l.Dest, l.Via)
			}
			if !via.Integer {
				return nil, fmt.Errorf("model %s: link to %s: field %q must be an integer id, got %s", name, l.Dest, l.Via, via.SQLType)
			}
			if l.Into != "" {
				if _, ok := dest.Field(l.Into); !ok && !baseColumns[l.Into] {
					return nil, fmt.Errorf("model %s: link to %s: unknown field %q of %s", name, l.Dest, l.Into, l.Dest)
				}
			}
			g.reverse[l.Dest] = append(g.reverse[l.Dest], Edge{From: name, Link: l})
		}
	}
	// Depth-first topological sort, dependencies first, reporting the first
	// cycle met in name order.
	const (
		unvisited = iota
		visiting
		done
	)
	state := map[string]int{}
	var stack []string
	var visit func(string) error
	visit = func(name string) error {
		switch state[name] {
		case done:
			return nil
		case visiting:
			i := slices.Index(stack, name)
			cycle := append(slices.Clone(stack[i:]), name)
			return fmt.Errorf("dependency cycle: %s", strings.Join(cycle, " -> "))
		}
		state[name] = visiting
		stack = append(stack, name)
		m := g.models[name]
		deps := make([]string, 0, len(m.Links))
		for _, l := range m.Links {
			if l.Dest != name {
				deps = append(deps, l.Dest)
			}
		}
		slices.Sort(deps)
		for _, d := range deps {
			if err := visit(d); err != nil {
				return err
			}
		}
		stack = stack[:len(stack)-1]
		state[name] = done
		g.order = append(g.order, name)
		return nil
	}
	for _, name := range names {
		if err := visit(name); err != nil {
			return nil, err
		}
	}
	return g, nil
}

// ResolveLink returns l with Dest filled in from the Go type of a link made
// by LinkTo or LinkInto, checking that Dest is a registered model (and, when
// both a name and a type are given, that they agree).
func (g *Graph) ResolveLink(l Link) (Link, error) {
	if l.destType != nil {
		m, ok := g.byType[l.destType]
		if !ok {
			return l, fmt.Errorf("link to %s: type %s is not a registered model", l.destType, l.destType)
		}
		if l.Dest != "" && l.Dest != m.Name {
			return l, fmt.Errorf("link to %q: type %s is registered as model %s", l.Dest, l.destType, m.Name)
		}
		l.Dest = m.Name
	}
	if _, ok := g.models[l.Dest]; !ok {
		return l, fmt.Errorf("link to unknown model %q", l.Dest)
	}
	return l, nil
}

// WithPolicies returns a copy of g in which the named models have model
// policies (see Model.Policies); g itself is unchanged.
func (g *Graph) WithPolicies(names ...string) (*Graph, error) {
	c := &Graph{models: map[string]*Model{}, byType: map[reflect.Type]*Model{}, order: g.order, reverse: g.reverse}
	for name, m := range g.models {
		c.models[name], c.byType[m.typ] = m, m
	}
	for _, name := range names {
		m, ok := g.models[name]
		if !ok {
			return nil, fmt.Errorf("policy for unknown model %q", name)
		}
		if m.Policies {
			continue
		}
		copied := *m
		copied.Policies = true
		c.models[name], c.byType[m.typ] = &copied, &copied
	}
	return c, nil
}

// Model returns the model of the given name.
func (g *Graph) Model(name string) (*Model, bool) {
	m, ok := g.models[name]
	return m, ok
}

// ModelOf returns the model of obj's type.
func (g *Graph) ModelOf(obj Object) (*Model, error) {
	t := reflect.TypeOf(obj)
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	m, ok := g.byType[t]
	if !ok {
		return nil, fmt.Errorf("type %s is not a registered model", t)
	}
	return m, nil
}

// Order returns every model name, each after all the models it depends on
// (its self-links aside).
func (g *Graph) Order() []string { return slices.Clone(g.order) }

// Dependents returns the links that point at model name, from the models
// that depend on it.
func (g *Graph) Dependents(name string) []Edge { return slices.Clone(g.reverse[name]) }

// SelfLinks returns the links of model name to itself (its tree links), in
// link order: the only links along which objects of one model can form a
// cycle.
func (g *Graph) SelfLinks(name string) []Link {
	var out []Link
	if m, ok := g.models[name]; ok {
		for _, l := range m.Links {
			if l.Dest == name {
				out = append(out, l)
			}
		}
	}
	return out
}

// Dependencies returns the links of model name.
func (g *Graph) Dependencies(name string) []Link {
	if m, ok := g.models[name]; ok {
		return slices.Clone(m.Links)
	}
	return nil
}

// DOT renders the graph in Graphviz DOT, an edge from each model to each model
// it depends on (a self-link is a loop on its model).
func (g *Graph) DOT() string {
	var b strings.Builder
	b.WriteString("digraph tsync {\n  rankdir=BT;\n")
	for _, name := range g.order {
		fmt.Fprintf(&b, "  %q;\n", name)
	}
	for _, name := range g.order {
		for _, l := range g.models[name].Links {
			fmt.Fprintf(&b, "  %q -> %q [label=%q];\n", name, l.Dest, l.Via)
		}
	}
	b.WriteString("}\n")
	return b.String()
}
