package integration

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync"
	"github.com/tsync/tsync/internal/testenv"
	"github.com/tsync/tsync/internal/testmodels"
)

// Health endpoints (issue 12): /healthz and /readyz on metrics_address,
// against the real services.

// probe returns the status and body of a GET of url, or 0 and the error's
// text when there is no answer.
func probe(url string) (int, string) {
	client := http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err.Error()
	}
	return resp.StatusCode, string(body)
}

// waitProbe waits until url answers status with a body satisfying ok, and
// returns that body.
func waitProbe(t *testing.T, url string, status int, ok func(body string) bool, what string) string {
	t.Helper()
	var code int
	var body string
	require.Eventually(t, func() bool {
		code, body = probe(url)
		return code == status && ok(body)
	}, 60*time.Second, 50*time.Millisecond, "%s: %s never answered %d as expected; last %d:\n%s", what, url, status, code, body)
	return body
}

func equals(want string) func(string) bool { return func(s string) bool { return s == want } }

// /readyz of a process running a worker and a starter: ready once both
// run; 503 naming Temporal while its server is down (the process stays
// alive: /healthz 200), ready again once it is back, and 503 from the
// moment the process is told to stop.
func TestReadinessFollowsTemporal(t *testing.T) {
	t.Parallel()
	srv := durableServer(t)
	startServer(t, srv)
	_, schema := testenv.Schema(t)
	cfg := testenv.Config(t, srv.HostPort(), schema)
	cfg.MetricsAddress = testenv.FreeAddress(t)
	rec := newRecorder()
	logs := &testenv.SyncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	e := openEnv(t, cfg, tsync.Synchronizer{Models: registry(), Steps: []tsync.Step{rec}}, log)
	e.rec = rec
	base := "http://" + cfg.MetricsAddress
	require.Equal(t, base+"/metrics", e.app.MetricsURL)

	code, body := probe(base + "/healthz")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "ok\n", body)
	// Connected, running nothing yet.
	waitProbe(t, base+"/readyz", http.StatusOK, equals("[+]temporal ok\n[+]postgres ok\n[+]shutdown ok\nreadyz check passed\n"), "opened")

	// The worker, then the starter, as `tsync run` runs them.
	ctx, stop := context.WithCancel(e.ctx)
	var done []chan struct{}
	for _, run := range []func(context.Context) error{e.app.RunWorker, e.app.RunStarter} {
		d := make(chan struct{})
		done = append(done, d)
		go func() {
			defer close(d)
			require.NoError(t, run(ctx))
		}()
		if len(done) == 1 {
			waitProbe(t, base+"/readyz", http.StatusOK, func(b string) bool { return strings.Contains(b, "[+]worker ok\n") }, "worker started")
		}
	}
	t.Cleanup(func() {
		stop()
		for _, d := range done {
			<-d
		}
	})
	ready := "[+]temporal ok\n[+]postgres ok\n[+]worker ok\n[+]starter ok\n[+]shutdown ok\nreadyz check passed\n"
	waitProbe(t, base+"/readyz", http.StatusOK, equals(ready), "worker and starter running")
	e.waitInSync(30*time.Second, e.insert(&testmodels.Item{Name: "before"}))

	// The server goes down: not ready, saying why; alive all the same.
	require.NoError(t, srv.Stop())
	down := waitProbe(t, base+"/readyz", http.StatusServiceUnavailable, func(b string) bool {
		return strings.HasPrefix(b, "[-]temporal failed: "+srv.HostPort()+": health check error: ")
	}, "server stopped")
	t.Logf("/readyz while the server is down:\n%s", down)
	lines := strings.Split(strings.TrimSuffix(down, "\n"), "\n")
	require.Equal(t, []string{"[+]postgres ok", "[+]worker ok", "[+]starter ok", "[+]shutdown ok", "readyz check failed"}, lines[1:])
	code, body = probe(base + "/healthz")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "ok\n", body)

	// Back: ready again, and syncing.
	back := startServer(t, srv)
	waitProbe(t, base+"/readyz", http.StatusOK, equals(ready), "server restarted")
	t.Logf("ready again %s after the server serves again", time.Since(back).Round(time.Millisecond))
	e.waitInSync(60*time.Second, e.insert(&testmodels.Item{Name: "after"}))

	// Told to stop: not ready at once; the worker stops polling.
	stop()
	waitProbe(t, base+"/readyz", http.StatusServiceUnavailable, equals("[+]temporal ok\n[+]postgres ok\n"+
		"[-]worker failed: stopped polling task queue \""+cfg.Temporal.TaskQueue+"\"\n[+]starter ok\n"+
		"[-]shutdown failed: shutting down: no new work is taken, work under way may finish\nreadyz check failed\n"), "stopping")
	for _, d := range done {
		<-d
	}
	// The endpoint lives until the app is closed.
	e.app.Close()
	code, _ = probe(base + "/healthz")
	require.Zero(t, code, "/healthz still answers after Close")
	if t.Failed() {
		_, _ = os.Stderr.WriteString(logs.String())
	}
}
