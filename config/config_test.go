package config

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync/internal/testenv/certs"
)

// named returns the defaults with the given observer name.
func named(name string) Config {
	c := Default()
	c.ObserverName = name
	return c
}

// writePKI writes a test CA and certificates into a temporary directory.
func writePKI(t *testing.T) certs.Files {
	t.Helper()
	f, err := certs.Write(t.TempDir())
	require.NoError(t, err)
	return f
}

// writeFile writes content to name in a fresh temporary directory, makes
// that directory current and returns name, so that errors mention just name.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600))
	t.Chdir(dir)
	return name
}
