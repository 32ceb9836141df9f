package starter

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/tsync/tsync/internal/syncstate"
	"github.com/tsync/tsync/models"
)

// Scan starts a workflow for every pending object of every synchronized
// model, batch by batch, and returns how many it started or found running.
// A model whose pending objects cannot be listed is skipped, its error
// returned with the others'; a workflow that cannot be started ends the
// scan (the next one tries again). Until one scan has completed, and when
// visibility shows workflows running on the task queue (a restarted
// starter), the scans leave alone the objects whose runs at work started
// after their content was written (adoptRunning).
//
// The models come dependencies first. A model that links to a model with
// objects this scan started (or to a model that waits) waits: the
// workflow of each of its pending objects starts once the objects it links
// to that this scan started are in sync (it then syncs at once, as an
// object whose dependencies are in sync), or once none of the objects
// waited for got in sync for WaveStall (all those left then wait for
// their dependencies in their workflows, started with the Waits hint). An
// object whose workflow starts while its dependencies are pending costs
// the Temporal server more than one whose dependencies are in sync: an
// Inspect local activity before its SyncReady, and, while a dependency is
// still at work, a child start or a subscription and its answer (signals)
// and their workflow tasks. Waiting costs a read of what the waiting
// objects link to, and a query of the objects waited for still pending
// every poll (see wavePoll). The models that wait come after the others,
// and after the deletion scan, which waits for nothing.
func (s *Starter) Scan(ctx context.Context) (n int, err error) {
	s.prune(time.Now(), s.scans.Add(1))
	if !s.settled.Load() {
		s.adopting.Store(s.anyRunning(ctx))
		defer func() {
			if err == nil {
				s.settled.Store(true)
				s.adopting.Store(false)
			}
		}()
	}
	total := 0
	var errs []error
	// started holds the ids of the objects whose workflows this scan
	// started (or found running, but not those an earlier scan started),
	// by model.
	started := map[string][]int64{}
	scan := func(model string, deletion, waits bool) error {
		n, ids, err := s.scanModel(ctx, model, deletion, waits)
		if !deletion {
			started[model] = ids
		}
		total += n
		if err == nil {
			return nil
		}
		if ctx.Err() != nil || errors.Is(err, errStart) {
			// Starts fail for every model alike: while Temporal is down,
			// each model's would wait out the SDK's request timeout in
			// turn before the scan said so.
			return errors.Join(append(errs, err)...)
		}
		// One model's failure (say, its FetchPending override) must not
		// keep the others from being scanned.
		errs = append(errs, err)
		return nil
	}
	var waves []string
	for _, model := range s.sync.Models() {
		if len(s.dependencies(model, started, waves)) > 0 {
			waves = append(waves, model)
			continue
		}
		if err := scan(model, false, false); err != nil {
			return total, err
		}
	}
	for _, model := range s.sync.Models() {
		if err := scan(model, true, false); err != nil {
			return total, err
		}
	}
	if len(waves) > 0 {
		n, err := s.scanWaves(ctx, waves, started)
		total += n
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, errStart) {
				return total, errors.Join(append(errs, err)...)
			}
			errs = append(errs, err)
		}
	}
	return total, errors.Join(errs...)
}

// dependencies returns the models that model links to that have objects
// pending in started, or that are in waves (not scanned yet).
func (s *Starter) dependencies(model string, started map[string][]int64, waves []string) []string {
	m, ok := s.store.Graph().Model(model)
	if !ok {
		return nil
	}
	var out []string
	for _, l := range m.Links {
		if l.Dest != model && (len(started[l.Dest]) > 0 || slices.Contains(waves, l.Dest)) && !slices.Contains(out, l.Dest) {
			out = append(out, l.Dest)
		}
	}
	return out
}

// wavePoll is how often a wave looks at the objects it waits for: every
// 50ms while at most 500 are left, less often (up to every second) while
// more are, since each look reads those left.
func wavePoll(left int) time.Duration {
	return min(time.Second, time.Duration(max(1, (left+499)/500))*50*time.Millisecond)
}

// waiter is a pending object of a model that waits (see Scan), its
// workflow not started yet while some of the objects it links to that the
// scan started are pending.
type waiter struct {
	ref     models.Ref
	updated time.Time
	// left is how many objects it waits for.
	left int
	// waits is set once one of those is left pending, its workflow
	// started by an earlier scan: its own then starts with the Waits hint.
	waits   bool
	started bool
}

// wave is the part of a scan that starts the pending objects of the
// models that wait, each once the objects it links to that the scan
// started are no longer pending.
type wave struct {
	s     *Starter
	state *syncstate.Store
	gctx  context.Context
	// goStart starts the workflow of an object read for content updated
	// (see Starter.goStart) and reports whether it did.
	goStart func(ref models.Ref, updated time.Time, waits bool) bool
	// waiters are the objects of the models that wait, by reference, and
	// in the order read.
	waiters map[models.Ref]*waiter
	order   []*waiter
	// dependents holds, for each object waited for, those that wait for it.
	dependents map[models.Ref][]*waiter
	// waiting counts the waiters not started yet.
	waiting int
}

// scanWaves starts the workflows of the pending objects of models (the
// models that wait, dependencies first), each once the objects it links
// to among started (by model) and among models' own pending objects are
// no longer pending: it reads which objects those are once, then polls
// the ones started (wavePoll). When none got in sync for WaveStall (or
// three polls, if longer), it starts all those left with the Waits hint.
// It returns how many objects of models it found pending.
func (s *Starter) scanWaves(ctx context.Context, waveModels []string, started map[string][]int64) (int, error) {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.opts.Concurrency)
	w := &wave{s: s, state: syncstate.New(s.store), gctx: gctx, waiters: map[models.Ref]*waiter{}, dependents: map[models.Ref][]*waiter{}}
	w.goStart = func(ref models.Ref, updated time.Time, waits bool) bool {
		return s.goStart(gctx, g, ref, false, updated, waits, time.Now())
	}
	total, errs := w.read(ctx, waveModels, started)
	w.startReady()
	if err := w.await(); err != nil {
		errs = append(errs, err)
	}
	if err := g.Wait(); err != nil {
		return total, startError(err)
	}
	if err := ctx.Err(); err != nil {
		return total, err
	}
	return total, errors.Join(errs...)
}

// read fetches the pending objects of models and what each links to, and
// returns how many it found; a model that fails is left out, its error
// returned. Each waits for the objects it links to among started and
// among the objects read before it (of the models before its own: a link
// to an object of its own model, or of a model after it in a cycle of
// models, is left to its workflow).
func (w *wave) read(ctx context.Context, waveModels []string, started map[string][]int64) (int, []error) {
	// The objects of started, by model.
	tracked := map[string]map[int64]bool{}
	for model, ids := range started {
		tracked[model] = make(map[int64]bool, len(ids))
		for _, id := range ids {
			tracked[model][id] = true
		}
	}
	startedByThisScan := func(d models.Ref) bool { return tracked[d.Model][d.ID] }
	total := 0
	var errs []error
	for _, model := range waveModels {
		m, _ := w.s.store.Graph().Model(model)
		var links []models.Link
		for _, l := range m.Links {
			if l.Dest != model {
				links = append(links, l)
			}
		}
		n, err := w.s.fetchPending(ctx, model, false, func(ids []int64, updated map[int64]time.Time) error {
			deps, err := w.state.LinkTargets(ctx, model, ids, links)
			if err != nil {
				return err
			}
			for _, id := range ids {
				w.add(models.Ref{Model: model, ID: id}, updated[id], deps[id], startedByThisScan)
			}
			return nil
		})
		total += n
		if err != nil {
			errs = append(errs, fmt.Errorf("wave of %s: %w", model, err))
		}
	}
	return total, errs
}

// add adds ref, with content updated, to the waiters (once), waiting for
// those of deps that are waiters or that started holds.
func (w *wave) add(ref models.Ref, updated time.Time, deps []models.Ref, started func(models.Ref) bool) {
	if _, dup := w.waiters[ref]; dup {
		return
	}
	o := &waiter{ref: ref, updated: updated}
	for _, d := range deps {
		if _, read := w.waiters[d]; read || started(d) {
			o.left++
			w.dependents[d] = append(w.dependents[d], o)
		}
	}
	w.waiters[ref] = o
	w.order = append(w.order, o)
	w.waiting++
}

// start starts o's workflow (waits is its Request's), unless an earlier
// scan started it (see skip): then none waits for it.
func (w *wave) start(o *waiter, waits bool) {
	if o.started {
		return
	}
	o.started = true
	w.waiting--
	if !w.goStart(o.ref, o.updated, waits || o.waits) {
		w.release(o.ref, true)
	}
}

// startReady starts the waiters that wait for nothing.
func (w *wave) startReady() {
	for _, o := range w.order {
		if o.left == 0 {
			w.start(o, false)
		}
	}
}

// release starts those that waited for ref only; pending says ref is
// still pending (not waited for any longer: an earlier scan started it).
func (w *wave) release(ref models.Ref, pending bool) {
	ds := w.dependents[ref]
	delete(w.dependents, ref)
	for _, o := range ds {
		o.waits = o.waits || pending
		if o.left--; o.left == 0 {
			w.start(o, false)
		}
	}
}

// await polls the objects waited for until none waits, releasing those no
// longer pending, or until none got in sync for a while: then it starts
// all those left with the Waits hint.
func (w *wave) await() error {
	progress := time.Now()
	for w.waiting > 0 && w.gctx.Err() == nil {
		// The objects waited for whose workflows run, by model.
		watched := map[string][]int64{}
		left := 0
		for ref := range w.dependents {
			if o, ok := w.waiters[ref]; ok && !o.started {
				continue
			}
			watched[ref.Model] = append(watched[ref.Model], ref.ID)
			left++
		}
		released := 0
		for model, ids := range watched {
			slices.Sort(ids)
			still, err := w.state.StillPending(w.gctx, model, ids)
			if err != nil {
				w.startAll()
				return fmt.Errorf("wave: %w", err)
			}
			for _, id := range ids {
				if _, pending := slices.BinarySearch(still, id); !pending {
					w.release(models.Ref{Model: model, ID: id}, false)
					released++
				}
			}
		}
		if released > 0 {
			progress = time.Now()
		} else if stall := max(w.s.opts.WaveStall, 3*wavePoll(left)); time.Since(progress) >= stall {
			w.s.log.Info("wave stalled: starting the objects that wait for objects still pending", "waiting", w.waiting, "pending", left, "for", stall)
			w.startAll()
			return nil
		}
		select {
		case <-w.gctx.Done():
		case <-time.After(wavePoll(left)):
		}
	}
	return nil
}

// startAll starts all the waiters not started yet, with the Waits hint.
func (w *wave) startAll() {
	for _, o := range w.order {
		w.start(o, true)
	}
}
