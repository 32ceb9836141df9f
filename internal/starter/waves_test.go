package starter

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync/models"
)

// A wave starts each object once the objects it waits for are released,
// each once (an object that links twice to one counts it twice); one that
// waits for nothing starts at once; one whose dependency an earlier scan
// started (so not started again, and still pending) starts with the Waits
// hint, as do, once stalled, those left.
func TestWaveStartsEachOnceItsOwnAreReleased(t *testing.T) {
	ref := func(model string, id int64) models.Ref { return models.Ref{Model: model, ID: id} }
	site1, site2 := ref("Site", 1), ref("Site", 2)
	slice1, slice2, slice3 := ref("Slice", 1), ref("Slice", 2), ref("Slice", 3)
	inst1, inst2, inst3 := ref("Instance", 1), ref("Instance", 2), ref("Instance", 3)
	orphan := ref("Slice", 4)

	startedHints := map[models.Ref]bool{}
	var order []models.Ref
	skip := map[models.Ref]bool{slice3: true} // an earlier scan started it
	w := &wave{waiters: map[models.Ref]*waiter{}, dependents: map[models.Ref][]*waiter{}}
	w.goStart = func(r models.Ref, _ time.Time, waits bool) bool {
		if skip[r] {
			return false
		}
		order = append(order, r)
		startedHints[r] = waits
		return true
	}
	scanStarted := func(r models.Ref) bool { return r == site1 || r == site2 }
	w.add(slice1, time.Time{}, []models.Ref{site1}, scanStarted)
	w.add(slice2, time.Time{}, []models.Ref{site2}, scanStarted)
	w.add(slice3, time.Time{}, []models.Ref{site1}, scanStarted)
	w.add(orphan, time.Time{}, []models.Ref{ref("Site", 9)}, scanStarted) // in sync: not waited for
	w.add(slice1, time.Time{}, nil, scanStarted)                          // read twice: added once
	w.add(inst1, time.Time{}, []models.Ref{slice1, slice1}, scanStarted)
	w.add(inst2, time.Time{}, []models.Ref{slice3}, scanStarted)
	w.add(inst3, time.Time{}, []models.Ref{slice2}, scanStarted)
	require.Equal(t, 7, w.waiting)

	w.startReady()
	require.Equal(t, []models.Ref{orphan}, order)
	require.False(t, startedHints[orphan])

	w.release(site1, false)
	// slice3 is skipped: inst2 waits for it no longer, but it is pending.
	require.Equal(t, []models.Ref{orphan, slice1, inst2}, order)
	require.True(t, startedHints[inst2], "its dependency is still pending")
	require.False(t, startedHints[slice1])
	w.release(slice1, false)
	require.Equal(t, []models.Ref{orphan, slice1, inst2, inst1}, order, "linked twice, released once")
	require.False(t, startedHints[inst1])
	require.Equal(t, 2, w.waiting)

	w.startAll() // stalled: site2 still pending
	require.Equal(t, []models.Ref{orphan, slice1, inst2, inst1, slice2, inst3}, order)
	require.True(t, startedHints[slice2])
	require.True(t, startedHints[inst3])
	require.Zero(t, w.waiting)
	w.release(site2, false) // started already: nothing again
	require.Len(t, order, 6)
}
