package app

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/tsync/tsync/config"
)

// OpenDatabase connects to cfg's database, failing with a clear message
// when it cannot be reached.
func OpenDatabase(ctx context.Context, cfg config.Config) (*pgxpool.Pool, error) {
	pool, err := newPool(ctx, cfg, false)
	if err != nil {
		return nil, err
	}
	if err := ping(ctx, cfg, pool); err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
}

// newPool returns a pool of cfg's database, not connected yet.
func newPool(ctx context.Context, cfg config.Config, readOnly bool) (*pgxpool.Pool, error) {
	pcfg, err := pgxpool.ParseConfig(cfg.DatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("database %s: %w", cfg.Redacted().DatabaseURL, err)
	}
	if readOnly {
		pcfg.ConnConfig.RuntimeParams["default_transaction_read_only"] = "on"
	}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("database %s: %w", cfg.Redacted().DatabaseURL, err)
	}
	return pool, nil
}

// ping fails with a clear message when pool's database cannot be reached.
func ping(ctx context.Context, cfg config.Config, pool *pgxpool.Pool) error {
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		return fmt.Errorf("database %s is unreachable (start PostgreSQL or set database_url / TSYNC_DATABASE_URL): %w", cfg.Redacted().DatabaseURL, err)
	}
	return nil
}

// OpenRedis connects to cfg's Redis, failing with a clear message when it
// cannot be reached.
func OpenRedis(ctx context.Context, cfg config.Config) (*redis.Client, error) {
	redacted := cfg.Redacted().RedisURL
	opts, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("redis %s: %w", redacted, err)
	}
	rdb := redis.NewClient(opts)
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		rdb.Close()
		return nil, fmt.Errorf("redis %s is unreachable (start Redis or set redis_url / TSYNC_REDIS_URL; it is needed because observer_enable_watchers is on): %w", redacted, err)
	}
	return rdb, nil
}
