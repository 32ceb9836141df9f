package integration

import (
	"context"
	"log/slog"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync"
	"github.com/tsync/tsync/app"
	"github.com/tsync/tsync/config"
	"github.com/tsync/tsync/internal/testenv"
	"github.com/tsync/tsync/internal/testmodels"
	"github.com/tsync/tsync/models"
)

// RuntimeGrants is the SQL, run by the schema's owner after `migrate`, that
// gives role the rights the worker, the starter and the dispatcher need,
// and no DDL (the README's "Least privilege" shows the same statements).
func runtimeGrants(schema, role string) []string {
	s, r := pgx.Identifier{schema}.Sanitize(), pgx.Identifier{role}.Sanitize()
	return []string{
		`GRANT USAGE ON SCHEMA ` + s + ` TO ` + r,
		`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ` + s + ` TO ` + r,
	}
}

// The worker, starter and dispatcher run as a role that can read and write
// the rows but not change the schema: syncs, updates, soft and hard
// deletes and the outbox all work; DDL is refused, and a model change that
// needs a migration stops start-up with PostgreSQL's refusal.
func TestLeastPrivilege(t *testing.T) {
	owner := newEnv(t, func(c *config.Config) { c.ObserverEnableWatchers = true }) // migrates, as the owner
	role := "tsync_rt_" + testenv.Random(4)
	for _, stmt := range append([]string{`CREATE ROLE ` + pgx.Identifier{role}.Sanitize() + ` LOGIN`}, runtimeGrants(owner.cfg.DatabaseSchema, role)...) {
		_, err := owner.app.Pool.Exec(owner.ctx, stmt)
		require.NoError(t, err, stmt)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		pool := owner.app.Pool
		_, _ = pool.Exec(ctx, `DROP OWNED BY `+pgx.Identifier{role}.Sanitize())
		_, _ = pool.Exec(ctx, `DROP ROLE `+pgx.Identifier{role}.Sanitize())
	})
	u, err := url.Parse(testenv.DatabaseURL())
	require.NoError(t, err)
	u.User = url.User(role)

	cfg := owner.cfg
	cfg.DatabaseURL = u.String()
	rec := newRecorder()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	e := openEnv(t, cfg, tsync.Synchronizer{Models: registry(), Steps: []tsync.Step{rec}}, log)
	e.rec = rec
	var user string
	require.NoError(t, e.app.Pool.QueryRow(e.ctx, `SELECT current_user`).Scan(&user))
	require.Equal(t, role, user)
	e.background(e.app.Run) // worker, starter, relay and dispatcher

	site, slice, inst := e.insertChain()
	e.waitInSync(15*time.Second, site, slice, inst)
	obj := e.get(slice)
	require.True(t, obj.BackendNeedDelete)
	sl := &testmodels.Slice{Base: *obj, Name: "sl2", SiteID: site.ID}
	require.NoError(t, e.app.Store.Save(e.ctx, sl))
	e.waitInSync(15*time.Second, slice)
	require.NoError(t, e.app.Store.Delete(e.ctx, "Instance", inst.ID))
	conn, err := pgx.Connect(e.ctx, cfg.DatabaseURL) // as the runtime role
	require.NoError(t, err)
	defer conn.Close(context.Background())
	_, err = conn.Exec(e.ctx, `DELETE FROM `+pgx.Identifier{cfg.DatabaseSchema, "slice"}.Sanitize()+` WHERE id = $1`, slice.ID)
	require.NoError(t, err)
	e.waitGone(15*time.Second, inst, slice)
	require.Equal(t, []models.Ref{inst, slice}, rec.Order("delete"))
	// The outbox is relayed and settled by the runtime role.
	require.Eventually(t, func() bool {
		var n int
		require.NoError(t, e.app.Pool.QueryRow(e.ctx, `SELECT count(*) FROM `+pgx.Identifier{cfg.DatabaseSchema, models.OutboxTable}.Sanitize()+` WHERE stream_ms IS NULL`).Scan(&n))
		return n == 0
	}, 15*time.Second, 50*time.Millisecond, "outbox relayed")
	require.Empty(t, rec.Violations())

	// No DDL.
	for _, ddl := range []string{
		`CREATE TABLE ` + pgx.Identifier{cfg.DatabaseSchema, "x"}.Sanitize() + ` (i int)`,
		`ALTER TABLE ` + pgx.Identifier{cfg.DatabaseSchema, "site"}.Sanitize() + ` ADD COLUMN x int`,
		`DROP TRIGGER "_tsync_truncate_site" ON ` + pgx.Identifier{cfg.DatabaseSchema, "site"}.Sanitize(),
	} {
		_, err := conn.Exec(e.ctx, ddl)
		var pgErr *pgconn.PgError
		require.ErrorAs(t, err, &pgErr, ddl)
		require.Equal(t, "42501", pgErr.Code, "%s: %v", ddl, err) // insufficient_privilege
	}
	_, err = conn.Exec(e.ctx, `TRUNCATE `+pgx.Identifier{cfg.DatabaseSchema, "site"}.Sanitize())
	require.ErrorContains(t, err, "permission denied for table site")

	// A model that needs a migration: start-up stops with the refusal.
	reg := models.NewRegistry()
	models.MustRegister[siteV2](reg, "Site")
	_, err = app.Open(e.ctx, cfg, tsync.Synchronizer{Models: reg, Steps: []tsync.Step{testmodels.NewRecorder(new(siteV2))}}, log)
	require.ErrorContains(t, err, `migrate: ALTER TABLE "`+cfg.DatabaseSchema+`"."site" ADD COLUMN IF NOT EXISTS "region" text NOT NULL DEFAULT '': ERROR: must be owner of table site`)
}

// siteV2 is the tests' Site with a field added.
type siteV2 struct {
	models.Base
	Name   string `db:"name"`
	Region string `db:"region"`
}
