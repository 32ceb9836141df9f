package models_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync/internal/syncstate"
	"github.com/tsync/tsync/internal/testenv"
	"github.com/tsync/tsync/models"
)

// writer is another client of the database (a service, psql): it writes
// the models' tables with plain SQL, on a connection of its own.
func writer(t *testing.T) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(ctx(t), testenv.DatabaseURL())
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

func exec(t *testing.T, conn *pgx.Conn, sql string, args ...any) pgconn.CommandTag {
	t.Helper()
	tag, err := conn.Exec(ctx(t), sql, args...)
	require.NoError(t, err, sql)
	return tag
}

// noMore asserts that nothing more is announced within a short while.
func noMore(t *testing.T, s *models.Store) {
	t.Helper()
	conn := writer(t)
	_, err := conn.Exec(ctx(t), "LISTEN "+pgx.Identifier{s.Channel()}.Sanitize())
	require.NoError(t, err)
	c, cancel := context.WithTimeout(ctx(t), 300*time.Millisecond)
	defer cancel()
	n, err := conn.WaitForNotification(c)
	require.Error(t, err, "unexpected announcement %v", n)
}

// syncState reads the sync-state columns of a row, and whether it exists.
type rowState struct {
	Exists, Deleted, NeedDelete bool
	Updated                     time.Time
}

func stateOf(t *testing.T, s *models.Store, table string, id int64) rowState {
	t.Helper()
	var r rowState
	err := s.Pool().QueryRow(ctx(t), `SELECT true, deleted, backend_need_delete, updated FROM `+pgx.Identifier{s.Schema(), table}.Sanitize()+` WHERE id = $1`, id).
		Scan(&r.Exists, &r.Deleted, &r.NeedDelete, &r.Updated)
	if err == pgx.ErrNoRows {
		return rowState{}
	}
	require.NoError(t, err)
	return r
}

// Plain SQL from another connection is seen as the store's own writes are:
// announced, updated bumped on content changes only, hard deletes of
// objects the backend has turned into soft deletes.
func TestTriggersAnyWriter(t *testing.T) {
	s := newStore(t, chainRegistry(t))
	next := listen(t, s)
	raw := listenRaw(t, s)
	w := writer(t)
	site := pgx.Identifier{s.Schema(), "site"}.Sanitize()

	var id int64
	require.NoError(t, w.QueryRow(ctx(t), `INSERT INTO `+site+` (name) VALUES ('a') RETURNING id`).Scan(&id))
	require.Equal(t, models.Change{Model: "Site", ID: id, Op: "create"}, next())
	before := stateOf(t, s, "site", id)

	// One content column: updated bumped, announced with the column.
	exec(t, w, `UPDATE `+site+` SET name = 'renamed' WHERE id = $1`, id)
	require.Equal(t, models.Change{Model: "Site", ID: id, Op: "update", Fields: []string{"name"}}, next())
	after := stateOf(t, s, "site", id)
	require.True(t, after.Updated.After(before.Updated), "updated bumped")
	// Each announcement carries the content's version it made.
	require.True(t, raw().Updated.Equal(before.Updated), "the insert's updated")
	require.True(t, raw().Updated.Equal(after.Updated), "the update's updated")

	// The same value again: nothing changed, nothing announced.
	exec(t, w, `UPDATE `+site+` SET name = 'renamed' WHERE id = $1`, id)
	// Sync-state columns only: no bump, no announcement (no re-sync).
	exec(t, w, `UPDATE `+site+` SET enacted = updated, backend_code = 1, backend_status = 'OK', backend_need_delete = true WHERE id = $1`, id)
	noMore(t, s)
	synced := stateOf(t, s, "site", id)
	require.Equal(t, after.Updated, synced.Updated)
	obj, err := s.Get(ctx(t), "Site", id)
	require.NoError(t, err)
	require.False(t, obj.SyncState().Pending(), "in sync after a sync-state write")

	// An operator flag is content.
	exec(t, w, `UPDATE `+site+` SET no_sync = true WHERE id = $1`, id)
	require.Equal(t, models.Change{Model: "Site", ID: id, Op: "update", Fields: []string{"no_sync"}}, next())
	exec(t, w, `UPDATE `+site+` SET no_sync = false WHERE id = $1`, id)
	next()

	// A hard delete of an object the backend has: the row stays, deleted,
	// its last content kept for DeleteRecord.
	tag := exec(t, w, `DELETE FROM `+site+` WHERE id = $1`, id)
	require.Equal(t, int64(0), tag.RowsAffected())
	require.Equal(t, models.Change{Model: "Site", ID: id, Op: "delete"}, next())
	gone := stateOf(t, s, "site", id)
	require.True(t, gone.Exists && gone.Deleted && gone.NeedDelete, "%+v", gone)
	require.True(t, gone.Updated.After(synced.Updated))
	kept := load[Site](t, s, id)
	require.Equal(t, "renamed", kept.Name)
	// Deleting it again changes nothing until tsync purges it.
	exec(t, w, `DELETE FROM `+site+` WHERE id = $1`, id)
	noMore(t, s)
	require.NoError(t, syncstate.New(s).Purge(ctx(t), models.Ref{Model: "Site", ID: id}))
	require.False(t, stateOf(t, s, "site", id).Exists, "purged")
	noMore(t, s)

	// A never-synced object goes at once, announced.
	require.NoError(t, w.QueryRow(ctx(t), `INSERT INTO `+site+` (name) VALUES ('b') RETURNING id`).Scan(&id))
	next()
	tag = exec(t, w, `DELETE FROM `+site+` WHERE id = $1`, id)
	require.Equal(t, int64(1), tag.RowsAffected())
	require.Equal(t, models.Change{Model: "Site", ID: id, Op: "delete"}, next())
	require.False(t, stateOf(t, s, "site", id).Exists)
}

func TestTriggersRefuse(t *testing.T) {
	s := newStore(t, chainRegistry(t))
	w := writer(t)
	a := insertSite(t, s, "a")
	site := pgx.Identifier{s.Schema(), "site"}.Sanitize()

	_, err := w.Exec(ctx(t), `TRUNCATE `+site+` CASCADE`)
	require.ErrorContains(t, err, "tsync: TRUNCATE of Site's table is refused: it would leave its objects in the backend with no DeleteRecord; DELETE the rows instead")
	require.True(t, stateOf(t, s, "site", a.ID).Exists)

	_, err = w.Exec(ctx(t), `UPDATE `+site+` SET id = id + 1000 WHERE id = $1`, a.ID)
	require.ErrorContains(t, err, fmt.Sprintf("tsync: the id of a Site object cannot change (%d to %d)", a.ID, a.ID+1000))
	require.Equal(t, "a", load[Site](t, s, a.ID).Name)
}

// A writer's explicit updated is kept when it moves forward; one that
// does not is bumped past the old value, so the change is never hidden.
func TestTriggersUpdatedNeverGoesBack(t *testing.T) {
	s := newStore(t, chainRegistry(t))
	w := writer(t)
	a := insertSite(t, s, "a")
	site := pgx.Identifier{s.Schema(), "site"}.Sanitize()
	old := stateOf(t, s, "site", a.ID).Updated

	exec(t, w, `UPDATE `+site+` SET name = 'b', updated = $2 WHERE id = $1`, a.ID, old.Add(-time.Hour))
	require.True(t, stateOf(t, s, "site", a.ID).Updated.After(old))
	future := old.Add(time.Hour).Truncate(time.Microsecond)
	exec(t, w, `UPDATE `+site+` SET name = 'c', updated = $2 WHERE id = $1`, a.ID, future)
	require.True(t, stateOf(t, s, "site", a.ID).Updated.Equal(future))
}

// A statement changing many rows announces them once; the outbox still
// gets one entry per row, in the writer's transaction.
func TestTriggersManyRows(t *testing.T) {
	base := newStore(t, chainRegistry(t))
	s, err := models.NewStore(base.Pool(), base.Schema(), base.Graph(), models.WithOutbox(true))
	require.NoError(t, err)
	require.NoError(t, s.Migrate(ctx(t)))
	next := listen(t, s)
	w := writer(t)
	site := pgx.Identifier{s.Schema(), "site"}.Sanitize()
	outbox := pgx.Identifier{s.Schema(), models.OutboxTable}.Sanitize()

	exec(t, w, `INSERT INTO `+site+` (name) SELECT 'n' || g FROM generate_series(1, $1::int) g`, models.ManyChanges)
	for range models.ManyChanges {
		require.Equal(t, models.OpCreate, next().Op)
	}
	exec(t, w, `INSERT INTO `+site+` (name) SELECT 'm' || g FROM generate_series(1, $1::int) g`, models.ManyChanges+1)
	require.Equal(t, models.Change{Model: "Site", Op: models.OpMany, Count: models.ManyChanges + 1}, next())

	exec(t, w, `UPDATE `+site+` SET name = name || 'x'`)
	require.Equal(t, models.Change{Model: "Site", Op: models.OpMany, Count: 2*models.ManyChanges + 1}, next())
	noMore(t, s)

	var entries, updates int
	require.NoError(t, s.Pool().QueryRow(ctx(t), `SELECT count(*), count(*) FILTER (WHERE change->>'op' = 'update' AND change->'fields' = '["name"]') FROM `+outbox).
		Scan(&entries, &updates))
	require.Equal(t, 2*(2*models.ManyChanges+1), entries)
	require.Equal(t, 2*models.ManyChanges+1, updates)

	// A rolled-back statement leaves nothing behind.
	tx, err := w.Begin(ctx(t))
	require.NoError(t, err)
	_, err = tx.Exec(ctx(t), `UPDATE `+site+` SET name = 'y'`)
	require.NoError(t, err)
	require.NoError(t, tx.Rollback(ctx(t)))
	noMore(t, s)
	require.NoError(t, s.Pool().QueryRow(ctx(t), `SELECT count(*) FROM `+outbox).Scan(&entries))
	require.Equal(t, 2*(2*models.ManyChanges+1), entries)
}
