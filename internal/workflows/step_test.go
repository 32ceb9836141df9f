package workflows_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/tsync/tsync/internal/activities"
	"github.com/tsync/tsync/internal/workflows"
	"github.com/tsync/tsync/models"
)

// A DeferredError is not backed off: the step is tried again after the plain
// loop interval, every time.
func TestSyncDeferredRetriesAtLoopInterval(t *testing.T) {
	w := newWorld()
	site := ref("Site", 1)
	w.add(site, object{pending: true})
	w.syncHook = func(r models.Ref, n int, o *object) (activities.SyncResult, error, bool) {
		if n <= 2 {
			o.code, o.status = models.CodePending, "deferred: waiting for quota"
			return activities.SyncResult{}, temporal.NewNonRetryableApplicationError("waiting for quota", activities.ErrTypeDeferred, nil), true
		}
		return activities.SyncResult{}, nil, false
	}
	h := newHarness(t, w, harnessOptions{})

	res, err := h.runSync(t, site, testParams)
	require.NoError(t, err)
	require.Equal(t, workflows.StateInSync, res.Outcome)
	starts := h.startsOf("SyncObject", site)
	require.Len(t, starts, 3)
	require.Equal(t, []time.Duration{time.Second, time.Second}, gaps(starts))
	for _, s := range starts {
		require.Equal(t, int32(1), s.Attempt, "each try is a new activity, not a Temporal retry")
	}
	inSync(t, w, site)
}

// A failed step is retried after workflow timers with the schedule of
// RetryParams.Schedule: exponential backoff capped at Max, or a constant
// interval with Coefficient 1.
func TestSyncStepFailureRetriedWithBackoff(t *testing.T) {
	for _, tc := range []struct {
		name  string
		retry workflows.RetryParams
		gaps  []time.Duration
	}{
		{"exponential capped", workflows.RetryParams{Initial: time.Second, Max: 4 * time.Second, Coefficient: 2},
			[]time.Duration{1 * time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second, 4 * time.Second}},
		{"backoff disabled", workflows.RetryParams{Initial: time.Second, Max: 8 * time.Second, Coefficient: 1},
			[]time.Duration{time.Second, time.Second, time.Second, time.Second, time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld()
			site := ref("Site", 1)
			w.add(site, object{pending: true})
			w.syncHook = func(r models.Ref, n int, o *object) (activities.SyncResult, error, bool) {
				if n <= 5 {
					o.code, o.status = models.CodeError, "quota exceeded"
					return activities.SyncResult{}, temporal.NewApplicationError("quota exceeded", activities.ErrTypeStep), true
				}
				return activities.SyncResult{}, nil, false
			}
			h := newHarness(t, w, harnessOptions{})
			p := testParams
			p.Retry = tc.retry

			res, err := h.runSync(t, site, p)
			require.NoError(t, err)
			require.Equal(t, workflows.StateInSync, res.Outcome)
			starts := h.startsOf("SyncObject", site)
			require.Len(t, starts, 6)
			require.Equal(t, tc.gaps, gaps(starts))
			// Each attempt is an activity of its own, after a workflow timer
			// (interruptible by SignalChanged), and the object is looked at
			// again before each.
			for _, s := range starts {
				require.Equal(t, int32(1), s.Attempt, "each attempt is a new activity")
			}
			require.Len(t, h.startsOf("Inspect", site), 6, "one look before each attempt")
			inSync(t, w, site)
		})
	}
}
