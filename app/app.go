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
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"

	"github.com/tsync/tsync"
	"github.com/tsync/tsync/config"
	"github.com/tsync/tsync/internal/activities"
	"github.com/tsync/tsync/internal/ansible"
	"github.com/tsync/tsync/internal/engine"
	"github.com/tsync/tsync/internal/starter"
	"github.com/tsync/tsync/internal/workflows"
	"github.com/tsync/tsync/metrics"
	"github.com/tsync/tsync/models"
	"github.com/tsync/tsync/worker"
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

	stopMetrics context.CancelFunc

	// sync is the compiled synchronizer.
	sync *engine.Synchronizer

	// searchAttributes reports that the Tsync* search attributes are
	// registered on the namespace.
	searchAttributes bool
}

// Build builds a synchronizer over the model store of its models: steps
// that read other objects keep the store, as controller-runtime's
// reconcilers keep the manager's client. It must not use the store before
// it returns: tsync deps builds a synchronizer without reaching the
// database.
type Build func(store *models.Store) (tsync.Synchronizer, error)

// Open is OpenWithStore for a synchronizer that needs no store.
func Open(ctx context.Context, cfg config.Config, s tsync.Synchronizer, log *slog.Logger) (*App, error) {
	return OpenWithStore(ctx, cfg, s.Models, static(s), log)
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
// instead of exiting.
func OpenWithStore(ctx context.Context, cfg config.Config, reg *models.Registry, build Build, log *slog.Logger) (*App, error) {
	a, err := openStore(ctx, cfg, reg, build, log)
	if err != nil {
		return nil, err
	}
	if err := a.Store.Migrate(ctx); err != nil {
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
// migrate is set: for commands that read or write the data model.
func OpenStore(ctx context.Context, cfg config.Config, reg *models.Registry, build Build, migrate bool, log *slog.Logger) (*App, error) {
	a, err := openStore(ctx, cfg, reg, build, log)
	if err != nil {
		return nil, err
	}
	if migrate {
		if err := a.Store.Migrate(ctx); err != nil {
			a.Close()
			return nil, err
		}
	}
	return a, nil
}

// Graph builds and validates the synchronizer of reg without reaching any
// service, and returns its dependency graph.
func Graph(cfg config.Config, reg *models.Registry, build Build) (*models.Graph, error) {
	pool, err := pgxpool.New(context.Background(), cfg.DatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("database %s: %w", cfg.Redacted().DatabaseURL, err)
	}
	defer pool.Close()
	c, err := engine.Build(pool, cfg.DatabaseSchema, reg, build)
	if err != nil {
		return nil, err
	}
	return c.Graph, nil
}

// openStore validates cfg, connects to PostgreSQL and builds the
// synchronizer over the store.
func openStore(ctx context.Context, cfg config.Config, reg *models.Registry, build Build, log *slog.Logger) (*App, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if reg == nil {
		return nil, fmt.Errorf("synchronizer: no models registered")
	}
	if _, err := reg.Graph(); err != nil {
		return nil, fmt.Errorf("synchronizer: %w", err)
	}
	a := &App{Config: cfg, Log: log}
	var err error
	if a.Pool, err = OpenDatabase(ctx, cfg); err != nil {
		return nil, err
	}
	if a.sync, err = engine.Build(a.Pool, cfg.DatabaseSchema, reg, build); err != nil {
		a.Close()
		return nil, err
	}
	if err := checkDepsFile(cfg.ObserverDependencyGraph, a.sync.Graph); err != nil {
		a.Close()
		return nil, err
	}
	if a.Store, err = models.NewStore(a.Pool, cfg.DatabaseSchema, a.sync.Graph, models.WithOutbox(cfg.ObserverEnableWatchers)); err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

// openServices starts the metrics endpoint and connects to Redis (with
// observer_enable_watchers) and Temporal.
func (a *App) openServices(ctx context.Context) error {
	cfg, log := a.Config, a.Log
	var err error
	if a.Metrics, err = metrics.New(log); err != nil {
		return err
	}
	if cfg.MetricsAddress != "" {
		ln, err := net.Listen("tcp", cfg.MetricsAddress)
		if err != nil {
			return fmt.Errorf("metrics_address %s: %w", cfg.MetricsAddress, err)
		}
		mctx, stop := context.WithCancel(context.WithoutCancel(ctx))
		a.stopMetrics = stop
		go func() {
			if err := a.Metrics.ServeListener(mctx, ln); err != nil {
				log.Error("metrics endpoint failed", "error", err)
			}
		}()
		a.MetricsURL = "http://" + ln.Addr().String() + "/metrics"
		log.Info("serving metrics", "url", a.MetricsURL)
	}
	if cfg.ObserverEnableWatchers {
		if a.Redis, err = OpenRedis(ctx, cfg); err != nil {
			return err
		}
	}
	if a.Client, err = waitForTemporal(ctx, cfg, log, a.Metrics.SDKHandler()); err != nil {
		return err
	}
	if err := RegisterSearchAttributes(ctx, a.Client, cfg.Temporal.Namespace); err != nil {
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

// RegisterSearchAttributes makes sure namespace has the search attributes
// of tsync's workflows (workflows.SearchAttributes), adding those missing.
func RegisterSearchAttributes(ctx context.Context, c client.Client, namespace string) error {
	want := workflows.SearchAttributes()
	missing := func() (map[string]enumspb.IndexedValueType, error) {
		resp, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
		if err != nil {
			return nil, err
		}
		out := map[string]enumspb.IndexedValueType{}
		for name, t := range want {
			have, ok := resp.GetCustomAttributes()[name]
			if !ok {
				out[name] = t
			} else if have != t {
				return nil, fmt.Errorf("search attribute %s is registered as %s, want %s", name, have, t)
			}
		}
		return out, nil
	}
	m, err := missing()
	if err != nil {
		return fmt.Errorf("list search attributes of namespace %s: %w", namespace, err)
	}
	if len(m) == 0 {
		return nil
	}
	if _, err := c.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
		Namespace: namespace, SearchAttributes: m,
	}); err != nil {
		return fmt.Errorf("add search attributes to namespace %s: %w", namespace, err)
	}
	// Wait until they are visible, so the first workflows can use them.
	for range 50 {
		if m, err = missing(); err == nil && len(m) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("search attributes of namespace %s: still missing after adding them: %v", namespace, m)
}

// checkDepsFile refuses a model-deps file (observer_dependency_graph) that
// disagrees with the code's links. A file that does not exist is fine.
func checkDepsFile(file string, g *models.Graph) error {
	if file == "" {
		return nil
	}
	data, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("observer_dependency_graph: %w", err)
	}
	if err := g.CheckDepsFile(data); err != nil {
		return fmt.Errorf("observer_dependency_graph %s: %w (regenerate it with `tsync deps`)", file, err)
	}
	return nil
}

// OpenDatabase connects to cfg's database, failing with a clear message
// when it cannot be reached.
func OpenDatabase(ctx context.Context, cfg config.Config) (*pgxpool.Pool, error) {
	redacted := cfg.Redacted().DatabaseURL
	pool, err := pgxpool.New(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("database %s: %w", redacted, err)
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("database %s is unreachable (start PostgreSQL or set database_url / TSYNC_DATABASE_URL): %w", redacted, err)
	}
	return pool, nil
}

// DialTemporal connects to cfg's Temporal server, failing with a clear
// message when it cannot be reached.
func DialTemporal(ctx context.Context, cfg config.Config, log *slog.Logger) (client.Client, error) {
	return dialTemporal(ctx, cfg, log, nil)
}

// Delays of waitForTemporal between two dials: doubling, capped (a dial
// of a server that is down fails at once or after dialTimeout).
const (
	dialRetryInitial = time.Second
	dialRetryMax     = 5 * time.Second
)

// waitForTemporal is dialTemporal tried again, with a warning naming the
// server and the error, until it succeeds or ctx is done.
func waitForTemporal(ctx context.Context, cfg config.Config, log *slog.Logger, mh client.MetricsHandler) (client.Client, error) {
	wait := dialRetryInitial
	for attempt := 1; ; attempt++ {
		c, err := dialTemporal(ctx, cfg, log, mh)
		if err == nil {
			if attempt > 1 {
				log.Info("temporal is reachable", "host_port", cfg.Temporal.HostPort, "attempts", attempt)
			}
			return c, nil
		}
		if ctx.Err() != nil {
			return nil, err
		}
		log.Warn("waiting for temporal: unreachable, trying again (run `tsync dev start` or set temporal.host_port / TSYNC_TEMPORAL_HOST_PORT)",
			"host_port", cfg.Temporal.HostPort, "attempt", attempt, "retry_in", wait, "error", err)
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(wait):
		}
		wait = min(2*wait, dialRetryMax)
	}
}

// dialTimeout bounds one dial of the Temporal server.
const dialTimeout = 5 * time.Second

func dialTemporal(ctx context.Context, cfg config.Config, log *slog.Logger, mh client.MetricsHandler) (client.Client, error) {
	dctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	c, err := client.DialContext(dctx, client.Options{
		HostPort:       cfg.Temporal.HostPort,
		Namespace:      cfg.Temporal.Namespace,
		Logger:         sdklog.NewStructuredLogger(log.With("component", "temporal")),
		MetricsHandler: mh,
	})
	if err != nil {
		return nil, fmt.Errorf("temporal at %s is unreachable (run `tsync dev start` or set temporal.host_port / TSYNC_TEMPORAL_HOST_PORT): %w", cfg.Temporal.HostPort, err)
	}
	return c, nil
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

// Params returns the workflow settings of the app.
func (a *App) Params() workflows.Params {
	p := Params(a.Config)
	p.SearchAttributes = a.searchAttributes
	return p
}

// Params returns the workflow settings from config (without search
// attributes, which need a registered namespace: see App.Params).
func Params(cfg config.Config) workflows.Params {
	coefficient := cfg.Retry.BackoffCoefficient
	if cfg.ObserverBackoffDisabled {
		coefficient = 1
	}
	return workflows.Params{
		Synchronizer: cfg.ObserverName,
		LoopInterval: cfg.LoopInterval,
		Retry: workflows.RetryParams{
			Initial:     cfg.Retry.InitialInterval,
			Max:         cfg.Retry.MaxInterval,
			Coefficient: coefficient,
		},
		StepTimeout:      cfg.StepTimeout,
		HeartbeatTimeout: cfg.HeartbeatTimeout,
	}
}

// Activities returns the synchronizer's activities.
func (a *App) Activities() *activities.Activities {
	acts := activities.New(a.sync, a.Store)
	acts.Metrics = a.Metrics
	acts.Ansible = ansible.NewRunner(ansible.FromConfig(a.Config, a.Log.With("component", "ansible")))
	return acts
}

// RunWorker runs a worker until ctx is done. With observer_disabled it runs
// nothing and only waits.
func (a *App) RunWorker(ctx context.Context) error {
	if a.Config.ObserverDisabled {
		a.Log.Warn("observer_disabled is set: the worker runs nothing")
		<-ctx.Done()
		return nil
	}
	a.Log.Info("worker running", "task_queue", a.Config.Temporal.TaskQueue, "namespace", a.Config.Temporal.Namespace)
	return worker.Run(ctx, a.Client, worker.Options{
		TaskQueue:  a.Config.Temporal.TaskQueue,
		Workflows:  a.Config.Concurrency.Workflows,
		Activities: a.Config.Concurrency.Activities,
		Watchers:   a.WatcherActivities(),
		Logger:     a.Log.With("component", "worker"),
	}, a.Activities())
}

// NewStarter returns the synchronizer's starter.
func (a *App) NewStarter() *starter.Starter {
	return starter.New(a.Client, a.sync, a.Store, starter.Options{
		TaskQueue:    a.Config.Temporal.TaskQueue,
		LoopInterval: a.Config.LoopInterval,
		BatchSize:    a.Config.FetchBatch,
		Concurrency:  a.Config.Concurrency.Starts,
		Params:       a.Params(),
		Logger:       a.Log.With("component", "starter"),
		Metrics:      a.Metrics,
	})
}

// RunStarter runs the starter until ctx is done. With observer_disabled it
// starts nothing and only waits.
func (a *App) RunStarter(ctx context.Context) error {
	if a.Config.ObserverDisabled {
		a.Log.Warn("observer_disabled is set: the starter starts nothing")
		<-ctx.Done()
		return nil
	}
	a.Log.Info("starter running", "loop_interval", a.Config.LoopInterval)
	return a.NewStarter().Run(ctx)
}
