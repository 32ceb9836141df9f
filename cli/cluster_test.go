package cli

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync/config"
	"github.com/tsync/tsync/internal/cluster"
	"github.com/tsync/tsync/internal/testenv"
)

// TestDevClusterNotRunning: status and stop of a cluster that was never
// started.
func TestDevClusterNotRunning(t *testing.T) {
	t.Chdir(t.TempDir())
	def := userDefinition()
	def.DefaultConfig = config.Sample
	code, stdout, stderr := runCLI(t, def, nil, "dev", "cluster", "status")
	require.Equal(t, 1, code)
	require.Equal(t, "Temporal cluster: not running (start it with `gizmos dev cluster start` or `make cluster`)\n", stdout)
	require.Equal(t, "the Temporal cluster is not running\n", stderr)

	code, stdout, stderr = runCLI(t, def, nil, "dev", "cluster", "stop")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, "Temporal cluster: none started by `gizmos dev cluster start` is running (var/cluster)\n", stdout)

	code, _, stderr = runCLI(t, def, nil, "dev", "cluster", "start", "--database", "")
	require.Equal(t, 1, code)
	require.Equal(t, "--database must not be empty\n", stderr)
	require.NoDirExists(t, clusterStateDir)
}

// TestDevCluster starts a cluster with `dev cluster start` (on free ports),
// which outlives the command; a second start reuses it; status lists its
// processes; stop stops them.
func TestDevCluster(t *testing.T) {
	root, err := filepath.Abs("..")
	require.NoError(t, err)
	bin := filepath.Join(root, "bin")
	if err := cluster.CheckBinaries(bin); err != nil {
		if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
			t.Fatalf("%v (CI must run the cluster tests)", err)
		}
		t.Skip(err)
	}
	t.Chdir(t.TempDir())
	database := "tsync_cli_" + testenv.Random(4)
	t.Cleanup(func() {
		_ = cluster.StopDir(clusterStateDir)
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, testenv.DatabaseURL())
		require.NoError(t, err)
		defer conn.Close(ctx)
		for _, name := range []string{database, database + "_visibility"} {
			_, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
			require.NoError(t, err)
		}
	})
	def := userDefinition()
	def.DefaultConfig = config.Sample
	env := []string{"TSYNC_DATABASE_URL=" + testenv.DatabaseURL()}

	begin := time.Now()
	code, stdout, stderr := runCLI(t, def, env, "dev", "cluster", "start", "--bin-dir", bin, "--database", database, "--port", "0", "--ui-port", "0")
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
	t.Logf("dev cluster start: %s\n%s", time.Since(begin).Round(time.Millisecond), stdout)
	require.Regexp(t, regexp.MustCompile(`^Temporal cluster: starting v1\.29\.1 \(databases `+database+` and `+database+`_visibility, state in var/cluster\)
Temporal cluster: serving after [0-9.]+m?s: frontend, history, matching and worker as separate processes, and the Web UI
Frontend: 127\.0\.0\.1:(\d+) \(namespace default\)
Web UI:   http://127\.0\.0\.1:\d+/namespaces/default/workflows
Logs:     var/cluster/ \(history\.log, matching\.log, frontend\.log, worker\.log, ui\.log\)
Use it:   export TSYNC_TEMPORAL_HOST_PORT=127\.0\.0\.1:\d+
Stop it:  gizmos dev cluster stop \(or make cluster-stop\)
$`), stdout)
	st, err := cluster.ReadStatus(clusterStateDir)
	require.NoError(t, err)
	require.True(t, st.AllRunning(), "the cluster outlives the command: %+v", st)
	require.Len(t, st.Processes, len(cluster.Services)+1)
	require.Contains(t, stdout, "TSYNC_TEMPORAL_HOST_PORT="+st.State.HostPort+"\n")

	code, stdout, stderr = runCLI(t, def, env, "dev", "cluster", "start", "--bin-dir", bin, "--database", database)
	require.Equal(t, 0, code, stderr)
	require.Regexp(t, "^Temporal cluster: already running \\(started by `gizmos dev cluster start` .*\\); reusing it\nFrontend: "+regexp.QuoteMeta(st.State.HostPort)+" ", stdout)

	code, stdout, stderr = runCLI(t, def, env, "dev", "cluster", "status")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "Temporal cluster: serving at "+st.State.HostPort+" (namespace default; started ")
	for _, p := range st.Processes {
		require.Contains(t, stdout, "  "+p.Name)
		require.Contains(t, stdout, "pid "+strconv.Itoa(p.PID))
	}

	code, stdout, stderr = runCLI(t, def, env, "dev", "cluster", "stop")
	require.Equal(t, 0, code, stderr)
	require.Regexp(t, `^Temporal cluster: stopped \(history \d+, matching \d+, frontend \d+, worker \d+, ui \d+\); its databases stay
$`, stdout)
	after, err := cluster.ReadStatus(clusterStateDir)
	require.NoError(t, err)
	require.Zero(t, after.Running())
	require.Nil(t, after.State)
}
