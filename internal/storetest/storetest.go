// Package storetest holds the test models and helpers shared by the tests
// of the model store's packages (models, internal/syncstate,
// internal/outbox): a chain Site <- Slice <- Instance whose instances may
// also link to an Image, a model with a column of every supported type
// (Everything), and a migrated store in a throwaway schema of the test
// PostgreSQL (see internal/testenv).
package storetest

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync/internal/testenv"
	"github.com/tsync/tsync/models"
)

// Site is the root of the chain.
type Site struct {
	models.Base
	Name  string `db:"name"`
	Login string
}

// Slice depends on a Site.
type Slice struct {
	models.Base
	Name   string `db:"name"`
	SiteID int64
}

// Instance depends on a Slice, and optionally on an Image (its name only).
type Instance struct {
	models.Base
	Name    string `db:"name"`
	SliceID int64
	// ImageID is an optional link.
	ImageID *int64
}

// Image is what an Instance may run.
type Image struct {
	models.Base
	Name string `db:"name"`
}

// Everything has a column of every supported type, some of them SQL keywords.
type Everything struct {
	models.Base
	Text    string
	OptText *string
	Big     int64
	Small   int32
	Plain   int
	Flag    bool
	Ratio   float64
	When    time.Time
	OptWhen *time.Time
	Blob    []byte
	Tags    []string
	Attrs   map[string]any
	Raw     json.RawMessage
	Order   string // a reserved word as a column name
	User    string `db:"user"`
	//lint:ignore U1000 an unexported field must not become a column
	skipped string
	Ignored string `db:"-"`
}

// Registry returns a registry of Site, Image, Slice (linked to Site by
// site_id), Instance (linked to Slice by slice_id, and to Image's name by
// image_id) and Everything.
func Registry(t testing.TB) *models.Registry {
	t.Helper()
	reg := models.NewRegistry()
	require.NoError(t, models.Register[Site](reg, "Site"))
	require.NoError(t, models.Register[Image](reg, "Image"))
	require.NoError(t, models.Register[Slice](reg, "Slice", models.Link{Dest: "Site", Via: "site_id"}))
	require.NoError(t, models.Register[Instance](reg, "Instance",
		models.Link{Dest: "Slice", Via: "slice_id"},
		models.Link{Dest: "Image", Via: "image_id", Into: "name"}))
	require.NoError(t, models.Register[Everything](reg, "Everything"))
	return reg
}

// NewStore migrates reg's models into a fresh schema and returns the store.
func NewStore(t testing.TB, reg *models.Registry) *models.Store {
	t.Helper()
	pool, schema := testenv.Schema(t)
	g, err := reg.Graph()
	require.NoError(t, err)
	s, err := models.NewStore(pool, schema, g)
	require.NoError(t, err)
	require.NoError(t, s.Migrate(Ctx(t)))
	return s
}

// Ctx returns a context that ends with the test, or after a minute.
func Ctx(t testing.TB) context.Context {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return c
}

// Load loads object id of the model stored as T.
func Load[T any](t testing.TB, s *models.Store, id int64) *T {
	t.Helper()
	obj, err := models.Load[T](Ctx(t), s, id)
	require.NoError(t, err)
	return obj
}

// InsertSite inserts a Site.
func InsertSite(t testing.TB, s *models.Store, name string) *Site {
	t.Helper()
	o := &Site{Name: name}
	require.NoError(t, s.Insert(Ctx(t), o))
	return o
}

// InsertSlice inserts a Slice of site.
func InsertSlice(t testing.TB, s *models.Store, name string, site int64) *Slice {
	t.Helper()
	o := &Slice{Name: name, SiteID: site}
	require.NoError(t, s.Insert(Ctx(t), o))
	return o
}

// InsertInstance inserts an Instance of slice.
func InsertInstance(t testing.TB, s *models.Store, name string, slice int64) *Instance {
	t.Helper()
	o := &Instance{Name: name, SliceID: slice}
	require.NoError(t, s.Insert(Ctx(t), o))
	return o
}
