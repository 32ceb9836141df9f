package starter

import (
	"context"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/api/workflowservice/v1"

	"github.com/tsync/tsync/internal/workflows"
	"github.com/tsync/tsync/models"
)

// How long a scan trusts the workflow it started.
//
// A scan leaves alone an object whose workflow it started for the content
// it finds (skip): that run is bound to see that content, and asking
// Temporal to start it again would only find it running. The trust lasts a
// window, so that a run that ended without syncing its object (terminated
// by an operator, say) is started again. When the window is over and the
// object is still pending with the same content, the scan first asks
// visibility, for a batch of such objects at once (verifyRunning), which
// of their runs still run: those are trusted again, for twice as long
// (up to maxTrustFactor windows), and only the others are started again.
//
// Without this, a large backlog made every scan start again, once a
// window, every object still waiting for a worker: with 100,000 objects
// pending, about 300 start calls a second, each a failed creation in the
// server, which halved the rate at which the backlog got in sync.

// maxTrustFactor bounds the growth of an entry's window, in recentWindows.
const maxTrustFactor = 16

// verifyBatch is how many workflow IDs one visibility query names.
const verifyBatch = 100

type startedAt struct {
	updated time.Time
	at      time.Time
	// runID is the run the start returned; trusted is set when it was a run
	// not seen before, so started after updated was read and bound to see
	// that content, or the run trusted before for the same content. A start
	// that returns a run seen before for other content may have hit a
	// workflow about to close without seeing the change: not trusted, so
	// the next scan starts again.
	runID   string
	trusted bool
	// window is how long it is trusted from at.
	window time.Duration
	// scan is the last scan that found the object pending (see
	// stillPending), or that was running when the entry was recorded.
	scan int64
}

// recentWindow is how long a scan first trusts the workflow it started for
// an unchanged object to be at work.
func (s *Starter) recentWindow() time.Duration {
	return max(time.Minute, 10*s.opts.LoopInterval)
}

// skip reports whether a scan should leave ref alone: a workflow it can
// trust was started recently for the same content.
func (s *Starter) skip(ref models.Ref, updated time.Time, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.recent[ref]
	return ok && r.trusted && r.updated.Equal(updated) && now.Sub(r.at) < r.window
}

// record notes that a start of ref's workflow for content updated (zero:
// unknown) returned runID, or that visibility found runID running.
func (s *Starter) record(ref models.Ref, updated time.Time, runID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	prev, seen := s.recent[ref]
	e := startedAt{updated: updated, at: time.Now(), runID: runID, window: s.recentWindow(), scan: s.scans.Load()}
	switch {
	case updated.IsZero():
	case !seen || prev.runID != runID:
		e.trusted = true
	case prev.trusted && prev.updated.Equal(updated):
		// The run started for this content still works on it: a long
		// backlog, or a step failing with backoff.
		e.trusted = true
		e.window = min(2*prev.window, maxTrustFactor*s.recentWindow())
	}
	s.recent[ref] = e
}

// changedSince reports whether a scan saw ref with content updated other
// than the content the starter last started its workflow for: an
// announcement of the change may have been lost (a reconnect), so the scan
// signals the workflow rather than starting it. Other scans start only: a
// signal would wake every object in backoff at every scan.
func (s *Starter) changedSince(ref models.Ref, updated time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.recent[ref]
	return ok && !r.updated.IsZero() && !updated.IsZero() && !r.updated.Equal(updated)
}

// prune, at the start of scan number scan, drops the entries of recent
// that expired a window ago and whose objects the previous scan did not
// find pending (synced since, or deleted). An expired entry is kept that
// long for the scan that verifies its run; an object still pending keeps
// its entry however long a scan takes. Without that, a backlog whose scan
// outlasted two windows (100,000 objects first started in 400 s) lost the
// entries of the objects started first before the next scan reached them,
// and that scan started them all again, each a failed creation in the
// server, with their trust back at one window.
func (s *Starter) prune(now time.Time, scan int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ref, r := range s.recent {
		if now.Sub(r.at) >= 2*r.window && r.scan < scan-1 {
			delete(s.recent, ref)
		}
	}
}

// stillPending notes that the running scan found model's objects ids
// pending (see prune).
func (s *Starter) stillPending(model string, ids []int64) {
	scan := s.scans.Load()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		ref := models.Ref{Model: model, ID: id}
		if r, ok := s.recent[ref]; ok && r.scan != scan {
			r.scan = scan
			s.recent[ref] = r
		}
	}
}

// expired returns the id and run of ref's trusted entry for content
// updated whose window is over, and whether there is one.
func (s *Starter) expired(ref models.Ref, updated time.Time, now time.Time) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.recent[ref]
	if !ok || !r.trusted || !r.updated.Equal(updated) || now.Sub(r.at) < r.window {
		return "", false
	}
	return r.runID, true
}

// verifyRunning asks visibility which of model's objects ids, pending with
// content updated, whose trusted runs' windows are over, still have those
// runs running, and trusts those again (record). A failed query leaves
// them to be started again, as without it; it is logged once as a
// warning, then at debug level.
func (s *Starter) verifyRunning(ctx context.Context, model string, ids []int64, updated map[int64]time.Time, now time.Time) {
	type entry struct {
		ref   models.Ref
		runID string
	}
	due := map[string]entry{}
	var wids []string
	for _, id := range ids {
		ref := models.Ref{Model: model, ID: id}
		runID, ok := s.expired(ref, updated[id], now)
		wid := workflows.WorkflowID(s.opts.Params.Synchronizer, ref)
		// IDs are the synchronizer's name, a model name and a number; one
		// that a query could not quote is simply started again.
		if !ok || strings.ContainsAny(wid, `'"\`) {
			continue
		}
		due[wid] = entry{ref: ref, runID: runID}
		wids = append(wids, wid)
	}
	for len(wids) > 0 {
		n := min(len(wids), verifyBatch)
		batch := wids[:n]
		wids = wids[n:]
		resp, err := s.client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			PageSize: int32(n),
			Query:    fmt.Sprintf("WorkflowId IN ('%s') AND ExecutionStatus = 'Running'", strings.Join(batch, "', '")),
		})
		if err != nil {
			if ctx.Err() == nil {
				s.verifyFailed(err)
			}
			return
		}
		for _, ex := range resp.GetExecutions() {
			e, ok := due[ex.GetExecution().GetWorkflowId()]
			if ok && ex.GetExecution().GetRunId() == e.runID {
				s.record(e.ref, updated[e.ref.ID], e.runID)
				s.verified.Add(1)
			}
		}
	}
}

// verifyFailed logs a failed visibility query of verifyRunning: the first
// as a warning, the others at debug level.
func (s *Starter) verifyFailed(err error) {
	msg := "visibility query of the runs still at work failed: their objects are started again"
	if s.verifyErrors.Add(1) == 1 {
		s.log.Warn(msg, "error", err)
		return
	}
	s.log.Debug(msg, "error", err)
}
