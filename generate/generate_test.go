package generate

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// repoRoot is tsync's own checkout, which generated modules replace
// github.com/tsync/tsync with.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("..")
	require.NoError(t, err)
	_, err = os.Stat(filepath.Join(dir, "go.mod"))
	require.NoError(t, err)
	return dir
}

func goCmd(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "go %s in %s:\n%s", strings.Join(args, " "), dir, out)
	return string(out)
}

// A generated work-based synchronizer builds, vets and passes its own test.
func TestGenerateWorkbasedBuildsAndPasses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a generated module")
	}
	dir := t.TempDir()
	files, err := Generate(Options{Kind: Workbased, Name: "my-vpn", Dir: dir, Module: "example.com/myvpn", TsyncPath: repoRoot(t)})
	require.NoError(t, err)
	root := filepath.Join(dir, "my-vpn")
	for _, f := range []string{"go.mod", "model.go", "step.go", "myvpn_test.go", "cmd/myvpn/main.go", "config.yaml", "README.md"} {
		require.Contains(t, files, filepath.Join(root, f))
	}
	goCmd(t, root, "mod", "tidy")
	goCmd(t, root, "vet", "./...")
	out := goCmd(t, root, "test", "-count=1", "./...")
	require.Contains(t, out, "ok  \texample.com/myvpn")

	_, err = Generate(Options{Kind: Workbased, Name: "my-vpn", Dir: dir})
	require.ErrorContains(t, err, "exists already")
}

// A generated watcher synchronizer builds, vets and passes its own test.
func TestGenerateWatcherBuildsAndPasses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a generated module")
	}
	dir := t.TempDir()
	_, err := Generate(Options{Kind: Watcher, Name: "notify", Dir: dir, TsyncPath: repoRoot(t)})
	require.NoError(t, err)
	root := filepath.Join(dir, "notify")
	goCmd(t, root, "mod", "tidy")
	goCmd(t, root, "vet", "./...")
	out := goCmd(t, root, "test", "-count=1", "./...")
	require.Contains(t, out, "ok  	notify")
}

// Inside an existing module, the package is placed in it (no go.mod).
func TestGenerateInsideModule(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.com/ops\n\ngo 1.26\n"), 0o644))
	sub := filepath.Join(dir, "sync")
	require.NoError(t, os.MkdirAll(sub, 0o755))
	files, err := Generate(Options{Kind: Workbased, Name: "dns", Dir: sub})
	require.NoError(t, err)
	require.NotContains(t, files, filepath.Join(sub, "dns", "go.mod"))
	main, err := os.ReadFile(filepath.Join(sub, "dns", "cmd", "dns", "main.go"))
	require.NoError(t, err)
	require.Contains(t, string(main), `dns "example.com/ops/sync/dns"`)
}

func TestGenerateRefusesBadInput(t *testing.T) {
	for _, o := range []Options{
		{Kind: "both", Name: "x"},
		{Kind: Workbased, Name: ""},
		{Kind: Workbased, Name: "1x"},
		{Kind: Workbased, Name: "../x"},
		{Kind: Workbased, Name: "x y"},
	} {
		_, err := Generate(o)
		require.Error(t, err, "%+v", o)
	}
	require.Equal(t, "MyVpn", modelName("my-vpn"))
	require.Equal(t, "myvpn", packageName("my-vpn"))
}
