package cluster

import (
	"fmt"
	"net"
	"testing"

	"github.com/stretchr/testify/require"
)

// A port in use is refused with a hint naming the command that manages
// the cluster (tsync by default).
func TestPickPortsHintNamesTheCommand(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	_, err = pickPorts("127.0.0.1", port, -1, "gizmos")
	require.EqualError(t, err, fmt.Sprintf("cluster: port %d (frontend gRPC) is in use on 127.0.0.1: stop what listens there "+
		"(a cluster started before: `gizmos dev cluster stop`) or choose other ports", port))
	_, err = pickPorts("127.0.0.1", port, -1, "")
	require.ErrorContains(t, err, "`tsync dev cluster stop`")
}
