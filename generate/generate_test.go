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

func run(t *testing.T, dir string, env []string, name string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off"), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// A generated work-based synchronizer with two models builds, vets and
// passes its own tests (make test); its binary reads its own config
// section, with the config's one-line errors.
func TestGenerateWorkbasedBuildsAndPasses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a generated module")
	}
	dir := t.TempDir()
	files, err := Generate(Options{Kind: Workbased, Name: "my-vpn", Dir: dir, Module: "example.com/myvpn", TsyncPath: repoRoot(t),
		Models: []string{"Site", "networkPort"}})
	require.NoError(t, err)
	root := filepath.Join(dir, "my-vpn")
	for _, f := range []string{"go.mod", "model.go", "step.go", "config.go", "seed.go", "myvpn_test.go", "cmd/myvpn/main.go",
		"config.yaml", "README.md", "Makefile", "Dockerfile"} {
		require.Contains(t, files, filepath.Join(root, f))
	}
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	require.NoError(t, err)
	require.Contains(t, string(gomod), "\nreplace github.com/tsync/tsync => "+repoRoot(t)+"\n")
	goCmd(t, root, "mod", "tidy")
	out, err := run(t, root, nil, "make", "test")
	require.NoError(t, err, out)
	require.Contains(t, out, "go vet ./...")
	require.Contains(t, out, "ok  \texample.com/myvpn")
	test, err := os.ReadFile(filepath.Join(root, "myvpn_test.go"))
	require.NoError(t, err)
	for _, name := range []string{"TestSiteSyncErrorAndDelete", "TestNetworkPortSyncErrorAndDelete", "TestSeedSyncs", "tsynctest.New"} {
		require.Contains(t, string(test), name)
	}
	out, err = run(t, root, nil, "make", "-n", "tools", "run", "seed", "image")
	require.NoError(t, err, out)
	require.Contains(t, out, "github.com/temporalio/cli/cmd/temporal@"+TemporalCLIVersion)
	require.Contains(t, out, "bin/myvpn dev start\nbin/myvpn run\n")
	require.Contains(t, out, "docker build -t myvpn .")

	// The binary: its section is the config's, with its errors and warnings.
	out, err = run(t, root, nil, "make", "build")
	require.NoError(t, err, out)
	bin := filepath.Join(root, "bin", "myvpn")
	bad := filepath.Join(dir, "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("observer_name: x\nmyvpn:\n  target_dri: /srv\n"), 0o644))
	out, err = run(t, root, nil, bin, "--config", bad, "deps")
	require.Error(t, err)
	require.Equal(t, "config: unknown key \"myvpn.target_dri\" in "+bad+" (did you mean \"myvpn.target_dir\"?)\n", out)
	require.NoError(t, os.WriteFile(bad, []byte("observer_name: x\nmyvpn:\n  target_dir: \"\"\n"), 0o644))
	out, err = run(t, root, nil, bin, "--config", bad, "deps")
	require.Error(t, err)
	require.Equal(t, "config: myvpn: target_dir is required\n", out)
	out, err = run(t, root, []string{"TSYNC_MYVPN_TARGT_DIR=/srv"}, bin, "deps")
	require.NoError(t, err, out)
	require.Contains(t, out, `msg="TSYNC_MYVPN_TARGT_DIR is not a tsync variable: ignored (did you mean TSYNC_MYVPN_TARGET_DIR?)"`)
	require.Contains(t, out, `"NetworkPort"`)

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
	out, err := run(t, root, nil, "make", "test")
	require.NoError(t, err, out)
	require.Contains(t, out, "ok  	notify")
	test, err := os.ReadFile(filepath.Join(root, "notify_test.go"))
	require.NoError(t, err)
	require.Contains(t, string(test), "func TestNotifyOwnerChangedAppends(")
	require.Contains(t, string(test), "func TestSeed(")
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
	dir := t.TempDir()
	for _, tc := range []struct {
		o    Options
		want string
	}{
		{Options{Kind: Workbased, Name: "sync"}, `generate: name "sync": sync clashes with the standard library's package sync: pick another name, e.g. mysync`},
		{Options{Kind: Workbased, Name: "json"}, `generate: name "json": json clashes with the standard library's package json: pick another name, e.g. myjson`},
		{Options{Kind: Watcher, Name: "tsync"}, `generate: name "tsync": tsync clashes with tsync's package tsync: pick another name, e.g. mytsync`},
		{Options{Kind: Workbased, Name: "Models"}, `generate: name "Models": models clashes with tsync's package models: pick another name, e.g. mymodels`},
		{Options{Kind: Workbased, Name: "main"}, `generate: name "main": package main is a command, not a synchronizer package: pick another name`},
		{Options{Kind: Workbased, Name: "func"}, `generate: name "func": func is a Go keyword: pick another name, e.g. myfunc`},
		{Options{Kind: Workbased, Name: "x", Models: []string{"network_port"}}, `generate: model "network_port" must match ^[A-Za-z][A-Za-z0-9]{0,40}$`},
		{Options{Kind: Workbased, Name: "x", Models: []string{"Site", "site"}}, `generate: model "Site" is given twice`},
		{Options{Kind: Workbased, Name: "x", Models: []string{"Config"}}, `generate: model "Config" clashes with the generated Config`},
		{Options{Kind: Watcher, Name: "x", Models: []string{"Owner"}}, `generate: model "Owner" clashes with the generated Owner`},
		{Options{Kind: Workbased, Name: "x", Models: []string{"Site", "SiteStep"}}, `generate: model "SiteStep" clashes with the generated SiteStep`},
	} {
		tc.o.Dir = dir
		_, err := Generate(tc.o)
		require.EqualError(t, err, tc.want)
	}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Empty(t, entries, "nothing written")
	require.Equal(t, "network_port", tableName("NetworkPort"))
	require.Equal(t, "MyVpn", modelName("my-vpn"))
	require.Equal(t, "myvpn", packageName("my-vpn"))
}

// The names refused are those of the Go and tsync this runs with.
func TestRefusedNamesAreCurrent(t *testing.T) {
	out := goCmd(t, ".", "list", "std")
	for _, p := range strings.Fields(out) {
		root, _, _ := strings.Cut(p, "/")
		require.Contains(t, stdRoots, root, "go list std has %s", p)
		require.Error(t, checkPackage(root))
	}
	entries, err := os.ReadDir(repoRoot(t))
	require.NoError(t, err)
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		files, _ := filepath.Glob(filepath.Join(repoRoot(t), e.Name(), "*.go"))
		for _, f := range files {
			src, err := os.ReadFile(f)
			require.NoError(t, err)
			if strings.Contains(string(src), "\npackage "+e.Name()+"\n") && !strings.HasSuffix(f, "_test.go") {
				require.Contains(t, tsyncPackages, e.Name(), "tsync's package %s", e.Name())
				break
			}
		}
	}
	makefile, err := os.ReadFile(filepath.Join(repoRoot(t), "Makefile"))
	require.NoError(t, err)
	require.Contains(t, string(makefile), "\nTEMPORAL_CLI_VERSION := "+TemporalCLIVersion+"\n", "the generated Makefile installs tsync's temporal CLI")
}

// Checkout is the checkout these tests run in (built without -trimpath).
func TestCheckout(t *testing.T) {
	require.Equal(t, repoRoot(t), Checkout())
}
