package models_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync/internal/testenv"
	"github.com/tsync/tsync/models"
)

// Test models used across the store tests: a chain Site <- Slice <- Instance.

type Site struct {
	models.Base
	Name  string `db:"name"`
	Login string
}

type Slice struct {
	models.Base
	Name   string `db:"name"`
	SiteID int64
}

type Instance struct {
	models.Base
	Name    string `db:"name"`
	SliceID int64
	// ImageID is an optional link.
	ImageID *int64
}

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

func chainRegistry(t testing.TB) *models.Registry {
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

// newStore migrates reg's models into a fresh schema and returns the store.
func newStore(t testing.TB, reg *models.Registry) *models.Store {
	t.Helper()
	pool, schema := testenv.Schema(t)
	g, err := reg.Graph()
	require.NoError(t, err)
	s, err := models.NewStore(pool, schema, g)
	require.NoError(t, err)
	require.NoError(t, s.Migrate(ctx(t)))
	return s
}

func ctx(t testing.TB) context.Context {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return c
}

func load[T any](t testing.TB, s *models.Store, id int64) *T {
	t.Helper()
	obj, err := models.Load[T](ctx(t), s, id)
	require.NoError(t, err)
	return obj
}

func insertSite(t testing.TB, s *models.Store, name string) *Site {
	t.Helper()
	o := &Site{Name: name}
	require.NoError(t, s.Insert(ctx(t), o))
	return o
}

func insertSlice(t testing.TB, s *models.Store, name string, site int64) *Slice {
	t.Helper()
	o := &Slice{Name: name, SiteID: site}
	require.NoError(t, s.Insert(ctx(t), o))
	return o
}

func insertInstance(t testing.TB, s *models.Store, name string, slice int64) *Instance {
	t.Helper()
	o := &Instance{Name: name, SliceID: slice}
	require.NoError(t, s.Insert(ctx(t), o))
	return o
}

// markSynced records a successful sync of the object's current version.
func markSynced(t testing.TB, s *models.Store, model string, id int64) {
	t.Helper()
	obj, err := s.Get(ctx(t), model, id)
	require.NoError(t, err)
	pending, err := s.RecordSuccess(ctx(t), models.Ref{Model: model, ID: id}, obj.SyncState().Updated, "OK")
	require.NoError(t, err)
	require.False(t, pending)
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}
