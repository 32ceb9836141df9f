package demo_test

import (
	"context"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync"
	"github.com/tsync/tsync/app"
	"github.com/tsync/tsync/config"
	"github.com/tsync/tsync/demo"
	"github.com/tsync/tsync/internal/testenv"
	"github.com/tsync/tsync/models"
)

// temporalServer is the dev server of this package's tests.
var temporalServer *testenv.Temporal

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, &temporalServer, false))
}

// openDemo opens the demo synchronizer on a fresh schema, with its backend
// and playbooks in temporary directories, and seeds one site.
func openDemo(ctx context.Context, t *testing.T, mutate func(*config.Config)) (*app.App, *demo.Backend, int) {
	t.Helper()
	_, schema := testenv.Schema(t)
	cfg := testenv.Config(t, temporalServer.HostPort(), schema)
	cfg.ObserverSysDir = t.TempDir() // the Service step's playbooks
	if mutate != nil {
		mutate(&cfg)
	}
	backend := &demo.Backend{Dir: t.TempDir()}
	a, err := app.OpenWithStore(ctx, cfg, demo.Models(), func(store *models.Store) (tsync.Synchronizer, error) {
		backend.Store = store
		return demo.Synchronizer(backend), nil
	}, nil)
	require.NoError(t, err)
	t.Cleanup(a.Close)
	n, err := demo.Seed(ctx, a.Store, 1)
	require.NoError(t, err)
	return a, backend, n
}
