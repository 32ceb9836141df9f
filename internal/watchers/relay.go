package watchers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tsync/tsync/internal/outbox"
	"github.com/tsync/tsync/internal/syncstate"
	"github.com/tsync/tsync/models"
)

// Fields of a change event in the stream.
const (
	// FieldEvent is the change's event id (outbox.Entry.Event), on
	// which the dispatcher deduplicates. Optional: an entry without it is
	// identified by its stream entry id.
	FieldEvent = "event"
	// FieldOutboxID is the outbox row id, for operators; the dispatcher
	// also checks it when it looks for an outbox entry in the stream.
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
	// before its stream ids are recorded in the outbox; an error aborts the
	// batch, which stays unpublished and is published again. For
	// fault-injection tests.
	AfterPublish func(entries []outbox.Entry) error
}

// Relay publishes the store's outbox to a Redis stream, as the outbox
// protocol (package outbox) has it: each unpublished entry is added to the
// stream (XADD, with the fields FieldEvent, FieldOutboxID and FieldChange)
// and the id of its stream entry is recorded on it, in the transaction that
// locked it (outbox.Outbox.Relay). Several relays may run at once (one per
// dispatcher process).
//
// The relay adds entries with NOMKSTREAM: a stream that does not exist
// (Redis restarted empty, or the stream was deleted) is noticed there. The
// relay then creates it with the entries, and marks unpublished every
// published entry outside the new stream's ends
// (outbox.Outbox.UnpublishLost): all those of the lost stream, but not the
// entries it has just added, nor those another relay added meanwhile.
type Relay struct {
	store  *syncstate.Store
	outbox *outbox.Outbox
	rdb    redis.UniversalClient
	opts   RelayOptions
	log    *slog.Logger

	published, recovered atomic.Int64
	// missing is set by publish when the stream did not exist.
	missing atomic.Bool
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
	return &Relay{store: syncstate.New(store), outbox: outbox.New(store), rdb: rdb, opts: opts, log: log.With("stream", opts.Stream)}
}

// Published returns how many entries the relay has added to the stream (an
// entry published again counts again).
func (r *Relay) Published() int64 { return r.published.Load() }

// Recovered returns how many outbox entries the relay marked unpublished
// because it found the stream gone.
func (r *Relay) Recovered() int64 { return r.recovered.Load() }

// Flush relays the outbox until no unpublished entry is left (but those
// other relays hold), and returns how many entries it relayed.
func (r *Relay) Flush(ctx context.Context) (int, error) {
	total := 0
	for {
		n, err := r.outbox.Relay(ctx, r.opts.BatchSize, r.publish)
		total += n
		if err != nil {
			return total, err
		}
		recovered := false
		if r.missing.Swap(false) {
			// Not in publish: that would hold two connections at once.
			m, err := r.outbox.UnpublishLost(ctx, func(ctx context.Context) (outbox.StreamBounds, error) {
				return streamBounds(ctx, r.rdb, r.opts.Stream)
			})
			if err != nil {
				r.missing.Store(true) // try again
				return total, err
			}
			if m > 0 {
				r.recovered.Add(m)
				recovered = true
				r.log.Warn("the stream was gone (Redis lost its data?): publishing again the outbox entries it held", "entries", m)
			}
		}
		if n < r.opts.BatchSize && !recovered {
			return total, nil
		}
	}
}

func (r *Relay) publish(ctx context.Context, entries []outbox.Entry) ([]outbox.StreamID, error) {
	ids, err := r.add(ctx, entries, true)
	if errors.Is(err, errNoStream) {
		r.missing.Store(true)
		r.log.Info("the stream does not exist: creating it", "entries", len(entries))
		ids, err = r.add(ctx, entries, false)
	}
	if err != nil {
		return nil, err
	}
	r.published.Add(int64(len(entries)))
	if r.opts.AfterPublish != nil {
		if err := r.opts.AfterPublish(entries); err != nil {
			return nil, err
		}
	}
	return ids, nil
}

var errNoStream = errors.New("the stream does not exist")

// add XADDs entries, with NOMKSTREAM when existing (errNoStream then means
// the stream does not exist), and returns their stream ids.
func (r *Relay) add(ctx context.Context, entries []outbox.Entry, existing bool) ([]outbox.StreamID, error) {
	pipe := r.rdb.Pipeline()
	cmds := make([]*redis.StringCmd, len(entries))
	for i, e := range entries {
		cmds[i] = pipe.XAdd(ctx, &redis.XAddArgs{
			Stream:     r.opts.Stream,
			NoMkStream: existing,
			Values:     []any{FieldEvent, e.Event, FieldOutboxID, strconv.FormatInt(e.ID, 10), FieldChange, string(e.Change)},
		})
	}
	_, err := pipe.Exec(ctx)
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("add to stream %s: %w", r.opts.Stream, err)
	}
	ids := make([]outbox.StreamID, len(entries))
	for i, c := range cmds {
		s, err := c.Result()
		switch {
		case errors.Is(err, redis.Nil):
			// NOMKSTREAM and no stream (if the stream vanished after the
			// first entries, they are lost with it: add them all again).
			return nil, errNoStream
		case err != nil:
			return nil, fmt.Errorf("add to stream %s: %w", r.opts.Stream, err)
		}
		id, ok := outbox.ParseStreamID(s)
		if !ok {
			return nil, fmt.Errorf("add to stream %s: unexpected entry id %q", r.opts.Stream, s)
		}
		ids[i] = id
	}
	return ids, nil
}

// streamBounds returns the StreamBounds of stream, from XINFO STREAM (zero
// when it does not exist).
func streamBounds(ctx context.Context, rdb redis.UniversalClient, stream string) (outbox.StreamBounds, error) {
	info, err := rdb.XInfoStream(ctx, stream).Result()
	if err != nil {
		if strings.Contains(err.Error(), "no such key") {
			return outbox.StreamBounds{}, nil
		}
		return outbox.StreamBounds{}, fmt.Errorf("stream %s: %w", stream, err)
	}
	if info.FirstEntry.ID == "" || info.LastEntry.ID == "" {
		// Empty: no id is in it.
		last := outbox.StreamIDOf(info.LastGeneratedID)
		return outbox.StreamBounds{First: last.Next(), Last: last}, nil
	}
	return outbox.StreamBounds{First: outbox.StreamIDOf(info.FirstEntry.ID), Last: outbox.StreamIDOf(info.LastEntry.ID)}, nil
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

// listen wakes the relay on every change announced on the store's channel,
// and each time it is listening again after a lost connection (the next
// sweep would catch up with what was missed meanwhile, this one does at
// once).
func (r *Relay) listen(ctx context.Context, wake chan<- struct{}) {
	poke := func() {
		select {
		case wake <- struct{}{}:
		default:
		}
	}
	r.store.Listen(ctx, r.log, poke, func(string) { poke() })
}
