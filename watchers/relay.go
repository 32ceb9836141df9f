package watchers

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tsync/tsync/models"
)

// Fields of a change event in the stream.
const (
	// FieldEvent is the change's event id (models.OutboxEntry.Event), on
	// which the dispatcher deduplicates. Optional: an entry without it is
	// identified by its stream entry id.
	FieldEvent = "event"
	// FieldOutboxID is the outbox row id, for operators.
	FieldOutboxID = "outbox_id"
	// FieldChange is the models.Change as JSON.
	FieldChange = "change"
)

// StreamName returns the Redis stream of the changes of a store's schema:
// "tsync:{<schema>}:changes". The braces make it a Redis Cluster hash tag,
// so that the stream and its dead-letter stream live in one slot.
func StreamName(schema string) string { return "tsync:{" + schema + "}:changes" }

// DeadLetterName returns the dead-letter stream of stream: stream +
// ":dead-letter".
func DeadLetterName(stream string) string { return stream + ":dead-letter" }

// RelayOptions configure a Relay.
type RelayOptions struct {
	// Stream is the Redis stream the changes are added to (required; see
	// StreamName).
	Stream string
	// BatchSize is how many outbox entries one transaction relays. 0: 500.
	BatchSize int
	// Interval is the time between two sweeps of the outbox; the relay also
	// sweeps at once on every change the store announces. 0: 1 s.
	Interval time.Duration
	// Logger receives the relay's logs; nil discards them.
	Logger *slog.Logger
	// AfterPublish, when set, runs after a batch was added to the stream and
	// before it is deleted from the outbox; an error aborts the batch, which
	// stays in the outbox and is published again. For fault-injection tests.
	AfterPublish func(entries []models.OutboxEntry) error
}

// Relay publishes the store's outbox to a Redis stream: each entry is added
// to the stream (XADD, with the fields FieldEvent, FieldOutboxID and
// FieldChange) and then deleted from the outbox, in the transaction that
// locked it. An entry is therefore published at least once: a relay that
// dies after XADD and before its commit leaves the entry in the outbox, and
// it is published again, with the same event id, which the dispatcher
// deduplicates on. Several relays may run at once (one per dispatcher
// process); they share the outbox without publishing an entry twice.
type Relay struct {
	store *models.Store
	rdb   redis.UniversalClient
	opts  RelayOptions
	log   *slog.Logger

	published atomic.Int64
}

// NewRelay returns a relay of store's outbox to rdb.
func NewRelay(store *models.Store, rdb redis.UniversalClient, opts RelayOptions) *Relay {
	if opts.BatchSize <= 0 {
		opts.BatchSize = 500
	}
	if opts.Interval <= 0 {
		opts.Interval = time.Second
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Relay{store: store, rdb: rdb, opts: opts, log: log}
}

// Published returns how many entries the relay has added to the stream.
func (r *Relay) Published() int64 { return r.published.Load() }

// Flush relays the outbox until it is empty (of entries no other relay
// holds), and returns how many entries it relayed.
func (r *Relay) Flush(ctx context.Context) (int, error) {
	total := 0
	for {
		n, err := r.store.RelayOutbox(ctx, r.opts.BatchSize, r.publish)
		total += n
		if err != nil {
			return total, err
		}
		if n < r.opts.BatchSize {
			return total, nil
		}
	}
}

func (r *Relay) publish(ctx context.Context, entries []models.OutboxEntry) error {
	pipe := r.rdb.Pipeline()
	for _, e := range entries {
		pipe.XAdd(ctx, &redis.XAddArgs{
			Stream: r.opts.Stream,
			Values: []any{FieldEvent, e.Event, FieldOutboxID, strconv.FormatInt(e.ID, 10), FieldChange, string(e.Change)},
		})
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("add to stream %s: %w", r.opts.Stream, err)
	}
	r.published.Add(int64(len(entries)))
	if r.opts.AfterPublish != nil {
		return r.opts.AfterPublish(entries)
	}
	return nil
}

// Run relays the outbox every interval and on every change the store
// announces, until ctx is done. Failures (PostgreSQL or Redis down) are
// logged and retried at the next sweep.
func (r *Relay) Run(ctx context.Context) error {
	wake := make(chan struct{}, 1)
	go r.listen(ctx, wake)
	ticker := time.NewTicker(r.opts.Interval)
	defer ticker.Stop()
	for {
		if n, err := r.Flush(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			r.log.Error("relaying the outbox failed; retrying", "stream", r.opts.Stream, "error", err)
		} else if n > 0 {
			r.log.Debug("relayed", "entries", n, "stream", r.opts.Stream)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		case <-wake:
		}
	}
}

// listen wakes the relay on every change announced on the store's channel.
// Announcements missed while it reconnects are caught by the next sweep.
func (r *Relay) listen(ctx context.Context, wake chan<- struct{}) {
	for ctx.Err() == nil {
		err := r.listenOnce(ctx, wake)
		if ctx.Err() != nil {
			return
		}
		r.log.Warn("listening for changes failed; reconnecting", "channel", r.store.Channel(), "error", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

func (r *Relay) listenOnce(ctx context.Context, wake chan<- struct{}) error {
	poke := func() {
		select {
		case wake <- struct{}{}:
		default:
		}
	}
	// Catch up with what committed before LISTEN took effect, then wake on
	// every announcement.
	return r.store.Listen(ctx, poke, func(string) { poke() })
}
