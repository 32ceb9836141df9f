package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// tsync new points a new module at the checkout this binary was built from
// (these tests are), takes --model, refuses a name that clashes, and says
// what to run next.
func TestNewDefaultsAndRefusals(t *testing.T) {
	repo, err := filepath.Abs(filepath.Join("..", ".."))
	require.NoError(t, err)
	dir := t.TempDir()
	code, stdout, stderr := tsyncRun(t, nil, "new", "workbased", "vpn", "--dir", dir, "--model", "Site,Tunnel", "--model", "Peer")
	require.Equal(t, 0, code, stderr)
	root := filepath.Join(dir, "vpn")
	require.Contains(t, stdout, "wrote "+filepath.Join(root, "Makefile")+"\n")
	require.Contains(t, stdout, "wrote "+filepath.Join(root, "Dockerfile")+"\n")
	require.Contains(t, stdout, "\nnext: cd "+root+" && go mod tidy && make test\n")
	require.NotContains(t, stdout, "note:")
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	require.NoError(t, err)
	require.Contains(t, string(gomod), "\nreplace github.com/tsync/tsync => "+repo+"\n")
	model, err := os.ReadFile(filepath.Join(root, "model.go"))
	require.NoError(t, err)
	for _, m := range []string{"Site", "Tunnel", "Peer"} {
		require.Contains(t, string(model), "\ntype "+m+" struct {\n")
	}

	// --tsync-path '' writes no replace directive, and says what that needs.
	code, stdout, stderr = tsyncRun(t, nil, "new", "watcher", "bare", "--dir", dir, "--tsync-path", "")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "\nnote: no --tsync-path: go mod tidy fetches github.com/tsync/tsync, which must be published\n")
	gomod, err = os.ReadFile(filepath.Join(dir, "bare", "go.mod"))
	require.NoError(t, err)
	require.NotContains(t, string(gomod), "replace")

	for name, want := range map[string]string{
		"sync":  `generate: name "sync": sync clashes with the standard library's package sync: pick another name, e.g. mysync`,
		"tsync": `generate: name "tsync": tsync clashes with tsync's package tsync: pick another name, e.g. mytsync`,
	} {
		code, stdout, stderr = tsyncRun(t, nil, "new", "workbased", name, "--dir", dir)
		require.Equal(t, 1, code)
		require.Empty(t, stdout)
		require.Equal(t, want+"\n", stderr)
		require.NoDirExists(t, filepath.Join(dir, name))
	}
}
