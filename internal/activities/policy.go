package activities

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tsync/tsync/internal/engine"
	"github.com/tsync/tsync/models"
)

// RunPolicy runs ref's model policies for its latest change (create, update
// or delete), then marks it policed, saving any change the policies made to
// it. A failing policy is recorded like a failing step.
func (a *Activities) RunPolicy(ctx context.Context, ref models.Ref) (Outcome, error) {
	ctx, stop := KeepAlive(ctx)
	defer stop()
	m, ok := a.Store.Graph().Model(ref.Model)
	if !ok {
		return "", fmt.Errorf("policy %s %d: unknown model", ref.Model, ref.ID)
	}
	obj, err := a.Store.Get(ctx, ref.Model, ref.ID)
	if errors.Is(err, models.ErrNotFound) {
		return OutcomeGone, nil
	}
	if err != nil {
		return "", fmt.Errorf("policy %s %d: %w", ref.Model, ref.ID, err)
	}
	b := obj.SyncState()
	if !m.NeedsPolicy(b) {
		return OutcomeSkipped, nil
	}
	op := models.OpUpdate
	switch {
	case b.Deleted:
		op = models.OpDelete
	case b.Policed == nil:
		op = models.OpCreate
	}
	seen := b.Updated
	for _, p := range a.Sync.Policies(ref.Model) {
		err := a.call(ctx, ref, "policy", func(ctx context.Context) error { return p.Handle(ctx, op, obj) })
		if err != nil && engine.Classify(err) != engine.Noted {
			return "", a.recordFailure(ctx, ref, fmt.Errorf("model policy %s failed: %w", op, err), true, time.Time{})
		}
	}
	done, err := a.state().SavePolicied(ctx, ref, seen, obj)
	if errors.Is(err, models.ErrInvalidValue) {
		// The policies set a value PostgreSQL cannot store: their failure,
		// recorded on the object like any other.
		return "", a.recordFailure(ctx, ref, fmt.Errorf("model policy %s failed: %w", op, err), true, time.Time{})
	}
	if err != nil {
		return "", fmt.Errorf("policy %s %d: %w", ref.Model, ref.ID, err)
	}
	if !done {
		// Changed while the policies ran: they run again.
		return OutcomeSkipped, nil
	}
	return OutcomeOK, nil
}
