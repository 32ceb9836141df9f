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
}

// Compiled is a validated Synchronizer.
type Compiled struct {
	// Graph is the dependency graph of the models.
	Graph *models.Graph
	steps map[string]Step
}

// Compile validates the models (links, cycles) and the steps (each
// synchronizes known models, and no model is synchronized by two steps).
func (s Synchronizer) Compile() (*Compiled, error) {
	if s.Models == nil {
		return nil, fmt.Errorf("synchronizer: no models registered")
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
