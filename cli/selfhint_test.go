package cli

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// Only a binary `go run` or `go test` built is hinted by its name: one of a
// checkout under /tmp is hinted by its path, as the README shows it.
func TestIsGoRunBinary(t *testing.T) {
	require.True(t, isGoRunBinary("/tmp/go-build2837/b001/exe/tsync"))
	require.True(t, isGoRunBinary("/tmp/go-build2837/b123/cli.test"))
	require.False(t, isGoRunBinary("/tmp/tsync/bin/tsync"))
	require.False(t, isGoRunBinary("/work/main/bin/tsync"))
}
