package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync/internal/testenv"
)

// tsyncRun runs the command line in-process and returns its exit code,
// stdout and stderr.
func tsyncRun(t *testing.T, environ []string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, &stdout, &stderr, environ)
	return code, stdout.String(), stderr.String()
}

func TestBadConfigIsOneLine(t *testing.T) {
	for _, tc := range []struct {
		name    string
		environ []string
		args    []string
		want    string
	}{
		{"missing file", nil, []string{"--config", "/nonexistent", "worker"}, "config: config file /nonexistent does not exist"},
		{"bad env", []string{"TSYNC_LOOP_INTERVAL=soon"}, []string{"worker"}, "config: loop_interval: invalid duration \"soon\" (from TSYNC_LOOP_INTERVAL)"},
		{"bad log level", nil, []string{"--log-level", "loud", "status"}, "--log-level: \"loud\" is not one of debug, info, warn, error"},
		{"bad log format", nil, []string{"--log-format", "xml", "status"}, "--log-format: \"xml\" is not one of text, json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := tsyncRun(t, tc.environ, tc.args...)
			require.Equal(t, 1, code)
			require.Empty(t, stdout)
			require.Equal(t, tc.want+"\n", stderr, "one line, no usage")
		})
	}
}

// TestNewNoconfig: tsync new is annotated noconfig, so neither a bad
// TSYNC_* variable nor a bad ./config.yaml stops it; the log flags still
// apply.
func TestNewNoconfig(t *testing.T) {
	t.Chdir(t.TempDir())
	env := []string{"TSYNC_LOOP_INTERVAL=fast"}
	code, stdout, stderr := tsyncRun(t, env, "new", "workbased", "foo")
	require.Equal(t, 0, code, stderr)
	require.Empty(t, stderr)
	require.Contains(t, stdout, "wrote "+filepath.Join("foo", "step.go"))
	require.FileExists(t, filepath.Join("foo", "step.go"))

	// The same environment stops a command that needs the config.
	code, stdout, stderr = tsyncRun(t, env, "status")
	require.Equal(t, 1, code)
	require.Empty(t, stdout)
	require.Equal(t, "config: loop_interval: invalid duration \"fast\" (from TSYNC_LOOP_INTERVAL)\n", stderr)

	require.NoError(t, os.WriteFile("config.yaml", []byte("loop_interval: [fast]\n"), 0o644))
	code, stdout, stderr = tsyncRun(t, env, "new", "watcher", "bar")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "wrote "+filepath.Join("bar", "watcher.go"))

	code, stdout, stderr = tsyncRun(t, env, "--log-level", "loud", "new", "workbased", "baz")
	require.Equal(t, 1, code)
	require.Empty(t, stdout)
	require.Equal(t, "--log-level: \"loud\" is not one of debug, info, warn, error\n", stderr)
	require.NoDirExists(t, "baz")
}

func TestLogFile(t *testing.T) {
	dir := t.TempDir()
	logFile := filepath.Join(dir, "logs", "tsync.log")
	env := []string{"TSYNC_OBSERVER_LOG_FILE=" + logFile, "TSYNC_DATABASE_SCHEMA=t_nonexistent_schema"}
	code, stdout, stderr := tsyncRun(t, env, "--log-level", "debug", "--log-format", "json", "status")
	require.Equal(t, 1, code, stdout)
	require.Equal(t, "schema t_nonexistent_schema does not exist: run `tsync migrate` to create it (or set database_schema)\n", stderr)
	data, err := os.ReadFile(logFile)
	require.NoError(t, err)
	require.Contains(t, string(data), `"msg":"config loaded"`)
	require.NotContains(t, stderr, "config loaded")
}

func TestBackendFiles(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{"sites/1/site.json", "sites/2/site.json", "sites/1/networks/3.json", "sites/1/slices/4/slice.json",
		"sites/1/slices/4/instances/5.json", "sites/1/slices/4/instances/6.json"} {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, p), []byte("{}"), 0o644))
	}
	n, examples := backendFiles(dir)
	require.Equal(t, 6, n)
	require.Equal(t, []string{
		filepath.Join(dir, "sites/1/site.json"),
		filepath.Join(dir, "sites/1/networks/3.json"),
		filepath.Join(dir, "sites/1/slices/4/slice.json"),
		filepath.Join(dir, "sites/1/slices/4/instances/5.json"),
	}, examples)
	n, examples = backendFiles(filepath.Join(dir, "missing"))
	require.Zero(t, n)
	require.Empty(t, examples)
}

// demoEnv is the environment of a demo run of one test: its own schema,
// synchronizer name, task queue and backend directory, on server hostPort.
func demoEnv(t *testing.T, hostPort string) []string {
	t.Helper()
	_, schema := testenv.Schema(t)
	name := "cmdtest-" + testenv.Random(4)
	return []string{
		"TSYNC_DATABASE_URL=" + testenv.DatabaseURL(),
		"TSYNC_DATABASE_SCHEMA=" + schema,
		"TSYNC_OBSERVER_NAME=" + name,
		"TSYNC_TEMPORAL_HOST_PORT=" + hostPort,
		"TSYNC_TEMPORAL_TASK_QUEUE=" + name,
		"TSYNC_DEMO_DIR=" + t.TempDir(),
		"TSYNC_OBSERVER_SYS_DIR=" + t.TempDir(),
		"TSYNC_LOOP_INTERVAL=200ms",
		"TSYNC_RETRY_INITIAL_INTERVAL=100ms",
		"TSYNC_RETRY_MAX_INTERVAL=1s",
	}
}

func startTemporal(t *testing.T) string {
	t.Helper()
	if _, err := testenv.TemporalBinary(); err != nil && os.Getenv("TSYNC_TEST_TEMPORAL") == "" {
		t.Skipf("skipped: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, err := testenv.StartTemporal(ctx)
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Stop() })
	return srv.HostPort()
}

// TestSeedStatusDemo runs seed, status and demo (twice) against real
// PostgreSQL and Temporal.
func TestSeedStatusDemo(t *testing.T) {
	hostPort := startTemporal(t)
	env := demoEnv(t, hostPort)

	// testenv.Schema made the schema, empty.
	code, stdout, stderr := tsyncRun(t, env, "status")
	require.Equal(t, 1, code, stdout)
	require.Contains(t, stderr, "has none of tsync's tables: run `tsync migrate` to create them")

	code, stdout, stderr = tsyncRun(t, env, "migrate")
	require.Equal(t, 0, code, stderr)
	require.Regexp(t, `: created tables site, network, slice, instance\b.*\n.* is up to date: tables site, network, slice, instance\b`, stdout)

	code, stdout, stderr = tsyncRun(t, env, "seed", "--sites", "1")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "seeded 12 objects (1 sites)")

	code, stdout, stderr = tsyncRun(t, env, "status")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "MODEL")
	require.Contains(t, stdout, "12 objects, 0 in sync, 12 pending, 0 deferred, 0 held, 0 in error")
	require.Contains(t, stderr, "warning: no worker polls task queue cmdtest-")

	code, stdout, stderr = tsyncRun(t, env, "demo", "--timeout", "1m")
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
	require.Contains(t, stdout, "Temporal: a server is already listening at "+hostPort+"; reusing it")
	require.Contains(t, stdout, "Found 12 demo objects")
	require.Contains(t, stdout, "All 12 demo objects in sync (12 synced by this run)")
	require.Contains(t, stdout, "12 files, e.g.")
	require.Contains(t, stdout, "instances/")
	require.Contains(t, stdout, fmt.Sprintf("workflow list --address %s --query 'TaskQueue=", hostPort))

	start := time.Now()
	code, stdout, stderr = tsyncRun(t, env, "demo")
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
	require.Contains(t, stdout, "All 12 demo objects in sync (they were already)")
	require.Less(t, time.Since(start), 15*time.Second)

	code, stdout, stderr = tsyncRun(t, env, "status")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "12 objects, 12 in sync, 0 pending, 0 deferred, 0 held, 0 in error")
}

// TestDemoSeedsAndTimesOut: a demo whose backend cannot be written seeds
// its objects, reports the errors, and fails with the objects not in sync.
func TestDemoSeedsAndTimesOut(t *testing.T) {
	hostPort := startTemporal(t)
	env := demoEnv(t, hostPort)
	blocker := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(blocker, nil, 0o644))
	env = append(env, "TSYNC_DEMO_DIR="+filepath.Join(blocker, "demo")) // a file is in the way

	code, stdout, stderr := tsyncRun(t, env, "demo", "--sites", "1", "--timeout", "5s")
	require.Equal(t, 1, code, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
	require.Contains(t, stdout, "Seeded 12 demo objects (1 sites)")
	require.Contains(t, stdout, "Site 1 in error: ")
	require.Contains(t, stdout, "Timed out after 5s; 12 of 12 objects are not in sync:")
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	require.Equal(t, "demo: 12 of 12 objects not in sync after 5s (see `tsync status`; rerun with --log-level info for the worker's log)",
		lines[len(lines)-1])
}
