package cli

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync/app"
	"github.com/tsync/tsync/config"
	"github.com/tsync/tsync/internal/inspect/inspecttest"
	"github.com/tsync/tsync/internal/storetest"
	"github.com/tsync/tsync/internal/testenv"
)

func getUI(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}

// With ui_address set, run and the worker serve the object view (with the
// token of ui_token_file) while they run, and stop serving when they
// return; a view that cannot listen fails the start; without it, nothing
// is served.
func TestWithUI(t *testing.T) {
	f := inspecttest.New(t)
	a := &app.App{Store: f.Store}
	tokenFile := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(tokenFile, []byte("  tok-123\n"), 0o600))
	cfg := config.Default()
	cfg.ObserverName = "demo"
	cfg.UIAddress = testenv.FreeAddress(t)
	cfg.UITokenFile = tokenFile
	c := &CLI{def: Definition{Name: "gizmos"}, cfg: cfg, log: slog.New(slog.DiscardHandler)}
	t.Chdir(t.TempDir()) // no dev server state here

	stop := errors.New("run ended")
	ran := false
	err := c.withUI(func(_ *app.App, ctx context.Context) error {
		ran = true
		code, _ := getUI(t, "http://"+cfg.UIAddress+"/objects", "")
		require.Equal(t, http.StatusUnauthorized, code)
		code, body := getUI(t, "http://"+cfg.UIAddress+"/objects?state=error", "tok-123")
		require.Equal(t, http.StatusOK, code)
		require.Contains(t, body, `<tr class="row-error"`)
		return stop
	})(a, storetest.Ctx(t))
	require.ErrorIs(t, err, stop)
	require.True(t, ran)
	_, derr := net.Dial("tcp", cfg.UIAddress)
	require.Error(t, derr, "the view stops with the process")

	// The address is taken: the start fails, run never runs.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	c.cfg.UIAddress = ln.Addr().String()
	ran = false
	err = c.withUI(func(*app.App, context.Context) error { ran = true; return nil })(a, storetest.Ctx(t))
	require.ErrorContains(t, err, "object view: listen on "+ln.Addr().String())
	require.False(t, ran)

	// No ui_address: only run.
	c.cfg.UIAddress = ""
	err = c.withUI(func(*app.App, context.Context) error { ran = true; return stop })(a, storetest.Ctx(t))
	require.ErrorIs(t, err, stop)
	require.True(t, ran)
}

// The workflow links use temporal.ui_url when set, and no guess otherwise.
func TestWebUIBase(t *testing.T) {
	t.Chdir(t.TempDir())
	cfg := config.Default()
	cfg.Temporal.HostPort = testenv.FreeAddress(t)
	c := &CLI{def: Definition{Name: "gizmos"}, cfg: cfg}
	require.Empty(t, c.webUIBase(storetest.Ctx(t)))
	c.cfg.Temporal.UIURL = "https://temporal.example.com/"
	require.Equal(t, "https://temporal.example.com", c.webUIBase(storetest.Ctx(t)))
}
