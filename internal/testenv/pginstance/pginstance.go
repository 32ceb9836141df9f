// Package pginstance runs a private PostgreSQL server for one test (its own
// data directory and port, Debian's server binaries), which the test may
// crash (Kill: SIGKILL to the postmaster and its backends) and restart
// (crash recovery), without touching the machine's shared PostgreSQL.
package pginstance

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync/internal/testenv"
)

// BinDirEnv names the directory of PostgreSQL's server binaries (initdb,
// postgres), when not DefaultBinDir.
const BinDirEnv = "TSYNC_PG_BIN"

// DefaultBinDir is where Debian's postgresql-15 package installs them.
const DefaultBinDir = "/usr/lib/postgresql/15/bin"

// readyTimeout bounds the wait for a started server to accept connections
// (crash recovery included).
const readyTimeout = time.Minute

// Instance is a private PostgreSQL server of one test.
type Instance struct {
	t    testing.TB
	bin  string
	data string
	sock string
	port int
	cred *syscall.Credential
	log  *testenv.SyncBuffer

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed once cmd has exited
}

// BinDir returns the directory of the server binaries. When they are
// missing the test is skipped saying what to install, or fails under CI
// (CI=true), which must run the crash tests.
func BinDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv(BinDirEnv)
	if dir == "" {
		dir = DefaultBinDir
	}
	for _, name := range []string{"initdb", "postgres"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			msg := fmt.Sprintf("PostgreSQL's server binaries are not in %s (install Debian's postgresql-15, or set %s to where initdb and postgres are)", dir, BinDirEnv)
			if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
				t.Fatal(msg + " (CI must run the PostgreSQL crash tests)")
			}
			t.Skip(msg)
		}
	}
	return dir
}

// Start initializes a data directory (trust authentication, superuser
// postgres) and starts a server on a free port of 127.0.0.1; the server is
// killed and its directory removed when the test ends. Run as root, the
// server runs as the postgres user (PostgreSQL refuses root).
func Start(t testing.TB) *Instance {
	t.Helper()
	i := &Instance{t: t, bin: BinDir(t), log: &testenv.SyncBuffer{}}
	if os.Geteuid() == 0 {
		i.cred = postgresCredential(t)
	}
	// t.TempDir's parent is private to root: the postgres user could not
	// reach a directory under it.
	dir, err := os.MkdirTemp("", "tsync-pg-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755))
	i.data, i.sock = filepath.Join(dir, "data"), filepath.Join(dir, "sock")
	for _, d := range []string{i.data, i.sock} {
		require.NoError(t, os.Mkdir(d, 0o700))
		if i.cred != nil {
			require.NoError(t, os.Chown(d, int(i.cred.Uid), int(i.cred.Gid)))
		}
	}
	initdb := exec.Command(filepath.Join(i.bin, "initdb"), "--auth=trust", "-U", "postgres", "-D", i.data, "--no-sync", "-E", "UTF8", "--locale=C")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: i.cred}
	out, err := initdb.CombinedOutput()
	require.NoError(t, err, "initdb: %s", out)
	i.port, err = testenv.FreePort()
	require.NoError(t, err)
	t.Cleanup(func() {
		i.Kill()
		if t.Failed() {
			t.Logf("private PostgreSQL's log (last lines):\n%s", tail(i.log.String(), 40))
		}
	})
	i.Restart()
	return i
}

// postgresCredential is the postgres user's.
func postgresCredential(t testing.TB) *syscall.Credential {
	t.Helper()
	u, err := user.Lookup("postgres")
	require.NoError(t, err, "run as root, the private PostgreSQL needs the postgres user")
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	require.NoError(t, err)
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	require.NoError(t, err)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
}

// URL is the connection URL of the server's postgres database.
func (i *Instance) URL() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", i.port)
}

// Port is the server's TCP port, the same across restarts.
func (i *Instance) Port() int { return i.port }

// Log returns what the server has logged so far.
func (i *Instance) Log() string { return i.log.String() }

// Running reports whether the server process is running.
func (i *Instance) Running() bool {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.done == nil {
		return false
	}
	select {
	case <-i.done:
		return false
	default:
		return true
	}
}

// Kill crashes the server: SIGKILL to its process group, the postmaster
// and every backend at once, and waits for the postmaster to be gone. It
// does nothing to a server that is not running.
func (i *Instance) Kill() {
	i.mu.Lock()
	cmd, done := i.cmd, i.done
	i.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-done
	// The backends are in the group too; give the kernel a moment to reap
	// them before a restart checks the shared memory they held.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && syscall.Kill(-cmd.Process.Pid, 0) == nil {
		time.Sleep(20 * time.Millisecond)
	}
}

// Restart starts the server (again, after Kill: crash recovery) on the same
// port and data directory, and waits until it accepts connections.
func (i *Instance) Restart() {
	i.t.Helper()
	require.False(i.t, i.Running(), "the private PostgreSQL is already running")
	cmd := exec.Command(filepath.Join(i.bin, "postgres"), "-D", i.data, "-p", strconv.Itoa(i.port), "-k", i.sock,
		"-c", "listen_addresses=127.0.0.1",
		// Writes reach the kernel before a commit returns either way, and a
		// test crashes the server, not the machine.
		"-c", "fsync=off", "-c", "max_connections=200")
	cmd.Stdout, cmd.Stderr = i.log, i.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: i.cred, Setpgid: true, Pdeathsig: syscall.SIGKILL}
	require.NoError(i.t, cmd.Start(), "start postgres")
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	i.mu.Lock()
	i.cmd, i.done = cmd, done
	i.mu.Unlock()
	require.NoError(i.t, i.waitReady(done), "private PostgreSQL log:\n%s", tail(i.log.String(), 40))
}

// waitReady waits until the server accepts a query, or has exited.
func (i *Instance) waitReady(done <-chan struct{}) error {
	deadline := time.Now().Add(readyTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		conn, err := pgx.Connect(ctx, i.URL())
		if err == nil {
			_, err = conn.Exec(ctx, "SELECT 1")
			_ = conn.Close(ctx)
		}
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("postgres exited before accepting connections: %w", err)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("postgres not ready after %s: %w", readyTimeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
