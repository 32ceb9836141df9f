package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync/demo"
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
