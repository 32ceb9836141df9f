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
