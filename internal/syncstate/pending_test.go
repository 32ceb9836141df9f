package syncstate_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync/internal/syncstate"
	"github.com/tsync/tsync/models"
)

func siteTable(s *syncstate.Store) string { return pgx.Identifier{s.Schema(), "site"}.Sanitize() }

func TestPendingPredicate(t *testing.T) {
	s := newStore(t, chainRegistry(t))
	c := ctx(t)
	exec := func(sql string, args ...any) {
		t.Helper()
		_, err := s.Pool().Exec(c, sql, args...)
		require.NoError(t, err)
	}
	ref := func(id int64) models.Ref { return models.Ref{Model: "Site", ID: id} }

	// never enacted
	neverEnacted := insertSite(t, s, "never-enacted")
	// enacted < updated: synced, then changed
	stale := insertSite(t, s, "stale")
	markSynced(t, s, "Site", stale.ID)
	stale.Name = "stale2"
	require.NoError(t, s.Save(c, stale))
	// enacted == updated: in sync
	inSync := insertSite(t, s, "in-sync")
	markSynced(t, s, "Site", inSync.ID)
	// enacted > updated (clock skew between hosts): in sync
	ahead := insertSite(t, s, "ahead")
	_, err := s.RecordSuccess(c, ref(ahead.ID), ahead.Updated.Add(time.Hour), "OK")
	require.NoError(t, err)
	// in error, never enacted: still pending
	inError := insertSite(t, s, "in-error")
	require.NoError(t, s.RecordError(c, ref(inError.ID), "boom"))
	// deleted (and never synced)
	deleted := insertSite(t, s, "deleted")
	require.NoError(t, s.Delete(c, "Site", deleted.ID))
	// deleted after being synced
	deletedSynced := insertSite(t, s, "deleted-synced")
	markSynced(t, s, "Site", deletedSynced.ID)
	require.NoError(t, s.Delete(c, "Site", deletedSynced.ID))
	// deleted but write protected: never deleted from the backend
	protected := &Site{Name: "protected"}
	protected.WriteProtect = true
	require.NoError(t, s.Insert(c, protected))
	require.NoError(t, s.Delete(c, "Site", protected.ID))
	// write protected, live: pending for sync as usual
	protectedLive := &Site{Name: "protected-live"}
	protectedLive.WriteProtect = true
	require.NoError(t, s.Insert(c, protectedLive))
	// no_sync
	noSync := &Site{Name: "no-sync"}
	noSync.NoSync = true
	require.NoError(t, s.Insert(c, noSync))
	// lazy_blocked
	lazy := &Site{Name: "lazy"}
	lazy.LazyBlocked = true
	require.NoError(t, s.Insert(c, lazy))
	// lazy_blocked cleared by an operator: pending again
	unblocked := &Site{Name: "unblocked"}
	unblocked.LazyBlocked = true
	require.NoError(t, s.Insert(c, unblocked))
	unblocked.LazyBlocked = false
	require.NoError(t, s.Save(c, unblocked))
	// enacted set through SQL to exactly updated, microsecond for microsecond
	exact := insertSite(t, s, "exact")
	exec(`UPDATE `+siteTable(s)+` SET enacted = updated WHERE id = $1`, exact.ID)
	// enacted one microsecond before updated
	justStale := insertSite(t, s, "just-stale")
	exec(`UPDATE `+siteTable(s)+` SET enacted = updated - interval '1 microsecond' WHERE id = $1`, justStale.ID)

	wantSync := []int64{neverEnacted.ID, stale.ID, inError.ID, protectedLive.ID, unblocked.ID, justStale.ID}
	wantDelete := []int64{deleted.ID, deletedSynced.ID}
	slices.Sort(wantSync)
	slices.Sort(wantDelete)

	got, err := s.FetchPending(c, "Site", false, 0, 100)
	require.NoError(t, err)
	require.Equal(t, wantSync, got)
	got, err = s.FetchPending(c, "Site", true, 0, 100)
	require.NoError(t, err)
	require.Equal(t, wantDelete, got)

	// Base.Pending agrees with the SQL predicate on every object.
	rows, err := s.Pool().Query(c, `SELECT id, (`+models.PendingPredicate+`), (`+models.DeletionPredicate+`) FROM `+siteTable(s)+` ORDER BY id`)
	require.NoError(t, err)
	type row struct {
		ID       int64
		Pending  bool
		Deletion bool
	}
	all, err := pgx.CollectRows(rows, pgx.RowToStructByPos[row])
	require.NoError(t, err)
	require.Len(t, all, 14)
	for _, r := range all {
		o := load[Site](t, s, r.ID)
		require.Equal(t, r.Pending, o.Pending(), "object %d (%s)", r.ID, o.Name)
		require.Equal(t, slices.Contains(wantSync, r.ID), o.Pending(), "object %d (%s)", r.ID, o.Name)
		require.Equal(t, slices.Contains(wantDelete, r.ID), r.Deletion, "object %d (%s)", r.ID, o.Name)
	}
}

func TestFetchPendingPaging(t *testing.T) {
	s := newStore(t, chainRegistry(t))
	c := ctx(t)
	var want, wantDel []int64
	for i := range 53 {
		o := insertSite(t, s, fmt.Sprint(i))
		switch i % 4 {
		case 0: // in sync
			markSynced(t, s, "Site", o.ID)
		case 1: // deleted
			require.NoError(t, s.Delete(c, "Site", o.ID))
			wantDel = append(wantDel, o.ID)
		default:
			want = append(want, o.ID)
		}
	}
	page := func(deletion bool, limit int) []int64 {
		var all []int64
		after := int64(0)
		for pages := 0; ; pages++ {
			require.Less(t, pages, 100)
			ids, err := s.FetchPending(c, "Site", deletion, after, limit)
			require.NoError(t, err)
			require.LessOrEqual(t, len(ids), limit)
			require.True(t, slices.IsSorted(ids))
			if len(ids) == 0 {
				return all
			}
			require.Greater(t, ids[0], after)
			all = append(all, ids...)
			after = ids[len(ids)-1]
		}
	}
	for _, limit := range []int{1, 7, 26, 27, 1000} {
		require.Equal(t, want, page(false, limit), "limit %d", limit)
		require.Equal(t, wantDel, page(true, limit), "limit %d", limit)
	}
	ids, err := s.FetchPending(c, "Site", false, want[len(want)-1], 10)
	require.NoError(t, err)
	require.Empty(t, ids)
	ids, err = s.FetchPending(c, "Site", false, 0, 3)
	require.NoError(t, err)
	require.Equal(t, want[:3], ids)
}

// The pending scans are served by the partial indexes Migrate creates.
func TestFetchPendingUsesPartialIndex(t *testing.T) {
	s := newStore(t, chainRegistry(t))
	c := ctx(t)
	tbl := siteTable(s)
	_, err := s.Pool().Exec(c, `INSERT INTO `+tbl+` (name, updated, enacted)
		SELECT 'site' || g, now(), now() FROM generate_series(1, 20000) g`)
	require.NoError(t, err)
	_, err = s.Pool().Exec(c, `UPDATE `+tbl+` SET enacted = NULL WHERE id % 2000 = 0`)
	require.NoError(t, err)
	_, err = s.Pool().Exec(c, `UPDATE `+tbl+` SET deleted = true WHERE id % 2000 = 1`)
	require.NoError(t, err)
	_, err = s.Pool().Exec(c, `ANALYZE `+tbl)
	require.NoError(t, err)

	ids, err := s.FetchPending(c, "Site", false, 0, 100)
	require.NoError(t, err)
	require.Len(t, ids, 10)
	ids, err = s.FetchPending(c, "Site", true, 0, 100)
	require.NoError(t, err)
	require.Len(t, ids, 10)

	explain := func(sql string, args ...any) string {
		t.Helper()
		rows, err := s.Pool().Query(c, `EXPLAIN `+sql, args...)
		require.NoError(t, err)
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		return strings.Join(lines, "\n")
	}
	for _, tc := range []struct{ pred, index string }{
		{models.PendingPredicate, "site_pending"},
		{models.DeletionPredicate, "site_deleting"},
	} {
		// The query FetchPending runs, with literal values and as the generic
		// plan of a prepared statement (as pgx runs it once cached).
		query := `SELECT id FROM ` + tbl + ` WHERE ` + tc.pred + ` AND id > %s ORDER BY id LIMIT %s`
		plan := explain(fmt.Sprintf(query, "0", "100"))
		require.Contains(t, plan, tc.index, plan)

		conn, err := s.Pool().Acquire(c)
		require.NoError(t, err)
		_, err = conn.Exec(c, `SET plan_cache_mode = force_generic_plan`)
		require.NoError(t, err)
		_, err = conn.Exec(c, `PREPARE q AS `+fmt.Sprintf(query, "$1", "$2"))
		require.NoError(t, err)
		rows, err := conn.Query(c, `EXPLAIN EXECUTE q(0, 100)`)
		require.NoError(t, err)
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		_, err = conn.Exec(c, `DEALLOCATE q; RESET plan_cache_mode`)
		require.NoError(t, err)
		conn.Release()
		generic := strings.Join(lines, "\n")
		require.Contains(t, generic, tc.index, generic)
	}
}
