package watchers

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Sweep claims and handles the events of the group left unacknowledged for
// ClaimMinIdle (by a dead dispatcher, or after a failure), settles the
// outbox and trims the stream (see settle), deletes the records of handled
// changes older than HandledRetention (at most once a minute), and removes
// consumers that have been idle for ConsumerExpiry with nothing pending.
func (d *Dispatcher) Sweep(ctx context.Context) error {
	start := "0-0"
	for {
		msgs, next, err := d.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{
			Stream: d.opts.Stream, Group: d.opts.Group, Consumer: d.opts.Consumer,
			MinIdle: d.opts.ClaimMinIdle, Start: start, Count: int64(d.opts.BatchSize),
		}).Result()
		if err != nil {
			return fmt.Errorf("claim: %w", err)
		}
		if len(msgs) > 0 {
			d.log.Info("claimed unacknowledged events", "events", len(msgs))
			if err := d.process(ctx, msgs); err != nil {
				return err
			}
		}
		if next == "0-0" || next == "" {
			break
		}
		start = next
	}
	if err := d.settle(ctx); err != nil {
		return err
	}
	if err := d.pruneHandled(ctx); err != nil {
		return err
	}
	return d.expireConsumers(ctx)
}

// pruneHandled deletes the records of handled changes older than
// HandledRetention, at most once a minute.
func (d *Dispatcher) pruneHandled(ctx context.Context) error {
	now := time.Now()
	if last := d.lastPrune.Load(); last != 0 && now.Sub(time.Unix(0, last)) < time.Minute {
		return nil
	}
	n, err := d.handled.prune(ctx, d.store, d.opts.HandledRetention)
	if err != nil {
		return err
	}
	d.lastPrune.Store(now.UnixNano())
	if n > 0 {
		d.log.Info("pruned the records of handled changes", "records", n)
	}
	return nil
}

func (d *Dispatcher) expireConsumers(ctx context.Context) error {
	consumers, err := d.rdb.XInfoConsumers(ctx, d.opts.Stream, d.opts.Group).Result()
	if err != nil {
		return fmt.Errorf("consumers: %w", err)
	}
	for _, c := range consumers {
		if c.Name != d.opts.Consumer && c.Pending == 0 && c.Idle > d.opts.ConsumerExpiry {
			if err := d.rdb.XGroupDelConsumer(ctx, d.opts.Stream, d.opts.Group, c.Name).Err(); err != nil {
				return fmt.Errorf("consumers: %w", err)
			}
			d.log.Info("removed idle consumer", "idle_consumer", c.Name, "idle", c.Idle)
		}
	}
	return nil
}
