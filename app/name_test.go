package app

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync/models"
)

type namedModel struct {
	models.Base
	Name string `db:"name"`
}

// The hints of errors name the running binary (WithName), and tsync
// without it.
func TestHintsNameTheBinary(t *testing.T) {
	closer := closingListener(t)
	_, err := DialTemporal(context.Background(), testConfig(closer), nil, WithName("gizmos"))
	require.ErrorContains(t, err, "temporal at "+closer+" is unreachable (run `gizmos dev start` or set temporal.host_port / TSYNC_TEMPORAL_HOST_PORT): ")
	_, err = DialTemporal(context.Background(), testConfig(closer), nil)
	require.ErrorContains(t, err, "(run `tsync dev start` or")

	reg := models.NewRegistry()
	models.MustRegister[namedModel](reg, "Gizmo")
	g, err := reg.Graph()
	require.NoError(t, err)
	file := filepath.Join(t.TempDir(), "model-deps")
	require.NoError(t, os.WriteFile(file, []byte(`{"Gadget": []}`), 0o644))
	err = checkDepsFile(file, g, collect([]Option{WithName("gizmos")}).binary())
	require.ErrorContains(t, err, "(regenerate it with `gizmos deps`)")
	err = checkDepsFile(file, g, collect(nil).binary())
	require.ErrorContains(t, err, "(regenerate it with `tsync deps`)")
}
