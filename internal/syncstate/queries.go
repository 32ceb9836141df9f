package syncstate

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tsync/tsync/models"
)

// FetchPending returns up to limit ids above afterID of model name's objects
// pending for sync (deletion false) or for deletion (deletion true), in id
// order, by the partial indexes models.Store.Migrate creates (see
// models.Model.FetchPredicates).
func (s *Store) FetchPending(ctx context.Context, model string, deletion bool, afterID int64, limit int) ([]int64, error) {
	m, err := s.model(model)
	if err != nil {
		return nil, err
	}
	pred, deleting := m.FetchPredicates()
	if deletion {
		pred = deleting
	}
	rows, err := s.Pool().Query(ctx, `SELECT id FROM `+s.Table(m)+` WHERE `+pred+` AND id > $1 ORDER BY id LIMIT $2`, afterID, limit)
	if err != nil {
		return nil, fmt.Errorf("fetch pending %s: %w", m.Name, err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("fetch pending %s: %w", m.Name, err)
	}
	return ids, nil
}

// StillPending returns those of ids (objects of model name, in ascending
// order) still pending for sync, in id order. It reads the pending ids
// between the first and the last of ids by the partial index FetchPending
// uses, so its cost is that of the objects still pending, not of ids.
func (s *Store) StillPending(ctx context.Context, model string, ids []int64) ([]int64, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	m, err := s.model(model)
	if err != nil {
		return nil, err
	}
	pred, _ := m.FetchPredicates()
	rows, err := s.Pool().Query(ctx, `SELECT id FROM `+s.Table(m)+` WHERE `+pred+` AND id >= $1 AND id <= $2 ORDER BY id`, ids[0], ids[len(ids)-1])
	if err != nil {
		return nil, fmt.Errorf("pending of %s: %w", m.Name, err)
	}
	pending, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("pending of %s: %w", m.Name, err)
	}
	// Both ascending: keep those of ids among them.
	var out []int64
	i := 0
	for _, id := range pending {
		for i < len(ids) && ids[i] < id {
			i++
		}
		if i < len(ids) && ids[i] == id {
			out = append(out, id)
		}
	}
	return out, nil
}

// Updated returns the updated column of the objects ids of model name that
// exist.
func (s *Store) Updated(ctx context.Context, model string, ids []int64) (map[int64]time.Time, error) {
	m, err := s.model(model)
	if err != nil {
		return nil, err
	}
	rows, err := s.Pool().Query(ctx, `SELECT id, updated FROM `+s.Table(m)+` WHERE id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("updated of %s: %w", m.Name, err)
	}
	out := make(map[int64]time.Time, len(ids))
	var id int64
	var updated time.Time
	_, err = pgx.ForEachRow(rows, []any{&id, &updated}, func() error {
		out[id] = updated
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("updated of %s: %w", m.Name, err)
	}
	return out, nil
}

// LinkTargets returns, for each of ids (objects of model name) that
// exists, the objects it links to through links (links of that model): one
// per link whose column is not NULL.
func (s *Store) LinkTargets(ctx context.Context, model string, ids []int64, links []models.Link) (map[int64][]models.Ref, error) {
	m, err := s.model(model)
	if err != nil {
		return nil, err
	}
	out := make(map[int64][]models.Ref, len(ids))
	if len(links) == 0 {
		for _, id := range ids {
			out[id] = nil
		}
		return out, nil
	}
	cols := make([]string, len(links))
	for i, l := range links {
		cols[i] = pgx.Identifier{l.Via}.Sanitize()
	}
	rows, err := s.Pool().Query(ctx, `SELECT id, `+strings.Join(cols, ", ")+` FROM `+s.Table(m)+` WHERE id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("links of %s: %w", m.Name, err)
	}
	var id int64
	targets := make([]*int64, len(links))
	dest := []any{&id}
	for i := range targets {
		dest = append(dest, &targets[i])
	}
	_, err = pgx.ForEachRow(rows, dest, func() error {
		var refs []models.Ref
		for i, t := range targets {
			if t != nil {
				refs = append(refs, models.Ref{Model: links[i].Dest, ID: *t})
			}
		}
		out[id] = refs
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("links of %s: %w", m.Name, err)
	}
	return out, nil
}

// Dependent is an object that links to another one.
type Dependent struct {
	models.Ref
	Deleted      bool
	WriteProtect bool
}

// Dependents returns every object (deleted or not) that links to ref.
func (s *Store) Dependents(ctx context.Context, ref models.Ref) ([]Dependent, error) {
	var out []Dependent
	for _, e := range s.Graph().Dependents(ref.Model) {
		m, _ := s.Graph().Model(e.From)
		rows, err := s.Pool().Query(ctx, `SELECT id, deleted, write_protect FROM `+s.Table(m)+` WHERE `+
			pgx.Identifier{e.Link.Via}.Sanitize()+` = $1 ORDER BY id`, ref.ID)
		if err != nil {
			return nil, fmt.Errorf("dependents of %s: %w", ref, err)
		}
		for rows.Next() {
			d := Dependent{Ref: models.Ref{Model: e.From}}
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

// Referrers returns, in id order and each once, the ids of the objects of
// model whose integer column via holds one of ids: the objects that reach
// those ids through that column, deleted or not. Watchers use it to follow
// links in reverse.
func (s *Store) Referrers(ctx context.Context, model, via string, ids []int64) ([]int64, error) {
	m, err := s.model(model)
	if err != nil {
		return nil, err
	}
	f, ok := m.Field(via)
	if !ok || !f.Integer {
		return nil, fmt.Errorf("referrers: %s has no integer column %q", model, via)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	rows, err := s.Pool().Query(ctx, `SELECT DISTINCT id FROM `+s.Table(m)+` WHERE `+pgx.Identifier{via}.Sanitize()+` = ANY($1) ORDER BY id`, ids)
	if err != nil {
		return nil, fmt.Errorf("referrers of %s via %s: %w", model, via, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("referrers of %s via %s: %w", model, via, err)
	}
	return out, nil
}

// State is one object's sync state, as operators list it.
type State struct {
	Model   string
	ID      int64
	Code    int
	Status  string
	Deleted bool
	Updated time.Time
	Enacted *time.Time
}

// States returns the sync state of every object of every model,
// dependencies first, each model's by id. A model whose table does not
// exist yet (not migrated) has no objects.
func (s *Store) States(ctx context.Context) ([]State, error) {
	var out []State
	for _, name := range s.Graph().Order() {
		m, _ := s.Graph().Model(name)
		var exists bool
		if err := s.Pool().QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, s.Table(m)).Scan(&exists); err != nil {
			return nil, fmt.Errorf("sync states of %s: %w", name, err)
		}
		if !exists {
			continue
		}
		rows, err := s.Pool().Query(ctx, `SELECT id, backend_code, backend_status, deleted, updated, enacted FROM `+s.Table(m)+` ORDER BY id`)
		if err != nil {
			return nil, fmt.Errorf("sync states of %s: %w", name, err)
		}
		states, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (State, error) {
			st := State{Model: name}
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
