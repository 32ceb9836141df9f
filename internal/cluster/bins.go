package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// The binaries' names in BinDir.
const (
	ServerBin  = "temporal-server"
	SQLToolBin = "temporal-sql-tool"
	UIBin      = "temporal-ui-server"
)

// binaries are the paths of the cluster's three binaries.
type binaries struct {
	server, sqlTool, ui string
}

// CheckBinaries reports (nil) whether binDir ("" = bin/ next to the go.mod
// at or above the working directory) holds the cluster's three binaries;
// the error names those missing and how to build them.
func CheckBinaries(binDir string) error {
	_, err := findBinaries(binDir, true)
	return err
}

// findBinaries finds the binaries in binDir; the UI server's only when ui.
func findBinaries(binDir string, ui bool) (binaries, error) {
	if binDir == "" {
		root, err := ModuleRoot()
		if err != nil {
			return binaries{}, fmt.Errorf("cluster: no BinDir given and %w", err)
		}
		binDir = filepath.Join(root, "bin")
	}
	dir, err := filepath.Abs(binDir)
	if err != nil {
		return binaries{}, fmt.Errorf("cluster: bin dir %s: %w", binDir, err)
	}
	b := binaries{
		server:  filepath.Join(dir, ServerBin),
		sqlTool: filepath.Join(dir, SQLToolBin),
		ui:      filepath.Join(dir, UIBin),
	}
	need := []string{b.server, b.sqlTool}
	if ui {
		need = append(need, b.ui)
	}
	var missing []string
	for _, p := range need {
		if st, err := os.Stat(p); err != nil || st.IsDir() {
			missing = append(missing, filepath.Base(p))
		}
	}
	if len(missing) > 0 {
		return binaries{}, fmt.Errorf("cluster: %s missing in %s: run `make cluster-tools` (builds them from the Go module proxy, a few minutes the first time)",
			strings.Join(missing, ", "), dir)
	}
	return b, nil
}

// ModuleRoot is the directory of the go.mod at or above the working
// directory.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("there is no go.mod at or above the working directory")
		}
		dir = parent
	}
}

// serverModule is the module holding the server's PostgreSQL schemas.
const serverModule = "go.temporal.io/server@" + ServerVersion

// schemaDirs returns the persistence and visibility schema directories:
// under schemaDir when set, else in the module cache, where the module is
// downloaded when missing (`go mod download`, outside any module so that
// no go.mod or go.sum changes).
func schemaDirs(ctx context.Context, schemaDir string) (persistence, visibility string, err error) {
	if schemaDir == "" {
		mod, err := serverModuleDir(ctx)
		if err != nil {
			return "", "", err
		}
		schemaDir = filepath.Join(mod, "schema")
	}
	base := filepath.Join(schemaDir, "postgresql", "v12")
	persistence = filepath.Join(base, "temporal", "versioned")
	visibility = filepath.Join(base, "visibility", "versioned")
	for _, d := range []string{persistence, visibility} {
		if st, err := os.Stat(d); err != nil || !st.IsDir() {
			return "", "", fmt.Errorf("cluster: schema directory %s missing (the schema dir must hold postgresql/v12/{temporal,visibility}/versioned)", d)
		}
	}
	return persistence, visibility, nil
}

// serverModuleDir finds go.temporal.io/server@ServerVersion in the module
// cache, downloading it when it is not there.
func serverModuleDir(ctx context.Context) (string, error) {
	const hint = "run `cd /tmp && go mod download " + serverModule + "` (or `make cluster-tools`), or set Options.SchemaDir"
	if _, err := exec.LookPath("go"); err != nil {
		return "", fmt.Errorf("cluster: the PostgreSQL schemas come from the Go module %s, and there is no go command on PATH: %s", serverModule, hint)
	}
	out, err := exec.CommandContext(ctx, "go", "env", "GOMODCACHE").Output()
	if err != nil {
		return "", fmt.Errorf("cluster: go env GOMODCACHE: %w", err)
	}
	cache := strings.TrimSpace(string(out))
	dir := filepath.Join(cache, "go.temporal.io", "server@"+ServerVersion)
	if _, err := os.Stat(filepath.Join(dir, "schema")); err == nil {
		return dir, nil
	}
	// Not in the cache: download it, from a directory outside any module.
	dctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(dctx, "go", "mod", "download", "-json", serverModule)
	cmd.Dir = os.TempDir()
	cmd.Env = append(os.Environ(), "GO111MODULE=on", "GOFLAGS=")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err = cmd.Output()
	var info struct{ Dir, Error string }
	if jerr := json.Unmarshal(out, &info); err != nil || jerr != nil || info.Dir == "" {
		return "", fmt.Errorf("cluster: %s is not in the module cache (%s) and `go mod download` failed: %v %s%s: %s",
			serverModule, cache, err, strings.TrimSpace(stderr.String()), info.Error, hint)
	}
	return info.Dir, nil
}
