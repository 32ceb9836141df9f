package devstack

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestArgsAndURL(t *testing.T) {
	tp := Temporal{HostPort: "127.0.0.1:7233", DBFile: "var/temporal.db"}
	args, err := tp.Args()
	require.NoError(t, err)
	sa := []string{"--dynamic-config-value", "history.transferProcessorMaxPollRPS=200",
		"--dynamic-config-value", `history.transferProcessorUpdateAckInterval="1s"`,
		"--dynamic-config-value", `history.visibilityProcessorUpdateAckInterval="1s"`,
		"--dynamic-config-value", "system.forceSearchAttributesCacheRefreshOnRead=false",
		"--search-attribute", "TsyncModel=Keyword", "--search-attribute", "TsyncObjectID=Int",
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
