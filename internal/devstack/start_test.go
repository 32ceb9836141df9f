package devstack

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestStartReuseStop starts a real dev server (in memory, on free ports),
// reuses it, and stops it.
func TestStartReuseStop(t *testing.T) {
	bin := temporalBin(t)
	ctx := context.Background()
	tp := Temporal{
		Bin:      bin,
		HostPort: fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		UIPort:   freePort(t),
		Dir:      t.TempDir(),
	}
	res, err := tp.Start(ctx)
	require.NoError(t, err)
	t.Cleanup(func() { _ = tp.Stop() })
	require.False(t, res.Reused)
	require.True(t, res.Owned())
	require.True(t, res.Listening)
	require.True(t, res.Healthy)
	require.True(t, res.UIServed, "the Web UI answers at %s", res.UIURL)
	require.Equal(t, tp.LogFile(), res.Log)
	require.Equal(t, fmt.Sprintf("http://127.0.0.1:%d/namespaces/default/workflows", tp.UIPort), res.UIURL)

	// Detached: the server leads its own session, so it outlives us.
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", res.PID))
	if err == nil {
		fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		require.Equal(t, strconv.Itoa(res.PID), fields[3], "session id of the server")
	}

	again, err := tp.Start(ctx)
	require.NoError(t, err)
	require.True(t, again.Reused)
	require.Equal(t, res.PID, again.PID)

	// The process's arguments say where it listens, whatever asks.
	srv, ok := Temporal{HostPort: "127.0.0.1:1", Dir: tp.Dir}.Owned()
	require.True(t, ok)
	require.Equal(t, Server{PID: res.PID, HostPort: tp.HostPort, UIPort: tp.UIPort}, srv)
	st := Temporal{HostPort: tp.HostPort, Dir: tp.Dir}.Status(ctx)
	require.Equal(t, res.UIURL, st.UIURL, "the UI port it was started with")
	require.True(t, st.Owned())
	// Another address while ours runs: refused, ours kept.
	_, err = Temporal{Bin: bin, HostPort: fmt.Sprintf("127.0.0.1:%d", freePort(t)), Dir: tp.Dir}.Start(ctx)
	require.ErrorContains(t, err, "listens at "+tp.HostPort)
	require.FileExists(t, tp.PIDFile())

	require.NoError(t, tp.Stop())
	require.False(t, Listening(tp.HostPort), "stopped")
	require.NoFileExists(t, tp.PIDFile())
	require.ErrorIs(t, tp.Stop(), ErrNotOwned)
	st = tp.Status(ctx)
	require.False(t, st.Listening)
	require.False(t, st.Owned())
}

// TestReuseForeignServer: a server started elsewhere is reused and never
// stopped.
func TestReuseForeignServer(t *testing.T) {
	bin := temporalBin(t)
	ctx := context.Background()
	other := Temporal{Bin: bin, HostPort: fmt.Sprintf("127.0.0.1:%d", freePort(t)), UIPort: -1, Dir: t.TempDir()}
	_, err := other.Start(ctx)
	require.NoError(t, err)
	t.Cleanup(func() { _ = other.Stop() })

	tp := Temporal{Bin: "/nonexistent/temporal", HostPort: other.HostPort, Dir: t.TempDir()}
	res, err := tp.Start(ctx)
	require.NoError(t, err)
	require.True(t, res.Reused)
	require.False(t, res.Owned())
	require.ErrorIs(t, tp.Stop(), ErrNotOwned)
	require.True(t, Listening(other.HostPort), "left running")
}

func TestStartFailures(t *testing.T) {
	ctx := context.Background()

	// Something that is not Temporal listens at the address.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	tp := Temporal{HostPort: l.Addr().String(), Dir: t.TempDir(), StartTimeout: 2 * time.Second}
	_, err = tp.Start(ctx)
	require.ErrorContains(t, err, "not a usable Temporal server")

	// The binary exits at once: the error says so, with its log.
	dir := t.TempDir()
	fake := filepath.Join(dir, "temporal")
	require.NoError(t, os.WriteFile(fake, []byte("#!/bin/sh\necho 'bad flag' >&2\nexit 3\n"), 0o755))
	tp = Temporal{Bin: fake, HostPort: fmt.Sprintf("127.0.0.1:%d", freePort(t)), Dir: dir, StartTimeout: 10 * time.Second}
	start := time.Now()
	_, err = tp.Start(ctx)
	require.ErrorContains(t, err, "the server exited")
	require.ErrorContains(t, err, "bad flag")
	require.Less(t, time.Since(start), 8*time.Second)
	require.NoFileExists(t, tp.PIDFile())

	_, err = FindTemporalBin(filepath.Join(dir, "missing"))
	require.Error(t, err)
}
