package workflows_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/tsync/tsync/internal/activities"
	"github.com/tsync/tsync/internal/workflows"
	"github.com/tsync/tsync/models"
)

// The schedule of the config's defaults: constant with
// observer_backoff_disabled (coefficient 1), doubling to the cap without.
func TestRetrySchedule(t *testing.T) {
	disabled := workflows.RetryParams{Initial: time.Second, Max: time.Minute, Coefficient: 1}
	require.Equal(t, []time.Duration{time.Second, time.Second, time.Second, time.Second}, disabled.Schedule(4))
	require.Equal(t, "every 1s, forever", disabled.Describe())

	backoff := workflows.RetryParams{Initial: time.Second, Max: time.Minute, Coefficient: 2}
	s := func(secs ...int) []time.Duration {
		var out []time.Duration
		for _, n := range secs {
			out = append(out, time.Duration(n)*time.Second)
		}
		return out
	}
	require.Equal(t, s(1, 2, 4, 8, 16, 32, 60, 60, 60), backoff.Schedule(9))
	require.Equal(t, "after 1s, 2s, 4s, 8s, 16s, 32s, then every 1m, forever", backoff.Describe())

	// Max below Initial: Initial is the cap.
	low := workflows.RetryParams{Initial: 5 * time.Second, Max: time.Second, Coefficient: 2}
	require.Equal(t, s(5, 5, 5), low.Schedule(3))
	require.Equal(t, "every 5s, forever", low.Describe())
	require.Equal(t, "every 1h30m, forever", workflows.RetryParams{Initial: 90 * time.Minute, Coefficient: 1}.Describe())
	require.Equal(t, "every 2h, forever", workflows.RetryParams{Initial: 2 * time.Hour, Coefficient: 1}.Describe())
	require.Equal(t, "every 250ms, forever", workflows.RetryParams{Initial: 250 * time.Millisecond, Coefficient: 1}.Describe())
	// A coefficient below 1 is 1.
	require.Equal(t, s(2, 2), workflows.RetryParams{Initial: 2 * time.Second, Max: time.Hour, Coefficient: 0.5}.Schedule(2))
	// A slow growth is cut after 8 delays.
	slow := workflows.RetryParams{Initial: time.Second, Max: time.Hour, Coefficient: 1.5}
	require.Equal(t, "after 1s, 1.5s, 2.25s, 3.375s, 5.0625s, 7.59375s, 11.390625s, 17.0859375s, ... up to every 1h, forever", slow.Describe())
	require.Empty(t, slow.Schedule(0))
	require.Len(t, slow.Schedule(40), 40)
	require.Equal(t, time.Hour, slow.Schedule(40)[39])
}

// Schedule is what the workflow does: the gaps between the attempts of a
// failing step, run by the SDK's test environment (which computes an
// activity's retries as the server does), are the schedule.
func TestRetryScheduleMatchesWorkflow(t *testing.T) {
	const failures = 7
	for _, retry := range []workflows.RetryParams{
		{Initial: time.Second, Max: time.Minute, Coefficient: 1},
		{Initial: time.Second, Max: 20 * time.Second, Coefficient: 2},
		{Initial: 300 * time.Millisecond, Max: 10 * time.Second, Coefficient: 1.7},
		{Initial: 4 * time.Second, Max: time.Second, Coefficient: 3},
		{Initial: time.Second, Max: 5 * time.Minute, Coefficient: 10},
	} {
		t.Run(fmt.Sprint(retry), func(t *testing.T) {
			w := newWorld()
			site := ref("Site", 1)
			w.add(site, object{pending: true})
			w.syncHook = func(r models.Ref, n int, o *object) (activities.SyncResult, error, bool) {
				if n <= failures {
					o.code, o.status = models.CodeError, "quota exceeded"
					return activities.SyncResult{}, temporal.NewApplicationError("quota exceeded", activities.ErrTypeStep), true
				}
				return activities.SyncResult{}, nil, false
			}
			h := newHarness(t, w, harnessOptions{})
			p := testParams
			p.Retry = retry
			p.StepTimeout = 24 * time.Hour

			res, err := h.runSync(t, site, p)
			require.NoError(t, err)
			require.Equal(t, workflows.StateInSync, res.Outcome)
			starts := h.startsOf("SyncObject", site)
			require.Len(t, starts, failures+1)
			require.Equal(t, retry.Schedule(failures), gaps(starts))
		})
	}
}
