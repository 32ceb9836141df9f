package devstack

import (
	"os"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestStopStalePIDFile(t *testing.T) {
	tp := Temporal{HostPort: "127.0.0.1:1", Dir: t.TempDir()}
	// A pid that is surely not running: beyond pid_max on Linux.
	require.NoError(t, os.WriteFile(tp.PIDFile(), []byte("99999999\n"), 0o644))
	err := tp.Stop()
	require.ErrorIs(t, err, ErrNotOwned)
	require.ErrorContains(t, err, "stale pid file")
	require.NoFileExists(t, tp.PIDFile())

	// A live process that is not a temporal server is never killed.
	require.NoError(t, os.WriteFile(tp.PIDFile(), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644))
	require.ErrorIs(t, tp.Stop(), ErrNotOwned)
	require.NoFileExists(t, tp.PIDFile())
}
