package workflows_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/tsync/tsync/internal/activities"
	"github.com/tsync/tsync/internal/syncstate"
	"github.com/tsync/tsync/models"
)

// The simulated world: an in-memory "database" the fake activities read and
// update.

type object struct {
	deleted      bool
	writeProtect bool
	blocked      bool
	pending      bool
	// policy: its model policies have not run since its last update.
	policy bool
	// synced: its current content was synced (enacted not older than
	// updated); Inspect reports it as the dependency's Synced.
	synced bool
	code   int
	status string
	deps   []models.Ref
	// updated is the content's version (Inspection.Updated).
	updated time.Time
}

// call is one fake activity invocation, in the order the fakes ran.
type call struct {
	Activity string
	Ref      models.Ref
}

// statusRecord is one RecordStatus call.
type statusRecord struct {
	Ref  models.Ref
	Code int
	Text string
}

// syncHook overrides SyncObject's behaviour for its n-th call (1-based) on an
// object; handled false falls back to the default behaviour.
type syncHook func(ref models.Ref, n int, o *object) (res activities.SyncResult, err error, handled bool)

// deleteHook is syncHook's counterpart for DeleteObject.
type deleteHook func(ref models.Ref, n int, o *object) (out activities.Outcome, err error, handled bool)

type world struct {
	mu         sync.Mutex
	objs       map[models.Ref]*object
	calls      []call
	statuses   []statusRecord
	syncN      map[models.Ref]int
	syncHook   syncHook
	deleteN    map[models.Ref]int
	deleteHook deleteHook
	// cycles and distant are what Inspect reports as an object's Cycle and
	// distant dependencies (see tree_test.go).
	cycles  map[models.Ref][]models.Ref
	distant map[models.Ref][]models.Ref
	// cycleFrom is the inspection (1-based) of an object from which its
	// cycle shows; 0 shows it at once.
	cycleFrom map[models.Ref]int
}

func newWorld() *world {
	return &world{objs: map[models.Ref]*object{}, syncN: map[models.Ref]int{}, deleteN: map[models.Ref]int{}}
}

// add inserts (or replaces) an object.
func (w *world) add(r models.Ref, o object) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.objs[r] = &o
}

// update changes an existing object under the lock.
func (w *world) update(r models.Ref, fn func(o *object)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	fn(w.objs[r])
}

// purge removes an object's row.
func (w *world) purge(r models.Ref) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.objs, r)
}

func (w *world) get(r models.Ref) (object, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	o, ok := w.objs[r]
	if !ok {
		return object{}, false
	}
	return *o, true
}

func (w *world) record(activity string, r models.Ref) {
	w.calls = append(w.calls, call{Activity: activity, Ref: r})
}

// callsOf returns the objects activity was called for, in order.
func (w *world) callsOf(activity string) []models.Ref {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []models.Ref
	for _, c := range w.calls {
		if c.Activity == activity {
			out = append(out, c.Ref)
		}
	}
	return out
}

// callLog lists every call, as "Activity Model id".
func (w *world) callLog() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, c := range w.calls {
		out = append(out, fmt.Sprintf("%s %s %d", c.Activity, c.Ref.Model, c.Ref.ID))
	}
	return out
}

func (w *world) statusRecords() []statusRecord {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.statuses)
}

func (w *world) Inspect(_ context.Context, r models.Ref) (activities.Inspection, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.record("Inspect", r)
	return w.inspect(r), nil
}

// ready reports whether r is activities.Inspection.Ready, recording
// nothing.
func (w *world) ready(r models.Ref) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.inspect(r).Ready()
}

func (w *world) inspect(r models.Ref) activities.Inspection {
	o, ok := w.objs[r]
	if !ok {
		return activities.Inspection{}
	}
	ins := activities.Inspection{
		Exists: true, Deleted: o.deleted, WriteProtect: o.writeProtect, Blocked: o.blocked,
		Pending: o.pending, NeedsPolicy: o.policy, Code: o.code, Updated: o.updated,
	}
	for _, d := range o.deps {
		ds := activities.DepState{Ref: d, Synchronized: true}
		if do, ok := w.objs[d]; ok {
			ds.Exists, ds.Deleted, ds.Blocked, ds.Pending, ds.Synced = true, do.deleted, do.blocked, do.pending, do.synced
			ds.Code, ds.Status = do.code, do.status
		}
		ins.Deps = append(ins.Deps, ds)
	}
	w.inspectGraph(r, &ins)
	return ins
}

func (w *world) RunPolicy(_ context.Context, r models.Ref) (activities.Outcome, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.record("RunPolicy", r)
	o, ok := w.objs[r]
	if !ok {
		return activities.OutcomeGone, nil
	}
	o.policy = false
	return activities.OutcomeOK, nil
}

func (w *world) SyncObject(_ context.Context, r models.Ref) (activities.SyncResult, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.record("SyncObject", r)
	w.syncN[r]++
	o, ok := w.objs[r]
	if w.syncHook != nil {
		if res, err, handled := w.syncHook(r, w.syncN[r], o); handled {
			return res, err
		}
	}
	switch {
	case !ok:
		return activities.SyncResult{Outcome: activities.OutcomeGone}, nil
	case !o.pending:
		return activities.SyncResult{Outcome: activities.OutcomeSkipped}, nil
	}
	o.pending, o.synced, o.code, o.status = false, true, models.CodeOK, "OK"
	return activities.SyncResult{Outcome: activities.OutcomeOK}, nil
}

// SyncReady is activities.SyncReady over the world's Inspect and
// SyncObject.
func (w *world) SyncReady(ctx context.Context, r models.Ref) (activities.ReadySync, error) {
	return activities.SyncIfReady(ctx, r, w.Inspect, w.SyncObject)
}

func (w *world) DeleteObject(_ context.Context, r models.Ref) (activities.Outcome, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.record("DeleteObject", r)
	w.deleteN[r]++
	o, ok := w.objs[r]
	if w.deleteHook != nil {
		if out, err, handled := w.deleteHook(r, w.deleteN[r], o); handled {
			return out, err
		}
	}
	switch {
	case !ok:
		return activities.OutcomeGone, nil
	case !o.deleted || o.writeProtect:
		return activities.OutcomeSkipped, nil
	}
	delete(w.objs, r)
	return activities.OutcomeOK, nil
}

func (w *world) Dependents(_ context.Context, r models.Ref) ([]syncstate.Dependent, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.record("Dependents", r)
	var out []syncstate.Dependent
	for dr, o := range w.objs {
		if slices.Contains(o.deps, r) {
			out = append(out, syncstate.Dependent{Ref: dr, Deleted: o.deleted, WriteProtect: o.writeProtect})
		}
	}
	slices.SortFunc(out, func(a, b syncstate.Dependent) int {
		if c := strings.Compare(a.Model, b.Model); c != 0 {
			return c
		}
		return int(a.ID - b.ID)
	})
	return out, nil
}

func (w *world) RecordStatus(_ context.Context, r models.Ref, code int, status string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.record("RecordStatus", r)
	w.statuses = append(w.statuses, statusRecord{Ref: r, Code: code, Text: status})
	if o, ok := w.objs[r]; ok {
		o.code, o.status = code, status
	}
	return nil
}

// deferOnce makes the first step call on ref return a DeferredError.
func deferOnce(ref models.Ref) (syncHook, deleteHook) {
	deferred := temporal.NewNonRetryableApplicationError("waiting for quota", activities.ErrTypeDeferred, nil)
	return func(r models.Ref, n int, o *object) (activities.SyncResult, error, bool) {
			return activities.SyncResult{}, deferred, r == ref && n == 1
		}, func(r models.Ref, n int, o *object) (activities.Outcome, error, bool) {
			return "", deferred, r == ref && n == 1
		}
}
