package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync/cli"
	"github.com/tsync/tsync/demo"
	"github.com/tsync/tsync/internal/testenv"
)

// tsync deps writes the model-deps file and a DOT graph that match the
// demo's links.
func TestDepsCommand(t *testing.T) {
	dir := t.TempDir()
	depsFile := filepath.Join(dir, "model-deps.json")
	code, stdout, stderr := tsyncRun(t, nil, "deps", "--deps-file", depsFile)
	require.Equal(t, 0, code, stderr)
	g, err := demo.Models().Graph()
	require.NoError(t, err)
	for _, name := range g.Order() {
		for _, l := range g.Dependencies(name) {
			require.Contains(t, stdout, `"`+name+`" -> "`+l.Dest+`" [label="`+l.Via+`"];`)
		}
	}
	require.Equal(t, strings.Count(stdout, "->"), 5)
	data, err := os.ReadFile(depsFile)
	require.NoError(t, err)
	var deps map[string][]string
	require.NoError(t, json.Unmarshal(data, &deps))
	require.Equal(t, []string{"Network", "Slice"}, deps["Instance"])
	require.NoError(t, g.CheckDepsFile(data))

	code, _, stderr = tsyncRun(t, nil, "deps", "--format", "svg")
	require.Equal(t, 1, code)
	require.Equal(t, "--format svg needs --output FILE\n", stderr)
	if _, err := os.Stat("/usr/bin/dot"); err == nil {
		svg := filepath.Join(dir, "g.svg")
		code, _, stderr = tsyncRun(t, nil, "deps", "--format", "svg", "--output", svg)
		require.Equal(t, 0, code, stderr)
		data, err := os.ReadFile(svg)
		require.NoError(t, err)
		require.Contains(t, string(data), "<svg")
	}
}

func TestNewCommand(t *testing.T) {
	dir := t.TempDir()
	code, stdout, stderr := tsyncRun(t, nil, "new", "workbased", "vpn", "--dir", dir)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, filepath.Join(dir, "vpn", "step.go"))
	require.Contains(t, stdout, "next: cd "+filepath.Join(dir, "vpn"))
	code, _, stderr = tsyncRun(t, nil, "new", "both", "x", "--dir", dir)
	require.Equal(t, 1, code)
	require.Contains(t, stderr, `kind "both" is not workbased or watcher`)
}

// tsync errors, resync and status -o json against real PostgreSQL and
// Temporal (no worker runs: the resynced object's workflow waits).
func TestErrorsResyncStatusJSON(t *testing.T) {
	hostPort := startTemporal(t)
	env := demoEnv(t, hostPort)
	code, _, stderr := tsyncRun(t, env, "seed", "--sites", "1")
	require.Equal(t, 0, code, stderr)

	code, stdout, stderr := tsyncRun(t, env, "errors")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, "0 objects in error\n", stdout)

	code, stdout, stderr = tsyncRun(t, env, "resync", "site", "1")
	require.Equal(t, 0, code, stderr)
	require.Regexp(t, `^Site 1: pending again; workflow cmdtest-[0-9a-f]+/Site/1 started\n$`, stdout)
	require.Regexp(t, "warning: no worker polls task queue cmdtest-[0-9a-f]+: start `tsync worker` \\(or `tsync run`\\)\n$", stderr)
	code, _, stderr = tsyncRun(t, env, "resync", "Site", "x")
	require.Equal(t, 1, code)
	require.Equal(t, "id \"x\" is not a positive integer\n", stderr)
	code, _, stderr = tsyncRun(t, env, "resync", "Site", "999")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "Site 999: object not found")

	code, stdout, stderr = tsyncRun(t, env, "status", "Site", "1", "-o", "json")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, `"model": "Site",`)
	require.Contains(t, stdout, `"workflow_state": "pending"`)
	var objs []cli.ObjectState
	require.NoError(t, json.Unmarshal([]byte(stdout), &objs))
	require.Len(t, objs, 1)
	require.Equal(t, "Site", objs[0].Model)
	require.Equal(t, int64(1), objs[0].ID)
	require.False(t, objs[0].Current)
	require.Contains(t, objs[0].Workflow, "/Site/1")
	require.Equal(t, "pending", objs[0].WorkflowState)

	g, err := demo.Models().Graph()
	require.NoError(t, err)
	names := strings.Join(g.Order(), ", ")
	code, _, stderr = tsyncRun(t, env, "status", "Nope")
	require.Equal(t, 1, code)
	require.Equal(t, "unknown model \"Nope\"; models: "+names+"\n", stderr)
	code, _, stderr = tsyncRun(t, env, "resync", "Instanse", "1")
	require.Equal(t, 1, code)
	require.Equal(t, "unknown model \"Instanse\" (did you mean Instance?); models: "+names+"\n", stderr)

	// describe: the workflow runs, waiting for a worker, and none polls.
	code, stdout, stderr = tsyncRun(t, env, "describe", "SITE", "1")
	require.Equal(t, 0, code, stderr)
	require.Regexp(t, `^Site 1\nState:\s+pending\nCode:\s+0\n`, stdout)
	require.Regexp(t, `(?m)^Workflow:\s+cmdtest-[0-9a-f]+/Site/1 \(Running`, stdout)
	require.Regexp(t, `(?m)^Retries:\s+(every|after) 100ms`, stdout)
	require.Contains(t, stdout, "  workflow tasks: no poller\n  activity tasks: no poller\n")
	require.Regexp(t, "(?m)^WARNING: no worker polls task queue cmdtest-[0-9a-f]+: start `tsync worker` \\(or `tsync run`\\)$", stdout)
	require.Regexp(t, `(?m)^Holds \(depending on it, not in sync\):\n  Network \d+\s+via site_id\s+pending`, stdout)
}

// A model-deps file named by observer_dependency_graph must exist: deps
// writes it, and then the commands that open the store accept it.
func TestMissingDepsFile(t *testing.T) {
	_, schema := testenv.Schema(t)
	file := filepath.Join(t.TempDir(), "model-deps.json")
	env := []string{"TSYNC_DATABASE_URL=" + testenv.DatabaseURL(), "TSYNC_DATABASE_SCHEMA=" + schema,
		"TSYNC_OBSERVER_DEPENDENCY_GRAPH=" + file}
	code, stdout, stderr := tsyncRun(t, env, "migrate")
	require.Equal(t, 1, code, stdout)
	require.Equal(t, "observer_dependency_graph "+file+" does not exist (run `tsync deps` to write it, or unset the key)\n", stderr)
	code, _, stderr = tsyncRun(t, env, "deps")
	require.Equal(t, 0, code, stderr)
	code, stdout, stderr = tsyncRun(t, env, "migrate")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "created tables site, network, slice, instance")
	require.NoError(t, os.Remove(file))
	code, _, stderr = tsyncRun(t, env, "status")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "observer_dependency_graph "+file+" does not exist")
}
