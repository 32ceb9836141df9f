package engine

import (
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tsync/tsync"
	"github.com/tsync/tsync/models"
)

// Build builds the synchronizer of reg with build, over a store of reg's
// models on pool in schema (not reached: build must not use it yet), and
// compiles it. The synchronizer's Models may be nil (they are reg) or a
// registry of the same models.
func Build(pool *pgxpool.Pool, schema string, reg *models.Registry, build func(*models.Store) (tsync.Synchronizer, error)) (*Synchronizer, error) {
	if reg == nil {
		return nil, fmt.Errorf("synchronizer: no models registered")
	}
	g, err := reg.Graph()
	if err != nil {
		return nil, fmt.Errorf("synchronizer: %w", err)
	}
	store, err := models.NewStore(pool, schema, g)
	if err != nil {
		return nil, err
	}
	s, err := build(store)
	if err != nil {
		return nil, fmt.Errorf("synchronizer: %w", err)
	}
	if s.Models == nil {
		s.Models = reg
	} else if err := sameModels(g, s.Models); err != nil {
		return nil, fmt.Errorf("synchronizer: its Models differ from the models it was opened with: %w", err)
	}
	return compile(s, g)
}

// CompileOver compiles s and returns it with a store on the database of
// store (its pool, schema and outbox setting) whose graph is the compiled
// one, as the engine's parts need it (a model's policies change its
// pending queries).
func CompileOver(s tsync.Synchronizer, store *models.Store) (*Synchronizer, *models.Store, error) {
	c, err := Compile(s)
	if err != nil {
		return nil, nil, err
	}
	es, err := models.NewStore(store.Pool(), store.Schema(), c.Graph, models.WithOutbox(store.OutboxEnabled()))
	if err != nil {
		return nil, nil, err
	}
	return c, es, nil
}

// sameModels checks that reg registers the models of g, by the same names
// and Go types (two registries made by one function do).
func sameModels(g *models.Graph, reg *models.Registry) error {
	other, err := reg.Graph()
	if err != nil {
		return err
	}
	if !slices.Equal(g.Order(), other.Order()) {
		return fmt.Errorf("models %v, want %v", other.Order(), g.Order())
	}
	for _, name := range g.Order() {
		m, _ := g.Model(name)
		o, _ := other.Model(name)
		if m.Type() != o.Type() || !slices.Equal(m.Links, o.Links) {
			return fmt.Errorf("model %s is declared differently", name)
		}
	}
	return nil
}
