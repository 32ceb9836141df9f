package syncstate

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tsync/tsync/models"
)

// BeginSync loads object ref fresh for a sync attempt and, when it is ready
// for one (pending, and policed for a model with policies), marks it
// backend_need_delete: from now on, deleting it needs DeleteRecord.
func (s *Store) BeginSync(ctx context.Context, ref models.Ref) (models.Object, error) {
	m, err := s.model(ref.Model)
	if err != nil {
		return nil, err
	}
	obj := m.New()
	ready := models.PendingPredicate
	if m.Policies {
		ready += ` AND NOT ` + models.NeedsPolicyPredicate
	}
	err = s.Pool().QueryRow(ctx, `UPDATE `+s.Table(m)+` SET backend_need_delete = backend_need_delete OR (`+ready+`) WHERE id = $1 RETURNING `+m.SelectColumns(), ref.ID).
		Scan(m.ScanTargets(obj)...)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("%s %d: %w", ref.Model, ref.ID, models.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("begin sync %s %d: %w", ref.Model, ref.ID, err)
	}
	return obj, nil
}

// RecordSuccess records a successful sync that began when the object's
// updated was enacted: code 1 and status. It reports whether the object
// changed since, and so is pending again.
func (s *Store) RecordSuccess(ctx context.Context, ref models.Ref, enacted time.Time, status string) (pending bool, err error) {
	m, err := s.model(ref.Model)
	if err != nil {
		return false, err
	}
	err = s.Pool().QueryRow(ctx, `UPDATE `+s.Table(m)+` SET enacted = $2, backend_code = 1, backend_status = $3 WHERE id = $1 RETURNING updated > enacted`,
		ref.ID, enacted, StatusText(status)).Scan(&pending)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, fmt.Errorf("record success %s %d: %w", ref.Model, ref.ID, models.ErrNotFound)
	}
	if err != nil {
		return false, fmt.Errorf("record success %s %d: %w", ref.Model, ref.ID, err)
	}
	return pending, nil
}

// RecordError records a failed sync: code 2 and, as in XOS, the last two
// distinct errors joined by " // ", at most MaxStatusLen characters.
func (s *Store) RecordError(ctx context.Context, ref models.Ref, text string) error {
	_, err := s.RecordSyncError(ctx, ref, time.Time{}, text)
	return err
}

// RecordSyncError is RecordError for a sync attempt that began when the
// object's updated was seen (zero: unknown). It records nothing, and
// reports false, when a sync of that content or a later one has succeeded
// since: an attempt that outlived its timeout must not overwrite the
// success of the attempt that replaced it.
func (s *Store) RecordSyncError(ctx context.Context, ref models.Ref, seen time.Time, text string) (bool, error) {
	m, err := s.model(ref.Model)
	if err != nil {
		return false, err
	}
	recorded := false
	err = pgx.BeginFunc(ctx, s.Pool(), func(tx pgx.Tx) error {
		var code int
		var status string
		var enacted *time.Time
		err := tx.QueryRow(ctx, `SELECT backend_code, backend_status, enacted FROM `+s.Table(m)+` WHERE id = $1 FOR UPDATE`, ref.ID).Scan(&code, &status, &enacted)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("record error %s %d: %w", ref.Model, ref.ID, models.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("record error %s %d: %w", ref.Model, ref.ID, err)
		}
		if !seen.IsZero() && enacted != nil && !enacted.Before(seen) {
			return nil
		}
		if code != models.CodeError {
			status = ""
		}
		if _, err := tx.Exec(ctx, `UPDATE `+s.Table(m)+` SET backend_code = 2, backend_status = $2 WHERE id = $1`, ref.ID, CombineErrors(status, text)); err != nil {
			return fmt.Errorf("record error %s %d: %w", ref.Model, ref.ID, err)
		}
		recorded = true
		return nil
	})
	return recorded, err
}

// RecordStatus sets code and status, when they differ from what is stored.
func (s *Store) RecordStatus(ctx context.Context, ref models.Ref, code int, status string) error {
	m, err := s.model(ref.Model)
	if err != nil {
		return err
	}
	_, err = s.Pool().Exec(ctx, `UPDATE `+s.Table(m)+` SET backend_code = $2, backend_status = $3 WHERE id = $1 AND (backend_code, backend_status) IS DISTINCT FROM ($2, $3)`,
		ref.ID, code, StatusText(status))
	if err != nil {
		return fmt.Errorf("record status %s %d: %w", ref.Model, ref.ID, err)
	}
	return nil
}

// RecordDeferral records a deferred attempt: code 0 (pending) and status,
// as RecordStatus, for an attempt that began when the object's updated was
// seen (zero: unknown). Like RecordSyncError, it records nothing, and
// reports false, when a sync of that content or a later one has succeeded
// since.
func (s *Store) RecordDeferral(ctx context.Context, ref models.Ref, seen time.Time, status string) (bool, error) {
	m, err := s.model(ref.Model)
	if err != nil {
		return false, err
	}
	var since *time.Time
	if !seen.IsZero() {
		since = &seen
	}
	tag, err := s.Pool().Exec(ctx, `UPDATE `+s.Table(m)+` SET backend_code = $2, backend_status = $3
		WHERE id = $1 AND (backend_code, backend_status) IS DISTINCT FROM ($2, $3)
		AND NOT ($4::timestamptz IS NOT NULL AND enacted IS NOT NULL AND enacted >= $4)`,
		ref.ID, models.CodePending, StatusText(status), since)
	if err != nil {
		return false, fmt.Errorf("record deferral %s %d: %w", ref.Model, ref.ID, err)
	}
	return tag.RowsAffected() > 0, nil
}

// HoldDependents records, on every pending object that depends on ref
// directly or through other pending objects, code 2 and the status "Failed
// due to error in model M id N: text". It returns the objects it marked.
func (s *Store) HoldDependents(ctx context.Context, ref models.Ref, text string) ([]models.Ref, error) {
	status := StatusText(FailedDueTo(ref, text))
	var held []models.Ref
	seen := map[models.Ref]bool{}
	frontier := map[string][]int64{ref.Model: {ref.ID}}
	for len(frontier) > 0 {
		next := map[string][]int64{}
		for _, dest := range slices.Sorted(maps.Keys(frontier)) {
			for _, e := range s.Graph().Dependents(dest) {
				m, _ := s.Graph().Model(e.From)
				rows, err := s.Pool().Query(ctx, `UPDATE `+s.Table(m)+` SET backend_code = 2, backend_status = $2 WHERE `+
					pgx.Identifier{e.Link.Via}.Sanitize()+` = ANY($1) AND `+models.PendingPredicate+` RETURNING id`, frontier[dest], status)
				if err != nil {
					return held, fmt.Errorf("hold dependents of %s: %w", ref, err)
				}
				ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
				if err != nil {
					return held, fmt.Errorf("hold dependents of %s: %w", ref, err)
				}
				for _, id := range ids {
					// An object reached by two paths (a diamond) is listed once.
					r := models.Ref{Model: e.From, ID: id}
					if seen[r] {
						continue
					}
					seen[r] = true
					held = append(held, r)
					next[e.From] = append(next[e.From], id)
				}
			}
		}
		for k, v := range next {
			if len(v) == 0 {
				delete(next, k)
			}
		}
		frontier = next
	}
	return held, nil
}

// Purge removes the row of a deleted object.
func (s *Store) Purge(ctx context.Context, ref models.Ref) error {
	m, err := s.model(ref.Model)
	if err != nil {
		return err
	}
	// The table's triggers keep rows the backend has from being deleted
	// by anyone else, and announce other deletes; a purge passes unseen.
	err = pgx.BeginFunc(ctx, s.Pool(), func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT set_config($1, 'on', true)`, models.SettingPurge); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM `+s.Table(m)+` WHERE id = $1 AND deleted`, ref.ID)
		return err
	})
	if err != nil {
		return fmt.Errorf("purge %s %d: %w", ref.Model, ref.ID, err)
	}
	return nil
}

// SavePolicied records that ref's model policies ran for the content whose
// updated was seen. When the policies changed obj's content (a non-nil obj
// whose writable columns differ from the row), the change is saved in the
// same statement, updated is bumped and policed set to it, so that the
// policies' own changes do not make the object need its policies again;
// the change is announced (models.OpPoliced, with the changed columns). It
// reports false when the object changed since seen (it then needs its
// policies again and nothing is written).
func (s *Store) SavePolicied(ctx context.Context, ref models.Ref, seen time.Time, obj models.Object) (bool, error) {
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
	err = pgx.BeginFunc(ctx, s.Pool(), func(tx pgx.Tx) error {
		old, err := s.GetForUpdate(ctx, tx, m.Name, ref.ID)
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
			cols, newVals := m.Writable(obj)
			_, oldVals := m.Writable(old)
			for i, c := range cols {
				if !reflect.DeepEqual(newVals[i], oldVals[i]) {
					changed = append(changed, c)
				}
			}
			vals = newVals
			if len(changed) > 0 {
				// The table's triggers announce the policies' changes
				// as models.OpPoliced, with the columns they changed.
				if _, err := tx.Exec(ctx, `SELECT set_config($1, $2, true)`, models.SettingChangeOp, string(models.OpPoliced)); err != nil {
					return err
				}
				var sets []string
				for i, c := range cols {
					sets = append(sets, fmt.Sprintf("%s = $%d", pgx.Identifier{c}.Sanitize(), i+2))
				}
				sql := `UPDATE ` + s.Table(m) + ` SET ` + strings.Join(sets, ", ") + `, ` + models.BumpUpdated + `, policed = NULL WHERE id = $1 RETURNING updated`
				var updated time.Time
				if err := tx.QueryRow(ctx, sql, append([]any{ref.ID}, vals...)...).Scan(&updated); err != nil {
					return err
				}
				seen = updated
			}
		}
		if _, err := tx.Exec(ctx, `UPDATE `+s.Table(m)+` SET policed = $2 WHERE id = $1`, ref.ID, seen); err != nil {
			return err
		}
		if len(changed) > 0 {
			return nil
		}
		return s.Announce(ctx, tx, models.Change{Model: m.Name, ID: ref.ID, Op: models.OpPoliced})
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return false, fmt.Errorf("policed %s %d: %w", ref.Model, ref.ID, models.ErrNotFound)
	}
	if err != nil {
		return false, fmt.Errorf("policed %s %d: %w", ref.Model, ref.ID, err)
	}
	return ok, nil
}
