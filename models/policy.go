package models

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// NeedsPolicyPredicate is the SQL condition of objects whose model policies
// have not run since their last update (deleted ones included: the delete
// policy runs before the deletion).
const NeedsPolicyPredicate = `(policed IS NULL OR policed < updated)`

// SetPolicies marks model as having model policies (see Model.Policies).
func (r *Registry) SetPolicies(model string) error {
	m, ok := r.models[model]
	if !ok {
		return fmt.Errorf("policy for unknown model %q", model)
	}
	m.Policies = true
	return nil
}

// NeedsPolicy reports whether obj of model m needs its policies to run.
func (m *Model) NeedsPolicy(b *Base) bool {
	return m.Policies && (b.Policed == nil || b.Policed.Before(b.Updated))
}

// fetchPredicates returns the conditions of FetchPending: pending for sync
// (or, for a model with policies, needing its policies), and pending for
// deletion.
func (m *Model) fetchPredicates() (pending, deleting string) {
	if !m.Policies {
		return PendingPredicate, DeletionPredicate
	}
	return `NOT deleted AND (` + NeedsPolicyPredicate + ` OR (` + PendingPredicate + `))`, DeletionPredicate
}

// indexName names a partial index; models with policies use other names, so
// that turning policies on or off never leaves an index with a stale
// predicate in use.
func (m *Model) indexName(kind string) string {
	if m.Policies {
		return m.Table + "_" + kind + "_policed"
	}
	return m.Table + "_" + kind
}

// SavePolicied records that ref's model policies ran for the content whose
// updated was seen. When the policies changed obj's content (a non-nil obj
// whose writable columns differ from the row), the change is saved in the
// same statement, updated is bumped and policed set to it, so that the
// policies' own changes do not make the object need its policies again;
// the change is announced. It reports false when the object changed since
// seen (it then needs its policies again and nothing is written).
func (s *Store) SavePolicied(ctx context.Context, ref Ref, seen time.Time, obj Object) (bool, error) {
	m, err := s.model(ref.Model)
	if err != nil {
		return false, err
	}
	if obj != nil {
		if err := m.Check(obj); err != nil {
			return false, fmt.Errorf("policed %s %d: %w", ref.Model, ref.ID, err)
		}
	}
	ok := false
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		old, err := s.get(ctx, tx, m, ref.ID, true)
		if err != nil {
			return err
		}
		if !old.SyncState().Updated.Equal(seen) {
			return nil
		}
		ok = true
		var changed []string
		var vals []any
		if obj != nil {
			cols, newVals := m.writable(obj)
			_, oldVals := m.writable(old)
			for i, c := range cols {
				if !reflect.DeepEqual(newVals[i], oldVals[i]) {
					changed = append(changed, c)
				}
			}
			vals = newVals
			if len(changed) > 0 {
				var sets []string
				for i, c := range cols {
					sets = append(sets, fmt.Sprintf("%s = $%d", pgx.Identifier{c}.Sanitize(), i+2))
				}
				sql := `UPDATE ` + s.table(m) + ` SET ` + strings.Join(sets, ", ") + `, ` + bumpUpdated + `, policed = NULL WHERE id = $1 RETURNING updated`
				var updated time.Time
				if err := tx.QueryRow(ctx, sql, append([]any{ref.ID}, vals...)...).Scan(&updated); err != nil {
					return err
				}
				seen = updated
			}
		}
		if _, err := tx.Exec(ctx, `UPDATE `+s.table(m)+` SET policed = $2 WHERE id = $1`, ref.ID, seen); err != nil {
			return err
		}
		return s.notify(ctx, tx, Change{Model: m.Name, ID: ref.ID, Op: "policed", Fields: changed})
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return false, fmt.Errorf("policed %s %d: %w", ref.Model, ref.ID, ErrNotFound)
	}
	if err != nil {
		return false, fmt.Errorf("policed %s %d: %w", ref.Model, ref.ID, err)
	}
	return ok, nil
}
