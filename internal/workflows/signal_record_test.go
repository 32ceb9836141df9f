package workflows_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync/internal/activities"
	"github.com/tsync/tsync/internal/replaytest"
	"github.com/tsync/tsync/internal/workflows"
	"github.com/tsync/tsync/models"
)

// signalRecording is the scenario of SignalChanged during a step's backoff
// (see TestReplayHistories): a spurious signal, a fix, and a delete.
func signalRecording() recording {
	site, network := ref("Site", 1), ref("Network", 1)
	return recording{
		name: "signal",
		params: func(p *workflows.Params) {
			// Long enough that only a signal can end the wait in time.
			p.Retry = workflows.RetryParams{Initial: time.Minute, Max: time.Minute, Coefficient: 2}
		},
		world: func() *recWorld {
			w := newRecWorld()
			w.add(site, object{pending: true})
			w.add(network, object{pending: true})
			w.syncHook = func(r models.Ref, n int, o *object) (activities.SyncResult, error, bool) {
				if r == site && n == 1 || r == network {
					o.code, o.status = models.CodeError, "bad field"
					return activities.SyncResult{}, stepError("bad field"), true
				}
				return activities.SyncResult{}, nil, false
			}
			return w
		},
		run: func(t *testing.T, r *recorder) {
			signal := func(ref models.Ref) {
				require.NoError(t, r.c.SignalWorkflow(context.Background(), workflows.WorkflowID(r.p.Synchronizer, ref), "", workflows.SignalChanged, workflows.Changed{}))
			}
			timers := func(ref models.Ref, n int) func() bool {
				return func() bool { return r.timers(t, ref) >= n }
			}
			sr, nr := r.start(t, site, false), r.start(t, network, false)
			r.until(t, "the Site's backoff", timers(site, 1))
			signal(site) // spurious: the content is the same
			r.until(t, "the Site's wait resumed", timers(site, 2))
			r.w.update(site, bump)
			signal(site)
			require.Equal(t, workflows.Result{Object: site, Outcome: workflows.StateInSync}, r.wait(t, sr))

			r.until(t, "the Network's backoff", timers(network, 1))
			r.w.update(network, func(o *object) { o.deleted = true; bump(o) })
			signal(network)
			require.Equal(t, workflows.Result{Object: network, Outcome: workflows.StateGone}, r.wait(t, nr))
		},
		check: func(t *testing.T, r *recorder, h histories) {
			require.Equal(t, []models.Ref{site, network, site}, r.w.callsOf("SyncObject"))
			require.Equal(t, []models.Ref{network}, r.w.callsOf("DeleteObject"))
			hs := h.of(t, r.name, site, 1)
			require.Equal(t, 2, replaytest.Count(hs, evSignaled, workflows.SignalChanged))
			require.Equal(t, 2, replaytest.Count(hs, evTimer, ""), "the backoff, resumed after the spurious signal")
			hn := h.of(t, r.name, network, 1)
			require.Equal(t, evContinued, lastEvent(hn))
			require.Len(t, h, 3)
		},
	}
}

// timers returns how many timers the current run of ref's workflow has
// started (0 when its history cannot be read).
func (r *recorder) timers(t *testing.T, ref models.Ref) int {
	t.Helper()
	it := r.c.GetWorkflowHistory(context.Background(), workflows.WorkflowID(r.p.Synchronizer, ref), "", false, 0)
	n := 0
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return 0
		}
		if ev.GetEventType() == evTimer {
			n++
		}
	}
	return n
}
