package activities

import (
	"context"

	"github.com/tsync/tsync/models"
)

// inspectGraph adds to ins (of ref, which exists) what the dependency graph
// beyond its direct links says: the cycle of objects it is on through its
// model's self-links, if any, and, for an object pending for sync, its
// distant dependencies: the objects not in sync that it reaches through
// dependencies in sync (syncstate.Store.Frontier), so that it waits for them
// as for its direct ones. A distant dependency that this synchronizer does
// not sync is left out: nothing here could wait for it.
func (a *Activities) inspectGraph(ctx context.Context, ref models.Ref, ins *Inspection) error {
	cycle, err := a.state().Cycle(ctx, ref)
	if err != nil {
		return err
	}
	ins.Cycle = cycle
	if !ins.Pending || len(cycle) > 0 {
		return nil
	}
	seen := map[models.Ref]bool{ref: true}
	from := map[string][]int64{}
	for _, d := range ins.Deps {
		seen[d.Ref] = true
		if d.InSync() {
			from[d.Model] = append(from[d.Model], d.ID)
		}
	}
	far, err := a.state().Frontier(ctx, from, seen)
	if err != nil {
		return err
	}
	for _, f := range far {
		d := DepState{
			Ref: f.Ref, Exists: true, Deleted: f.Deleted, Blocked: f.Blocked, Pending: f.Pending, Synced: f.Synced,
			Code: f.Code, Status: f.Status, Distant: true,
		}
		if _, d.Synchronized = a.Sync.Step(f.Model); d.Synchronized {
			ins.Deps = append(ins.Deps, d)
		}
	}
	return nil
}
