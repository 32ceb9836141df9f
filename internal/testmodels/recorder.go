package testmodels

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/tsync/tsync/models"
)

// Call is one step call seen by the Recorder.
type Call struct {
	Op      string // "sync" or "delete"
	Ref     models.Ref
	Updated time.Time
	Start   time.Time
	End     time.Time
	Err     error
}

// Recorder is a step for every model of a set that records each call, runs
// the test's hook, and flags two kinds of violations: two concurrent calls
// for one object, and a call against stale data (an object older than one
// an earlier call of the same operation on it had already seen).
type Recorder struct {
	mu         sync.Mutex
	calls      []Call
	active     map[models.Ref]bool
	seen       map[string]time.Time // op + ref -> newest updated seen
	violations []string
	hook       func(ctx context.Context, op string, ref models.Ref, obj models.Object) error
	objs       []models.Object
}

// NewRecorder returns a Recorder that synchronizes the models of objs.
func NewRecorder(objs ...models.Object) *Recorder {
	return &Recorder{active: map[models.Ref]bool{}, seen: map[string]time.Time{}, objs: objs}
}

// SetHook sets what every call does besides being recorded.
func (r *Recorder) SetHook(h func(ctx context.Context, op string, ref models.Ref, obj models.Object) error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hook = h
}

// Synchronizes returns the models of the Recorder's set.
func (r *Recorder) Synchronizes() []models.Object { return r.objs }

func (r *Recorder) call(ctx context.Context, op string, obj models.Object) error {
	b := obj.SyncState()
	ref := RefOf(obj)
	r.mu.Lock()
	if r.active[ref] {
		r.violations = append(r.violations, fmt.Sprintf("concurrent %s of %s", op, ref))
	}
	r.active[ref] = true
	key := op + " " + ref.String()
	if newest := r.seen[key]; b.Updated.Before(newest) {
		r.violations = append(r.violations, fmt.Sprintf("stale %s of %s: updated %v, an earlier call saw %v", op, ref, b.Updated, newest))
	} else {
		r.seen[key] = b.Updated
	}
	hook := r.hook
	r.mu.Unlock()
	c := Call{Op: op, Ref: ref, Updated: b.Updated, Start: time.Now()}
	var err error
	if hook != nil {
		err = hook(ctx, op, ref, obj)
	}
	c.End, c.Err = time.Now(), err
	r.mu.Lock()
	delete(r.active, ref)
	r.calls = append(r.calls, c)
	r.mu.Unlock()
	return err
}

// SyncRecord records a "sync" call.
func (r *Recorder) SyncRecord(ctx context.Context, obj models.Object) error {
	return r.call(ctx, "sync", obj)
}

// DeleteRecord records a "delete" call.
func (r *Recorder) DeleteRecord(ctx context.Context, obj models.Object) error {
	return r.call(ctx, "delete", obj)
}

// Calls returns the calls recorded so far, in the order they ended.
func (r *Recorder) Calls() []Call {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

// CallsOf returns the calls of one op on ref.
func (r *Recorder) CallsOf(op string, ref models.Ref) []Call {
	var out []Call
	for _, c := range r.Calls() {
		if c.Op == op && c.Ref == ref {
			out = append(out, c)
		}
	}
	return out
}

// Order returns the refs of the calls of op that succeeded, in the order
// they ended.
func (r *Recorder) Order(op string) []models.Ref {
	var out []models.Ref
	for _, c := range r.Calls() {
		if c.Op == op && c.Err == nil {
			out = append(out, c.Ref)
		}
	}
	return out
}

// Violations returns the concurrent and stale calls seen.
func (r *Recorder) Violations() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.violations)
}
