// Package inspecttest builds, for the tests of package inspect and of the
// object view, a store of the storetest models holding an object in each
// state, written through the engine's own sync-state writers
// (internal/syncstate), as a worker would leave them.
package inspecttest

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync/internal/storetest"
	"github.com/tsync/tsync/internal/syncstate"
	"github.com/tsync/tsync/models"
)

// ErrorText is the error the failing Site's step returned: it holds markup,
// which pages must show as text.
const ErrorText = `connect to backend: <script>alert("x")</script> refused`

// DeferText is the deferral of the deferred Slice.
const DeferText = "quota not granted yet"

// MissingImage is the id of the Image the held Instance links to, which
// does not exist.
const MissingImage = 999

// Fixture is the store and the objects it holds:
//
//	Site InSync      in sync
//	Site Failed      error: ErrorText
//	Site New         pending (never synced)
//	Slice Held       of Failed: held ("Failed due to error in model Site id N: ...")
//	Instance HeldToo of Held: held, through Held
//	Slice Deferred   of InSync: deferred ("deferred: " + DeferText)
//	Instance Dangling of Deferred, linking to Image MissingImage: held
//	                 ("deferred: dependency model Image id 999 does not exist")
//	Slice Synced     of InSync: in sync
//	Instance Broken  of Synced: error: BrokenText (its chain in sync)
type Fixture struct {
	Store                     *models.Store
	InSync, Failed, New       *storetest.Site
	Held, Deferred, Synced    *storetest.Slice
	HeldToo, Dangling, Broken *storetest.Instance
}

// BrokenText is the error of the Instance in error.
const BrokenText = "boot failed: disk missing"

// New returns a Fixture in a fresh schema.
func New(t testing.TB) *Fixture {
	t.Helper()
	ctx := storetest.Ctx(t)
	store := storetest.NewStore(t, storetest.Registry(t))
	st := syncstate.New(store)
	f := &Fixture{Store: store}
	synced := func(model string, id int64) {
		t.Helper()
		obj, err := store.Get(ctx, model, id)
		require.NoError(t, err)
		pending, err := st.RecordSuccess(ctx, models.Ref{Model: model, ID: id}, obj.SyncState().Updated, "OK")
		require.NoError(t, err)
		require.False(t, pending)
	}
	f.InSync = storetest.InsertSite(t, store, "in-sync")
	synced("Site", f.InSync.ID)
	f.Failed = storetest.InsertSite(t, store, "failed <b>site</b>")
	f.New = storetest.InsertSite(t, store, "new")
	f.Held = storetest.InsertSlice(t, store, "held", f.Failed.ID)
	f.HeldToo = storetest.InsertInstance(t, store, "held-too", f.Held.ID)
	failed := models.Ref{Model: "Site", ID: f.Failed.ID}
	require.NoError(t, st.RecordError(ctx, failed, ErrorText))
	held, err := st.HoldDependents(ctx, failed, ErrorText)
	require.NoError(t, err)
	require.ElementsMatch(t, []models.Ref{{Model: "Slice", ID: f.Held.ID}, {Model: "Instance", ID: f.HeldToo.ID}}, held)

	f.Deferred = storetest.InsertSlice(t, store, "deferred", f.InSync.ID)
	require.NoError(t, st.RecordStatus(ctx, models.Ref{Model: "Slice", ID: f.Deferred.ID}, models.CodePending, "deferred: "+DeferText))
	img := int64(MissingImage)
	f.Dangling = &storetest.Instance{Name: "dangling", SliceID: f.Deferred.ID, ImageID: &img}
	require.NoError(t, store.Insert(ctx, f.Dangling))
	require.NoError(t, st.RecordStatus(ctx, models.Ref{Model: "Instance", ID: f.Dangling.ID}, models.CodePending,
		"deferred: dependency model Image id 999 does not exist"))
	f.Synced = storetest.InsertSlice(t, store, "synced", f.InSync.ID)
	synced("Slice", f.Synced.ID)
	f.Broken = storetest.InsertInstance(t, store, "broken", f.Synced.ID)
	require.NoError(t, st.RecordError(ctx, models.Ref{Model: "Instance", ID: f.Broken.ID}, BrokenText))
	return f
}
