package demo_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync/config"
	"github.com/tsync/tsync/demo"
	"github.com/tsync/tsync/internal/watchers"
	"github.com/tsync/tsync/models"
)

// With watchers on, a network's new CIDR reaches the files of its instances
// (which the Instance step alone would leave stale), and only a CIDR change
// does.
func TestDemoWatcherRewritesInstancesOfNetwork(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, backend, _ := openDemo(ctx, t, func(cfg *config.Config) {
		cfg.ObserverEnableWatchers = true
		if u := os.Getenv("TSYNC_TEST_REDIS_URL"); u != "" {
			cfg.RedisURL = u
		}
	})
	t.Cleanup(func() {
		_ = a.Redis.Del(context.Background(), a.Stream(), watchers.DeadLetterName(a.Stream())).Err()
	})
	go func() { _ = a.RunWorker(ctx) }()
	go func() { _ = a.RunStarter(ctx) }()
	go func() { _ = a.RunDispatcher(ctx) }()

	net, err := models.Load[demo.Network](ctx, a.Store, 1)
	require.NoError(t, err)
	// The instances on network 1, and their files.
	var files []string
	for id := int64(1); id <= 6; id++ {
		inst, err := models.Load[demo.Instance](ctx, a.Store, id)
		require.NoError(t, err)
		if inst.NetworkID != net.ID {
			continue
		}
		slice, err := models.Load[demo.Slice](ctx, a.Store, inst.SliceID)
		require.NoError(t, err)
		files = append(files, filepath.Join(backend.Dir, "sites", fmt.Sprint(slice.SiteID), "slices", fmt.Sprint(slice.ID), "instances", fmt.Sprintf("%d.json", id)))
	}
	require.NotEmpty(t, files)
	cidrs := func() []any {
		var out []any
		for _, f := range files {
			var got map[string]any
			data, err := os.ReadFile(f)
			if err != nil || json.Unmarshal(data, &got) != nil {
				return nil
			}
			out = append(out, got["cidr"])
		}
		return out
	}
	all := func(v any) []any {
		out := make([]any, len(files))
		for i := range out {
			out[i] = v
		}
		return out
	}
	require.Eventually(t, func() bool { return equalAll(cidrs(), all(net.CIDR)) }, 60*time.Second, 50*time.Millisecond)

	// The name is not watched: nothing to log.
	logFile := filepath.Join(backend.Dir, demo.WatcherLog)
	net.Name = "renamed"
	require.NoError(t, a.Store.Save(ctx, net))
	net.CIDR = "192.168.77.0/24"
	require.NoError(t, a.Store.Save(ctx, net))
	require.Eventually(t, func() bool { return equalAll(cidrs(), all("192.168.77.0/24")) }, 60*time.Second, 50*time.Millisecond)
	require.Eventually(t, func() bool {
		data, _ := os.ReadFile(logFile)
		return strings.Count(string(data), "update [cidr]") == len(files)
	}, 10*time.Second, 50*time.Millisecond)
	data, err := os.ReadFile(logFile)
	require.NoError(t, err)
	require.Equal(t, len(files), strings.Count(string(data), "cidr is now 192.168.77.0/24"), "%s", data)
	require.NotContains(t, string(data), "update [name]", "the rename fired the watcher")
}

func equalAll(a, b []any) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
