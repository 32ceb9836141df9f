package ansible

import (
	"context"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// groupGone tells a live process group from one killed.
func TestGroupGone(t *testing.T) {
	cmd := exec.Command("sh", "-c", "sleep 300 & sleep 300")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cmd.Start())
	pgid := cmd.Process.Pid
	t.Cleanup(func() { _ = syscall.Kill(-pgid, syscall.SIGKILL); _ = cmd.Wait() })
	require.False(t, groupGone(context.Background(), pgid, 100*time.Millisecond), "the group runs")
	require.NoError(t, syscall.Kill(-pgid, syscall.SIGKILL))
	go func() { _ = cmd.Wait() }() // the test reaps its child; the orphaned sleep is not its own
	require.True(t, groupGone(context.Background(), pgid, 10*time.Second), "the group was killed")
}
