package syncstate_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync/internal/storetest"
	"github.com/tsync/tsync/internal/syncstate"
	"github.com/tsync/tsync/models"
)

// The test models: a chain Site <- Slice <- Instance, an Image, and
// Everything (see internal/storetest).
type (
	Site     = storetest.Site
	Slice    = storetest.Slice
	Instance = storetest.Instance
	Image    = storetest.Image
)

var (
	chainRegistry = storetest.Registry
	ctx           = storetest.Ctx
)

// newStore migrates reg's models into a fresh schema and returns the store.
func newStore(t testing.TB, reg *models.Registry) *syncstate.Store {
	t.Helper()
	return syncstate.New(storetest.NewStore(t, reg))
}

func load[T any](t testing.TB, s *syncstate.Store, id int64) *T {
	t.Helper()
	return storetest.Load[T](t, s.Store, id)
}

func insertSite(t testing.TB, s *syncstate.Store, name string) *Site {
	t.Helper()
	return storetest.InsertSite(t, s.Store, name)
}

func insertSlice(t testing.TB, s *syncstate.Store, name string, site int64) *Slice {
	t.Helper()
	return storetest.InsertSlice(t, s.Store, name, site)
}

func insertInstance(t testing.TB, s *syncstate.Store, name string, slice int64) *Instance {
	t.Helper()
	return storetest.InsertInstance(t, s.Store, name, slice)
}

// markSynced records a successful sync of the object's current version.
func markSynced(t testing.TB, s *syncstate.Store, model string, id int64) {
	t.Helper()
	obj, err := s.Get(ctx(t), model, id)
	require.NoError(t, err)
	pending, err := s.RecordSuccess(ctx(t), models.Ref{Model: model, ID: id}, obj.SyncState().Updated, "OK")
	require.NoError(t, err)
	require.False(t, pending)
}
