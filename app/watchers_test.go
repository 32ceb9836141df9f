package app

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync"
	"github.com/tsync/tsync/config"
	"github.com/tsync/tsync/internal/engine"
	"github.com/tsync/tsync/models"
)

type site struct{ models.Base }

// Workers register the watcher workflows whether or not
// observer_enable_watchers is on, so that a worker serves a dispatcher
// started with it on; a synchronizer without watchers registers none.
func TestWorkersRegisterWatchersWhenDisabled(t *testing.T) {
	reg := models.NewRegistry()
	models.MustRegister[site](reg, "Site")
	watcher := tsync.WatcherOf[site](tsync.WatcherFuncs[site]{
		Degree: 0,
		Handle: func(context.Context, *site, tsync.WatchEvent) error { return nil },
	})
	cfg := config.Default()
	cfg.ObserverEnableWatchers = false

	c, err := engine.Compile(tsync.Synchronizer{Models: reg, Watchers: []tsync.Watcher{watcher}})
	require.NoError(t, err)
	require.NotNil(t, (&App{Config: cfg, sync: c}).watcherActivities())

	c, err = engine.Compile(tsync.Synchronizer{Models: reg})
	require.NoError(t, err)
	require.Nil(t, (&App{Config: cfg, sync: c}).watcherActivities())
}
