// Package engine holds the compiled form of a tsync.Synchronizer that the
// rest of the engine runs: its dependency graph, each synchronized model's
// step (Go or Ansible), its watchers with their watched paths, and its
// model policies; Classify, the one place a module's error is given its
// meaning; and Op, the operation (sync or delete) of an object workflow.
package engine

import (
	"context"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"github.com/tsync/tsync"
	"github.com/tsync/tsync/internal/watchset"
	"github.com/tsync/tsync/models"
)

// Synchronizer is a validated tsync.Synchronizer.
type Synchronizer struct {
	// Graph is the dependency graph of the models, with Policies set on the
	// models that have model policies.
	Graph    *models.Graph
	steps    map[string]*Step
	watchers []*Watcher
	policies map[string][]tsync.Policy
}

// Step is the step of one synchronized model: exactly one of Go and Ansible
// is set.
type Step struct {
	// Model is the synchronized model's name.
	Model string
	// Go is a step written in Go.
	Go tsync.Step
	// Ansible is a step run as an Ansible playbook.
	Ansible tsync.AnsibleStep

	name string
}

// module is the step as its author declared it.
func (s *Step) module() any {
	if s.Ansible != nil {
		return s.Ansible
	}
	return s.Go
}

// String names the step, for messages: "step 2", "Ansible step 0 (*mysync.Step)".
func (s *Step) String() string { return s.name }

// FetchPending runs the step's FetchPending override when it has one, the
// default query otherwise.
func (s *Step) FetchPending(ctx context.Context, q tsync.PendingQuery) ([]int64, error) {
	if f, ok := s.module().(tsync.PendingFetcher); ok {
		ids, err := f.FetchPending(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("fetch pending %s: %w", q.Model, err)
		}
		return ids, nil
	}
	return q.Default(ctx)
}

// Watcher is a validated watcher with its watched paths.
type Watcher struct {
	// Name is the watcher's name, unique in the synchronizer.
	Name string
	// Watcher is the watcher.
	Watcher tsync.Watcher
	// Paths lead from its synchronized models to its watched models.
	Paths []watchset.Path
}

// WatchedModels returns the watcher's watched set.
func (w *Watcher) WatchedModels() []string { return watchset.Models(w.Paths) }

// Compile validates s: the models (links, cycles); the steps, Ansible steps,
// watchers and policies (each of registered models, each model synchronized
// by one step at most); the watchers' names and watched sets. It is pure:
// s.Models is not changed, so one registry may serve several synchronizers.
func Compile(s tsync.Synchronizer) (*Synchronizer, error) {
	if s.Models == nil {
		return nil, fmt.Errorf("synchronizer: no models registered")
	}
	g, err := s.Models.Graph()
	if err != nil {
		return nil, fmt.Errorf("synchronizer: %w", err)
	}
	return compile(s, g)
}

// compile is Compile with the graph of s.Models already built.
func compile(s tsync.Synchronizer, g *models.Graph) (*Synchronizer, error) {
	var err error
	c := &Synchronizer{steps: map[string]*Step{}, policies: map[string][]tsync.Policy{}}
	var policed []string
	for i, p := range s.Policies {
		if p == nil {
			return nil, fmt.Errorf("synchronizer: policy %d is nil", i)
		}
		name, err := modelName(g, p.Model())
		if err != nil {
			return nil, fmt.Errorf("synchronizer: %s: %w", describe("policy", i, p), err)
		}
		c.policies[name] = append(c.policies[name], p)
		policed = append(policed, name)
	}
	if c.Graph, err = g.WithPolicies(policed...); err != nil {
		return nil, fmt.Errorf("synchronizer: %w", err)
	}
	add := func(desc string, objs []models.Object, st func(model string) *Step) error {
		if len(objs) == 0 {
			return fmt.Errorf("synchronizer: %s synchronizes no model", desc)
		}
		for _, obj := range objs {
			name, err := modelName(g, obj)
			if err != nil {
				return fmt.Errorf("synchronizer: %s: %w", desc, err)
			}
			if other, dup := c.steps[name]; dup {
				return fmt.Errorf("synchronizer: model %s is synchronized by two steps, %s and %s", name, other, desc)
			}
			c.steps[name] = st(name)
		}
		return nil
	}
	for i, st := range s.Steps {
		if st == nil {
			return nil, fmt.Errorf("synchronizer: step %d is nil", i)
		}
		desc := describe("step", i, st)
		if err := add(desc, st.Synchronizes(), func(m string) *Step { return &Step{Model: m, Go: st, name: desc} }); err != nil {
			return nil, err
		}
	}
	for i, st := range s.AnsibleSteps {
		if st == nil {
			return nil, fmt.Errorf("synchronizer: Ansible step %d is nil", i)
		}
		desc := describe("Ansible step", i, st)
		if err := add(desc, st.Synchronizes(), func(m string) *Step { return &Step{Model: m, Ansible: st, name: desc} }); err != nil {
			return nil, err
		}
	}
	if c.watchers, err = compileWatchers(c.Graph, s.Watchers); err != nil {
		return nil, err
	}
	return c, nil
}

// describe names module, the i-th of its kind, for messages: by its Go type
// when it is the author's own ("step 2 (*mysync.VPNStep)"), by kind and
// index alone for tsync's typed adapters, whose type says nothing more.
func describe(kind string, i int, module any) string {
	t := reflect.TypeOf(module)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.PkgPath() == reflect.TypeFor[tsync.Synchronizer]().PkgPath() {
		return fmt.Sprintf("%s %d", kind, i)
	}
	return fmt.Sprintf("%s %d (%T)", kind, i, module)
}

// modelName returns the name of the model of obj's Go type.
func modelName(g *models.Graph, obj models.Object) (string, error) {
	if obj == nil || reflect.ValueOf(obj).Kind() != reflect.Pointer {
		return "", fmt.Errorf("names its model by %T, want a pointer to a registered model struct (such as new(Site))", obj)
	}
	m, err := g.ModelOf(obj)
	if err != nil {
		return "", err
	}
	return m.Name, nil
}

// watcherName is what a watcher's name must match.
var watcherName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.+-]*$`)

// compileWatchers validates ws against g and computes their paths.
func compileWatchers(g *models.Graph, ws []tsync.Watcher) ([]*Watcher, error) {
	var out []*Watcher
	names := map[string]bool{}
	for i, w := range ws {
		if w == nil {
			return nil, fmt.Errorf("synchronizer: watcher %d is nil", i)
		}
		var synchronizes []string
		for _, obj := range w.Synchronizes() {
			name, err := modelName(g, obj)
			if err != nil {
				return nil, fmt.Errorf("synchronizer: %s: %w", describe("watcher", i, w), err)
			}
			synchronizes = append(synchronizes, name)
		}
		name := ""
		if n, ok := w.(tsync.NamedWatcher); ok {
			name = n.Name()
		}
		if name == "" {
			name = strings.Join(synchronizes, "+")
		}
		if !watcherName.MatchString(name) {
			return nil, fmt.Errorf("synchronizer: %s: name %q must match %s", describe("watcher", i, w), name, watcherName)
		}
		if names[name] {
			return nil, fmt.Errorf("synchronizer: two watchers are named %q (give each a Name)", name)
		}
		names[name] = true
		watched := slices.Clone(w.Watched())
		for j, l := range watched {
			if l.Dest != "" {
				continue
			}
			var err error
			if watched[j], err = g.ResolveLink(l); err != nil {
				return nil, fmt.Errorf("synchronizer: watcher %s: watched %w", name, err)
			}
		}
		paths, err := watchset.Compute(g, synchronizes, w.WatchDegree(), watched)
		if err != nil {
			return nil, fmt.Errorf("synchronizer: watcher %s: %w", name, err)
		}
		out = append(out, &Watcher{Name: name, Watcher: w, Paths: paths})
	}
	return out, nil
}

// Step returns the step that synchronizes model.
func (c *Synchronizer) Step(model string) (*Step, bool) {
	st, ok := c.steps[model]
	return st, ok
}

// Models returns the synchronized models, dependencies first.
func (c *Synchronizer) Models() []string {
	var out []string
	for _, name := range c.Graph.Order() {
		if _, ok := c.steps[name]; ok {
			out = append(out, name)
		}
	}
	return out
}

// Policies returns the model policies of model, in registration order.
func (c *Synchronizer) Policies(model string) []tsync.Policy { return c.policies[model] }

// Watchers returns the synchronizer's watchers, in declaration order.
func (c *Synchronizer) Watchers() []*Watcher { return c.watchers }

// Watcher returns the watcher of the given name.
func (c *Synchronizer) Watcher(name string) (*Watcher, bool) {
	for _, w := range c.watchers {
		if w.Name == name {
			return w, true
		}
	}
	return nil, false
}
