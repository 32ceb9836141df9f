package starter

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	workflowpb "go.temporal.io/api/workflow/v1"
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

// adopt trusts runID for ref's content updated, as record does a run
// started for it, unless the starter has an entry for ref (a start or an
// announcement since), and reports whether it did.
func (s *Starter) adopt(ref models.Ref, updated time.Time, runID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, known := s.recent[ref]; known {
		return false
	}
	s.recent[ref] = startedAt{updated: updated, at: time.Now(), runID: runID, trusted: true, window: s.recentWindow(), scan: s.scans.Load()}
	return true
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
// content updated, whose trusted runs' windows are over, still have a run
// running (that one, or one started since), and trusts those again
// (record), counting first (see running). A failed query leaves them to be
// started again, as without it; it is logged once as a warning, then at
// debug level.
func (s *Starter) verifyRunning(ctx context.Context, model string, ids []int64, updated map[int64]time.Time, now time.Time) {
	var due []models.Ref
	for _, id := range ids {
		ref := models.Ref{Model: model, ID: id}
		if _, ok := s.expired(ref, updated[id], now); ok {
			due = append(due, ref)
		}
	}
	s.running(ctx, due, true, func(ref models.Ref, ex *workflowpb.WorkflowExecutionInfo) {
		runID, ok := s.expired(ref, updated[ref.ID], now)
		if !ok {
			return
		}
		if ex != nil {
			// Another run than the one trusted is one started since that
			// one ended, so after it was at work on this content (one run
			// of an ID runs at a time): bound to see it too.
			runID = ex.GetExecution().GetRunId()
		}
		s.record(ref, updated[ref.ID], runID)
		s.verified.Add(1)
	})
}

// adoptRunning, in the scans of a starter that has not yet completed one
// (see Scan), asks visibility which of model's objects ids, pending with
// content updated, that the starter knows no run of, have a run running
// that started after that content was written: bound to see it, as a run
// the starter started for it would be. It trusts those for a window
// (adopt), then verifies them as its own (verifyRunning), rather than
// start them again: a restarted starter would otherwise join, once, the
// running workflow of every object of a backlog (at 100,000 pending, as
// many failed creations in the server). The start time is the Temporal
// server's clock and the content's the database's: a run started just
// before a change, within their skew, may be trusted for one window
// without having seen it. A failed query leaves them to be started, as
// verifyRunning's does.
func (s *Starter) adoptRunning(ctx context.Context, model string, ids []int64, updated map[int64]time.Time) {
	var due []models.Ref
	s.mu.Lock()
	for _, id := range ids {
		ref := models.Ref{Model: model, ID: id}
		if _, known := s.recent[ref]; !known && !updated[id].IsZero() {
			due = append(due, ref)
		}
	}
	s.mu.Unlock()
	s.running(ctx, due, false, func(ref models.Ref, ex *workflowpb.WorkflowExecutionInfo) {
		if ex.GetStartTime().AsTime().After(updated[ref.ID]) && s.adopt(ref, updated[ref.ID], ex.GetExecution().GetRunId()) {
			s.adopted.Add(1)
		}
	})
}

// anyRunning reports whether visibility shows a workflow running on the
// task queue, or cannot say: whether the first scans have runs to adopt
// (adoptRunning). A new synchronizer's first scan, with a backlog, so
// asks one count rather than a query per hundred objects.
func (s *Starter) anyRunning(ctx context.Context) bool {
	q := s.opts.TaskQueue
	if strings.ContainsAny(q, `'"\`) {
		return true
	}
	resp, err := s.client.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{
		Query: fmt.Sprintf("TaskQueue = '%s' AND ExecutionStatus = 'Running'", q),
	})
	return err != nil || resp.GetCount() > 0
}

// RunningQuery is the visibility query that a scan asks of the workflows
// ids (each free of quotes and backslashes): those of them that run.
func RunningQuery(ids []string) string {
	return fmt.Sprintf("WorkflowId IN ('%s') AND ExecutionStatus = 'Running'", strings.Join(ids, "', '"))
}

// running asks visibility, verifyBatch workflow IDs per query, which of
// the workflows of refs have a run running, and calls found with each and
// that run. With counted, it first counts them, and when all of a batch
// run, calls found with a nil run for each: a count's answer is a number,
// a list's the whole record of each run (search attributes and memo
// included), which the server reads, encodes and sends and the starter
// decodes; in a backlog nearly every batch verified runs whole.
func (s *Starter) running(ctx context.Context, refs []models.Ref, counted bool, found func(models.Ref, *workflowpb.WorkflowExecutionInfo)) {
	due := map[string]models.Ref{}
	var wids []string
	for _, ref := range refs {
		wid := workflows.WorkflowID(s.opts.Params.Synchronizer, ref)
		// IDs are the synchronizer's name, a model name and a number; one
		// that a query could not quote is simply started again.
		if !strings.ContainsAny(wid, `'"\`) {
			due[wid] = ref
			wids = append(wids, wid)
		}
	}
	failed := func(err error) {
		if ctx.Err() == nil {
			s.verifyFailed(err)
		}
	}
	for batch := range slices.Chunk(wids, verifyBatch) {
		n := len(batch)
		query := RunningQuery(batch)
		if counted {
			resp, err := s.client.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Query: query})
			if err != nil {
				failed(err)
				return
			}
			// A workflow ID has one run running at most.
			if resp.GetCount() == int64(n) {
				for _, wid := range batch {
					found(due[wid], nil)
				}
				continue
			}
		}
		resp, err := s.client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{PageSize: int32(n), Query: query})
		if err != nil {
			failed(err)
			return
		}
		for _, ex := range resp.GetExecutions() {
			if ref, ok := due[ex.GetExecution().GetWorkflowId()]; ok {
				found(ref, ex)
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
