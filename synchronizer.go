package tsync

import (
	"fmt"

	"github.com/tsync/tsync/models"
)

// Synchronizer is what an application registers: its models and the steps
// that synchronize them. Its name, task queue and the rest come from config.
type Synchronizer struct {
	// Models holds every model the steps synchronize or depend on.
	Models *models.Registry
	// Steps are the work-based modules.
	Steps []Step
	// Watchers are the event-based modules (see Watcher); they run only with
	// observer_enable_watchers.
	Watchers []Watcher
	// Policies are the model policies, run before an object is synced.
	Policies []Policy
}

// Compiled is a validated Synchronizer.
type Compiled struct {
	// Graph is the dependency graph of the models.
	Graph    *models.Graph
	steps    map[string]Step
	watchers []*CompiledWatcher
	policies map[string][]Policy
}

// Policies returns the model policies of model, in registration order.
func (c *Compiled) Policies(model string) []Policy { return c.policies[model] }

// Compile validates the models (links, cycles), the steps (each
// synchronizes known models, and no model is synchronized by two steps) and
// the watchers (unique names, known models and columns; see Watcher).
func (s Synchronizer) Compile() (*Compiled, error) {
	if s.Models == nil {
		return nil, fmt.Errorf("synchronizer: no models registered")
	}
	for i, p := range s.Policies {
		if p == nil {
			return nil, fmt.Errorf("synchronizer: policy %d is nil", i)
		}
		if err := s.Models.SetPolicies(p.Model()); err != nil {
			return nil, fmt.Errorf("synchronizer: %w", err)
		}
	}
	g, err := s.Models.Graph()
	if err != nil {
		return nil, fmt.Errorf("synchronizer: %w", err)
	}
	c := &Compiled{Graph: g, steps: map[string]Step{}}
	for i, st := range s.Steps {
		if st == nil {
			return nil, fmt.Errorf("synchronizer: step %d is nil", i)
		}
		for _, name := range st.Synchronizes() {
			if _, ok := g.Model(name); !ok {
				return nil, fmt.Errorf("synchronizer: step %T synchronizes unknown model %q", st, name)
			}
			if other, dup := c.steps[name]; dup {
				return nil, fmt.Errorf("synchronizer: model %s is synchronized by two steps, %T and %T", name, other, st)
			}
			c.steps[name] = st
		}
	}
	if c.watchers, err = compileWatchers(g, s.Watchers); err != nil {
		return nil, err
	}
	c.policies = map[string][]Policy{}
	for _, p := range s.Policies {
		c.policies[p.Model()] = append(c.policies[p.Model()], p)
	}
	return c, nil
}

// Step returns the step that synchronizes model.
func (c *Compiled) Step(model string) (Step, bool) {
	st, ok := c.steps[model]
	return st, ok
}

// Models returns the synchronized models, dependencies first.
func (c *Compiled) Models() []string {
	var out []string
	for _, name := range c.Graph.Order() {
		if _, ok := c.steps[name]; ok {
			out = append(out, name)
		}
	}
	return out
}
