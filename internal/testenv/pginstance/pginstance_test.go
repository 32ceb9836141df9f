package pginstance_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync/internal/testenv/pginstance"
)

// TestKillRestart crashes the server with a committed row and an open
// transaction's row, restarts it, and finds the first only.
func TestKillRestart(t *testing.T) {
	pg := pginstance.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, pg.URL())
	require.NoError(t, err)
	_, err = conn.Exec(ctx, "CREATE TABLE t (v int); INSERT INTO t VALUES (1)")
	require.NoError(t, err)
	open, err := pgx.Connect(ctx, pg.URL())
	require.NoError(t, err)
	tx, err := open.Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, "INSERT INTO t VALUES (2)")
	require.NoError(t, err)

	pg.Kill()
	require.False(t, pg.Running())
	_, err = conn.Exec(ctx, "SELECT 1")
	require.Error(t, err, "the backend must be gone with the postmaster")
	_, err = pgx.Connect(ctx, pg.URL())
	require.Error(t, err)

	port := pg.Port()
	pg.Restart()
	require.True(t, pg.Running())
	require.Equal(t, port, pg.Port())
	again, err := pgx.Connect(ctx, pg.URL())
	require.NoError(t, err)
	defer again.Close(ctx)
	rows, err := again.Query(ctx, "SELECT v FROM t ORDER BY v")
	require.NoError(t, err)
	vs, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	require.NoError(t, err)
	require.Equal(t, []int32{1}, vs)
	require.Contains(t, pg.Log(), "database system was interrupted", "the restart recovered from a crash")
}
