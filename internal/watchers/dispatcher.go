package watchers

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"go.temporal.io/sdk/client"

	"github.com/tsync/tsync/internal/engine"
	"github.com/tsync/tsync/internal/outbox"
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
	// Linger is how long a watcher workflow waits for another change of its
	// object once it has handled all it got (ObjectRequest.Linger): a change
	// delivered again within it is not handled again. 0: DefaultLinger.
	Linger time.Duration
	// HandledRetention is how long the record of a handled change
	// (HandledTable) is kept: a change delivered again within it (a Redis
	// snapshot restored, say) runs nothing again. Sweeps delete older
	// records, at most once a minute. 0: DefaultHandledRetention.
	HandledRetention time.Duration
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

// Dispatcher reads the changes from the stream with a consumer group and,
// for each watcher a change fires and each object it affects (see Router),
// gives the change to the WatchObjectWorkflow of that watcher and object
// (signal-with-start), which runs the watcher's handler for its changes one
// at a time in position order. The changes of one batch for one target are
// given one after the other, in position order; different targets
// concurrently. It acknowledges an event (XACK) only once it was given to
// every workflow, so a dispatcher killed at any point loses no event: what
// it read and did not acknowledge stays pending in the group, and is claimed
// (XAUTOCLAIM) by another dispatcher, or by the next one to start, once idle
// for ClaimMinIdle.
//
// A redelivered event does not run a handler twice: it keeps its event id,
// which the workflow skips when it queued or handled it, and, once the
// workflow closed, the activity skips when HandledTable records it.
//
// Malformed events (no change field, bad JSON, unknown model, no id, unknown
// operation, bad event id) are logged, counted and moved to the dead-letter
// stream (added and acknowledged atomically); they never stop the dispatcher.
//
// The dispatcher also keeps the outbox of the store (which the Relay
// publishes to Stream) in step with the stream, in every sweep (see Sweep
// and package outbox): it deletes the outbox entries every group has
// handled, and marks those whose stream entry Redis lost unpublished, for
// the relay to publish them again. Redis may therefore lose its data at any
// moment (a restart without persistence, an older snapshot restored, a
// failover to a replica that lagged, the stream or the group deleted): no
// change is lost, and none is handled twice, because the changes published
// again carry their event id and run no handler twice. A dispatcher that finds its group gone
// (NOGROUP) creates it again, reading the stream from its start, and sweeps
// at once.
type Dispatcher struct {
	rdb    redis.UniversalClient
	client client.Client
	sync   *engine.Synchronizer
	store  *models.Store
	outbox *outbox.Outbox
	router *Router
	opts   Options
	log    *slog.Logger

	handled   handledLog
	lastPrune atomic.Int64 // unix nanoseconds

	read, started, acked, dead, failed, settled, recovered atomic.Int64
}

// NewDispatcher returns a dispatcher of sync's watchers reading from rdb
// and starting workflows with c. store is the store the watchers load
// objects from, whose outbox a Relay publishes to opts.Stream.
func NewDispatcher(rdb redis.UniversalClient, c client.Client, sync *engine.Synchronizer, store *models.Store, opts Options) (*Dispatcher, error) {
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
	if opts.HandledRetention <= 0 {
		opts.HandledRetention = DefaultHandledRetention
	}
	if opts.ConsumerExpiry <= 0 {
		opts.ConsumerExpiry = time.Hour
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("stream", opts.Stream, "group", opts.Group, "consumer", opts.Consumer)
	return &Dispatcher{
		rdb: rdb, client: c, sync: sync, store: store, outbox: outbox.New(store), router: NewRouter(sync, store),
		opts: opts, log: log,
	}, nil
}

// Consumer returns the dispatcher's consumer name.
func (d *Dispatcher) Consumer() string { return d.opts.Consumer }

// randomHex returns 2n random hex characters.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
