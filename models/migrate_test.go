package models_test

import (
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync/internal/testenv"
	"github.com/tsync/tsync/models"
)

// Versions of one model, Tenant, as its struct changes over time.
type (
	tenantV1 struct {
		models.Base
		Name    string `db:"name"`
		Grantee string `db:"grantee"`
	}
	// Grantee's type changed.
	tenantInt struct {
		models.Base
		Name    string `db:"name"`
		Grantee int64  `db:"grantee"`
	}
	// Grantee dropped.
	tenantDropped struct {
		models.Base
		Name string `db:"name"`
	}
	// Grantee renamed to Owner; Quota added.
	tenantRenamed struct {
		models.Base
		Name  string `db:"name"`
		Owner string `db:"owner"`
		Quota int64  `db:"quota"`
	}
	// Grantee may be nil.
	tenantNullable struct {
		models.Base
		Name    string  `db:"name"`
		Grantee *string `db:"grantee"`
	}
)

// storeOf returns a store of model name, stored as T, in schema.
func storeOf[T any](t *testing.T, pool *pgxpool.Pool, schema, name string) *models.Store {
	t.Helper()
	reg := models.NewRegistry()
	require.NoError(t, models.Register[T](reg, name))
	g, err := reg.Graph()
	require.NoError(t, err)
	s, err := models.NewStore(pool, schema, g)
	require.NoError(t, err)
	return s
}

func columnType(t *testing.T, pool *pgxpool.Pool, schema, table, col string) string {
	t.Helper()
	var typ string
	require.NoError(t, pool.QueryRow(ctx(t), `SELECT format_type(atttypid, atttypmod) FROM pg_attribute
		WHERE attrelid = ($1 || '.' || $2)::regclass AND attname = $3`, schema, table, col).Scan(&typ))
	return typ
}

func TestPlanFreshAndUpToDate(t *testing.T) {
	pool, schema := testenv.Schema(t)
	_, err := pool.Exec(ctx(t), `DROP SCHEMA `+pgx.Identifier{schema}.Sanitize()+` CASCADE`)
	require.NoError(t, err)
	s := storeOf[tenantV1](t, pool, schema, "Tenant")

	plan, err := s.Plan(ctx(t))
	require.NoError(t, err)
	require.Empty(t, plan.Drift)
	require.Equal(t, `CREATE SCHEMA IF NOT EXISTS "`+schema+`"`, plan.Statements[0])
	require.True(t, strings.HasPrefix(plan.Statements[1], `CREATE TABLE IF NOT EXISTS "`+schema+`"."tenant" (`), plan.Statements[1])
	all := strings.Join(plan.Statements, "\n")
	for _, want := range []string{
		`ADD COLUMN IF NOT EXISTS "grantee" text NOT NULL DEFAULT ''`,
		`CREATE INDEX IF NOT EXISTS "tenant_pending"`,
		`CREATE OR REPLACE FUNCTION "` + schema + `"."_tsync_changed_tenant"()`,
		`CREATE TRIGGER "_tsync_truncate_tenant" BEFORE TRUNCATE`,
		`CREATE TABLE IF NOT EXISTS "` + schema + `"."_tsync_outbox"`,
	} {
		require.Contains(t, all, want)
	}
	// Planning changed nothing.
	var exists bool
	require.NoError(t, pool.QueryRow(ctx(t), `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, schema).Scan(&exists))
	require.False(t, exists)

	require.NoError(t, s.Migrate(ctx(t)))
	plan, err = s.Plan(ctx(t))
	require.NoError(t, err)
	require.Empty(t, plan.Statements, "nothing to do after Migrate")
	require.Empty(t, plan.Drift)
	require.NoError(t, s.Migrate(ctx(t)), "again")

	// A trigger dropped, a function of an older version: both restored.
	table := pgx.Identifier{schema, "tenant"}.Sanitize()
	_, err = pool.Exec(ctx(t), `DROP TRIGGER "_tsync_inserted_tenant" ON `+table)
	require.NoError(t, err)
	fn := pgx.Identifier{schema, "_tsync_truncate_tenant"}.Sanitize()
	_, err = pool.Exec(ctx(t), `CREATE OR REPLACE FUNCTION `+fn+`() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NULL; END'`)
	require.NoError(t, err)
	plan, err = s.Plan(ctx(t))
	require.NoError(t, err)
	require.Len(t, plan.Statements, 5, strings.Join(plan.Statements, "\n"))
	require.Equal(t, `DROP TRIGGER IF EXISTS "_tsync_inserted_tenant" ON `+table, plan.Statements[0])
	require.True(t, strings.HasPrefix(plan.Statements[2], `CREATE OR REPLACE FUNCTION `+fn+`()`), plan.Statements[2])
	require.Equal(t, `DROP TRIGGER IF EXISTS "_tsync_truncate_tenant" ON `+table, plan.Statements[3])
	require.NoError(t, s.Migrate(ctx(t)))
	_, err = pool.Exec(ctx(t), `TRUNCATE `+table)
	require.ErrorContains(t, err, "TRUNCATE of Tenant's table is refused")
}

// Each kind of drift stops Migrate with one error naming the model, the
// column, the types and the SQL to run, and leaves the table as it was;
// running that SQL resolves it.
func TestMigrateDrift(t *testing.T) {
	pool, schema := testenv.Schema(t)
	require.NoError(t, storeOf[tenantV1](t, pool, schema, "Tenant").Migrate(ctx(t)))
	table := `"` + schema + `"."tenant"`
	_, err := pool.Exec(ctx(t), `INSERT INTO `+table+` (name, grantee) VALUES ('t', '42')`)
	require.NoError(t, err)

	tests := []struct {
		name  string
		store *models.Store
		err   string
	}{
		{"type", storeOf[tenantInt](t, pool, schema, "Tenant"),
			`schema ` + schema + ` does not match the models: model Tenant column grantee: type changed from text (in table ` + table + `) to bigint (in the struct); ` +
				`run: ALTER TABLE ` + table + ` ALTER COLUMN "grantee" TYPE bigint USING "grantee"::bigint`},
		{"dropped", storeOf[tenantDropped](t, pool, schema, "Tenant"),
			`schema ` + schema + ` does not match the models: model Tenant column grantee (text): in table ` + table + ` but no longer in the struct; ` +
				`add the field back, or run: ALTER TABLE ` + table + ` DROP COLUMN "grantee"`},
		{"renamed", storeOf[tenantRenamed](t, pool, schema, "Tenant"),
			`schema ` + schema + ` does not match the models: model Tenant column owner (text): missing from table ` + table + `, whose column grantee (text) is no longer in the struct (renamed?); ` +
				`run: ALTER TABLE ` + table + ` RENAME COLUMN "grantee" TO "owner"`},
		{"renamed table", storeOf[tenantV1](t, pool, schema, "Tenants"),
			`schema ` + schema + ` does not match the models: model Tenants: table "` + schema + `"."tenants" is missing and table ` + table + ` looks like it (renamed?); ` +
				`run: ALTER TABLE ` + table + ` RENAME TO "tenants" (or drop or move ` + table + ` to start with an empty table)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.store.Migrate(ctx(t))
			require.EqualError(t, err, tt.err)
			require.True(t, models.IsDrift(err))
			plan, err := tt.store.Plan(ctx(t))
			require.NoError(t, err)
			require.EqualError(t, plan.Err(), tt.err)
			// Nothing changed: not even the column Quota adds.
			require.Equal(t, "text", columnType(t, pool, schema, "tenant", "grantee"))
			var n int
			require.NoError(t, pool.QueryRow(ctx(t), `SELECT count(*) FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped`, table).Scan(&n))
			require.Equal(t, 13, n)
		})
	}

	// A nil-able field: the column may hold NULL now (done by Migrate).
	nullable := storeOf[tenantNullable](t, pool, schema, "Tenant")
	require.NoError(t, nullable.Migrate(ctx(t)))
	_, err = pool.Exec(ctx(t), `INSERT INTO `+table+` (name, grantee) VALUES ('n', NULL)`)
	require.NoError(t, err)
	// Back to a field that cannot hold NULL: drift, with the SQL filling the NULLs.
	err = storeOf[tenantV1](t, pool, schema, "Tenant").Migrate(ctx(t))
	require.EqualError(t, err, `schema `+schema+` does not match the models: model Tenant column grantee: the field (text NOT NULL DEFAULT '') cannot hold NULL but the column of table `+table+` can; `+
		`run: UPDATE `+table+` SET "grantee" = '' WHERE "grantee" IS NULL; ALTER TABLE `+table+` ALTER COLUMN "grantee" SET DEFAULT '', ALTER COLUMN "grantee" SET NOT NULL`)
	var d *models.DriftError
	require.ErrorAs(t, err, &d)
	_, err = pool.Exec(ctx(t), d.Drift[0].SQL)
	require.NoError(t, err)
	require.NoError(t, storeOf[tenantV1](t, pool, schema, "Tenant").Migrate(ctx(t)))

	// The rename, done as told, then Quota is added by Migrate.
	renamed := storeOf[tenantRenamed](t, pool, schema, "Tenant")
	err = renamed.Migrate(ctx(t))
	require.ErrorAs(t, err, &d)
	_, err = pool.Exec(ctx(t), d.Drift[0].SQL)
	require.NoError(t, err)
	require.NoError(t, renamed.Migrate(ctx(t)))
	got, err := models.Load[tenantRenamed](ctx(t), renamed, 1)
	require.NoError(t, err)
	require.Equal(t, "42", got.Owner)
	require.Equal(t, int64(0), got.Quota)

	// Several differences at once: all named, one per line.
	err = storeOf[tenantInt](t, pool, schema, "Tenant").Migrate(ctx(t))
	require.ErrorContains(t, err, "does not match the models (2 differences):\n  model Tenant column grantee (bigint): missing from table "+table+
		`, whose column quota (bigint) is no longer in the struct (renamed?); run: ALTER TABLE `+table+` RENAME COLUMN "quota" TO "grantee"`+
		"\n  model Tenant column owner (text): in table "+table+" but no longer in the struct")
}
