// Package app wires a synchronizer to its services from config: the
// PostgreSQL pool and model store, the Temporal client, and the worker and
// starter that run it. A synchronizer's main is a few lines over it.
package app

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"go.temporal.io/sdk/client"

	"github.com/tsync/tsync"
	"github.com/tsync/tsync/config"
	"github.com/tsync/tsync/internal/engine"
	"github.com/tsync/tsync/metrics"
	"github.com/tsync/tsync/models"
)

// App holds a synchronizer's runtime resources.
type App struct {
	Config config.Config
	Pool   *pgxpool.Pool
	// Store is the model store of the synchronizer's models.
	Store *models.Store
	// Client is the Temporal client; nil for an app opened by OpenStore.
	Client client.Client
	Log    *slog.Logger
	// Redis carries the watchers' change stream; nil unless
	// observer_enable_watchers (see OpenRedis, RunDispatcher).
	Redis *redis.Client
	// Metrics are the process's metrics, served at metrics_address.
	Metrics *metrics.Metrics
	// MetricsURL is where the metrics are served, or "".
	MetricsURL string
	// Health is the process's liveness and readiness, served at
	// metrics_address next to the metrics (/healthz, /readyz); nil for an
	// app opened by OpenStore.
	Health *Health

	stopMetrics context.CancelFunc

	// sync is the compiled synchronizer.
	sync *engine.Synchronizer

	// searchAttributes reports that the Tsync* search attributes are
	// registered on the namespace.
	searchAttributes bool

	// opts are the Options the app was opened with.
	opts options
}

// Build builds a synchronizer over the model store of its models: steps
// that read other objects keep the store, as controller-runtime's
// reconcilers keep the manager's client. It must not use the store before
// it returns: tsync deps builds a synchronizer without reaching the
// database.
type Build func(store *models.Store) (tsync.Synchronizer, error)

// Open is OpenWithStore for a synchronizer that needs no store.
func Open(ctx context.Context, cfg config.Config, s tsync.Synchronizer, log *slog.Logger, opts ...Option) (*App, error) {
	return OpenWithStore(ctx, cfg, s.Models, static(s), log, opts...)
}

func static(s tsync.Synchronizer) Build {
	return func(*models.Store) (tsync.Synchronizer, error) { return s, nil }
}

// OpenWithStore opens the synchronizer's services and builds it over them:
// it validates cfg, connects to PostgreSQL, builds the synchronizer of reg
// with build over the store and validates it, migrates the schema, and
// connects to Temporal (and to Redis with observer_enable_watchers). Each
// failure is one error saying what to do. While the Temporal server cannot
// be reached, it logs so and keeps trying until ctx is done: a worker or
// starter started before its server (or during an outage) waits for it
// instead of exiting; so does one started before its database (see
// waitForDatabase). A server that refuses the connection (a TLS
// handshake, credentials) fails it at once, saying which key to set. opts
// change how it connects (WithClientOptions).
func OpenWithStore(ctx context.Context, cfg config.Config, reg *models.Registry, build Build, log *slog.Logger, opts ...Option) (*App, error) {
	a, err := openStore(ctx, cfg, reg, build, log, collect(opts), true)
	if err != nil {
		return nil, err
	}
	if err := a.migrate(ctx); err != nil {
		a.Close()
		return nil, err
	}
	if err := a.openServices(ctx); err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

// OpenStore opens only the synchronizer's model store, as OpenWithStore
// does but without Temporal, Redis or metrics, migrating the schema when
// migrate is set: for commands that read or write the data model. Of
// opts, only WithName matters.
func OpenStore(ctx context.Context, cfg config.Config, reg *models.Registry, build Build, migrate bool, log *slog.Logger, opts ...Option) (*App, error) {
	a, err := openStore(ctx, cfg, reg, build, log, collect(opts), false)
	if err != nil {
		return nil, err
	}
	if migrate {
		if err := a.migrate(ctx); err != nil {
			a.Close()
			return nil, err
		}
	}
	return a, nil
}

// Graph builds and validates the synchronizer of reg without reaching any
// service, and returns its dependency graph.
func Graph(cfg config.Config, reg *models.Registry, build Build) (*models.Graph, error) {
	pool, err := newPool(context.Background(), cfg, false)
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	c, err := engine.Build(pool, cfg.DatabaseSchema, reg, build)
	if err != nil {
		return nil, err
	}
	return c.Graph, nil
}

// migrate migrates the schema (Store.Migrate) or, with
// database_auto_migrate off, checks that it needs no migration. Drift stops
// it either way.
func (a *App) migrate(ctx context.Context) error {
	if a.Config.DatabaseAutoMigrate {
		return a.Store.Migrate(ctx)
	}
	plan, err := a.Store.Plan(ctx)
	if err != nil {
		return err
	}
	if err := plan.Err(); err != nil {
		return err
	}
	if n := len(plan.Statements); n > 0 {
		bin := a.opts.binary()
		return fmt.Errorf("schema %s is not up to date with the models (%d DDL statements to run) and database_auto_migrate is off: "+
			"run `%s migrate`, or the DDL that `%s migrate --dry-run` prints", a.Store.Schema(), n, bin, bin)
	}
	return nil
}

// openStore validates cfg, connects to PostgreSQL and builds the
// synchronizer over the store. With wait, it waits for an unreachable
// database (waitForDatabase) rather than failing at once.
func openStore(ctx context.Context, cfg config.Config, reg *models.Registry, build Build, log *slog.Logger, o options, wait bool) (*App, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	a := &App{Config: cfg, Log: log, opts: o}
	var err error
	// The pool connects on first use: the synchronizer is built and
	// validated first, so that a mistake in it is reported even while the
	// database is down.
	if a.Pool, err = newPool(ctx, cfg, o.readOnly); err != nil {
		return nil, err
	}
	if a.sync, err = engine.Build(a.Pool, cfg.DatabaseSchema, reg, build); err != nil {
		a.Close()
		return nil, err
	}
	if err := checkDepsFile(cfg.ObserverDependencyGraph, a.sync.Graph, o.binary()); err != nil {
		a.Close()
		return nil, err
	}
	check := ping
	if wait {
		check = func(ctx context.Context, cfg config.Config, pool *pgxpool.Pool) error {
			return waitForDatabase(ctx, cfg, pool, log)
		}
	}
	if err := check(ctx, cfg, a.Pool); err != nil {
		a.Close()
		return nil, err
	}
	if a.Store, err = models.NewStore(a.Pool, cfg.DatabaseSchema, a.sync.Graph, models.WithOutbox(cfg.ObserverEnableWatchers)); err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

// openServices starts the metrics and health endpoints and connects to
// Redis (with observer_enable_watchers) and Temporal.
func (a *App) openServices(ctx context.Context) error {
	cfg, log := a.Config, a.Log
	var err error
	if a.Metrics, err = metrics.New(log); err != nil {
		return err
	}
	a.Health = NewHealth(HealthCacheTTL, HealthCheckTimeout)
	a.Health.Set(temporalCheck(nil, cfg.Temporal.HostPort))
	a.Health.Set(postgresCheck(a.Pool))
	if cfg.MetricsAddress != "" {
		ln, err := net.Listen("tcp", cfg.MetricsAddress)
		if err != nil {
			return fmt.Errorf("metrics_address %s: %w", cfg.MetricsAddress, err)
		}
		mctx, stop := context.WithCancel(context.WithoutCancel(ctx))
		a.stopMetrics = stop
		go func() {
			if err := a.Metrics.ServeListener(mctx, ln, a.Health.Routes()...); err != nil {
				log.Error("metrics endpoint failed", "error", err)
			}
		}()
		a.MetricsURL = "http://" + ln.Addr().String() + "/metrics"
		log.Info("serving metrics and health", "url", a.MetricsURL, "liveness", "/healthz", "readiness", "/readyz")
	}
	if cfg.ObserverEnableWatchers {
		if a.Redis, err = OpenRedis(ctx, cfg); err != nil {
			return err
		}
	}
	if a.Client, err = waitForTemporal(ctx, cfg, log, a.Metrics.SDKHandler(), a.opts); err != nil {
		return err
	}
	a.Health.Set(temporalCheck(a.Client, cfg.Temporal.HostPort))
	if err := registerSearchAttributes(ctx, a.Client, cfg.Temporal.Namespace, log, defaultAttributeWait()); err != nil {
		log.Warn("workflows will run without the Tsync* search attributes; register them on the namespace to find syncs by state", "error", err)
	} else {
		a.searchAttributes = true
	}
	return nil
}

// Synchronized returns the names of the models the synchronizer has steps
// for, dependencies first.
func (a *App) Synchronized() []string { return a.sync.Models() }

// Synchronizes reports whether the synchronizer has a step for model.
func (a *App) Synchronizes(model string) bool {
	_, ok := a.sync.Step(model)
	return ok
}

// checkDepsFile refuses a model-deps file (observer_dependency_graph) that
// disagrees with the code's links, or that does not exist: a key naming a
// file is a promise that the file is there (a typo would otherwise turn the
// check off silently).
func checkDepsFile(file string, g *models.Graph, binary string) error {
	if file == "" {
		return nil
	}
	data, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("observer_dependency_graph %s does not exist (run `%s deps` to write it, or unset the key)", file, binary)
	}
	if err != nil {
		return fmt.Errorf("observer_dependency_graph: %w", err)
	}
	if err := g.CheckDepsFile(data); err != nil {
		return fmt.Errorf("observer_dependency_graph %s: %w (regenerate it with `%s deps`)", file, err, binary)
	}
	return nil
}

// Close releases the app's connections.
func (a *App) Close() {
	if a.stopMetrics != nil {
		a.stopMetrics()
	}
	if a.Client != nil {
		a.Client.Close()
	}
	if a.Redis != nil {
		a.Redis.Close()
	}
	if a.Pool != nil {
		a.Pool.Close()
	}
}
