package watchers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/tsync/tsync"
	"github.com/tsync/tsync/models"
)

// errHook wraps the error of a Hooks function.
type errHook struct{ err error }

func (e errHook) Error() string { return "dispatcher hook: " + e.err.Error() }
func (e errHook) Unwrap() error { return e.err }

// Run creates the consumer group when missing (reading the stream from its
// start), then handles events until ctx is done, sweeping every
// SweepInterval. It returns nil when ctx is done, and an error only when a
// hook fails.
func (d *Dispatcher) Run(ctx context.Context) error {
	for {
		err := d.ensureGroup(ctx)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		d.log.Error("creating the consumer group failed; retrying", "error", err)
		if !sleep(ctx, time.Second) {
			return nil
		}
	}
	d.log.Info("dispatcher running", "watchers", len(d.sync.Watchers()))
	var lastSweep time.Time
	for ctx.Err() == nil {
		if time.Since(lastSweep) >= d.opts.SweepInterval {
			if err := d.Sweep(ctx); err != nil {
				if hookFailed(err) {
					return err
				}
				if ctx.Err() == nil {
					d.log.Warn("sweep failed", "error", err)
				}
			}
			lastSweep = time.Now()
		}
		streams, err := d.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
			Group: d.opts.Group, Consumer: d.opts.Consumer, Streams: []string{d.opts.Stream, ">"},
			Count: int64(d.opts.BatchSize), Block: d.opts.Block,
		}).Result()
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, redis.Nil):
			continue
		case err != nil:
			if strings.HasPrefix(err.Error(), "NOGROUP") {
				// The stream or the group was deleted, or Redis lost its
				// data: make them again, and sweep at once, to find the
				// outbox entries to publish again.
				d.log.Warn("the consumer group is gone (Redis lost its data?): creating it again; lost events will be published again from the outbox")
				if err = d.ensureGroup(ctx); err == nil {
					lastSweep = time.Time{}
				}
			}
			if err != nil {
				d.log.Error("reading the stream failed; retrying", "error", err)
				sleep(ctx, time.Second)
			}
			continue
		}
		for _, s := range streams {
			if err := d.process(ctx, s.Messages); err != nil {
				return err
			}
		}
	}
	return nil
}

func hookFailed(err error) bool {
	var h errHook
	return errors.As(err, &h)
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func (d *Dispatcher) ensureGroup(ctx context.Context) error {
	err := d.rdb.XGroupCreateMkStream(ctx, d.opts.Stream, d.opts.Group, "0").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return fmt.Errorf("create consumer group %s of %s: %w", d.opts.Group, d.opts.Stream, err)
	}
	return nil
}

// item is one entry being processed.
type item struct {
	msg     redis.XMessage
	ev      tsync.WatchEvent
	skip    bool   // well-formed, but nothing for watchers
	bad     string // why the entry is malformed
	targets []Target
	pos     Position
	failed  bool
}

// process handles a batch of entries: moves the malformed ones to the
// dead-letter stream, starts the workflows of the others and acknowledges
// those whose workflows all started.
func (d *Dispatcher) process(ctx context.Context, msgs []redis.XMessage) error {
	d.read.Add(int64(len(msgs)))
	ids := make([]string, len(msgs))
	for i, m := range msgs {
		ids[i] = m.ID
	}
	if h := d.opts.Hooks.AfterRead; h != nil {
		if err := h(ids); err != nil {
			return errHook{err}
		}
	}
	items := make([]*item, len(msgs))
	for i, m := range msgs {
		items[i] = &item{msg: m}
	}

	// Parse and route.
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(d.opts.Concurrency)
	for _, it := range items {
		g.Go(func() error {
			if it.msg.Values == nil {
				// Deleted from the stream while pending: nothing to do.
				return nil
			}
			if it.ev, it.skip, it.bad = d.parse(it.msg); it.bad != "" || it.skip {
				return nil
			}
			it.pos = positionOf(it.msg)
			c := models.Change{Model: it.ev.Changed.Model, ID: it.ev.Changed.ID, Op: it.ev.Op, Fields: it.ev.Fields}
			targets, err := d.router.Targets(gctx, c)
			if err != nil {
				it.failed = true
				d.log.Error("finding the objects a change affects failed; will retry", "entry", it.msg.ID, "error", err)
				return nil
			}
			it.targets = targets
			return nil
		})
	}
	_ = g.Wait()

	// Dead-letter the malformed entries.
	for _, it := range items {
		if it.bad == "" {
			continue
		}
		if err := d.deadLetter(ctx, it.msg, it.bad); err != nil {
			it.failed = true
			d.log.Error("moving a malformed event to the dead-letter stream failed; will retry", "entry", it.msg.ID, "error", err)
		}
	}

	// Give each (watcher, object) its changes, one after the other in
	// position order; different targets concurrently. After a failure, the
	// target's later changes are not given either (they stay pending, to be
	// given in order when claimed again).
	byTarget := map[Target][]*item{}
	var order []Target
	for _, it := range items {
		for _, t := range it.targets {
			if byTarget[t] == nil {
				order = append(order, t)
			}
			byTarget[t] = append(byTarget[t], it)
		}
	}
	var mu sync.Mutex
	g, gctx = errgroup.WithContext(ctx)
	g.SetLimit(d.opts.Concurrency)
	for _, t := range order {
		its := byTarget[t]
		slices.SortStableFunc(its, func(a, b *item) int {
			switch {
			case a.pos.Less(b.pos):
				return -1
			case b.pos.Less(a.pos):
				return 1
			}
			return 0
		})
		g.Go(func() error {
			for i, it := range its {
				if err := d.signalRetrying(gctx, t, Change{Event: it.ev, Pos: it.pos}); err != nil {
					mu.Lock()
					for _, later := range its[i:] {
						later.failed = true
					}
					mu.Unlock()
					if ctx.Err() == nil {
						d.log.Error("giving a change to a watcher workflow failed; will retry", "entry", it.msg.ID, "watcher", t.Watcher, "object", t.Object.String(), "error", err)
					}
					return nil
				}
			}
			return nil
		})
	}
	_ = g.Wait()

	// Acknowledge.
	var ack []string
	for _, it := range items {
		switch {
		case it.failed:
			d.failed.Add(1)
		case it.bad == "":
			ack = append(ack, it.msg.ID)
		}
	}
	if len(ack) == 0 {
		return nil
	}
	if h := d.opts.Hooks.BeforeAck; h != nil {
		if err := h(ack); err != nil {
			return errHook{err}
		}
	}
	n, err := d.rdb.XAck(ctx, d.opts.Stream, d.opts.Group, ack...).Result()
	if err != nil {
		if ctx.Err() == nil {
			d.log.Error("acknowledging events failed; they will be claimed again", "events", len(ack), "error", err)
		}
		return nil
	}
	d.acked.Add(n)
	return nil
}

// positionOf is the position of a stream entry: its outbox id (field
// FieldOutboxID, when present and valid) and its stream id.
func positionOf(m redis.XMessage) Position {
	p := Position{Stream: m.ID}
	if s, ok := m.Values[FieldOutboxID].(string); ok {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil && n > 0 {
			p.Outbox = n
		}
	}
	return p
}

// signalRetrying is signal, tried up to three times a second apart.
func (d *Dispatcher) signalRetrying(ctx context.Context, t Target, c Change) error {
	var err error
	for range 3 {
		if err = d.signal(ctx, t, c); err == nil || !sleep(ctx, time.Second) {
			return err
		}
	}
	return err
}
