package inspect

import (
	"context"
	"errors"
	"fmt"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/converter"

	"github.com/tsync/tsync/internal/workflows"
	"github.com/tsync/tsync/models"
)

// Workflow is what Temporal says of an object's workflow.
type Workflow struct {
	// ID is the workflow ID (workflows.WorkflowID).
	ID string
	// URL is its page in the Temporal Web UI ("" when the UI is unknown).
	URL string
	// Known reports that Temporal answered about it (false without a
	// client, or when Temporal could not be reached: see Problem).
	Known bool
	// Status is the latest run's status ("Running", "Completed", ...),
	// "" when no workflow of this ID ever ran (or none is kept).
	Status string
	// Running reports a running workflow.
	Running bool
	// TaskQueue is the latest run's task queue.
	TaskQueue string
	// Live is the running workflow's answer to workflows.QueryState; nil
	// when it is not running or no worker answered (see Problem).
	Live *workflows.LiveState
	// Activity is the type of the pending activity ("": none pending).
	Activity string
	// Attempt is the pending activity's attempt (1 for the first).
	Attempt int32
	// MaximumAttempts is the pending activity's retry policy's maximum
	// (0: unlimited; 1: the step's first attempt, run as an activity of
	// its own, whose retries come as another activity).
	MaximumAttempts int32
	// NextRetry is when the pending activity's next attempt is scheduled,
	// when it waits for a retry.
	NextRetry *time.Time
	// Failed is how many attempts of the step failed for the object's
	// current content, as the workflow's memo says (workflows' "attempt"
	// key; 0 when the memo has none: no failure, or a run of older code,
	// whose attempts the pending activity tells). NextRetry then comes from
	// the memo's "next_retry".
	Failed int
	// LastFailure is the pending activity's last failure message.
	LastFailure string
	// Problem says why something is unknown: Temporal unreachable, or the
	// live state unanswered (no worker polls the task queue).
	Problem string
}

// workflow asks Temporal about ref's workflow.
func (i *Inspector) workflow(ctx context.Context, ref models.Ref) Workflow {
	w := Workflow{ID: workflows.WorkflowID(i.opts.Synchronizer, ref)}
	w.URL = WorkflowURL(i.opts.UIURL, i.opts.Namespace, w.ID)
	if i.temporal == nil {
		return w
	}
	dctx, cancel := context.WithTimeout(ctx, i.opts.QueryTimeout)
	defer cancel()
	desc, err := i.temporal.DescribeWorkflow(dctx, w.ID, "")
	var nf *serviceerror.NotFound
	switch {
	case errors.As(err, &nf):
		w.Known = true
		return w
	case err != nil:
		w.Problem = fmt.Sprintf("Temporal did not answer: %v", err)
		return w
	}
	w.Known = true
	resp := desc.RawResponse
	info := resp.GetWorkflowExecutionInfo()
	w.Status = statusName(info.GetStatus().String())
	w.TaskQueue = info.GetTaskQueue()
	w.Running = w.Status == "Running"
	if acts := resp.GetPendingActivities(); len(acts) > 0 {
		a := acts[0]
		w.Activity = a.GetActivityType().GetName()
		w.Attempt = a.GetAttempt()
		w.MaximumAttempts = a.GetMaximumAttempts()
		if t := a.GetNextAttemptScheduleTime(); t != nil && t.IsValid() && !t.AsTime().IsZero() {
			next := t.AsTime()
			w.NextRetry = &next
		}
		w.LastFailure = a.GetLastFailure().GetMessage()
	}
	if w.Running {
		memoRetry(info.GetMemo(), &w)
	}
	if !w.Running {
		return w
	}
	qctx, qcancel := context.WithTimeout(ctx, i.opts.QueryTimeout)
	defer qcancel()
	v, err := i.temporal.QueryWorkflow(qctx, w.ID, "", workflows.QueryState)
	if err != nil {
		var deadline *serviceerror.DeadlineExceeded
		var canceled *serviceerror.Canceled
		// The server gives up on the query a little before our deadline,
		// with its own DeadlineExceeded: both mean no worker answered. It
		// cancels it (Canceled, "context canceled") when the worker it
		// handed it to stopped polling.
		switch {
		case qctx.Err() != nil || errors.As(err, &deadline):
			w.Problem = fmt.Sprintf("no worker answered the state query within %s: is a worker polling task queue %s?", i.opts.QueryTimeout, w.TaskQueue)
		case errors.As(err, &canceled):
			w.Problem = fmt.Sprintf("the worker handed the state query stopped before it answered: is a worker polling task queue %s?", w.TaskQueue)
		default:
			w.Problem = fmt.Sprintf("state query failed: %v", err)
		}
		return w
	}
	var live workflows.LiveState
	if err := v.Get(&live); err != nil {
		w.Problem = fmt.Sprintf("state query answer: %v", err)
		return w
	}
	w.Live = &live
	return w
}

// statusName turns "WORKFLOW_EXECUTION_STATUS_RUNNING" into "Running".
func statusName(s string) string {
	const prefix = "WORKFLOW_EXECUTION_STATUS_"
	if len(s) > len(prefix) && s[:len(prefix)] == prefix {
		s = s[len(prefix):]
	}
	if s == "" {
		return ""
	}
	b := []byte(s)
	for j := 1; j < len(b); j++ {
		if b[j] >= 'A' && b[j] <= 'Z' {
			b[j] += 'a' - 'A'
		}
	}
	return string(b)
}

// StepAttempt is the number of the step call under way (1 for the first):
// the workflow runs a step's first attempt as an activity limited to one
// attempt, and its retries as another activity whose attempts count from 1
// again (as internal/activities does for its log lines).
//
// Runs that keep their retries in the memo (Failed set) run each attempt
// as an activity of its own: the call under way, or next, is Failed+1.
func (w Workflow) StepAttempt() int32 {
	if w.Failed > 0 {
		return int32(w.Failed) + 1
	}
	n := max(w.Attempt, 1)
	if w.MaximumAttempts != 1 {
		n++
	}
	return n
}

// memoRetry sets w.Failed and w.NextRetry from the memo (see MemoRetry).
func memoRetry(memo *commonpb.Memo, w *Workflow) {
	if n, next := MemoRetry(memo); n > 0 {
		w.Failed, w.NextRetry = n, next
	}
}

// MemoRetry reads the memo keys "attempt" and "next_retry" that object
// workflows write while a step fails: the attempts failed for the object's
// current content (0: none in the memo) and when the next runs (nil:
// unknown).
func MemoRetry(memo *commonpb.Memo) (int, *time.Time) {
	fields := memo.GetFields()
	p, ok := fields["attempt"]
	if !ok {
		return 0, nil
	}
	dc := converter.GetDefaultDataConverter()
	var n int
	if err := dc.FromPayload(p, &n); err != nil || n <= 0 {
		return 0, nil
	}
	var next string
	if p, ok := fields["next_retry"]; ok && dc.FromPayload(p, &next) == nil {
		if t, err := time.Parse(time.RFC3339Nano, next); err == nil {
			return n, &t
		}
	}
	return n, nil
}
