package workflows_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/workflow"

	"github.com/tsync/tsync/internal/activities"
	"github.com/tsync/tsync/internal/replaytest"
	"github.com/tsync/tsync/internal/workflows"
	"github.com/tsync/tsync/models"
)

// A deliberate change of the workflows' code, and what workflow.GetVersion
// does for the workflows in flight when it ships.
//
// The change: before each sync step (the SyncObject or SyncReady
// activity), the sync workflow runs a Precheck local activity. It is made
// by a worker interceptor, so that the workflow that changes is the real
// SyncWorkflow, changed at the place an edit of step.go would change it: in the middle of
// a run, after its inspections, policies and dependencies, where the
// workflows in flight at an upgrade are. (A wrapper registered under the
// SyncWorkflow name could only add a step before or after the whole run.)
//
// The histories it is checked against: those TestRecordHistories recorded
// from the current code (historyDir), that is from before the change; and
// those it recorded from the changed code (changedHistoryDir), one run
// entirely on it and one run started on the current code and upgraded to
// the changed code in flight.

// changeID is the workflow.GetVersion change ID of the deliberate change.
const changeID = "precheck-before-sync"

// changedHistoryDir holds the histories TestRecordHistories recorded from
// the changed code.
const changedHistoryDir = "testdata/changed"

// precheckChange is the deliberate change, as a worker interceptor: before
// each SyncObject or SyncReady activity, a Precheck local activity.
// Guarded, it does so only in runs for which workflow.GetVersion(changeID) says version 1: the
// runs that reach their first step on the changed code.
type precheckChange struct {
	interceptor.WorkerInterceptorBase
	guarded bool
	// w runs Precheck; nil in replays, which take its result from the
	// history.
	w *recWorld
}

// changeUnguarded is the change as one would write it without versioning.
func changeUnguarded(w *recWorld) interceptor.WorkerInterceptor {
	return &precheckChange{w: w}
}

// changeGuarded is the change guarded by workflow.GetVersion:
//
//	if workflow.GetVersion(ctx, changeID, workflow.DefaultVersion, 1) == 1 {
//		// run Precheck
//	}
func changeGuarded(w *recWorld) interceptor.WorkerInterceptor {
	return &precheckChange{guarded: true, w: w}
}

func (c *precheckChange) InterceptWorkflow(_ workflow.Context, next interceptor.WorkflowInboundInterceptor) interceptor.WorkflowInboundInterceptor {
	i := &precheckInbound{c: c}
	i.Next = next
	return i
}

type precheckInbound struct {
	interceptor.WorkflowInboundInterceptorBase
	c *precheckChange
}

func (i *precheckInbound) Init(outbound interceptor.WorkflowOutboundInterceptor) error {
	o := &precheckOutbound{c: i.c}
	o.Next = outbound
	return i.Next.Init(o)
}

type precheckOutbound struct {
	interceptor.WorkflowOutboundInterceptorBase
	c *precheckChange
}

func (o *precheckOutbound) ExecuteActivity(ctx workflow.Context, activityType string, args ...any) workflow.Future {
	if (activityType == "SyncObject" || activityType == "SyncReady") && (!o.c.guarded || workflow.GetVersion(ctx, changeID, workflow.DefaultVersion, 1) == 1) {
		lctx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{StartToCloseTimeout: 10 * time.Second})
		if err := workflow.ExecuteLocalActivity(lctx, o.c.w.Precheck, args...).Get(ctx, nil); err != nil {
			f, s := workflow.NewFuture(ctx)
			s.SetError(err)
			return f
		}
	}
	return o.Next.ExecuteActivity(ctx, activityType, args...)
}

// replayWith replays the history file f against the object workflows,
// changed by change (nil: the current code).
func replayWith(t *testing.T, f string, change interceptor.WorkerInterceptor) error {
	t.Helper()
	h, err := replaytest.Load(f)
	require.NoError(t, err)
	// No logger: the replays that must fail log their panics.
	o := replaytest.Options{Workflows: objectWorkflows()}
	if change != nil {
		o.Interceptors = []interceptor.WorkerInterceptor{change}
	}
	return replaytest.Replay(h, o)
}

// syncSteps returns how many SyncObject and SyncReady activities the
// history f records.
func syncSteps(t *testing.T, f string) int {
	t.Helper()
	h, err := replaytest.Load(f)
	require.NoError(t, err)
	return replaytest.Count(h, evActivity, "SyncObject") + replaytest.Count(h, evActivity, "SyncReady")
}

// The change without workflow.GetVersion: every recorded run that reached a
// sync step no longer replays (a non-determinism error: the code runs
// Precheck where the history has the step); those that never reached one
// (deletions, a sync that continued as a deletion) are unaffected.
func TestChangeWithoutVersionBreaksRecordedHistories(t *testing.T) {
	files, err := replaytest.Files(historyDir)
	require.NoError(t, err)
	broken, unaffected := 0, 0
	for _, f := range files {
		err := replayWith(t, f, changeUnguarded(nil))
		if syncSteps(t, f) == 0 {
			require.NoError(t, err, f)
			unaffected++
			continue
		}
		// TMPRL1100: the SDK's code of a non-determinism error.
		require.ErrorContains(t, err, "[TMPRL1100]", f)
		broken++
	}
	require.Greater(t, broken, 10, "runs with a sync step")
	require.Positive(t, unaffected, "runs without one")
}

// The same change guarded by workflow.GetVersion: every run recorded before
// it replays, taking the old path (workflow.DefaultVersion).
func TestChangeWithVersionReplaysRecordedHistories(t *testing.T) {
	files, err := replaytest.Files(historyDir)
	require.NoError(t, err)
	for _, f := range files {
		require.NoError(t, replayWith(t, f, changeGuarded(nil)), f)
	}
}

// The runs recorded from the guarded change replay against it: the run
// that started on it (new-*, version 1 in every workflow), and the runs
// upgraded in flight (upgrade-*): the Site's step was issued before the
// upgrade, so its run stays on DefaultVersion after it; the Instance, held
// before the upgrade, reaches its first step after it and takes version 1.
// Those with a Precheck would not replay on the code before the change: a
// deployment cannot go back to it once they ran.
func TestChangeWithVersionReplaysNewHistories(t *testing.T) {
	files, err := replaytest.Files(changedHistoryDir)
	require.NoError(t, err)
	var names []string
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		names = append(names, name)
		require.NoError(t, replayWith(t, f, changeGuarded(nil)), f)

		h, err := replaytest.Load(f)
		require.NoError(t, err)
		prechecks := replaytest.Count(h, evMarker, "Precheck")
		version, marked := changeVersion(t, h)
		if marked {
			require.Equal(t, workflow.Version(1), version, name)
		}
		require.Equal(t, prechecks > 0, marked, "%s: Precheck ran in the runs of version 1", name)
		if prechecks == 0 {
			require.NoError(t, replayWith(t, f, nil), f)
			continue
		}
		require.ErrorContains(t, replayWith(t, f, nil), "[TMPRL1100]", f)
	}
	require.ElementsMatch(t, []string{
		"new-Instance-1-1", "new-Site-1-1", "new-Slice-1-1",
		"upgrade-Instance-1-1", "upgrade-Site-1-1",
	}, names)
	for _, name := range []string{"upgrade-Instance-1-1", "upgrade-Site-1-1"} {
		h, err := replaytest.Load(filepath.Join(changedHistoryDir, name+".json"))
		require.NoError(t, err)
		require.Equal(t, []string{workerOld, workerNew}, identities(h), "%s: run by the current code, then by the changed code", name)
	}
}

// changeVersion returns the version h's run recorded for changeID, if it
// recorded one (at most one, the first time it called GetVersion live).
func changeVersion(t *testing.T, h *historypb.History) (workflow.Version, bool) {
	t.Helper()
	var versions []workflow.Version
	dc := converter.GetDefaultDataConverter()
	for _, e := range h.Events {
		a := e.GetMarkerRecordedEventAttributes()
		if a.GetMarkerName() != "Version" {
			continue
		}
		var id string
		var v workflow.Version
		require.NoError(t, dc.FromPayloads(a.GetDetails()["change-id"], &id))
		require.NoError(t, dc.FromPayloads(a.GetDetails()["version"], &v))
		require.Equal(t, changeID, id)
		versions = append(versions, v)
	}
	require.LessOrEqual(t, len(versions), 1)
	if len(versions) == 0 {
		return 0, false
	}
	return versions[0], true
}

// changedRecordings are the scenarios recorded on the changed code.
func changedRecordings() []recording {
	site, slice, instance := ref("Site", 1), ref("Slice", 1), ref("Instance", 1)
	inSyncResult := func(o models.Ref) workflows.Result {
		return workflows.Result{Object: o, Outcome: workflows.StateInSync}
	}
	return []recording{
		{
			// The chain, entirely on the changed code.
			name:    "new",
			changed: true,
			world: func() *recWorld {
				w := newRecWorld()
				w.add(site, object{pending: true})
				w.add(slice, object{pending: true, deps: []models.Ref{site}})
				w.add(instance, object{pending: true, deps: []models.Ref{slice}})
				return w
			},
			run: func(t *testing.T, r *recorder) {
				require.Equal(t, inSyncResult(instance), r.wait(t, r.start(t, instance, false)))
			},
			check: func(t *testing.T, r *recorder, h histories) {
				require.Equal(t, []models.Ref{site, slice, instance}, r.w.precheckCalls())
				require.Equal(t, []models.Ref{site, slice, instance}, r.w.callsOf("SyncObject"))
				for _, o := range []models.Ref{site, slice, instance} {
					ho := h.of(t, r.name, o, 1)
					require.Equal(t, 1, replaytest.Count(ho, evMarker, "Version"), "%s", o)
					require.Equal(t, 1, replaytest.Count(ho, evMarker, "Precheck"), "%s", o)
					require.Equal(t, []string{workerNew}, identities(ho))
				}
			},
		},
		{
			// Started on the current code, upgraded in flight: the Site in
			// the backoff of its failing step, the Instance held on a
			// missing dependency.
			name: "upgrade",
			world: func() *recWorld {
				w := newRecWorld()
				w.add(site, object{pending: true})
				w.add(instance, object{pending: true, deps: []models.Ref{ref("Site", 2)}})
				w.syncHook = func(r models.Ref, n int, o *object) (activities.SyncResult, error, bool) {
					if r == site && !w.opened {
						o.code, o.status = models.CodeError, "quota exceeded"
						return activities.SyncResult{}, stepError("quota exceeded"), true
					}
					return activities.SyncResult{}, nil, false
				}
				return w
			},
			run: func(t *testing.T, r *recorder) {
				siteRun, instanceRun := r.start(t, site, false), r.start(t, instance, false)
				r.until(t, "the Site's step retried, the Instance held twice", func() bool {
					return r.w.count("SyncObject", site) >= 2 && r.w.count("RecordStatus", instance) >= 2
				})
				r.upgrade(t)
				r.until(t, "the Site's step retried, the Instance held, on the new worker", func() bool {
					return r.w.count("SyncObject", site) >= 4 && r.w.count("RecordStatus", instance) >= 4
				})
				r.w.open()
				r.w.add(ref("Site", 2), object{synced: true, code: models.CodeOK, status: "OK"})
				require.Equal(t, inSyncResult(site), r.wait(t, siteRun))
				require.Equal(t, inSyncResult(instance), r.wait(t, instanceRun))
			},
			check: func(t *testing.T, r *recorder, h histories) {
				require.Equal(t, []models.Ref{instance}, r.w.precheckCalls())
				hs, hi := h.of(t, r.name, site, 1), h.of(t, r.name, instance, 1)
				require.Zero(t, replaytest.Count(hs, evMarker, "Version"))
				require.Equal(t, 1, replaytest.Count(hi, evMarker, "Version"))
				require.Equal(t, 1, replaytest.Count(hi, evMarker, "Precheck"))
				require.Equal(t, []string{workerOld, workerNew}, identities(hs))
				require.Equal(t, []string{workerOld, workerNew}, identities(hi))
			},
		},
	}
}
