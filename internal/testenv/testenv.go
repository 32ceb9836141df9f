// Package testenv gives tests the real services: a Temporal dev server (the
// temporal CLI built into bin/ by `make tools`), a fresh PostgreSQL schema per
// test, and a config pointing at both.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"

	"github.com/tsync/tsync/config"
	"github.com/tsync/tsync/internal/workflows"
)

// DatabaseURL is the test database: TSYNC_TEST_DATABASE_URL, or the local
// PostgreSQL's test database.
func DatabaseURL() string {
	if u := os.Getenv("TSYNC_TEST_DATABASE_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// TemporalBinary finds the temporal CLI: TSYNC_TEMPORAL_BIN, or bin/temporal
// at the module root.
func TemporalBinary() (string, error) {
	if p := os.Getenv("TSYNC_TEMPORAL_BIN"); p != "" {
		return p, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			p := filepath.Join(dir, "bin", "temporal")
			if _, err := os.Stat(p); err != nil {
				return "", fmt.Errorf("temporal CLI not found at %s: run `make tools`", p)
			}
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}

// Temporal is a dev server shared by the tests of one package.
type Temporal struct {
	server   *testsuite.DevServer
	hostPort string
}

// StartTemporal starts a dev server on a free port (in memory). Stop it
// when the package's tests are done. With TSYNC_TEST_TEMPORAL set to a
// host:port, the tests use that server instead (handy to inspect workflows
// with the temporal CLI or Web UI after a test).
func StartTemporal(ctx context.Context, extraArgs ...string) (*Temporal, error) {
	return StartTemporalLogging(ctx, os.Stderr, extraArgs...)
}

// StartTemporalLogging is StartTemporal with the server's log (errors
// only) and the SDK's lines about starting it written to log rather than
// stderr.
func StartTemporalLogging(ctx context.Context, log io.Writer, extraArgs ...string) (*Temporal, error) {
	if hp := os.Getenv("TSYNC_TEST_TEMPORAL"); hp != "" {
		return &Temporal{hostPort: hp}, nil
	}
	bin, err := TemporalBinary()
	if err != nil {
		return nil, err
	}
	s, err := testsuite.StartDevServer(ctx, testsuite.DevServerOptions{
		ExistingPath: bin,
		LogLevel:     "error",
		ExtraArgs:    append(workflows.DevServerArgs(), extraArgs...),
		Stdout:       io.Discard,
		Stderr:       log,
		ClientOptions: &client.Options{
			Logger: sdklog.NewStructuredLogger(slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelInfo}))),
		},
	})
	if err != nil {
		return nil, fmt.Errorf("start temporal dev server: %w", err)
	}
	return &Temporal{server: s, hostPort: s.FrontendHostPort()}, nil
}

// HostPort is the server's frontend address.
func (t *Temporal) HostPort() string { return t.hostPort }

// Stop stops the server (unless the tests did not start it).
func (t *Temporal) Stop() error {
	if t.server == nil {
		return nil
	}
	return t.server.Stop()
}

// Schema creates an empty schema for one test, dropped when the test ends,
// and returns a pool and the schema's name.
func Schema(t testing.TB) (*pgxpool.Pool, string) {
	t.Helper()
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, DatabaseURL())
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	name := "t_" + Random(6)
	_, err = pool.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{name}.Sanitize())
	require.NoError(t, err, "PostgreSQL must run at %s (see README)", DatabaseURL())
	t.Cleanup(func() {
		_, _ = pool.Exec(context.Background(), "DROP SCHEMA "+pgx.Identifier{name}.Sanitize()+" CASCADE")
	})
	return pool, name
}

// Random returns 2n random hex characters.
func Random(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Config returns a config for one test: its own schema, task queue and
// synchronizer name, the given Temporal server, and short intervals.
func Config(t testing.TB, hostPort, schema string) config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.ObserverName = "test-" + Random(4)
	cfg.Temporal.HostPort = hostPort
	cfg.Temporal.TaskQueue = cfg.ObserverName
	cfg.DatabaseURL = DatabaseURL()
	cfg.DatabaseSchema = schema
	cfg.LoopInterval = 200 * time.Millisecond
	cfg.Retry.InitialInterval = 100 * time.Millisecond
	cfg.Retry.MaxInterval = time.Second
	cfg.StepTimeout = 30 * time.Second
	cfg.HeartbeatTimeout = 5 * time.Second
	require.NoError(t, cfg.Validate())
	return cfg
}

// Main runs a package's tests with one dev server for them all, set in
// *srv, and returns the exit code. skip reports whether this run needs no
// server (fuzzing, or a helper process using its parent's); then *srv stays
// nil.
func Main(m *testing.M, srv **Temporal, skip bool) int {
	if skip {
		return m.Run()
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	s, err := StartTemporal(ctx)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	*srv = s
	defer s.Stop() //nolint:errcheck // the tests are over
	return m.Run()
}

// FreePort returns a TCP port of 127.0.0.1 that was free a moment ago,
// below the range the system hands out as ephemeral ports when it can: no
// other process then takes it by chance, even while the test's server is
// down (dev servers bind their internal services to ephemeral ports, and
// every outgoing connection takes one).
func FreePort() (int, error) {
	if low := ephemeralLow(); low > 11000 {
		for range 100 {
			port := 10000 + mrand.IntN(low-10000)
			if l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port))); err == nil {
				l.Close()
				return port, nil
			}
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// FreeAddress is FreePort as a "127.0.0.1:port" address, failing t when
// none is found.
func FreeAddress(t testing.TB) string {
	t.Helper()
	port, err := FreePort()
	require.NoError(t, err)
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

// ephemeralLow returns the lowest ephemeral port of Linux
// (net.ipv4.ip_local_port_range), or 0 when it is not known.
func ephemeralLow() int {
	data, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0
	}
	fields := strings.Fields(string(data))
	if len(fields) != 2 {
		return 0
	}
	low, err := strconv.Atoi(fields[0])
	if err != nil {
		return 0
	}
	return low
}

// DurableTemporal is a Temporal dev server of one test (not the package's
// shared one) that keeps its state in a SQLite file (--db-filename) and
// listens on a fixed port, so that the test can stop it, gracefully (Stop)
// or by SIGKILL (Kill), and start it again (Start) at the same address with
// the same workflows. Its output goes to a log file next to the database.
// Kill it in a t.Cleanup: no server must outlive its test.
type DurableTemporal struct {
	*Server
	hostPort string
}

// NewDurableTemporal returns a dev server on 127.0.0.1:port with its state in
// dbFile and tsync's search attributes, not started yet (see Start).
func NewDurableTemporal(dbFile string, port int) (*DurableTemporal, error) {
	bin, err := TemporalBinary()
	if err != nil {
		return nil, err
	}
	args := []string{
		"server", "start-dev", "--headless",
		"--ip", "127.0.0.1", "--port", strconv.Itoa(port),
		"--db-filename", dbFile,
		// Write-ahead log, synced at checkpoints: what a killed process
		// wrote survives (only a power loss could lose it), and writes do
		// not wait for the disk each.
		"--sqlite-pragma", "journal_mode=WAL",
		"--sqlite-pragma", "synchronous=NORMAL",
		"--log-level", "error",
	}
	hostPort := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	srv := NewServer("temporal dev server at "+hostPort, bin, append(args, workflows.DevServerArgs()...), dbFile+".log",
		func(ctx context.Context) error { return serving(ctx, hostPort) })
	return &DurableTemporal{Server: srv, hostPort: hostPort}, nil
}

// HostPort is the server's frontend address.
func (d *DurableTemporal) HostPort() string { return d.hostPort }

// serving reports (nil) whether the server at hostPort serves the default
// namespace.
func serving(ctx context.Context, hostPort string) error {
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	quiet := sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler))
	c, err := client.DialContext(cctx, client.Options{HostPort: hostPort, Logger: quiet})
	if err != nil {
		return err
	}
	defer c.Close()
	ns, err := c.WorkflowService().DescribeNamespace(cctx, &workflowservice.DescribeNamespaceRequest{Namespace: "default"})
	if err != nil {
		return err
	}
	if st := ns.GetNamespaceInfo().GetState(); st != enumspb.NAMESPACE_STATE_REGISTERED {
		return fmt.Errorf("namespace default is %s", st)
	}
	return nil
}
