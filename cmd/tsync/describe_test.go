package main

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync/cli"
)

// With a worker running and a step failing (the demo's backend directory
// is a file), describe shows the object in error, the attempt under way
// with the step's failure, and the worker polling the task queue; status
// no longer warns that no worker polls.
func TestDescribeWithWorker(t *testing.T) {
	hostPort := startTemporal(t)
	env := demoEnv(t, hostPort)
	blocker := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(blocker, nil, 0o644))
	env = append(env, "TSYNC_DEMO_DIR="+filepath.Join(blocker, "demo"), "TSYNC_RETRY_INITIAL_INTERVAL=2s", "TSYNC_RETRY_MAX_INTERVAL=2s")
	code, _, stderr := tsyncRun(t, env, "seed", "--sites", "1")
	require.Equal(t, 0, code, stderr)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"run"}, io.Discard, io.Discard, env) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(time.Minute):
			t.Error("run did not stop within a minute")
		}
	})

	// A retry under way ("2 of SyncObject, running"), or between two
	// ("2 failed, next retry in 1s (...)").
	attempt := regexp.MustCompile(`(?m)^Attempt:\s+(\d+) (of \w+, (running|next retry in \S+ \(\S+\))|failed, next retry in \S+ \(\S+\))$`)
	// Between retries the workflow shows error; during one, running. A
	// loaded machine (CI) can leave one state query unanswered within its
	// 3 s: the next describe asks again.
	live := regexp.MustCompile(`(?m)^Workflow:\s+cmdtest-[0-9a-f]+/Site/1 \(Running, (error|running sync)`)
	var stdout string
	if !assert.Eventually(t, func() bool {
		var code int
		code, stdout, _ = tsyncRun(t, env, "describe", "Site", "1")
		if code != 0 {
			return false
		}
		m := attempt.FindStringSubmatch(stdout)
		return m != nil && m[1] != "1" && live.MatchString(stdout)
	}, 90*time.Second, 500*time.Millisecond) {
		t.Fatalf("no retry of Site 1 under way with its live state; last describe:\n%s", stdout)
	}
	t.Logf("describe Site 1:\n%s", stdout)
	require.Regexp(t, `(?m)^State:\s+error$`, stdout)
	require.Regexp(t, `(?m)^Code:\s+2$`, stdout)
	require.Regexp(t, `(?m)^Last failure:\s+\S`, stdout)
	require.Regexp(t, `(?m)^  workflow tasks: [1-9]\d* poller\(s\)\n    \S+ \(last poll \S+ ago\)$`, stdout)
	require.Regexp(t, `(?m)^  activity tasks: [1-9]\d* poller\(s\)$`, stdout)
	require.NotContains(t, stdout, "WARNING")

	code, out, stderr := tsyncRun(t, env, "status", "Site", "1", "-o", "json", "--fail-on-error")
	require.Equal(t, 1, code, stderr)
	require.NotContains(t, stderr, "no worker polls")
	var objs []cli.ObjectState
	require.NoError(t, json.Unmarshal([]byte(out), &objs))
	require.Len(t, objs, 1)
	require.Equal(t, "error", string(objs[0].State))
	_, out, stderr = tsyncRun(t, env, "status")
	t.Logf("status:\n%s%s", out, stderr)
	_, out, stderr = tsyncRun(t, env, "errors", "site")
	t.Logf("errors site:\n%s%s", out, stderr)
}
