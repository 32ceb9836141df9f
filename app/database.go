package app

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tsync/tsync/config"
)

// Database outages. A long-running process (worker, starter, dispatcher)
// never exits because PostgreSQL is down: at start it waits for it
// (waitForDatabase), and while it runs a watcher (watchDatabase) logs once
// when the database becomes unreachable and once when it is back, while
// the starter's scans, the steps and the relay fail and retry on their own.

// databaseWatchInterval is the pause between two pings of the database
// watcher.
const databaseWatchInterval = time.Second

// databasePingTimeout bounds one ping of the watcher: a server that accepts
// connections but does not answer counts as unreachable.
const databasePingTimeout = 3 * time.Second

// waitForDatabase pings pool until the database answers, logging while it
// does not (at growing intervals, as waitForTemporal does), until ctx is
// done. A database that refuses the connection (credentials, a database
// that does not exist) fails it at once: waiting would hide a mistake in
// the config.
func waitForDatabase(ctx context.Context, cfg config.Config, pool *pgxpool.Pool, log *slog.Logger) error {
	wait := dialRetryInitial
	started := time.Now()
	for attempt := 1; ; attempt++ {
		err := ping(ctx, cfg, pool)
		if err == nil {
			if attempt > 1 {
				log.Info("database is reachable", "database", cfg.Redacted().DatabaseURL, "attempts", attempt, "waited", time.Since(started).Round(time.Millisecond))
			}
			return nil
		}
		if ctx.Err() != nil || refusedByDatabase(err) {
			return err
		}
		log.Warn("waiting for the database: unreachable, trying again (start PostgreSQL or set database_url / TSYNC_DATABASE_URL)",
			"database", cfg.Redacted().DatabaseURL, "attempt", attempt, "retry_in", wait, "error", err)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(2*wait, dialRetryMax)
	}
}

// refusedByDatabase reports whether err says that the server answered and
// refused the connection for good: invalid authorization (SQLSTATE class
// 28) or an unknown database (3D000). A server starting up or recovering
// from a crash (57P03) is only waited for.
func refusedByDatabase(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	return strings.HasPrefix(pgErr.Code, "28") || pgErr.Code == "3D000"
}

// watchDatabase pings the app's database every interval until ctx is done,
// logging once when it becomes unreachable ("database unreachable: waiting
// for it") and once when it is back (with how long it was away). It never
// stops the process: what needs the database fails and retries meanwhile.
func (a *App) watchDatabase(ctx context.Context, interval time.Duration) {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	url := a.Config.Redacted().DatabaseURL
	var since time.Time // when the database became unreachable; zero while it answers
	for {
		pctx, cancel := context.WithTimeout(ctx, databasePingTimeout)
		err := a.Pool.Ping(pctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case err != nil && since.IsZero():
			since = time.Now()
			a.Log.Warn("database unreachable: waiting for it", "database", url, "error", err)
		case err == nil && !since.IsZero():
			a.Log.Info("database is back", "database", url, "away", time.Since(since).Round(time.Millisecond))
			since = time.Time{}
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// watchingDatabase runs the database watcher until ctx is done, and returns
// a function that stops it and waits for it to return.
func (a *App) watchingDatabase(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.watchDatabase(ctx, databaseWatchInterval)
	}()
	return func() { cancel(); <-done }
}
