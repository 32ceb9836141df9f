package syncstate

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tsync/tsync/models"
)

// Cycle returns the cycle of objects that ref is on through its model's
// self-links (models.Graph.SelfLinks), from ref back to ref ("Network 3 ->
// Network 5 -> Network 3" as refs), the shortest when there are several, or
// nil when there is none. Deleted rows count: a cycle among deleted objects
// would make their deletions wait for each other. It is one recursive query
// (none for a model without self-links).
func (s *Store) Cycle(ctx context.Context, ref models.Ref) ([]models.Ref, error) {
	m, err := s.model(ref.Model)
	if err != nil {
		return nil, err
	}
	links := s.Graph().SelfLinks(ref.Model)
	if len(links) == 0 {
		return nil, nil
	}
	cols := make([]string, len(links))
	for i, l := range links {
		cols[i] = "t." + pgx.Identifier{l.Via}.Sanitize()
	}
	next := `SELECT n FROM unnest(ARRAY[` + strings.Join(cols, ", ") + `]::bigint[]) AS n WHERE n IS NOT NULL AND n <> 0`
	table := s.Table(m)
	// Simple paths from ref; a path ends when it comes back to ref.
	q := `WITH RECURSIVE walk(id, path) AS (
	SELECT x.n, ARRAY[$1::bigint, x.n] FROM ` + table + ` t, LATERAL (` + next + `) x WHERE t.id = $1
	UNION ALL
	SELECT x.n, w.path || x.n FROM walk w JOIN ` + table + ` t ON t.id = w.id, LATERAL (` + next + `) x
	WHERE w.id <> $1 AND (x.n = $1 OR NOT x.n = ANY(w.path))
)
SELECT path FROM walk WHERE id = $1 ORDER BY array_length(path, 1) LIMIT 1`
	var path []int64
	err = s.Pool().QueryRow(ctx, q, ref.ID).Scan(&path)
	if err == pgx.ErrNoRows {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("dependency cycle of %s: %w", ref, err)
	}
	out := make([]models.Ref, len(path))
	for i, id := range path {
		out[i] = models.Ref{Model: ref.Model, ID: id}
	}
	return out, nil
}

// LinkState is the sync state of an object reached through a link.
type LinkState struct {
	models.Ref
	Deleted bool
	// Blocked is no_sync or lazy_blocked.
	Blocked bool
	Pending bool
	// Synced: enacted is set and not older than updated.
	Synced bool
	Code   int
	Status string
}

// InSync reports whether the object needs no sync: not deleted, its current
// content synced, not in error.
func (l LinkState) InSync() bool { return !l.Deleted && l.Synced && l.Code != models.CodeError }

// Frontier returns the objects that the objects of from (ids by model, each
// in sync) reach through their links and that are not in sync, following
// links on through objects that are in sync: the distant dependencies an
// object must wait for. Objects in seen (the object itself and its direct
// dependencies) are neither returned nor followed; seen is filled with every
// object met. Deleted and blocked objects end a path and are not returned
// (their own holds cover them). It runs one query per link of each model
// met, per level, however many objects there are.
func (s *Store) Frontier(ctx context.Context, from map[string][]int64, seen map[models.Ref]bool) ([]LinkState, error) {
	var out []LinkState
	for len(from) > 0 {
		next := map[string][]int64{}
		for _, name := range slices.Sorted(maps.Keys(from)) {
			m, err := s.model(name)
			if err != nil {
				return nil, err
			}
			for _, l := range m.Links {
				dest, _ := s.Graph().Model(l.Dest)
				states, err := s.linked(ctx, m, dest, l, from[name])
				if err != nil {
					return nil, err
				}
				for _, st := range states {
					if seen[st.Ref] {
						continue
					}
					seen[st.Ref] = true
					switch {
					case st.InSync():
						next[st.Model] = append(next[st.Model], st.ID)
					case st.Deleted || st.Blocked:
					default:
						out = append(out, st)
					}
				}
			}
		}
		from = next
	}
	return out, nil
}

// linked returns the sync state of the objects of dest that the objects ids
// of m link to through l, in id order.
func (s *Store) linked(ctx context.Context, m, dest *models.Model, l models.Link, ids []int64) ([]LinkState, error) {
	rows, err := s.Pool().Query(ctx, `SELECT DISTINCT d.id, d.deleted, d.no_sync OR d.lazy_blocked, d.enacted, d.updated, d.backend_code, d.backend_status
FROM `+s.Table(m)+` s JOIN `+s.Table(dest)+` d ON d.id = s.`+pgx.Identifier{l.Via}.Sanitize()+`
WHERE s.id = ANY($1) ORDER BY d.id`, ids)
	if err != nil {
		return nil, fmt.Errorf("links of %s via %s: %w", m.Name, l.Via, err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (LinkState, error) {
		st := LinkState{Ref: models.Ref{Model: dest.Name}}
		var enacted *time.Time
		var updated time.Time
		if err := row.Scan(&st.ID, &st.Deleted, &st.Blocked, &enacted, &updated, &st.Code, &st.Status); err != nil {
			return st, fmt.Errorf("links of %s via %s: %w", m.Name, l.Via, err)
		}
		st.Synced = enacted != nil && !enacted.Before(updated)
		st.Pending = !st.Deleted && !st.Blocked && !st.Synced
		return st, nil
	})
}
