package models_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync/models"
)

type (
	LinkSite struct {
		models.Base
		Name string `db:"name"`
	}
	LinkSlice struct {
		models.Base
		SiteID int64 `db:"site_id"`
	}
	LinkStray struct{ models.Base }
)

// A link made from a Go type gets its destination's name from the registry,
// whatever the order of registration.
func TestLinkTo(t *testing.T) {
	reg := models.NewRegistry()
	models.MustRegister[LinkSlice](reg, "Slice", models.LinkInto[LinkSite]("site_id", "name"))
	models.MustRegister[LinkSite](reg, "Site")
	g, err := reg.Graph()
	require.NoError(t, err)
	require.Equal(t, []string{"Site", "Slice"}, g.Order())
	links := g.Dependencies("Slice")
	require.Len(t, links, 1)
	require.Equal(t, "Site", links[0].Dest)
	require.Equal(t, "site_id", links[0].Via)
	require.Equal(t, "name", links[0].Into)
	require.Equal(t, []models.Edge{{From: "Slice", Link: links[0]}}, g.Dependents("Site"))

	l, err := g.ResolveLink(models.LinkTo[LinkSite]("site_id"))
	require.NoError(t, err)
	require.Equal(t, "Site", l.Dest)
}

func TestLinkToErrors(t *testing.T) {
	reg := models.NewRegistry()
	models.MustRegister[LinkSite](reg, "Site")
	models.MustRegister[LinkSlice](reg, "Slice", models.LinkTo[LinkStray]("site_id"))
	_, err := reg.Graph()
	require.EqualError(t, err, "model Slice: link to models_test.LinkStray: type models_test.LinkStray is not a registered model")

	reg = models.NewRegistry()
	models.MustRegister[LinkSite](reg, "Site")
	g, err := reg.Graph()
	require.NoError(t, err)
	mismatch := models.LinkTo[LinkSite]("site_id")
	mismatch.Dest = "Slice"
	_, err = g.ResolveLink(mismatch)
	require.EqualError(t, err, `link to "Slice": type models_test.LinkSite is registered as model Site`)
	_, err = g.ResolveLink(models.Link{Dest: "Nope", Via: "site_id"})
	require.EqualError(t, err, `link to unknown model "Nope"`)
}

// Graph and WithPolicies never change the registry or the graph they start
// from: two synchronizers may share one registry.
func TestGraphIsACopy(t *testing.T) {
	reg := models.NewRegistry()
	models.MustRegister[LinkSite](reg, "Site")
	models.MustRegister[LinkSlice](reg, "Slice", models.LinkTo[LinkSite]("site_id"))
	g, err := reg.Graph()
	require.NoError(t, err)
	p, err := g.WithPolicies("Slice")
	require.NoError(t, err)
	m, _ := p.Model("Slice")
	require.True(t, m.Policies)
	m, _ = p.Model("Site")
	require.False(t, m.Policies)
	m, _ = g.Model("Slice")
	require.False(t, m.Policies, "WithPolicies changed the graph it copies")
	g2, err := reg.Graph()
	require.NoError(t, err)
	m, _ = g2.Model("Slice")
	require.False(t, m.Policies, "WithPolicies changed the registry")
	pm, err := p.ModelOf(&LinkSlice{})
	require.NoError(t, err)
	require.True(t, pm.Policies, "ModelOf finds the copy")

	_, err = g.WithPolicies("Nope")
	require.EqualError(t, err, `policy for unknown model "Nope"`)
}
