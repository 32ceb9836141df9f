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

	"github.com/tsync/tsync/config"
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

func TestArgsAndURL(t *testing.T) {
	tp := Temporal{HostPort: "127.0.0.1:7233", DBFile: "var/temporal.db"}
	args, err := tp.Args()
	require.NoError(t, err)
	sa := []string{"--search-attribute", "TsyncModel=Keyword", "--search-attribute", "TsyncObjectID=Int",
		"--search-attribute", "TsyncOperation=Keyword", "--search-attribute", "TsyncState=Keyword",
		"--search-attribute", "TsyncSynchronizer=Keyword"}
	require.Equal(t, append([]string{"server", "start-dev", "--ip", "127.0.0.1", "--port", "7233",
		"--ui-port", "8233", "--db-filename", "var/temporal.db", "--log-level", "warn"}, sa...), args)
	require.Equal(t, "http://127.0.0.1:8233/namespaces/default/workflows", tp.UIURL())
	require.Equal(t, filepath.Join("var", "temporal.pid"), tp.PIDFile())
	require.Equal(t, filepath.Join("var", "temporal.log"), tp.LogFile())

	tp = Temporal{HostPort: "0.0.0.0:7000", Namespace: "ops", UIPort: -1, LogLevel: "error"}
	args, err = tp.Args()
	require.NoError(t, err)
	require.Equal(t, append([]string{"server", "start-dev", "--ip", "0.0.0.0", "--port", "7000",
		"--headless", "--namespace", "ops", "--log-level", "error"}, sa...), args)
	require.Empty(t, tp.UIURL())

	_, err = Temporal{HostPort: "nonsense"}.Args()
	require.Error(t, err)
}

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

func TestEnsureServices(t *testing.T) {
	ctx := context.Background()
	cfg := config.Default()
	if u := os.Getenv("TSYNC_TEST_DATABASE_URL"); u != "" {
		cfg.DatabaseURL = u
	}
	require.NoError(t, EnsureServices(ctx, cfg), "PostgreSQL and Redis must run for the tests (make services)")

	// Services down on ports that are not this machine's defaults: never
	// started, one error naming both and how to start them.
	down := freePort(t)
	cfg.DatabaseURL = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/test?sslmode=disable", down)
	cfg.RedisURL = fmt.Sprintf("redis://127.0.0.1:%d/0", down)
	err := EnsureServices(ctx, cfg)
	require.Error(t, err)
	msg := err.Error()
	require.NotContains(t, msg, "\n")
	require.Contains(t, msg, fmt.Sprintf("PostgreSQL at 127.0.0.1:%d is not running", down))
	require.Contains(t, msg, fmt.Sprintf("redis at 127.0.0.1:%d is not running", down))
	require.Contains(t, msg, "pg_ctlcluster")
	require.Contains(t, msg, "TSYNC_REDIS_URL")

	// NoStart never starts even the defaults.
	s := Services{NoStart: true}
	require.False(t, s.canStart("127.0.0.1:5432", 5432, "sh"))
	require.False(t, Services{}.canStart("10.0.0.1:5432", 5432, "sh"))
	require.False(t, Services{}.canStart("127.0.0.1:5433", 5432, "sh"))
	require.False(t, Services{}.canStart("127.0.0.1:5432", 5432, "no-such-tool-here"))
	if os.Geteuid() == 0 {
		require.True(t, Services{}.canStart("localhost:5432", 5432, "sh"))
	}
}
