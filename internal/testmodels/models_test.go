package testmodels

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync/models"
)

// graphOf lists the models of objs' registry, dependencies first, each with
// its table and links ("Instance instance: Slice.slice_id Network.network_id>cidr").
func graphOf(t *testing.T, objs ...models.Object) []string {
	t.Helper()
	g, err := Registry(objs...).Graph()
	require.NoError(t, err)
	var out []string
	for _, name := range g.Order() {
		m, _ := g.Model(name)
		s := name + " " + m.Table + ":"
		for _, l := range m.Links {
			s += fmt.Sprintf(" %s.%s", l.Dest, l.Via)
			if l.Into != "" {
				s += ">" + l.Into
			}
		}
		out = append(out, s)
	}
	return out
}

// The sets register the models, tables and links the tests rely on, with
// names of the objects' types.
func TestRegistry(t *testing.T) {
	require.Equal(t, []string{
		"D d:", "B b: D.d_id", "C c: D.d_id", "A a: B.b_id C.c_id",
		"Blob blob:", "Site site:", "Slice slice: Site.site_id", "Instance instance: Slice.slice_id", "Item item:",
	}, graphOf(t, ChainDiamond()...))
	require.Equal(t, []string{
		"Site site:", "Network network: Site.site_id", "Slice slice: Site.site_id",
		"Instance instance: Slice.slice_id Network.network_id>cidr",
	}, graphOf(t, ChainNetwork()...))
	require.Equal(t, []string{"Item item:", "Site site:", "Slice slice: Site.site_id"},
		graphOf(t, new(Site), new(Slice), new(Item)))

	for _, obj := range append(ChainDiamond(), new(Network)) {
		obj.SyncState().ID = 7
		require.Equal(t, models.Ref{Model: fmt.Sprintf("%T", obj)[len("*testmodels."):], ID: 7}, RefOf(obj))
	}
	require.Panics(t, func() { Registry(new(struct{ models.Base })) })
	_, err := Registry(new(Slice)).Graph()
	require.Error(t, err, "a link to a model not in the set")
}
