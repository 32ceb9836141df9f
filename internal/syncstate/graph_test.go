package syncstate_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync/internal/syncstate"
	"github.com/tsync/tsync/models"
)

// Net is a tree: each Net links to its parent Net and to a Site.
type Net struct {
	models.Base
	Name     string `db:"name"`
	ParentID int64  `db:"parent_id"`
	SiteID   int64  `db:"site_id"`
}

func treeStore(t *testing.T) *syncstate.Store {
	t.Helper()
	reg := chainRegistry(t)
	require.NoError(t, models.Register[Net](reg, "Net", models.Link{Dest: "Net", Via: "parent_id"}, models.Link{Dest: "Site", Via: "site_id"}))
	return newStore(t, reg)
}

func insertNet(t *testing.T, s *syncstate.Store, parent, site int64) models.Ref {
	t.Helper()
	n := &Net{Name: "n", ParentID: parent, SiteID: site}
	require.NoError(t, s.Insert(ctx(t), n))
	return models.Ref{Model: "Net", ID: n.ID}
}

func setParent(t *testing.T, s *syncstate.Store, ref models.Ref, parent int64) {
	t.Helper()
	_, err := s.Pool().Exec(ctx(t), `UPDATE `+s.Schema()+`.net SET parent_id = $2 WHERE id = $1`, ref.ID, parent)
	require.NoError(t, err)
}

func TestCycle(t *testing.T) {
	s := treeStore(t)
	site := insertSite(t, s, "s")
	a := insertNet(t, s, 0, site.ID)
	b := insertNet(t, s, a.ID, site.ID)
	c := insertNet(t, s, b.ID, site.ID)
	d := insertNet(t, s, c.ID, site.ID)

	for _, r := range []models.Ref{a, b, c, d} {
		cycle, err := s.Cycle(ctx(t), r)
		require.NoError(t, err)
		require.Nil(t, cycle, "%s", r)
	}
	// a -> c -> b -> a; d hangs below the cycle and is not on it.
	setParent(t, s, a, c.ID)
	cycle, err := s.Cycle(ctx(t), a)
	require.NoError(t, err)
	require.Equal(t, []models.Ref{a, c, b, a}, cycle)
	cycle, err = s.Cycle(ctx(t), b)
	require.NoError(t, err)
	require.Equal(t, []models.Ref{b, a, c, b}, cycle)
	cycle, err = s.Cycle(ctx(t), d)
	require.NoError(t, err)
	require.Nil(t, cycle)
	// An object that is its own parent.
	setParent(t, s, d, d.ID)
	cycle, err = s.Cycle(ctx(t), d)
	require.NoError(t, err)
	require.Equal(t, []models.Ref{d, d}, cycle)
	// A model without self-links has no cycles, and a missing row none.
	cycle, err = s.Cycle(ctx(t), models.Ref{Model: "Site", ID: site.ID})
	require.NoError(t, err)
	require.Nil(t, cycle)
	cycle, err = s.Cycle(ctx(t), models.Ref{Model: "Net", ID: 999})
	require.NoError(t, err)
	require.Nil(t, cycle)
}

func TestFrontier(t *testing.T) {
	s := treeStore(t)
	site := insertSite(t, s, "s")
	slice := insertSlice(t, s, "sl", site.ID)
	inst := insertInstance(t, s, "i", slice.ID)
	markSynced(t, s, "Slice", slice.ID)
	markSynced(t, s, "Instance", inst.ID)
	// The Instance's Slice is in sync, the Site behind it is pending.
	seen := map[models.Ref]bool{{Model: "Instance", ID: inst.ID}: true, {Model: "Slice", ID: slice.ID}: true}
	far, err := s.Frontier(ctx(t), map[string][]int64{"Slice": {slice.ID}}, seen)
	require.NoError(t, err)
	require.Equal(t, []syncstate.LinkState{{Ref: models.Ref{Model: "Site", ID: site.ID}, Pending: true, Status: ""}}, far)
	// Once the Site is in sync, nothing is left.
	markSynced(t, s, "Site", site.ID)
	far, err = s.Frontier(ctx(t), map[string][]int64{"Slice": {slice.ID}}, map[models.Ref]bool{})
	require.NoError(t, err)
	require.Empty(t, far)

	// A tree four deep, all in sync but the root, which failed: the leaf
	// reaches it through two in-sync levels, and the Site once.
	n1 := insertNet(t, s, 0, site.ID)
	n2 := insertNet(t, s, n1.ID, site.ID)
	n3 := insertNet(t, s, n2.ID, site.ID)
	for _, r := range []models.Ref{n2, n3} {
		markSynced(t, s, r.Model, r.ID)
	}
	require.NoError(t, s.RecordError(ctx(t), n1, "boom"))
	far, err = s.Frontier(ctx(t), map[string][]int64{"Net": {n3.ID}}, map[models.Ref]bool{n3: true})
	require.NoError(t, err)
	require.Equal(t, []syncstate.LinkState{{Ref: n1, Pending: true, Code: models.CodeError, Status: "boom"}}, far)

	// Deleted objects end a path and are not returned; cycles end.
	_, err = s.Pool().Exec(ctx(t), `UPDATE `+s.Schema()+`.net SET deleted = true WHERE id = $1`, n1.ID)
	require.NoError(t, err)
	setParent(t, s, n2, n3.ID)
	markSynced(t, s, n2.Model, n2.ID)
	far, err = s.Frontier(ctx(t), map[string][]int64{"Net": {n3.ID}}, map[models.Ref]bool{})
	require.NoError(t, err)
	require.Empty(t, far)
}
