package devstack

import (
	"net"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

// temporalBin finds the temporal CLI as `make test` provides it, or skips.
func temporalBin(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("TSYNC_TEMPORAL_BIN"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("skipped: TSYNC_TEMPORAL_BIN=%s is missing (run `make tools`)", p)
		}
		return p
	}
	p, err := FindTemporalBin("")
	if err != nil {
		t.Skipf("skipped: bin/temporal is missing (run `make tools`): %v", err)
	}
	return p
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
