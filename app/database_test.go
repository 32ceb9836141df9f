package app

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync"
	"github.com/tsync/tsync/config"
	"github.com/tsync/tsync/internal/testenv"
	"github.com/tsync/tsync/internal/testenv/pginstance"
	"github.com/tsync/tsync/models"
)

// gizmos is a one-model synchronizer for the database tests.
func gizmos() (*models.Registry, Build) {
	reg := models.NewRegistry()
	models.MustRegister[namedModel](reg, "Gizmo")
	return reg, func(*models.Store) (tsync.Synchronizer, error) {
		return tsync.Synchronizer{Models: reg, Steps: []tsync.Step{tsync.StepOf[namedModel](tsync.StepFuncs[namedModel]{
			Sync: func(context.Context, *namedModel) error { return nil },
		})}}, nil
	}
}

// dbConfig is a config on the private server pg, with a Temporal server
// that cannot be reached.
func dbConfig(t *testing.T, pg *pginstance.Instance) config.Config {
	cfg := testenv.Config(t, "127.0.0.1:1", "public")
	cfg.DatabaseURL = pg.URL()
	return cfg
}

// A process started while its database is down waits for it, logging so,
// and goes on once it is back (here to wait for Temporal); a command
// (OpenStore) fails at once, saying what to do.
func TestOpenWaitsForDatabase(t *testing.T) {
	pg := pginstance.Start(t)
	cfg := dbConfig(t, pg)
	reg, build := gizmos()
	pg.Kill()

	begin := time.Now()
	a, err := OpenStore(context.Background(), cfg, reg, build, false, nil)
	require.ErrorContains(t, err, "database postgres://postgres@127.0.0.1:")
	require.ErrorContains(t, err, "is unreachable (start PostgreSQL or set database_url / TSYNC_DATABASE_URL)")
	require.Nil(t, a)
	require.Less(t, time.Since(begin), 5*time.Second)

	logs := &testenv.SyncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		a   *App
		err error
	}
	done := make(chan result, 1)
	go func() {
		a, err := OpenWithStore(ctx, cfg, reg, build, slog.New(slog.NewTextHandler(logs, nil)))
		done <- result{a, err}
	}()
	require.Eventually(t, func() bool { return strings.Count(logs.String(), "waiting for the database: unreachable") >= 2 },
		10*time.Second, 20*time.Millisecond, "logs: %s", logs)
	require.Contains(t, logs.String(), `database="postgres://postgres@127.0.0.1:`)
	select {
	case r := <-done:
		t.Fatalf("OpenWithStore returned while the database was down: %v", r.err)
	default:
	}
	pg.Restart()
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "waiting for temporal: unreachable") },
		15*time.Second, 20*time.Millisecond, "logs: %s", logs)
	require.Contains(t, logs.String(), "database is reachable")
	cancel()
	r := <-done
	require.Error(t, r.err)
	require.Nil(t, r.a)
}

// A database that answers and refuses the connection (here: no such
// database) fails the wait at once: it is a mistake, not an outage.
func TestWaitForDatabaseRefused(t *testing.T) {
	pg := pginstance.Start(t)
	cfg := dbConfig(t, pg)
	cfg.DatabaseURL = strings.Replace(cfg.DatabaseURL, "/postgres?", "/nosuchdb?", 1)
	pool, err := newPool(context.Background(), cfg, false)
	require.NoError(t, err)
	defer pool.Close()
	logs := &testenv.SyncBuffer{}
	begin := time.Now()
	err = waitForDatabase(context.Background(), cfg, pool, slog.New(slog.NewTextHandler(logs, nil)))
	require.ErrorContains(t, err, `database "nosuchdb" does not exist`)
	require.True(t, refusedByDatabase(err))
	require.Less(t, time.Since(begin), 5*time.Second)
	require.Empty(t, logs.String())
}

// The watcher logs once when the database goes away and once when it is
// back, with how long it was away, however many pings fail in between.
func TestWatchDatabase(t *testing.T) {
	pg := pginstance.Start(t)
	cfg := dbConfig(t, pg)
	pool, err := newPool(context.Background(), cfg, false)
	require.NoError(t, err)
	defer pool.Close()
	logs := &testenv.SyncBuffer{}
	a := &App{Config: cfg, Pool: pool, Log: slog.New(slog.NewTextHandler(logs, nil))}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.watchDatabase(ctx, 20*time.Millisecond)
	}()
	time.Sleep(100 * time.Millisecond)
	require.Empty(t, logs.String(), "nothing to say while the database answers")

	pg.Kill()
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "database unreachable: waiting for it") },
		10*time.Second, 10*time.Millisecond)
	time.Sleep(300 * time.Millisecond) // many failed pings
	pg.Restart()
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "database is back") },
		10*time.Second, 10*time.Millisecond)
	cancel()
	<-done
	out := logs.String()
	require.Equal(t, 1, strings.Count(out, "database unreachable: waiting for it"), out)
	require.Equal(t, 1, strings.Count(out, "database is back"), out)
	require.Equal(t, 2, strings.Count(out, "\n"), out)
	require.Contains(t, out, `database="postgres://postgres@127.0.0.1:`)
	require.Regexp(t, `away=\d`, out)
}
