package cluster

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/tsync/tsync/internal/testenv"
	"github.com/tsync/tsync/internal/testenv/certs"
)

// requireBinaries skips the test when the cluster's binaries are missing,
// saying how to build them; under CI (CI=true) it fails instead.
func requireBinaries(t *testing.T) {
	t.Helper()
	if err := CheckBinaries(""); err != nil {
		if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
			t.Fatalf("%v (CI must run the cluster tests)", err)
		}
		t.Skip(err)
	}
}

// testDatabase is a database name of one test.
func testDatabase() string { return "tsync_cl_" + testenv.Random(4) }

// databasesOf returns which of a cluster's two databases exist.
func databasesOf(t *testing.T, name string) []string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, testenv.DatabaseURL())
	require.NoError(t, err)
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "SELECT datname FROM pg_database WHERE datname IN ($1, $2) ORDER BY datname", name, name+visibilitySuffix)
	require.NoError(t, err)
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	return names
}

// synchronousCommit is the synchronous_commit of a new session on a
// database.
func synchronousCommit(t *testing.T, database string) string {
	t.Helper()
	cfg, err := pgx.ParseConfig(testenv.DatabaseURL())
	require.NoError(t, err)
	cfg.Database = database
	ctx := context.Background()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	require.NoError(t, err)
	defer conn.Close(ctx)
	var v string
	require.NoError(t, conn.QueryRow(ctx, "SHOW synchronous_commit").Scan(&v))
	return v
}

// dropAtEnd drops a cluster's databases when the test ends.
func dropAtEnd(t *testing.T, name string) {
	t.Cleanup(func() {
		db, err := newDatabase(testenv.DatabaseURL(), name)
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		assert.NoError(t, db.drop(ctx))
	})
}

// logTails logs the end of each process's log when the test failed.
func logTails(t *testing.T, dir string) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, name := range append(append([]string{}, Services...), UI, "sql-tool") {
			t.Logf("%s.log:\n%s", name, logTail(logFile(dir, name), 30))
		}
	})
}

func echo(_ workflow.Context, s string) (string, error) { return "echo " + s, nil }

// runWorkflow runs a workflow to its end on the cluster, with a worker of
// its own: the frontend, matching and history services all serve.
func runWorkflow(ctx context.Context, t *testing.T, c *Cluster, id string) {
	t.Helper()
	runWorkflowTLS(ctx, t, c, nil, id)
}

// runWorkflowTLS is runWorkflow with the client's TLS (nil: none).
func runWorkflowTLS(ctx context.Context, t *testing.T, c *Cluster, tlsConfig *tls.Config, id string) {
	t.Helper()
	cl, err := client.DialContext(ctx, client.Options{
		HostPort:          c.HostPort(),
		Namespace:         c.Namespace(),
		ConnectionOptions: client.ConnectionOptions{TLS: tlsConfig},
		Logger:            sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler)),
	})
	require.NoError(t, err)
	defer cl.Close()
	w := worker.New(cl, "cluster-test", worker.Options{})
	w.RegisterWorkflow(echo)
	require.NoError(t, w.Start())
	defer w.Stop()
	run, err := cl.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: "cluster-test"}, echo, id)
	require.NoError(t, err)
	var out string
	require.NoError(t, run.Get(ctx, &out))
	require.Equal(t, "echo "+id, out)
}

// sessionID is the session of process pid, from /proc/<pid>/stat: the
// fields after the command name are state, ppid, pgrp, session.
func sessionID(t *testing.T, pid int) int {
	t.Helper()
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	require.NoError(t, err)
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	sid, err := strconv.Atoi(fields[3])
	require.NoError(t, err)
	return sid
}

// gone reports whether process pid has exited.
func gone(pid int) bool { return !alive(pid) }

// TestCluster starts a cluster on fresh databases, runs a workflow on it,
// kills and restarts its history service and runs another, stops it; then
// starts it again, detached, on the same databases (their schemas reused,
// the first workflows still there), and stops that one by its pid files;
// Drop leaves no database behind.
func TestCluster(t *testing.T) {
	requireBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	name := testDatabase()
	dropAtEnd(t, name)
	dir := t.TempDir()
	logTails(t, dir)
	log := slog.New(slog.NewTextHandler(t.Output(), nil))

	begin := time.Now()
	c, err := Start(ctx, Options{Dir: dir, DatabaseURL: testenv.DatabaseURL(), Database: name, AsyncCommit: true, Log: log})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Stop() })
	t.Logf("fresh databases: serving after %s", time.Since(begin).Round(time.Millisecond))
	require.Equal(t, []string{name, name + visibilitySuffix}, databasesOf(t, name))
	require.FileExists(t, filepath.Join(dir, "sql-tool.log"), "the schemas were set up")
	require.Equal(t, "off", synchronousCommit(t, name+visibilitySuffix))

	// Every process runs, with its pid file; the UI serves.
	pids := map[string]int{}
	for _, s := range append(append([]string{}, Services...), UI) {
		pids[s] = c.PID(s)
		require.NotZero(t, pids[s], s)
		data, err := os.ReadFile(pidFile(dir, s))
		require.NoError(t, err)
		require.Equal(t, strconv.Itoa(pids[s])+"\n", string(data))
	}
	require.Contains(t, c.UIURL(), "/namespaces/default/workflows")
	resp, err := http.Get(c.UIURL())
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	runWorkflow(ctx, t, c, "before-kill")

	// The history service killed: its process is gone, with its pid file.
	require.NoError(t, c.Kill("history"))
	require.True(t, gone(pids["history"]))
	require.Zero(t, c.PID("history"))
	require.NoFileExists(t, pidFile(dir, "history"))
	require.Error(t, c.Kill("nosuch"))

	begin = time.Now()
	require.NoError(t, c.Restart(ctx, "history"))
	t.Logf("history restarted and serving after %s", time.Since(begin).Round(time.Millisecond))
	require.NotZero(t, c.PID("history"))
	require.NotEqual(t, pids["history"], c.PID("history"))
	require.Error(t, c.Restart(ctx, "history"), "it runs")
	runWorkflow(ctx, t, c, "after-restart")

	// Stopped: no process, pid file or cluster.json is left.
	pids["history"] = c.PID("history")
	require.NoError(t, c.Stop())
	for s, pid := range pids {
		require.True(t, gone(pid), s)
		require.NoFileExists(t, pidFile(dir, s))
	}
	require.NoFileExists(t, stateFile(dir))

	// Again, detached, in another dir, on the same databases: nothing to
	// migrate, and the first run's workflows are there.
	dir2 := t.TempDir()
	logTails(t, dir2)
	begin = time.Now()
	c2, err := Start(ctx, Options{Dir: dir2, DatabaseURL: testenv.DatabaseURL(), Database: name, UIPort: -1, Detached: true, Log: log})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c2.Stop() })
	t.Logf("reused databases: serving after %s", time.Since(begin).Round(time.Millisecond))
	require.NoFileExists(t, filepath.Join(dir2, "sql-tool.log"), "the sql tool ran on migrated databases")
	require.Equal(t, "on", synchronousCommit(t, name), "without AsyncCommit")
	cl, err := client.DialContext(ctx, client.Options{HostPort: c2.HostPort(), Namespace: c2.Namespace(),
		Logger: sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler))})
	require.NoError(t, err)
	desc, err := cl.DescribeWorkflow(ctx, "after-restart", "")
	cl.Close()
	require.NoError(t, err, "the first cluster's workflow")
	require.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, desc.Status)

	// Each detached process leads a session of its own; StopDir stops
	// them all by their pid files.
	st, err := ReadStatus(dir2)
	require.NoError(t, err)
	require.True(t, st.AllRunning(), "%+v", st)
	require.Equal(t, c2.HostPort(), st.State.HostPort)
	require.Len(t, st.Processes, len(Services), "no UI")
	for _, p := range st.Processes {
		require.Equal(t, p.PID, sessionID(t, p.PID), p.Name)
	}
	// Neither its dir nor its databases take a second cluster.
	_, err = Start(ctx, Options{Dir: dir2, DatabaseURL: testenv.DatabaseURL(), Database: testDatabase(), UIPort: -1})
	require.EqualError(t, err, "cluster: a cluster started in "+dir2+" still runs (4 processes): stop it first")
	dir3 := t.TempDir()
	_, err = Start(ctx, Options{Dir: dir3, DatabaseURL: testenv.DatabaseURL(), Database: name, UIPort: -1})
	require.ErrorContains(t, err, "cluster: database "+name+" is in use by a running cluster (its services' membership ports ")
	require.NoFileExists(t, pidFile(dir3, "history"))
	st3, err := ReadStatus(dir2)
	require.NoError(t, err)
	require.True(t, st3.AllRunning(), "the running cluster is left alone")

	require.NoError(t, StopDir(dir2))
	for _, p := range st.Processes {
		require.True(t, gone(p.PID), p.Name)
		require.NoFileExists(t, pidFile(dir2, p.Name))
	}
	require.NoFileExists(t, stateFile(dir2))
	after, err := ReadStatus(dir2)
	require.NoError(t, err)
	require.Nil(t, after.State)
	require.Zero(t, after.Running())
	require.ErrorIs(t, StopDir(dir2), ErrNotRunning)

	require.NoError(t, c2.Drop(ctx))
	require.Empty(t, databasesOf(t, name))
}

// TestStartPortInUse: a fixed port that is taken fails the start before
// anything is created: no database, no dir.
func TestStartPortInUse(t *testing.T) {
	requireBinaries(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	name := testDatabase()
	dir := filepath.Join(t.TempDir(), "cluster")

	_, err = Start(context.Background(), Options{Dir: dir, DatabaseURL: testenv.DatabaseURL(), Database: name, Port: port, UIPort: -1})
	require.EqualError(t, err, fmt.Sprintf("cluster: port %d (frontend gRPC) is in use on 127.0.0.1: stop what listens there (a cluster started before: `tsync dev cluster stop`) or choose other ports", port))
	require.NoDirExists(t, dir)
	require.Empty(t, databasesOf(t, name))
}

// TestStartWithoutBinaries says what is missing and how to build it, and
// creates nothing.
func TestStartWithoutBinaries(t *testing.T) {
	bin := t.TempDir()
	dir := filepath.Join(t.TempDir(), "cluster")
	name := testDatabase()
	_, err := Start(context.Background(), Options{BinDir: bin, Dir: dir, DatabaseURL: testenv.DatabaseURL(), Database: name})
	require.EqualError(t, err, "cluster: temporal-server, temporal-sql-tool, temporal-ui-server missing in "+bin+
		": run `make cluster-tools` (builds them from the Go module proxy, a few minutes the first time)")
	// Without a UI, its server is not needed.
	require.NoError(t, os.WriteFile(filepath.Join(bin, ServerBin), nil, 0o755))
	_, err = Start(context.Background(), Options{BinDir: bin, Dir: dir, DatabaseURL: testenv.DatabaseURL(), Database: name, UIPort: -1})
	require.EqualError(t, err, "cluster: temporal-sql-tool missing in "+bin+
		": run `make cluster-tools` (builds them from the Go module proxy, a few minutes the first time)")
	require.NoDirExists(t, dir)
	require.Empty(t, databasesOf(t, name))
}

// TestStopDirLeavesOthersAlone: a pid file naming a process that is not
// the cluster's (here the test itself) is removed as stale, and the process
// is not signalled.
func TestStopDirLeavesOthersAlone(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(pidFile(dir, "history"), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644))
	require.NoError(t, os.WriteFile(pidFile(dir, "frontend"), []byte("999999999\n"), 0o644))
	st, err := ReadStatus(dir)
	require.NoError(t, err)
	require.Nil(t, st.State)
	require.Zero(t, st.Running())
	require.NoFileExists(t, pidFile(dir, "history"))
	require.NoFileExists(t, pidFile(dir, "frontend"))

	require.NoError(t, os.WriteFile(pidFile(dir, "history"), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644))
	require.ErrorIs(t, StopDir(dir), ErrNotRunning)
	require.NoFileExists(t, pidFile(dir, "history"))
}

// TestOptionsErrors: what Start refuses before it touches anything.
func TestOptionsErrors(t *testing.T) {
	dir := t.TempDir()
	url := testenv.DatabaseURL()
	for _, tc := range []struct {
		opts Options
		err  string
	}{
		{Options{DatabaseURL: url, Database: "x"}, "cluster: Options.Dir is required"},
		{Options{Dir: dir, Database: "x"}, "cluster: Options.DatabaseURL is required"},
		{Options{Dir: dir, DatabaseURL: url}, "cluster: Options.Database is required"},
		{Options{Dir: dir, DatabaseURL: url, Database: "test"}, "cluster: database URL names the cluster's own database test: name another (e.g. postgres)"},
		{Options{Dir: dir, DatabaseURL: url, Database: "x", Host: "localhost"}, `cluster: host "localhost" is not an IP address`},
		{Options{Dir: dir, DatabaseURL: "postgres:///x?host=/run/postgresql", Database: "x"},
			"cluster: database URL: the Temporal server needs a TCP address, not the socket /run/postgresql"},
		{Options{Dir: dir, DatabaseURL: url, Database: "x", TLS: &TLS{CAFile: "ca.pem"}}, "cluster: TLS.CertFile is required"},
	} {
		_, err := Start(context.Background(), tc.opts)
		require.EqualError(t, err, tc.err)
	}
}

// TestLatestVersion picks the newest vX.Y directory, numerically.
func TestLatestVersion(t *testing.T) {
	dir := t.TempDir()
	for _, v := range []string{"v1.2", "v1.10", "v1.9", "notes", "v2.x"} {
		require.NoError(t, os.Mkdir(filepath.Join(dir, v), 0o755))
	}
	got, err := latestVersion(dir)
	require.NoError(t, err)
	require.Equal(t, "1.10", got)
	_, err = latestVersion(t.TempDir())
	require.ErrorContains(t, err, "has no vX.Y versions")
}

// TestClusterTLS: with TLS, the frontend requires a client certificate
// signed by the CA. The cluster's own services reach it with theirs (a
// workflow runs), the Web UI too (its API answers), and a client without a
// certificate is refused.
func TestClusterTLS(t *testing.T) {
	requireBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	pki, err := certs.Write(t.TempDir())
	require.NoError(t, err)
	name := testDatabase()
	dropAtEnd(t, name)
	dir := t.TempDir()
	logTails(t, dir)

	begin := time.Now()
	c, err := Start(ctx, Options{Dir: dir, DatabaseURL: testenv.DatabaseURL(), Database: name,
		Log: slog.New(slog.NewTextHandler(t.Output(), nil)),
		TLS: &TLS{
			CAFile: pki.CAFile, CertFile: pki.ServerCertFile, KeyFile: pki.ServerKeyFile,
			ClientCertFile: pki.ClientCertFile, ClientKeyFile: pki.ClientKeyFile, ServerName: certs.ServerName,
		}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Stop() })
	t.Logf("TLS cluster serving after %s", time.Since(begin).Round(time.Millisecond))

	tlsConfig := func(withCert bool) *tls.Config {
		ca, err := os.ReadFile(pki.CAFile)
		require.NoError(t, err)
		pool := x509.NewCertPool()
		require.True(t, pool.AppendCertsFromPEM(ca))
		cfg := &tls.Config{RootCAs: pool, ServerName: certs.ServerName}
		if withCert {
			cert, err := tls.LoadX509KeyPair(pki.ClientCertFile, pki.ClientKeyFile)
			require.NoError(t, err)
			cfg.Certificates = []tls.Certificate{cert}
		}
		return cfg
	}
	dial := func(cfg *tls.Config) error {
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		cl, err := client.DialContext(dctx, client.Options{HostPort: c.HostPort(), Namespace: c.Namespace(),
			ConnectionOptions: client.ConnectionOptions{TLS: cfg},
			Logger:            sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler))})
		if err == nil {
			cl.Close()
		}
		return err
	}
	require.NoError(t, dial(tlsConfig(true)))
	// TLS 1.3: the refusal may reach the client as the alert ("certificate
	// required") or as the connection closed under it.
	require.Error(t, dial(tlsConfig(false)), "a client without a certificate")
	require.Error(t, dial(nil), "a client without TLS")

	// The system worker (which runs the namespace's internal workflows) and
	// the UI reach the frontend with the cluster's client certificate.
	runWorkflowTLS(ctx, t, c, tlsConfig(true), "over-mtls")
	resp, err := http.Get(strings.Replace(c.UIURL(), "/namespaces/default/workflows", "/api/v1/namespaces/default", 1))
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	var ns struct {
		NamespaceInfo struct{ Name, State string }
	}
	require.NoError(t, json.Unmarshal(body, &ns), "%s", body)
	require.Equal(t, "default", ns.NamespaceInfo.Name)
	require.Equal(t, "NAMESPACE_STATE_REGISTERED", ns.NamespaceInfo.State)

	require.NoError(t, c.Kill("frontend"))
	require.NoError(t, c.Restart(ctx, "frontend"))
	require.NoError(t, dial(tlsConfig(true)))
}

// TestStartServiceFails: a service that exits at start fails Start with
// the end of its log, and leaves no process, pid file or cluster.json; the
// databases it made stay, migrated.
func TestStartServiceFails(t *testing.T) {
	requireBinaries(t)
	real, err := findBinaries("", false)
	require.NoError(t, err)
	bin := t.TempDir()
	require.NoError(t, os.Symlink(real.sqlTool, filepath.Join(bin, SQLToolBin)))
	require.NoError(t, os.WriteFile(filepath.Join(bin, ServerBin), []byte("#!/bin/sh\necho \"no luck for $9 ${10}\"\nexit 3\n"), 0o755))
	name := testDatabase()
	dropAtEnd(t, name)
	dir := t.TempDir()

	_, err = Start(context.Background(), Options{BinDir: bin, Dir: dir, DatabaseURL: testenv.DatabaseURL(), Database: name, UIPort: -1})
	require.Error(t, err)
	require.Regexp(t, `^cluster: history exited \(log `+regexp.QuoteMeta(logFile(dir, "history"))+`:\n--- \S+: `+
		regexp.QuoteMeta(filepath.Join(bin, ServerBin))+` --root \S+ --config config --env cluster --allow-no-auth start --service history\nno luck for --service history\)$`, err.Error())
	for _, s := range Services {
		require.NoFileExists(t, pidFile(dir, s))
	}
	require.NoFileExists(t, stateFile(dir))
	require.Equal(t, []string{name, name + visibilitySuffix}, databasesOf(t, name))
	db, err := newDatabase(testenv.DatabaseURL(), name)
	require.NoError(t, err)
	for _, n := range db.names {
		v, err := db.schemaVersion(context.Background(), n)
		require.NoError(t, err)
		require.NotEmpty(t, v, n)
	}
}

// TestServerVersion: the Makefile builds the server this package configures.
func TestServerVersion(t *testing.T) {
	makefile, err := os.ReadFile("../../Makefile")
	require.NoError(t, err)
	require.Regexp(t, `(?m)^TEMPORAL_SERVER_VERSION\s*:=\s*`+regexp.QuoteMeta(ServerVersion)+`$`, string(makefile))
}
