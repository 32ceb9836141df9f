package cli

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync/app"
	"github.com/tsync/tsync/metrics"
)

// `health` asks the process at metrics_address: exit 0 and the body when
// ready (or, with --live, alive), exit 1 and why otherwise.
func TestHealthCommand(t *testing.T) {
	h := app.NewHealth(0, time.Second)
	var down error
	h.Set(app.Check{Name: "temporal", Run: func(context.Context) error { return down }})
	m, err := metrics.New(nil)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- m.ServeListener(ctx, ln, h.Routes()...) }()
	defer func() { cancel(); require.NoError(t, <-served) }()
	_, port, err := net.SplitHostPort(ln.Addr().String())
	require.NoError(t, err)

	def := userDefinition()
	def.DefaultConfig = []byte("observer_name: gizmos\n")
	for _, addr := range []string{ln.Addr().String(), ":" + port, "0.0.0.0:" + port} {
		env := []string{"TSYNC_METRICS_ADDRESS=" + addr}
		code, stdout, stderr := runCLI(t, def, env, "health")
		require.Equal(t, 0, code, stderr)
		require.Equal(t, "[+]temporal ok\n[+]shutdown ok\nreadyz check passed\n", stdout)
		require.Empty(t, stderr)
	}
	env := []string{"TSYNC_METRICS_ADDRESS=:" + port}

	down = errors.New("connection refused")
	code, stdout, stderr := runCLI(t, def, env, "health")
	require.Equal(t, 1, code)
	require.Equal(t, "[-]temporal failed: connection refused\n[+]shutdown ok\nreadyz check failed\n", stdout)
	require.Equal(t, "health: http://127.0.0.1:"+port+"/readyz answered 503\n", stderr)

	code, stdout, stderr = runCLI(t, def, env, "health", "--live")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, "ok\n", stdout)

	code, _, stderr = runCLI(t, def, nil, "health")
	require.Equal(t, 1, code)
	require.Equal(t, "health: metrics_address is not set, so nothing serves /readyz (set it, or TSYNC_METRICS_ADDRESS=:9464)\n", stderr)

	cancel()
	require.NoError(t, <-served)
	served <- nil // for the deferred wait
	code, _, stderr = runCLI(t, def, env, "health", "--timeout", "2s")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "health: http://127.0.0.1:"+port+"/readyz: ")
	require.Contains(t, stderr, "connection refused")
}
