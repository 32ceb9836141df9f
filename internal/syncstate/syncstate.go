// Package syncstate is the engine's half of the model store: the writers of
// the sync-state columns (backend_code, backend_status, enacted, policed,
// backend_need_delete) and the queries only the engine runs (the pending
// scans, the dependents of an object, the reverse links watchers follow,
// the operators' list of sync states), and the LISTEN loop on the store's
// channel. Step authors use models.Store; the workers, the starter and the
// watchers use a Store of this package over the same models.Store.
//
//	st := syncstate.New(store) // store is a *models.Store
//	obj, err := st.BeginSync(ctx, ref)
//
// None of the writers bumps updated: a sync-state write is not a content
// change, and is not announced (SavePolicied, which saves the content the
// model policies changed, is the one exception, and announces it).
package syncstate

import (
	"fmt"

	"github.com/tsync/tsync/models"
)

// Store is a models.Store with the engine's half: every method of
// models.Store, plus those of this package. It holds no state of its own:
// wrapping a store where needed (New) costs nothing, and any number of
// wrappers of one models.Store may be used at once.
type Store struct {
	*models.Store
}

// New returns s with the engine's half.
func New(s *models.Store) *Store { return &Store{Store: s} }

// model returns the model of the given name.
func (s *Store) model(name string) (*models.Model, error) {
	m, ok := s.Graph().Model(name)
	if !ok {
		return nil, fmt.Errorf("unknown model %q", name)
	}
	return m, nil
}
