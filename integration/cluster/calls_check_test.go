package cluster_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync/models"
)

// sameAttempt returns c made by attempt.
func sameAttempt(c stepCall, attempt string) stepCall {
	c.Attempt = attempt
	return c
}

// checkCalls on made-up runs (no cluster needed): what it allows and what it
// reports, so that the cluster test's verdicts can be trusted.
func TestCheckCalls(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	ptr := func(ms int) *time.Time { x := at(ms); return &x }
	site := models.Ref{Model: "Site", ID: 1}
	slice := models.Ref{Model: "Slice", ID: 1} // same id, another model
	v1, v2 := at(-1000), at(-500)              // two content versions
	call := func(n int64, worker int, ref models.Ref, updated time.Time, enacted *time.Time, start int, end *time.Time, outcome string) stepCall {
		// Each call its own activity attempt, unless changed.
		return stepCall{Call: n, Worker: worker, Ref: ref, Updated: updated, EnactedBefore: enacted, Attempt: fmt.Sprintf("run/%d/1", n),
			Start: at(start), End: end, Outcome: outcome}
	}

	t.Run("clean run", func(t *testing.T) {
		rep := checkCalls([]stepCall{
			call(1, 1, site, v1, nil, 0, ptr(30), outcomeOK),
			call(2, 2, slice, v1, nil, 10, ptr(40), outcomeOK), // overlaps call 1 in time: another object
			call(3, 2, site, v2, &v1, 30, ptr(60), outcomeOK),  // new content, right after the last call
		}, nil)
		require.Empty(t, rep.Violations)
		require.Equal(t, callReport{Calls: 3, Contents: 3}, rep)
	})

	t.Run("allowed repeats", func(t *testing.T) {
		rep := checkCalls([]stepCall{
			// Cut short by its activity's cancellation, then again.
			call(1, 1, site, v1, nil, 0, ptr(10), outcomeCut),
			call(2, 2, site, v1, nil, 20, ptr(50), outcomeOK),
			// Completed, success not recorded when the next began.
			call(3, 1, site, v2, &v1, 60, ptr(90), outcomeOK),
			call(4, 2, site, v2, &v1, 100, ptr(130), outcomeOK),
			// Never ended: its worker died at 40.
			call(5, 1, slice, v1, nil, 0, nil, ""),
			call(6, 2, slice, v1, nil, 40, ptr(70), outcomeOK),
		}, map[int]time.Time{1: at(40)})
		require.Empty(t, rep.Violations)
		require.Equal(t, callReport{Calls: 6, Contents: 3, Cut: 2, Repeats: 3, RepeatsAfterCut: 2, RepeatsAfterUnrecorded: 1}, rep)
	})

	t.Run("violations", func(t *testing.T) {
		rep := checkCalls([]stepCall{
			call(1, 1, site, v1, nil, 0, ptr(30), outcomeOK),
			call(2, 2, site, v1, nil, 20, ptr(50), outcomeOK), // overlaps call 1
			call(3, 2, site, v1, &v1, 60, ptr(90), outcomeOK), // enacted covered v1 already
			call(4, 1, slice, v2, nil, 0, ptr(30), outcomeOK),
			call(5, 1, slice, v1, &v2, 40, ptr(70), outcomeOK), // older content after newer
			call(6, 2, slice, v2, nil, 80, nil, ""),            // never ended, worker 2 alive
			call(7, 1, slice, v2, nil, 85, ptr(95), outcomeOK),
			sameAttempt(call(8, 1, slice, v2, nil, 100, ptr(130), outcomeOK), "run/7/1"), // by call 7's attempt
		}, map[int]time.Time{1: at(10)})
		require.Equal(t, []string{
			"calls 1 and 2 of model Site id 1 overlap: 12:00:00.000000-12:00:00.030000 and 12:00:00.020000-12:00:00.050000",
			"content 11:59:59.000000 of model Site id 1 synced twice: call 2 completed, and call 3 began with enacted 11:59:59.000000 already covering it",
			"call 5 of model Slice id 1 got content 11:59:59.000000, older than call 4's 11:59:59.500000",
			"call 6 of model Slice id 1 never ended, and its worker 2 did not die",
			"content 11:59:59.500000 of model Slice id 1 synced twice by one activity attempt (run/7/1): calls 7 and 8",
		}, rep.Violations)
		// Calls 2 and 6 repeated a completed call without enacted covering
		// the content (an unrecorded completion), call 7 one that never
		// ended (cut short); calls 3 and 8 are violations.
		rep.Violations = nil
		require.Equal(t, callReport{Calls: 8, Contents: 3, Cut: 1, Repeats: 5, RepeatsAfterCut: 1, RepeatsAfterUnrecorded: 2}, rep)
	})
}
