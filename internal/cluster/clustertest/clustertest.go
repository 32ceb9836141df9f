// Package clustertest starts Temporal clusters (package cluster) for tests:
// each on databases of its own and free ports, gone when the test ends.
package clustertest

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync/internal/cluster"
	"github.com/tsync/tsync/internal/testenv"
)

// BinDirEnv names the directory of the cluster's binaries, when not bin/ at
// the module root.
const BinDirEnv = "TSYNC_CLUSTER_BIN"

// BinDir returns the directory of the cluster's binaries (those a cluster
// without Web UI needs). When one is missing, the test is skipped with what
// to do, or fails under CI, which must run the cluster suites.
func BinDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv(BinDirEnv)
	if dir == "" {
		root, err := cluster.ModuleRoot()
		require.NoError(t, err)
		dir = filepath.Join(root, "bin")
	}
	var missing []string
	for _, name := range []string{cluster.ServerBin, cluster.SQLToolBin} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		msg := fmt.Sprintf("the Temporal cluster's binaries %s are not in %s: build them with `make cluster-tools`, or set %s to where they are",
			strings.Join(missing, ", "), dir, BinDirEnv)
		if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
			t.Fatal(msg + " (CI must run the cluster suites)")
		}
		t.Skip(msg)
	}
	return dir
}

// Start starts a cluster with opts, filling in what a test's cluster
// needs when unset: BinDir (BinDir), Dir (a temporary one), DatabaseURL,
// Database (prefix and a random suffix), no Web UI, and a log. Tests kill
// Temporal's services, never the shared PostgreSQL, so commits there are
// asynchronous; on a server of the test's own (DatabaseURL set), which it
// may crash, they stay synchronous. When
// the test ends the cluster is killed (a graceful stop takes seconds per
// service), stopped and its databases dropped; when it failed, the log and
// the ends of the services' logs are logged.
func Start(t testing.TB, prefix string, opts cluster.Options) *cluster.Cluster {
	t.Helper()
	if opts.BinDir == "" {
		opts.BinDir = BinDir(t)
	}
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	if opts.DatabaseURL == "" {
		opts.DatabaseURL = testenv.DatabaseURL()
		opts.AsyncCommit = true
	}
	if opts.Database == "" {
		opts.Database = prefix + testenv.Random(4)
	}
	if opts.UIPort == 0 {
		opts.UIPort = -1
	}
	logs := &testenv.SyncBuffer{}
	if opts.Log == nil {
		opts.Log = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	begin := time.Now()
	c, err := cluster.Start(ctx, opts)
	require.NoError(t, err, "cluster log: %s", logs)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("cluster log:\n%s", logs)
			logTails(t, opts.Dir)
		}
		for _, s := range cluster.Services {
			if err := c.Kill(s); err != nil {
				t.Errorf("kill the cluster's %s: %v", s, err)
			}
		}
		if err := c.Stop(); err != nil {
			t.Errorf("stop the cluster: %v", err)
		}
		dctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := c.Drop(dctx); err != nil {
			t.Errorf("drop the cluster's databases: %v", err)
		}
	})
	t.Logf("cluster serving at %s (namespace %s) after %s", c.HostPort(), c.Namespace(), time.Since(begin).Round(time.Millisecond))
	return c
}

// logTails logs the last lines of every log file under dir.
func logTails(t testing.TB, dir string) {
	_ = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".log") {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return nil
		}
		lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		t.Logf("last lines of %s:\n%s", path, strings.Join(lines[max(0, len(lines)-30):], "\n"))
		return nil
	})
}
