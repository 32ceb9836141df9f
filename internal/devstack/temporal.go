package devstack

import (
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"github.com/tsync/tsync/internal/workflows"
)

// DefaultUIPort is the port of the Temporal Web UI.
const DefaultUIPort = 8233

// DefaultStartTimeout bounds the wait for a started server to accept clients.
const DefaultStartTimeout = 30 * time.Second

// Temporal describes a local Temporal dev server. Zero values take the
// documented defaults.
type Temporal struct {
	// Bin is the temporal CLI. "": FindTemporalBin("").
	Bin string
	// HostPort is the frontend address (required), e.g. "127.0.0.1:7233".
	HostPort string
	// Namespace is the namespace the server must serve; the dev server
	// creates it when it is not "default". "": "default".
	Namespace string
	// UIPort is the Web UI's port. 0: DefaultUIPort. -1: no Web UI
	// (--headless).
	UIPort int
	// Dir holds the pid file (temporal.pid) and the log (temporal.log).
	// "": "var".
	Dir string
	// DBFile is the server's SQLite file, relative to the working directory
	// unless absolute. "": in memory (lost when the server stops).
	DBFile string
	// LogLevel is the server's log level. "": "warn".
	LogLevel string
	// ExtraArgs are appended to `temporal server start-dev`.
	ExtraArgs []string
	// StartTimeout bounds the wait for the server to accept clients.
	// 0: DefaultStartTimeout.
	StartTimeout time.Duration
}

func (t Temporal) namespace() string {
	if t.Namespace == "" {
		return "default"
	}
	return t.Namespace
}

func (t Temporal) uiPort() int {
	if t.UIPort == 0 {
		return DefaultUIPort
	}
	return t.UIPort
}

func (t Temporal) dir() string {
	if t.Dir == "" {
		return "var"
	}
	return t.Dir
}

// PIDFile is the file holding the pid of the server Start started.
func (t Temporal) PIDFile() string { return filepath.Join(t.dir(), "temporal.pid") }

// LogFile is the log of the server Start started.
func (t Temporal) LogFile() string { return filepath.Join(t.dir(), "temporal.log") }

func (t Temporal) host() (string, string, error) {
	host, port, err := net.SplitHostPort(t.HostPort)
	if err != nil {
		return "", "", fmt.Errorf("temporal address %q: %w", t.HostPort, err)
	}
	return host, port, nil
}

// UIURL returns the Web UI's URL of the namespace's workflows, or "" when
// the UI is off.
func (t Temporal) UIURL() string {
	if t.uiPort() < 0 {
		return ""
	}
	host, _, err := t.host()
	if err != nil || host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return fmt.Sprintf("http://%s/namespaces/%s/workflows", net.JoinHostPort(host, strconv.Itoa(t.uiPort())), t.namespace())
}

func (t Temporal) uiAddr() string {
	host, _, err := t.host()
	if err != nil || host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, strconv.Itoa(t.uiPort()))
}

// Args returns the arguments Start passes to the temporal CLI.
func (t Temporal) Args() ([]string, error) {
	host, port, err := t.host()
	if err != nil {
		return nil, err
	}
	level := t.LogLevel
	if level == "" {
		level = "warn"
	}
	args := []string{"server", "start-dev", "--ip", host, "--port", port}
	if t.uiPort() < 0 {
		args = append(args, "--headless")
	} else {
		args = append(args, "--ui-port", strconv.Itoa(t.uiPort()))
	}
	if t.DBFile != "" {
		args = append(args, "--db-filename", t.DBFile)
	}
	if t.namespace() != "default" {
		args = append(args, "--namespace", t.namespace())
	}
	args = append(args, "--log-level", level)
	// The search attributes of tsync's workflows, so the Web UI can list
	// syncs by model, object and state.
	args = append(args, workflows.DevServerArgs()...)
	return append(args, t.ExtraArgs...), nil
}
