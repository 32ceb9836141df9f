package cli

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync/config"
	"github.com/tsync/tsync/internal/devstack"
)

// The Web UI line shows temporal.ui_url when set, the UI of a dev server
// tsync started, and otherwise says the UI is unknown rather than guess the
// dev server's port (which may be another server's UI).
func TestUILine(t *testing.T) {
	t.Chdir(t.TempDir()) // no var/cluster here
	cfg := config.Default()
	cfg.Temporal.Namespace = "ops"
	c := &CLI{def: Definition{Name: "gizmos"}, cfg: cfg}
	reused := devstack.Status{HostPort: "127.0.0.1:7333", Listening: true, Healthy: true,
		UIURL: "http://127.0.0.1:8233/namespaces/ops/workflows", UIServed: true}
	require.Equal(t, "Temporal Web UI: unknown for the server at 127.0.0.1:7333, which gizmos did not start (set temporal.ui_url to show it)",
		c.uiLine(reused))

	owned := reused
	owned.PID = 42
	require.Equal(t, "Temporal Web UI: http://127.0.0.1:8233/namespaces/ops/workflows", c.uiLine(owned))
	owned.UIServed = false
	require.Equal(t, "Temporal Web UI: not answering yet at http://127.0.0.1:8233/namespaces/ops/workflows", c.uiLine(owned))
	owned.UIURL = ""
	require.Equal(t, "Temporal Web UI: off", c.uiLine(owned))

	c.cfg.Temporal.UIURL = "https://temporal.example.com/"
	require.Equal(t, "Temporal Web UI: https://temporal.example.com/namespaces/ops/workflows", c.uiLine(reused))
	require.Equal(t, "Temporal Web UI: https://temporal.example.com/namespaces/ops/workflows", c.uiLine(owned))
}
