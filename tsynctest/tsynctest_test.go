package tsynctest_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync"
	"github.com/tsync/tsync/models"
	"github.com/tsync/tsync/tsynctest"
)

type Site struct {
	models.Base
	Name string `db:"name"`
}

type Slice struct {
	models.Base
	Name   string `db:"name"`
	SiteID int64  `db:"site_id"`
}

func registry() *models.Registry {
	reg := models.NewRegistry()
	models.MustRegister[Site](reg, "Site")
	models.MustRegister[Slice](reg, "Slice", models.LinkTo[Site]("site_id"))
	return reg
}

// backend records the calls in order.
type backend struct {
	mu    sync.Mutex
	calls []string
}

func (b *backend) record(call string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls = append(b.calls, call)
}

func (b *backend) synchronizer() tsync.Synchronizer {
	return tsync.Synchronizer{
		Models: registry(),
		Steps: []tsync.Step{
			tsync.StepOf[Site](tsync.StepFuncs[Site]{
				Sync: func(_ context.Context, s *Site) error { b.record("sync site " + s.Name); return nil },
			}),
			tsync.StepOf[Slice](tsync.StepFuncs[Slice]{
				Sync: func(_ context.Context, s *Slice) error {
					b.record("sync slice " + s.Name)
					switch s.Name {
					case "bad":
						return errors.New("quota exceeded")
					case "later":
						return tsync.Deferf("site %d is busy", s.SiteID)
					case "noted":
						return tsync.Innocuousf("exists already")
					}
					return nil
				},
				Delete: func(_ context.Context, s *Slice) error { b.record("delete slice " + s.Name); return nil },
			}),
		},
	}
}

func TestSyncOutcomes(t *testing.T) {
	b := &backend{}
	env := tsynctest.New(t, b.synchronizer())
	site := &Site{Name: "paris"}
	env.Insert(site)
	slice := &Slice{Name: "blue", SiteID: site.ID}
	env.Insert(slice)

	got := env.Sync(slice)
	require.True(t, got.InSync(), "%s", got)
	require.Equal(t, "OK", got.Status)
	require.Equal(t, []string{"sync site paris", "sync slice blue"}, b.calls, "the dependency first")
	site2, err := models.Load[Site](context.Background(), env.Store, site.ID)
	require.NoError(t, err)
	require.Equal(t, models.CodeOK, site2.BackendCode)

	bad := &Slice{Name: "bad", SiteID: site.ID}
	env.Insert(bad)
	got = env.Sync(bad)
	require.True(t, got.InError(), "%s", got)
	require.Equal(t, "quota exceeded", got.Status)

	later := &Slice{Name: "later", SiteID: site.ID}
	env.Insert(later)
	got = env.Sync(later)
	require.True(t, got.Deferred(), "%s", got)
	require.Equal(t, models.CodePending, got.Code)
	require.Equal(t, fmt.Sprintf("deferred: site %d is busy", site.ID), got.Status)

	noted := &Slice{Name: "noted", SiteID: site.ID}
	env.Insert(noted)
	got = env.Sync(noted)
	require.Equal(t, tsynctest.Result{Code: models.CodeOK, Status: "exists already", Enacted: got.Enacted, Updated: got.Updated}, got)
	require.True(t, got.InSync())

	// A fix, then a sync: in sync.
	bad.Name = "fixed"
	env.Save(bad)
	require.True(t, env.Sync(bad).InSync())

	b.calls = nil
	got = env.Delete(slice)
	require.True(t, got.Purged, "%s", got)
	require.Equal(t, []string{"delete slice blue"}, b.calls)
	_, err = env.Store.Get(context.Background(), "Slice", slice.ID)
	require.ErrorIs(t, err, models.ErrNotFound)
}

func TestCheck(t *testing.T) {
	require.NoError(t, tsynctest.Check((&backend{}).synchronizer()))
	type Stray struct{ models.Base }
	err := tsynctest.Check(tsync.Synchronizer{Models: registry(), Steps: []tsync.Step{tsync.StepOf[Stray](tsync.StepFuncs[Stray]{})}})
	require.EqualError(t, err, "synchronizer: step 0: type tsynctest_test.Stray is not a registered model")
}
