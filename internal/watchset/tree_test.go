package watchset_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync/internal/watchset"
	"github.com/tsync/tsync/models"
)

// Folder is a tree: each folder links to its parent and to a Site.
type Folder struct {
	models.Base
	Name     string
	ParentID int64
	SiteID   int64
}

// Doc links to a Folder.
type Doc struct {
	models.Base
	FolderID int64
}

func treeGraph(t *testing.T) *models.Graph {
	t.Helper()
	reg := models.NewRegistry()
	models.MustRegister[Site](reg, "Site")
	models.MustRegister[Folder](reg, "Folder", models.Link{Dest: "Folder", Via: "parent_id"}, models.Link{Dest: "Site", Via: "site_id"})
	models.MustRegister[Doc](reg, "Doc", models.Link{Dest: "Folder", Via: "folder_id"})
	g, err := reg.Graph()
	require.NoError(t, err)
	return g
}

// A self-link is one link of distance: degree 2 on Folder watches its
// parent, its grandparent, its site and its parent's site.
func TestDegreeOnTree(t *testing.T) {
	paths, err := watchset.Compute(treeGraph(t), []string{"Folder"}, 2, nil)
	require.NoError(t, err)
	require.Equal(t, []string{
		"Folder -parent_id-> Folder",
		"Folder -parent_id-> Folder -parent_id-> Folder",
		"Folder -parent_id-> Folder -site_id-> Site",
		"Folder -site_id-> Site",
	}, describe(paths))
	require.Equal(t, []string{"Folder", "Site"}, watchset.Models(paths))
}

// Watched without Via follows no self-link: finitely many paths.
func TestExplicitOnTree(t *testing.T) {
	paths, err := watchset.Compute(treeGraph(t), []string{"Doc"}, 0, []models.Link{{Dest: "Site"}})
	require.NoError(t, err)
	require.Equal(t, []string{"Doc -folder_id-> Folder -site_id-> Site"}, describe(paths))
}
