package app

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync"
	"github.com/tsync/tsync/internal/testenv"
	"github.com/tsync/tsync/models"
)

// WithReadOnlyDatabase: the store reads, and every write is refused by
// PostgreSQL itself.
func TestReadOnlyDatabase(t *testing.T) {
	ctx := context.Background()
	_, schema := testenv.Schema(t)
	cfg := testenv.Config(t, "127.0.0.1:1", schema)
	reg := models.NewRegistry()
	models.MustRegister[namedModel](reg, "Gizmo")
	build := func(*models.Store) (tsync.Synchronizer, error) {
		return tsync.Synchronizer{Models: reg, Steps: []tsync.Step{tsync.StepOf[namedModel](tsync.StepFuncs[namedModel]{
			Sync: func(context.Context, *namedModel) error { return nil },
		})}}, nil
	}
	rw, err := OpenStore(ctx, cfg, reg, build, true, nil)
	require.NoError(t, err)
	defer rw.Close()
	obj := &namedModel{Name: "a"}
	require.NoError(t, rw.Store.Insert(ctx, obj))

	ro, err := OpenStore(ctx, cfg, reg, build, false, nil, WithReadOnlyDatabase())
	require.NoError(t, err)
	defer ro.Close()
	got, err := models.Load[namedModel](ctx, ro.Store, obj.ID)
	require.NoError(t, err)
	require.Equal(t, "a", got.Name)
	got.Name = "b"
	require.ErrorContains(t, ro.Store.Save(ctx, got), "cannot execute UPDATE in a read-only transaction")
	require.ErrorContains(t, ro.Store.Insert(ctx, &namedModel{Name: "c"}), "cannot execute INSERT in a read-only transaction")
	again, err := models.Load[namedModel](ctx, rw.Store, obj.ID)
	require.NoError(t, err)
	require.Equal(t, "a", again.Name)
}
