package models

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
)

// The methods in this file write sync state. Only the synchronizer calls
// them; none of them bumps updated.

// BeginSync loads object ref fresh for a sync attempt and, when it is ready
// for one (pending, and policed for a model with policies), marks it
// backend_need_delete: from now on, deleting it needs DeleteRecord.
func (s *Store) BeginSync(ctx context.Context, ref Ref) (Object, error) {
	m, err := s.model(ref.Model)
	if err != nil {
		return nil, err
	}
	obj := m.New()
	ready := PendingPredicate
	if m.Policies {
		ready += ` AND NOT ` + NeedsPolicyPredicate
	}
	err = s.pool.QueryRow(ctx, `UPDATE `+s.table(m)+` SET backend_need_delete = backend_need_delete OR (`+ready+`) WHERE id = $1 RETURNING `+m.columns(), ref.ID).
		Scan(m.scanTargets(obj)...)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("%s %d: %w", ref.Model, ref.ID, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("begin sync %s %d: %w", ref.Model, ref.ID, err)
	}
	return obj, nil
}

// RecordSuccess records a successful sync that began when the object's
// updated was enacted: code 1 and status. It reports whether the object
// changed since, and so is pending again.
func (s *Store) RecordSuccess(ctx context.Context, ref Ref, enacted time.Time, status string) (pending bool, err error) {
	m, err := s.model(ref.Model)
	if err != nil {
		return false, err
	}
	err = s.pool.QueryRow(ctx, `UPDATE `+s.table(m)+` SET enacted = $2, backend_code = 1, backend_status = $3 WHERE id = $1 RETURNING updated > enacted`,
		ref.ID, enacted, StatusText(status)).Scan(&pending)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, fmt.Errorf("record success %s %d: %w", ref.Model, ref.ID, ErrNotFound)
	}
	if err != nil {
		return false, fmt.Errorf("record success %s %d: %w", ref.Model, ref.ID, err)
	}
	return pending, nil
}

// RecordError records a failed sync: code 2 and, as in XOS, the last two
// distinct errors joined by " // ", at most MaxStatusLen characters.
func (s *Store) RecordError(ctx context.Context, ref Ref, text string) error {
	m, err := s.model(ref.Model)
	if err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var code int
		var status string
		err := tx.QueryRow(ctx, `SELECT backend_code, backend_status FROM `+s.table(m)+` WHERE id = $1 FOR UPDATE`, ref.ID).Scan(&code, &status)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("record error %s %d: %w", ref.Model, ref.ID, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("record error %s %d: %w", ref.Model, ref.ID, err)
		}
		if code != CodeError {
			status = ""
		}
		_, err = tx.Exec(ctx, `UPDATE `+s.table(m)+` SET backend_code = 2, backend_status = $2 WHERE id = $1`, ref.ID, CombineErrors(status, text))
		if err != nil {
			return fmt.Errorf("record error %s %d: %w", ref.Model, ref.ID, err)
		}
		return nil
	})
}

// CombineErrors returns the status that follows previous when text is
// recorded: the last two distinct errors joined by " // ", at most
// MaxStatusLen characters.
//
// The text is made valid and cut first, as it will be stored, so that an
// error seen again is recognised; and the latest error is always kept whole
// (up to MaxStatusLen), the older one giving way when both do not fit.
func CombineErrors(previous, text string) string {
	const sep = " // "
	text = StatusText(text)
	var list []string
	if previous != "" {
		list = strings.Split(previous, sep)
	}
	if !slices.Contains(list, text) {
		list = append(list, text)
	} else {
		// Seen again: it becomes the latest.
		list = append(slices.DeleteFunc(list, func(e string) bool { return e == text }), text)
	}
	if len(list) > 2 {
		list = list[len(list)-2:]
	}
	if len(list) == 2 {
		room := MaxStatusLen - utf8.RuneCountInString(text) - len(sep)
		if older := []rune(list[0]); len(older) > room {
			if room < 2 {
				return text
			}
			list[0] = string(older[:room-1]) + "…"
		}
	}
	return StatusText(strings.Join(list, sep))
}

// StatusText returns s as a status can hold it, in backend_status and in
// a Temporal failure message or memo: invalid UTF-8 and NUL bytes replaced
// by U+FFFD, and cut to MaxStatusLen characters (the last one an ellipsis).
func StatusText(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	s = strings.ReplaceAll(s, "\x00", "\uFFFD")
	if utf8.RuneCountInString(s) <= MaxStatusLen {
		return s
	}
	r := []rune(s)
	return string(r[:MaxStatusLen-1]) + "…"
}

// RecordStatus sets code and status, when they differ from what is stored.
func (s *Store) RecordStatus(ctx context.Context, ref Ref, code int, status string) error {
	m, err := s.model(ref.Model)
	if err != nil {
		return err
	}
	_, err = s.pool.Exec(ctx, `UPDATE `+s.table(m)+` SET backend_code = $2, backend_status = $3 WHERE id = $1 AND (backend_code, backend_status) IS DISTINCT FROM ($2, $3)`,
		ref.ID, code, StatusText(status))
	if err != nil {
		return fmt.Errorf("record status %s %d: %w", ref.Model, ref.ID, err)
	}
	return nil
}

// HoldDependents records, on every pending object that depends on ref
// directly or through other pending objects, code 2 and the status "Failed
// due to error in model M id N: text". It returns the objects it marked.
func (s *Store) HoldDependents(ctx context.Context, ref Ref, text string) ([]Ref, error) {
	status := StatusText(fmt.Sprintf("Failed due to error in %s: %s", ref, text))
	var held []Ref
	seen := map[Ref]bool{}
	frontier := map[string][]int64{ref.Model: {ref.ID}}
	for len(frontier) > 0 {
		next := map[string][]int64{}
		for _, dest := range sortedKeys(frontier) {
			for _, e := range s.graph.Dependents(dest) {
				m, _ := s.graph.Model(e.From)
				rows, err := s.pool.Query(ctx, `UPDATE `+s.table(m)+` SET backend_code = 2, backend_status = $2 WHERE `+
					pgx.Identifier{e.Link.Via}.Sanitize()+` = ANY($1) AND `+PendingPredicate+` RETURNING id`, frontier[dest], status)
				if err != nil {
					return held, fmt.Errorf("hold dependents of %s: %w", ref, err)
				}
				ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
				if err != nil {
					return held, fmt.Errorf("hold dependents of %s: %w", ref, err)
				}
				for _, id := range ids {
					// An object reached by two paths (a diamond) is listed once.
					r := Ref{Model: e.From, ID: id}
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

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Dependent is an object that links to another one.
type Dependent struct {
	Ref
	Deleted      bool
	WriteProtect bool
}

// Dependents returns every object (deleted or not) that links to ref.
func (s *Store) Dependents(ctx context.Context, ref Ref) ([]Dependent, error) {
	var out []Dependent
	for _, e := range s.graph.Dependents(ref.Model) {
		m, _ := s.graph.Model(e.From)
		rows, err := s.pool.Query(ctx, `SELECT id, deleted, write_protect FROM `+s.table(m)+` WHERE `+
			pgx.Identifier{e.Link.Via}.Sanitize()+` = $1 ORDER BY id`, ref.ID)
		if err != nil {
			return nil, fmt.Errorf("dependents of %s: %w", ref, err)
		}
		for rows.Next() {
			d := Dependent{Ref: Ref{Model: e.From}}
			if err := rows.Scan(&d.ID, &d.Deleted, &d.WriteProtect); err != nil {
				rows.Close()
				return nil, fmt.Errorf("dependents of %s: %w", ref, err)
			}
			out = append(out, d)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("dependents of %s: %w", ref, err)
		}
	}
	return out, nil
}

// Purge removes the row of a deleted object.
func (s *Store) Purge(ctx context.Context, ref Ref) error {
	m, err := s.model(ref.Model)
	if err != nil {
		return err
	}
	if _, err := s.pool.Exec(ctx, `DELETE FROM `+s.table(m)+` WHERE id = $1 AND deleted`, ref.ID); err != nil {
		return fmt.Errorf("purge %s %d: %w", ref.Model, ref.ID, err)
	}
	return nil
}

// SyncState is one object's sync state, as operators list it.
type SyncState struct {
	Model   string
	ID      int64
	Code    int
	Status  string
	Deleted bool
	Updated time.Time
	Enacted *time.Time
}

// SyncStates returns the sync state of every object of every model,
// dependencies first, each model's by id. A model whose table does not
// exist yet (not migrated) has no objects.
func (s *Store) SyncStates(ctx context.Context) ([]SyncState, error) {
	var out []SyncState
	for _, name := range s.graph.Order() {
		m, _ := s.graph.Model(name)
		var exists bool
		if err := s.pool.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, s.table(m)).Scan(&exists); err != nil {
			return nil, fmt.Errorf("sync states of %s: %w", name, err)
		}
		if !exists {
			continue
		}
		rows, err := s.pool.Query(ctx, `SELECT id, backend_code, backend_status, deleted, updated, enacted FROM `+s.table(m)+` ORDER BY id`)
		if err != nil {
			return nil, fmt.Errorf("sync states of %s: %w", name, err)
		}
		states, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (SyncState, error) {
			st := SyncState{Model: name}
			err := row.Scan(&st.ID, &st.Code, &st.Status, &st.Deleted, &st.Updated, &st.Enacted)
			return st, err
		})
		if err != nil {
			return nil, fmt.Errorf("sync states of %s: %w", name, err)
		}
		out = append(out, states...)
	}
	return out, nil
}
