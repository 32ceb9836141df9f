package starter

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/tsync/tsync/internal/syncstate"
)

// Scan starts a workflow for every pending object of every synchronized
// model, batch by batch, and returns how many it started or found running.
// A model whose pending objects cannot be listed is skipped, its error
// returned with the others'; a workflow that cannot be started ends the
// scan (the next one tries again).
//
// The models come dependencies first. A model that links to a model with
// objects this scan started waits for them, in waves: its workflows are
// started once those objects are in sync (each then syncs at once, as an
// object whose dependencies are in sync), or once they stop getting in
// sync for WaveStall (each then waits for its dependencies in its
// workflow, started with the Waits hint). An object whose workflow starts
// while its dependencies are pending costs the Temporal server more than
// one whose dependencies are in sync: an Inspect local activity before
// its SyncReady, and, while a dependency is still at work, a child start
// or a subscription and its answer (signals) and their workflow tasks. A
// wave costs a query of the objects still pending every poll (see
// wavePoll). The models that wait come after the others, and after the
// deletion scan, which waits for nothing.
func (s *Starter) Scan(ctx context.Context) (int, error) {
	s.scans.Add(1)
	s.prune(time.Now())
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
	for _, model := range waves {
		stalled := false
		if deps := s.dependencies(model, started, nil); len(deps) > 0 {
			var err error
			if stalled, err = s.awaitWave(ctx, deps, started); err != nil {
				if ctx.Err() != nil {
					return total, errors.Join(append(errs, err)...)
				}
				errs = append(errs, err)
				stalled = true
			}
		}
		if err := scan(model, false, stalled); err != nil {
			return total, err
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
	return min(time.Second, time.Duration((left+499)/500)*50*time.Millisecond)
}

// awaitWave waits until the objects of models deps in started are no
// longer pending, dropping from started those that are not, and reports
// whether it gave up first: when none got in sync for WaveStall (or three
// polls, if longer).
func (s *Starter) awaitWave(ctx context.Context, deps []string, started map[string][]int64) (stalled bool, err error) {
	state := syncstate.New(s.store)
	last := -1
	progress := time.Now()
	for {
		left := 0
		for _, model := range deps {
			if len(started[model]) == 0 {
				continue
			}
			ids, err := state.StillPending(ctx, model, started[model])
			if err != nil {
				return true, fmt.Errorf("wave of %s: %w", model, err)
			}
			started[model] = ids
			left += len(ids)
		}
		// Three looks at least: looks a second apart may see none get in
		// sync while they do.
		stall := max(s.opts.WaveStall, 3*wavePoll(left))
		switch {
		case left == 0:
			return false, nil
		case left != last:
			last, progress = left, time.Now()
		case time.Since(progress) >= stall:
			s.log.Info("wave stalled: starting the dependents of objects still pending", "dependencies", deps, "pending", left, "for", stall)
			return true, nil
		}
		select {
		case <-ctx.Done():
			return true, ctx.Err()
		case <-time.After(wavePoll(left)):
		}
	}
}
