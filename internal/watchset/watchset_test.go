package watchset_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync/internal/watchset"
	"github.com/tsync/tsync/models"
)

// A three-level graph, Site <- Slice <- Instance, plus a Network of each
// site that instances attach to (watched into its cidr): a diamond from
// Instance to Site.
type (
	Site struct {
		models.Base
		Name string
	}
	Slice struct {
		models.Base
		Name   string
		SiteID int64
	}
	Network struct {
		models.Base
		Name   string
		CIDR   string `db:"cidr"`
		SiteID int64
	}
	Instance struct {
		models.Base
		Name      string
		SliceID   int64
		NetworkID int64
		Owner     int64 // an id that is not a declared link
		Label     string
	}
)

func graph(t *testing.T) *models.Graph {
	t.Helper()
	reg := models.NewRegistry()
	models.MustRegister[Site](reg, "Site")
	models.MustRegister[Slice](reg, "Slice", models.Link{Dest: "Site", Via: "site_id"})
	models.MustRegister[Network](reg, "Network", models.Link{Dest: "Site", Via: "site_id"})
	models.MustRegister[Instance](reg, "Instance",
		models.Link{Dest: "Slice", Via: "slice_id"},
		models.Link{Dest: "Network", Via: "network_id", Into: "cidr"})
	g, err := reg.Graph()
	require.NoError(t, err)
	return g
}

func describe(paths []watchset.Path) []string {
	var out []string
	for _, p := range paths {
		out = append(out, p.String())
	}
	return out
}

func TestDegreeWatchedSets(t *testing.T) {
	g := graph(t)
	for _, tc := range []struct {
		model  string
		degree int
		want   []string
	}{
		{"Instance", 0, nil},
		{"Instance", 1, []string{"Network", "Slice"}},
		{"Instance", 2, []string{"Network", "Site", "Slice"}},
		{"Instance", 3, []string{"Network", "Site", "Slice"}},
		{"Slice", 1, []string{"Site"}},
		{"Slice", 2, []string{"Site"}},
		{"Site", 5, nil},
	} {
		paths, err := watchset.Compute(g, []string{tc.model}, tc.degree, nil)
		require.NoError(t, err)
		require.Equal(t, tc.want, watchset.Models(paths), "%s degree %d", tc.model, tc.degree)
	}

	// The paths of degree 2: every route to each watched model, Into taken
	// from the last link as declared.
	paths, err := watchset.Compute(g, []string{"Instance"}, 2, nil)
	require.NoError(t, err)
	require.ElementsMatch(t, []string{
		"Instance -slice_id-> Slice",
		"Instance -slice_id-> Slice -site_id-> Site",
		"Instance -network_id-> Network [into cidr]",
		"Instance -network_id-> Network -site_id-> Site",
	}, describe(paths))

	// Several synchronized models: the union.
	paths, err = watchset.Compute(g, []string{"Slice", "Network"}, 1, nil)
	require.NoError(t, err)
	require.Equal(t, []string{"Slice -site_id-> Site", "Network -site_id-> Site"}, describe(paths))
}

func TestExplicitWatchedOverridesDegree(t *testing.T) {
	g := graph(t)
	paths, err := watchset.Compute(g, []string{"Instance"}, 2, []models.Link{{Dest: "Network", Via: "network_id", Into: "name"}})
	require.NoError(t, err)
	require.Equal(t, []string{"Instance -network_id-> Network [into name]"}, describe(paths))
	require.Equal(t, []string{"Network"}, watchset.Models(paths))

	// Without Via: every dependency path to Dest, the link's Into on each.
	paths, err = watchset.Compute(g, []string{"Instance"}, 0, []models.Link{{Dest: "Site", Into: "name"}})
	require.NoError(t, err)
	require.ElementsMatch(t, []string{
		"Instance -slice_id-> Slice -site_id-> Site [into name]",
		"Instance -network_id-> Network -site_id-> Site [into name]",
	}, describe(paths))

	// Via may be any integer column, not only a declared link.
	paths, err = watchset.Compute(g, []string{"Instance"}, 0, []models.Link{{Dest: "Site", Via: "owner"}})
	require.NoError(t, err)
	require.Equal(t, []string{"Instance -owner-> Site"}, describe(paths))

	// The synchronized model itself: its own objects.
	paths, err = watchset.Compute(g, []string{"Instance"}, 0, []models.Link{{Dest: "Instance", Into: "label"}})
	require.NoError(t, err)
	require.Equal(t, []string{"Instance (itself) [into label]"}, describe(paths))
	require.Equal(t, "Instance", paths[0].Watched())

	// The same path declared twice is kept once.
	paths, err = watchset.Compute(g, []string{"Instance"}, 0, []models.Link{{Dest: "Slice"}, {Dest: "Slice", Via: "slice_id"}})
	require.NoError(t, err)
	require.Equal(t, []string{"Instance -slice_id-> Slice"}, describe(paths))
}

func TestComputeErrors(t *testing.T) {
	g := graph(t)
	for _, tc := range []struct {
		sync    []string
		degree  int
		watched []models.Link
		want    string
	}{
		{nil, 1, nil, "synchronizes no model"},
		{[]string{"Nope"}, 1, nil, `synchronizes unknown model "Nope"`},
		{[]string{"Instance"}, -1, nil, "WatchDegree -1 is negative"},
		{[]string{"Instance"}, 0, []models.Link{{Dest: "Nope"}}, `watches unknown model "Nope"`},
		{[]string{"Instance"}, 0, []models.Link{{Dest: "Network", Into: "nope"}}, `watches Network into unknown field "nope"`},
		{[]string{"Instance"}, 0, []models.Link{{Dest: "Network", Via: "nope"}}, `watches Network via "nope", which is not a column of Instance`},
		{[]string{"Instance"}, 0, []models.Link{{Dest: "Network", Via: "label"}}, "watches Network via Instance.label, which is not an integer id"},
		{[]string{"Site"}, 0, []models.Link{{Dest: "Slice"}}, "watches Slice, which Site does not depend on (give Via: a column holding a Slice id)"},
	} {
		_, err := watchset.Compute(g, tc.sync, tc.degree, tc.watched)
		require.ErrorContains(t, err, tc.want)
	}
}

func TestIntoFilter(t *testing.T) {
	into := watchset.Path{Model: "Instance", Hops: []watchset.Hop{{From: "Instance", Via: "network_id", Dest: "Network"}}, Into: "cidr"}
	anyChange := into
	anyChange.Into = ""
	for _, tc := range []struct {
		op        models.Op
		fields    []string
		into, any bool
	}{
		{"update", []string{"cidr"}, true, true},
		{"update", []string{"name", "cidr"}, true, true},
		{"update", []string{"name"}, false, true},
		{"update", nil, false, true},
		{"create", nil, true, true},
		{"delete", nil, true, true},
	} {
		require.Equal(t, tc.into, into.Fires(tc.op, tc.fields), "%s %v into cidr", tc.op, tc.fields)
		require.Equal(t, tc.any, anyChange.Fires(tc.op, tc.fields), "%s %v without into", tc.op, tc.fields)
	}
}
