// Package starter finds pending objects and starts one workflow per object,
// under a deterministic workflow ID, so that an object is never synced by two
// workflows at once. It scans every loop interval and, between scans, starts
// the workflow of each object the model store announces on its NOTIFY
// channel, so a change is picked up at once.
package starter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"golang.org/x/sync/errgroup"

	"github.com/tsync/tsync"
	"github.com/tsync/tsync/internal/engine"
	"github.com/tsync/tsync/internal/syncstate"
	"github.com/tsync/tsync/internal/workflows"
	"github.com/tsync/tsync/metrics"
	"github.com/tsync/tsync/models"
)

// Options configure a Starter.
type Options struct {
	// TaskQueue is the synchronizer's task queue.
	TaskQueue string
	// LoopInterval is the time between scans.
	LoopInterval time.Duration
	// BatchSize is how many pending objects one FetchPending returns.
	BatchSize int
	// Concurrency bounds the workflow starts in flight.
	Concurrency int
	// WaveStall is how long a scan waits for the objects of a model's
	// dependencies to get in sync, without any doing so, before it starts
	// the model's workflows anyway (see Scan); 0 means 1s.
	WaveStall time.Duration
	// Params are given to every workflow; Params.Synchronizer names the IDs.
	Params workflows.Params
	// Logger receives the starter's logs; nil discards them.
	Logger *slog.Logger
	// Metrics receives the backlog and start counts; nil records nothing.
	Metrics *metrics.Metrics
}

// Starter starts the workflows of pending objects.
type Starter struct {
	client client.Client
	sync   *engine.Synchronizer
	store  *models.Store
	opts   Options
	log    *slog.Logger

	started atomic.Int64
	scans   atomic.Int64
	// verified counts the runs visibility found still at work (see
	// verifyRunning); verifyErrors its failed queries.
	verified     atomic.Int64
	verifyErrors atomic.Int64
	// adopted counts the runs a scan trusted without having started them
	// (see adoptRunning); adopting is set while a scan does that, settled
	// once a scan has completed.
	adopted  atomic.Int64
	adopting atomic.Bool
	settled  atomic.Bool

	// recent remembers the objects whose workflow a scan started, with the
	// updated value they had, so that later scans do not ask Temporal to
	// start them again while that workflow works on that content (each such
	// start is a server round trip; with a large backlog they would crowd
	// out the real work). Bounded: entries expire after their window (see
	// trust.go).
	mu     sync.Mutex
	recent map[models.Ref]startedAt
	// starting holds the scan's starts in flight, by object: the content
	// (updated) each is for, and a channel closed once it is recorded.
	starting map[models.Ref]scanStart
}

// scanStart is a scan's start in flight.
type scanStart struct {
	updated time.Time
	done    chan struct{}
}

// Scans returns how many scans the starter has run.
func (s *Starter) Scans() int64 { return s.scans.Load() }

// Verified returns how many times a scan found, by a visibility query, the
// run it trusted still at work once its trust was over, and so did not
// start it again.
func (s *Starter) Verified() int64 { return s.verified.Load() }

// Adopted returns how many runs a scan of a starter just started found
// already at work on their objects' content, by a visibility query, and so
// did not start again (a restarted starter).
func (s *Starter) Adopted() int64 { return s.adopted.Load() }

// New returns a starter.
func New(c client.Client, sync *engine.Synchronizer, store *models.Store, opts Options) *Starter {
	if opts.BatchSize <= 0 {
		opts.BatchSize = 500
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 16
	}
	if opts.LoopInterval <= 0 {
		opts.LoopInterval = time.Second
	}
	if opts.WaveStall <= 0 {
		opts.WaveStall = time.Second
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Starter{client: c, sync: sync, store: store, opts: opts, log: log, recent: map[models.Ref]startedAt{}, starting: map[models.Ref]scanStart{}}
}

// Started returns how many workflow starts the starter has made (including
// those that found the object's workflow already running).
func (s *Starter) Started() int64 { return s.started.Load() }

// Run scans, pausing between two scans (see pause), and at once on an
// announcement of many changes, until ctx is done.
func (s *Starter) Run(ctx context.Context) error {
	wake := make(chan struct{}, 1)
	go s.listen(ctx, wake)
	timer := time.NewTimer(s.opts.LoopInterval)
	defer timer.Stop()
	// An outage fails every scan until it ends: the first failure is an
	// error, the next ones (once a loop interval) debug lines, and the
	// first scan that works again says how long they failed.
	failing, failures := time.Time{}, 0
	for {
		began := time.Now()
		if n, err := s.Scan(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if failures == 0 {
				failing = time.Now()
				s.log.Error("scan failed", "error", err)
			} else {
				s.log.Debug("scan failed again", "failures", failures+1, "error", err)
			}
			failures++
		} else {
			if failures > 0 {
				s.log.Info("scans work again", "failed_scans", failures, "for", time.Since(failing).Round(time.Millisecond))
				failures = 0
			}
			if n > 0 {
				s.log.Debug("scan", "started", n)
			}
		}
		if failures > 0 {
			// A failed scan (Temporal down) took its requests' timeout:
			// the next one tries again after the loop interval.
			timer.Reset(s.opts.LoopInterval)
		} else {
			timer.Reset(s.pause(time.Since(began)))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		case <-wake:
		}
	}
}

// scanPace bounds the time the periodic scans take: after a scan that
// took d, paceAfter or more, the next waits scanPace times d (see pause).
const (
	scanPace  = 4
	paceAfter = time.Second
)

// pause is the wait after a scan that took took before the next: what is
// left of the loop interval, as a ticker would wait, after a scan shorter
// than paceAfter; after a longer one, the loop interval or scanPace times
// the scan, up to half a trust window (after a failed scan, Run waits the
// loop interval). The announcements start the workflows of changed
// objects as they come; a scan finds what they missed (a run that ended
// without syncing its object, an announcement lost in a reconnection: a
// reconnection wakes a scan at once anyway). With 100,000 objects
// pending, a scan that starts nothing (each is trusted, see skip) takes
// seconds, and the scans ran back to back, reading every pending object's
// updated time from the database, on the CPU the Temporal server and the
// steps needed.
func (s *Starter) pause(took time.Duration) time.Duration {
	if took < paceAfter {
		return max(0, s.opts.LoopInterval-took)
	}
	return max(s.opts.LoopInterval, min(scanPace*took, s.recentWindow()/2))
}

// errStart marks a scan's failure to start a workflow. Unlike a failure of
// one model's FetchPending, it concerns every model (the Temporal server is
// down, say): the scan stops there.
var errStart = errors.New("starting workflows failed")

// startError is errStart with err, the failed start, and what it means.
func startError(err error) error {
	if SearchAttributesNotServed(err) {
		return fmt.Errorf("%w: the namespace does not serve the Tsync* search attributes yet "+
			"(a real Temporal server serves newly registered ones only a few seconds later; the next scan tries again): %w", errStart, err)
	}
	return fmt.Errorf("%w (is the Temporal server up?): %w", errStart, err)
}

// SearchAttributesNotServed reports whether err is the Temporal server's
// refusal of a Tsync* search attribute that the namespace does not map, or
// not yet: a real server serves search attributes only after each of its
// services has refreshed its namespace cache, a few seconds after they
// were added. A workflow start gets "Namespace default has no mapping
// defined for search attribute TsyncObjectID"; a visibility query "column
// name 'TsyncObjectID' is not a valid search attribute".
func SearchAttributesNotServed(err error) bool {
	var ia *serviceerror.InvalidArgument
	if !errors.As(err, &ia) {
		return false
	}
	msg := ia.Error()
	for name := range workflows.SearchAttributes() {
		if strings.Contains(msg, "no mapping defined for search attribute "+name) ||
			strings.Contains(msg, "'"+name+"' is not a valid search attribute") {
			return true
		}
	}
	return false
}

// scanModel is Scan of one model, for sync or deletion: it returns how
// many objects it found pending, and the ids of those whose workflows it
// started or found running (not those an earlier scan started: see skip).
// waits tells the workflows it starts that their dependencies are likely
// pending (workflows.Request.Waits).
func (s *Starter) scanModel(ctx context.Context, model string, deletion, waits bool) (int, []int64, error) {
	var started []int64
	total, err := s.fetchPending(ctx, model, deletion, func(ids []int64, updated map[int64]time.Time) error {
		now := time.Now()
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(s.opts.Concurrency)
		for _, id := range ids {
			if s.goStart(gctx, g, models.Ref{Model: model, ID: id}, deletion, updated[id], waits, now) {
				started = append(started, id)
			}
		}
		if err := g.Wait(); err != nil {
			return startError(err)
		}
		return nil
	})
	return total, started, err
}

// fetchPending calls batch with each batch of model's objects pending for
// sync (deletion false) or for deletion (deletion true), as its step's
// FetchPending returns them, and with their updated values (having first
// noted them still pending, adopted the runs at work on them that the
// starter did not start, and verified the runs of those whose trust is
// over: stillPending, adoptRunning, verifyRunning), and returns
// how many there were; batch's error ends it.
func (s *Starter) fetchPending(ctx context.Context, model string, deletion bool, batch func(ids []int64, updated map[int64]time.Time) error) (int, error) {
	step, _ := s.sync.Step(model)
	state := syncstate.New(s.store)
	total := 0
	var after int64
	for {
		ids, err := step.FetchPending(ctx, tsync.PendingQuery{
			Model: model, Deletion: deletion, AfterID: after, Limit: s.opts.BatchSize, Objects: state.Reader(),
		})
		if err != nil {
			return total, err
		}
		updated, err := state.Updated(ctx, model, ids)
		if err != nil {
			return total, err
		}
		s.stillPending(model, ids)
		if s.adopting.Load() {
			s.adoptRunning(ctx, model, ids, updated)
		}
		s.verifyRunning(ctx, model, ids, updated, time.Now())
		if err := batch(ids, updated); err != nil {
			return total, err
		}
		total += len(ids)
		if len(ids) < s.opts.BatchSize {
			break
		}
		after = ids[len(ids)-1]
	}
	s.opts.Metrics.Pending(model, string(engine.OpFor(deletion)), total)
	return total, nil
}

// goStart starts ref's workflow in g for content updated, unless an
// earlier scan started it for that content (see skip), and reports
// whether it did; waits is its Request's.
func (s *Starter) goStart(ctx context.Context, g *errgroup.Group, ref models.Ref, deletion bool, updated time.Time, waits bool, now time.Time) bool {
	if s.skip(ref, updated, now) {
		return false
	}
	how := startOrJoin
	if s.changedSince(ref, updated) {
		how = signalOrStart
	}
	done := s.scanStarting(ref, updated)
	g.Go(func() error {
		defer done()
		return s.startOrSignal(ctx, ref, deletion, updated, how, waits)
	})
	return true
}

// Start starts the sync (or delete) workflow of ref, unless a workflow of
// ref is running already, which is then left alone.
func (s *Starter) Start(ctx context.Context, ref models.Ref, deletion bool) error {
	return s.start(ctx, ref, deletion, time.Time{})
}

// Signal tells the running workflow of ref that the object changed
// (workflows.SignalChanged), so that a workflow waiting (backoff, held,
// deferred, awaiting dependencies) looks at it again at once; with no
// workflow running, it starts the sync (or delete) workflow of ref.
func (s *Starter) Signal(ctx context.Context, ref models.Ref, deletion bool) error {
	return s.startOrSignal(ctx, ref, deletion, time.Time{}, signalOrStart, false)
}

// startNew starts the sync workflow of ref, announced created with
// content updated; should a workflow of ref run already (a row inserted
// again with the id of one deleted, or a scan that started it first), it
// signals that one instead, as Signal does.
func (s *Starter) startNew(ctx context.Context, ref models.Ref, deletion bool, updated time.Time) error {
	err := s.startOrSignal(ctx, ref, deletion, updated, startOnly, false)
	var running *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &running) {
		if s.startedByScan(ctx, ref, updated) {
			return nil
		}
		return s.startOrSignal(ctx, ref, deletion, updated, signalOrStart, false)
	}
	return err
}

// scanStarting notes a scan's start of ref's workflow for content updated
// in flight; the returned func ends it, once the start is recorded.
func (s *Starter) scanStarting(ref models.Ref, updated time.Time) (done func()) {
	st := scanStart{updated: updated, done: make(chan struct{})}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.starting[ref] = st
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.starting[ref] == st {
			delete(s.starting, ref)
		}
		close(st.done)
	}
}

// startedByScan reports whether a scan started a new run of ref's
// workflow for content updated (see skip), waiting for its start in
// flight if one is: the run an announcement of that content found running
// then needs no signal.
func (s *Starter) startedByScan(ctx context.Context, ref models.Ref, updated time.Time) bool {
	s.mu.Lock()
	st, ok := s.starting[ref]
	s.mu.Unlock()
	if ok && st.updated.Equal(updated) {
		select {
		case <-st.done:
		case <-ctx.Done():
			return false
		}
	}
	return !updated.IsZero() && s.skip(ref, updated, time.Now())
}

// start is Start for content updated (zero: unknown), recording the run.
func (s *Starter) start(ctx context.Context, ref models.Ref, deletion bool, updated time.Time) error {
	return s.startOrSignal(ctx, ref, deletion, updated, startOrJoin, false)
}

// startMode is what startOrSignal does about a workflow of the object
// that runs already.
type startMode int

const (
	// startOrJoin leaves it alone.
	startOrJoin startMode = iota
	// signalOrStart signals it (SignalChanged).
	signalOrStart
	// startOnly returns a *serviceerror.WorkflowExecutionAlreadyStarted.
	startOnly
)

// startOrSignal starts the workflow of ref, or does what how says to the
// one already running; waits is its Request's.
func (s *Starter) startOrSignal(ctx context.Context, ref models.Ref, deletion bool, updated time.Time, how startMode, waits bool) error {
	op := engine.OpFor(deletion)
	opts := client.StartWorkflowOptions{
		ID:                       workflows.WorkflowID(s.opts.Params.Synchronizer, ref),
		TaskQueue:                s.opts.TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		// Eager start: when a worker of this client polls the task queue
		// (`tsync run`, a worker and a starter in one process) and has a
		// workflow task slot free, the server hands the first workflow
		// task back in the start's response, to that worker, rather than
		// through its matching service: one dispatch less per sync, in
		// server work and in latency. Otherwise (a starter process of its
		// own, a server that has it off) the start is as without it.
		EnableEagerStart: true,
	}
	if s.opts.Params.SearchAttributes {
		opts.TypedSearchAttributes = workflows.StartAttributes(s.opts.Params.Synchronizer, ref, op).Typed
	}
	req := workflows.Request{Object: ref, Params: s.opts.Params, Waits: waits}
	var run client.WorkflowRun
	var err error
	if how == startOnly {
		opts.WorkflowIDConflictPolicy = enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL
		opts.WorkflowExecutionErrorWhenAlreadyStarted = true
	}
	if how == signalOrStart {
		run, err = s.client.SignalWithStartWorkflow(ctx, opts.ID, workflows.SignalChanged, workflows.Changed{}, opts, workflows.WorkflowOf(op), req)
	} else {
		run, err = s.client.ExecuteWorkflow(ctx, opts, workflows.WorkflowOf(op), req)
	}
	if err != nil {
		return fmt.Errorf("start workflow of %s: %w", ref, err)
	}
	s.record(ref, updated, run.GetRunID())
	s.started.Add(1)
	s.opts.Metrics.Started()
	return nil
}
