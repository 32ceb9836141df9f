package watchers

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"golang.org/x/sync/errgroup"

	"github.com/tsync/tsync"
	"github.com/tsync/tsync/internal/workflows"
	"github.com/tsync/tsync/models"
)

// Options configure a Dispatcher.
type Options struct {
	// Stream is the stream of changes (required; see StreamName).
	Stream string
	// Group is the consumer group (required): the synchronizer's name, so
	// that every synchronizer sharing a schema gets every change.
	Group string
	// Consumer names this dispatcher in the group; "" makes a unique name
	// from the host name, the pid and a random suffix. Two live dispatchers
	// must not share a name.
	Consumer string
	// DeadLetter is the stream malformed events are moved to; "":
	// DeadLetterName(Stream).
	DeadLetter string
	// DeadLetterMaxLen caps the dead-letter stream (approximately). 0: 10000.
	DeadLetterMaxLen int64
	// TaskQueue is the synchronizer's task queue, where the watcher
	// workflows run.
	TaskQueue string
	// Params are given to every watcher workflow; Params.Synchronizer names
	// the workflow IDs.
	Params workflows.Params
	// BatchSize is how many events one read returns. 0: 100.
	BatchSize int
	// Block is how long a read waits for new events. 0: 1 s.
	Block time.Duration
	// Concurrency bounds the workflow starts in flight. 0: 16.
	Concurrency int
	// ClaimMinIdle is how long an event stays delivered but unacknowledged
	// before another dispatcher (or this one, after a failure) claims it:
	// the time to recover the events of a dispatcher that died. It must be
	// longer than handling one batch takes. 0: 30 s.
	ClaimMinIdle time.Duration
	// SweepInterval is the time between two sweeps: claiming stale events,
	// trimming the stream of events every group has acknowledged, and
	// removing dead consumers. 0: ClaimMinIdle / 2.
	SweepInterval time.Duration
	// ConsumerExpiry is how long a consumer of the group with no pending
	// event may stay idle before a sweep removes it. 0: 1 h.
	ConsumerExpiry time.Duration
	// Logger receives the dispatcher's logs; nil discards them.
	Logger *slog.Logger
	// Hooks inject faults, for tests.
	Hooks Hooks
}

// Hooks are called at the points where a dispatcher can die. A hook that
// returns an error makes Run return it at once, as if the process died there:
// the events read stay unacknowledged, to be claimed by another dispatcher.
type Hooks struct {
	// AfterRead runs after events are read (or claimed), before any
	// workflow is started for them.
	AfterRead func(ids []string) error
	// BeforeAck runs after the workflows of events are started, before the
	// events are acknowledged.
	BeforeAck func(ids []string) error
}

// Stats count what a dispatcher did.
type Stats struct {
	// Read is the number of stream entries read or claimed (a redelivered
	// entry counts again).
	Read int64
	// Started is the number of watcher workflows started.
	Started int64
	// Duplicates is the number of starts that found the workflow already
	// started (a redelivered change).
	Duplicates int64
	// Acked is the number of entries acknowledged after their workflows
	// were started (or they fired none).
	Acked int64
	// DeadLettered is the number of malformed entries moved to the
	// dead-letter stream.
	DeadLettered int64
	// Failed is the number of entries left unacknowledged after a failure
	// (PostgreSQL or Temporal unreachable), to be retried.
	Failed int64
	// Settled is the number of outbox entries deleted because every group
	// had handled them.
	Settled int64
	// Recovered is the number of outbox entries marked unpublished, to be
	// published again, because their stream entry was lost (Redis lost its
	// data, or the stream was deleted).
	Recovered int64
}

// Dispatcher reads the changes from the stream with a consumer group and,
// for each watcher a change fires and each object it affects (see Router),
// starts a WatchWorkflow that runs the watcher's handler. It acknowledges an
// event (XACK) only once every workflow of it is started, so a dispatcher
// killed at any point loses no event: what it read and did not acknowledge
// stays pending in the group, and is claimed (XAUTOCLAIM) by another
// dispatcher, or by the next one to start, once idle for ClaimMinIdle.
//
// A redelivered event does not run a handler twice: each workflow's ID is
// derived from the watcher, the object and the change's event id
// (WorkflowID), and is started with the REJECT_DUPLICATE reuse policy, so
// the second start of a change finds the first one (running or closed) and
// counts as a duplicate. This holds as long as Temporal retains the closed
// workflow (the namespace's retention period).
//
// Malformed events (no change field, bad JSON, unknown model, no id, unknown
// operation, bad event id) are logged, counted and moved to the dead-letter
// stream (added and acknowledged atomically); they never stop the dispatcher.
//
// The dispatcher also keeps the outbox of the store (which the Relay
// publishes to Stream) in step with the stream, in every sweep (see Sweep):
// it deletes the outbox entries every group has handled, and marks those
// whose stream entry Redis lost unpublished, for the relay to publish them
// again. Redis may therefore lose its data at any moment (a restart without
// persistence, an older snapshot restored, a failover to a replica that
// lagged, the stream or the group deleted): no change is lost, and none is
// handled twice, because the changes published again carry their event id
// and start no workflow twice. A dispatcher that finds its group gone
// (NOGROUP) creates it again, reading the stream from its start, and sweeps
// at once.
type Dispatcher struct {
	rdb    redis.UniversalClient
	client client.Client
	sync   *tsync.Compiled
	store  *models.Store
	router *Router
	opts   Options
	log    *slog.Logger

	read, started, duplicates, acked, dead, failed, settled, recovered atomic.Int64
}

// NewDispatcher returns a dispatcher of sync's watchers reading from rdb
// and starting workflows with c. store is the store the watchers load
// objects from, whose outbox a Relay publishes to opts.Stream.
func NewDispatcher(rdb redis.UniversalClient, c client.Client, sync *tsync.Compiled, store *models.Store, opts Options) (*Dispatcher, error) {
	if opts.Stream == "" || opts.Group == "" {
		return nil, fmt.Errorf("dispatcher: a stream and a group are required")
	}
	if opts.TaskQueue == "" {
		return nil, fmt.Errorf("dispatcher: no task queue")
	}
	if opts.Consumer == "" {
		host, _ := os.Hostname()
		opts.Consumer = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), randomHex(4))
	}
	if opts.DeadLetter == "" {
		opts.DeadLetter = DeadLetterName(opts.Stream)
	}
	if opts.DeadLetterMaxLen <= 0 {
		opts.DeadLetterMaxLen = 10000
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 100
	}
	if opts.Block <= 0 {
		opts.Block = time.Second
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 16
	}
	if opts.ClaimMinIdle <= 0 {
		opts.ClaimMinIdle = 30 * time.Second
	}
	if opts.SweepInterval <= 0 {
		opts.SweepInterval = opts.ClaimMinIdle / 2
	}
	if opts.ConsumerExpiry <= 0 {
		opts.ConsumerExpiry = time.Hour
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("stream", opts.Stream, "group", opts.Group, "consumer", opts.Consumer)
	return &Dispatcher{rdb: rdb, client: c, sync: sync, store: store, router: NewRouter(sync, store), opts: opts, log: log}, nil
}

// Consumer returns the dispatcher's consumer name.
func (d *Dispatcher) Consumer() string { return d.opts.Consumer }

// Stats returns the dispatcher's counters.
func (d *Dispatcher) Stats() Stats {
	return Stats{
		Read: d.read.Load(), Started: d.started.Load(), Duplicates: d.duplicates.Load(),
		Acked: d.acked.Load(), DeadLettered: d.dead.Load(), Failed: d.failed.Load(),
		Settled: d.settled.Load(), Recovered: d.recovered.Load(),
	}
}

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

// Sweep claims and handles the events of the group left unacknowledged for
// ClaimMinIdle (by a dead dispatcher, or after a failure), settles the
// outbox and trims the stream (see settle), and removes consumers that have
// been idle for ConsumerExpiry with nothing pending.
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
	return d.expireConsumers(ctx)
}

// settleBatch is how many outbox entries one SettleOutbox transaction looks
// at.
const settleBatch = 500

// settle brings the outbox and the stream in step, in this order:
//
//  1. It finds the lowest stream id any group still needs: for each group,
//     its oldest pending entry, or the first after the last it was
//     delivered. Everything below was handled by every group.
//  2. The outbox entries published below it are settled
//     (models.Store.SettleOutbox): those still in the stream are deleted;
//     those missing from it were lost by Redis and are marked unpublished,
//     to be published again.
//  3. Published entries outside the stream's ends were lost too
//     (models.Store.UnpublishLostOutbox): those above its last entry (Redis
//     restored from an older snapshot, or restarted empty) and those below
//     its first entry (a stream made again after a loss). This finds lost
//     changes no group has read past yet.
//  4. The stream is trimmed below the lowest id of step 1, but never above
//     the oldest entry the outbox still holds (models.Store.
//     OutboxOldestPublished), so that steps 2 and 3 never take an entry this
//     (or another) dispatcher trimmed for one Redis lost.
//
// So every lost entry is published again, however Redis lost it: at once
// when it is outside the stream's ends, else once every group has read past
// it. A group nobody reads any more (a synchronizer renamed or retired)
// holds the stream and the outbox back: remove it with XGROUP DESTROY.
//
// An entry is handled by a group once it is acknowledged, that is once its
// workflows are started: a change is deleted from the outbox only when
// Temporal holds its workflows. Without a group (none was made yet, or
// Redis lost them) nothing is deleted or trimmed.
//
// Why the races are safe (a change published twice is harmless: it starts
// no workflow twice; the only danger is deleting an entry that is not
// handled, or never publishing one again):
//
//   - Redis dies after a relay's XADD and before its commit: the entry is
//     unpublished, and published again. Or after its commit: the entry holds
//     an id of the lost stream, and is outside the new stream's ends, or
//     missing once the group has read past it.
//   - A relay adds entries to a new stream before any dispatcher noticed the
//     loss: the group is gone all the same (NOGROUP), and is made again from
//     "0", so it reads them; the lost entries are below the new stream's
//     first entry, marked at the sweep that follows NOGROUP (or by the relay,
//     which found the stream missing).
//   - Two dispatchers: both see NOGROUP, one creates the group, the other
//     gets BUSYGROUP (ignored). SettleOutbox locks the entries it checks
//     (FOR UPDATE SKIP LOCKED), so each is deleted or marked once; the
//     marking of UnpublishLostOutbox is idempotent and leaves alone entries
//     published again meanwhile (they are above the highest id it read
//     first). Neither trims the stream above the oldest entry the outbox
//     holds, so neither makes an entry the other checks look lost.
//   - Redis dies between a dispatcher's workflow starts and its XACK: the
//     entries are published again and their starts find the workflows.
//   - A relay commits an entry's stream id only after the dispatchers
//     handled and trimmed it (a relay stalled for a sweep between XADD and
//     commit): the entry looks lost and is published again, once more
//     harmlessly.
func (d *Dispatcher) settle(ctx context.Context) error {
	groups, err := d.rdb.XInfoGroups(ctx, d.opts.Stream).Result()
	if err != nil {
		return fmt.Errorf("trim: %w", err)
	}
	var min streamID
	for i, g := range groups {
		need := parseStreamID(g.LastDeliveredID).next()
		if g.Pending > 0 {
			p, err := d.rdb.XPending(ctx, d.opts.Stream, g.Name).Result()
			if err != nil {
				return fmt.Errorf("trim: %w", err)
			}
			if low := parseStreamID(p.Lower); p.Count > 0 && low.less(need) {
				need = low
			}
		}
		if i == 0 || need.less(min) {
			min = need
		}
	}
	handled := len(groups) > 0 && min != (streamID{0, 1})
	if handled {
		for {
			deleted, lost, err := d.store.SettleOutbox(ctx, min.model(), settleBatch, d.present)
			if err != nil {
				return fmt.Errorf("settle: %w", err)
			}
			d.settled.Add(int64(deleted))
			if lost > 0 {
				d.recovered.Add(int64(lost))
				d.log.Warn("events were lost from the stream (Redis lost its data?): publishing them again from the outbox", "events", lost)
			}
			if deleted+lost < settleBatch {
				break
			}
		}
	}
	lost, err := d.store.UnpublishLostOutbox(ctx, func(ctx context.Context) (models.StreamBounds, error) {
		return streamBounds(ctx, d.rdb, d.opts.Stream)
	})
	if err != nil {
		return fmt.Errorf("settle: %w", err)
	}
	if lost > 0 {
		d.recovered.Add(lost)
		d.log.Warn("events beyond the end of the stream were lost (Redis lost its data?): publishing them again from the outbox", "events", lost)
	}
	if !handled {
		return nil
	}
	oldest, err := d.store.OutboxOldestPublished(ctx)
	if err != nil {
		return fmt.Errorf("trim: %w", err)
	}
	if !oldest.IsZero() {
		if o := fromModel(oldest); o.less(min) {
			min = o
		}
	}
	if err := d.rdb.XTrimMinID(ctx, d.opts.Stream, min.String()).Err(); err != nil {
		return fmt.Errorf("trim: %w", err)
	}
	return nil
}

// present reports whether the stream still holds the stream entry of each
// outbox entry: an entry of its stream id carrying its outbox id (after a
// loss, a new stream may have given that id to another entry).
func (d *Dispatcher) present(ctx context.Context, entries []models.OutboxEntry) ([]bool, error) {
	pipe := d.rdb.Pipeline()
	cmds := make([]*redis.XMessageSliceCmd, len(entries))
	for i, e := range entries {
		id := e.Stream.String()
		cmds[i] = pipe.XRangeN(ctx, d.opts.Stream, id, id, 1)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("look up entries: %w", err)
	}
	out := make([]bool, len(entries))
	for i, c := range cmds {
		msgs := c.Val()
		out[i] = len(msgs) == 1 && msgs[0].Values[FieldOutboxID] == strconv.FormatInt(entries[i].ID, 10)
	}
	return out, nil
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

// item is one entry being processed.
type item struct {
	msg     redis.XMessage
	ev      tsync.WatchEvent
	bad     string // why the entry is malformed
	targets []Target
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
			if it.ev, it.bad = d.parse(it.msg); it.bad != "" {
				return nil
			}
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

	// Start the workflows.
	var mu sync.Mutex
	g, gctx = errgroup.WithContext(ctx)
	g.SetLimit(d.opts.Concurrency)
	for _, it := range items {
		for _, t := range it.targets {
			g.Go(func() error {
				if err := d.start(gctx, t, it.ev); err != nil {
					mu.Lock()
					it.failed = true
					mu.Unlock()
					if ctx.Err() == nil {
						d.log.Error("starting a watcher workflow failed; will retry", "entry", it.msg.ID, "watcher", t.Watcher, "object", t.Object.String(), "error", err)
					}
				}
				return nil
			})
		}
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

var eventID = regexp.MustCompile(`^[A-Za-z0-9-]{1,64}$`)

// parse reads a change event; bad says why it is malformed.
func (d *Dispatcher) parse(m redis.XMessage) (ev tsync.WatchEvent, bad string) {
	return parseEntry(d.sync.Graph, m)
}

// parseEntry decodes a stream entry into a change event of a model of g; bad
// says why it is malformed, and then ev is the zero event.
func parseEntry(g *models.Graph, m redis.XMessage) (ev tsync.WatchEvent, bad string) {
	ev, bad = decodeEntry(g, m)
	if bad != "" {
		return tsync.WatchEvent{}, bad
	}
	return ev, ""
}

func decodeEntry(g *models.Graph, m redis.XMessage) (ev tsync.WatchEvent, bad string) {
	raw, ok := m.Values[FieldChange].(string)
	if !ok {
		return ev, fmt.Sprintf("no %q field", FieldChange)
	}
	var c models.Change
	if err := json.Unmarshal([]byte(raw), &c); err != nil {
		return ev, "bad JSON: " + err.Error()
	}
	switch {
	case c.Model == "":
		return ev, "no model"
	case c.ID <= 0:
		return ev, fmt.Sprintf("missing or bad id (%d)", c.ID)
	case c.Op != "create" && c.Op != "update" && c.Op != "delete":
		return ev, fmt.Sprintf("unknown operation %q", c.Op)
	}
	if _, ok := g.Model(c.Model); !ok {
		return ev, fmt.Sprintf("unknown model %q", c.Model)
	}
	ev = tsync.WatchEvent{ID: "s" + m.ID, Changed: models.Ref{Model: c.Model, ID: c.ID}, Op: c.Op, Fields: c.Fields}
	if v, present := m.Values[FieldEvent]; present {
		s, _ := v.(string)
		if !eventID.MatchString(s) {
			return ev, fmt.Sprintf("bad event id %q", s)
		}
		ev.ID = s
	}
	return ev, ""
}

// deadLetter adds the entry to the dead-letter stream, with why, and
// acknowledges it, atomically.
func (d *Dispatcher) deadLetter(ctx context.Context, m redis.XMessage, why string) error {
	values := []any{"dead_reason", why, "dead_id", m.ID, "dead_stream", d.opts.Stream, "dead_group", d.opts.Group}
	for k, v := range m.Values {
		if !strings.HasPrefix(k, "dead_") {
			values = append(values, k, v)
		}
	}
	_, err := d.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.XAdd(ctx, &redis.XAddArgs{Stream: d.opts.DeadLetter, MaxLen: d.opts.DeadLetterMaxLen, Approx: true, Values: values})
		p.XAck(ctx, d.opts.Stream, d.opts.Group, m.ID)
		return nil
	})
	if err != nil {
		return err
	}
	d.dead.Add(1)
	d.log.Warn("malformed event moved to the dead-letter stream", "entry", m.ID, "reason", why, "dead_letter", d.opts.DeadLetter)
	return nil
}

// OperationWatch is the TsyncOperation search attribute of watcher
// workflows (when the namespace has the Tsync* attributes).
const OperationWatch = "watch"

// start starts the workflow of t for ev; a workflow already started for
// them is a success.
func (d *Dispatcher) start(ctx context.Context, t Target, ev tsync.WatchEvent) error {
	id := WorkflowID(d.opts.Params.Synchronizer, t.Watcher, t.Object, ev.ID)
	what := fmt.Sprintf("%s %s %d", ev.Changed.Model, ev.Op, ev.Changed.ID)
	if len(ev.Fields) > 0 {
		what += " [" + strings.Join(ev.Fields, " ") + "]"
	}
	opts := client.StartWorkflowOptions{
		ID:                                       id,
		TaskQueue:                                d.opts.TaskQueue,
		WorkflowIDReusePolicy:                    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		WorkflowIDConflictPolicy:                 enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		Memo:                                     map[string]any{"change": what},
	}
	if d.opts.Params.SearchAttributes {
		// Found with TsyncOperation="watch" (and the object's model and id).
		opts.TypedSearchAttributes = temporal.NewSearchAttributes(
			workflows.AttrSynchronizer.ValueSet(d.opts.Params.Synchronizer),
			workflows.AttrModel.ValueSet(t.Object.Model),
			workflows.AttrObjectID.ValueSet(t.Object.ID),
			workflows.AttrOperation.ValueSet(OperationWatch))
	}
	_, err := d.client.ExecuteWorkflow(ctx, opts, WatchWorkflow, Request{Watcher: t.Watcher, Object: t.Object, Event: ev, Params: d.opts.Params})
	var already *serviceerror.WorkflowExecutionAlreadyStarted
	switch {
	case errors.As(err, &already):
		d.duplicates.Add(1)
		return nil
	case err != nil:
		return fmt.Errorf("start %s: %w", id, err)
	}
	d.started.Add(1)
	return nil
}

// streamID is a stream entry id, "<ms>-<seq>".
type streamID struct{ ms, seq uint64 }

func parseStreamID(s string) streamID {
	ms, seq, _ := strings.Cut(s, "-")
	a, _ := strconv.ParseUint(ms, 10, 64)
	b, _ := strconv.ParseUint(seq, 10, 64)
	return streamID{a, b}
}

func (s streamID) less(o streamID) bool { return s.ms < o.ms || (s.ms == o.ms && s.seq < o.seq) }

func (s streamID) next() streamID {
	if s.seq == ^uint64(0) {
		return streamID{s.ms + 1, 0}
	}
	return streamID{s.ms, s.seq + 1}
}

func (s streamID) String() string { return fmt.Sprintf("%d-%d", s.ms, s.seq) }

// model returns s as a models.StreamID, capped at models.MaxStreamID.
func (s streamID) model() models.StreamID {
	if s.ms > math.MaxInt64 {
		return models.MaxStreamID
	}
	return models.StreamID{Ms: int64(s.ms), Seq: int64(min(s.seq, math.MaxInt64))}
}

// fromModel converts a models.StreamID (never negative).
func fromModel(id models.StreamID) streamID {
	return streamID{uint64(max(id.Ms, 0)), uint64(max(id.Seq, 0))}
}

// parseStrictStreamID parses a stream entry id as XADD returns it.
func parseStrictStreamID(s string) (models.StreamID, bool) {
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return models.StreamID{}, false
	}
	ms, err1 := strconv.ParseInt(a, 10, 64)
	seq, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil || ms < 0 || seq < 0 {
		return models.StreamID{}, false
	}
	id := models.StreamID{Ms: ms, Seq: seq}
	return id, !id.IsZero()
}

// randomHex returns 2n random hex characters.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
