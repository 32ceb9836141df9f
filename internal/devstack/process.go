package devstack

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Server is a dev server Start started, as its pid file and process tell.
type Server struct {
	// PID is its process id.
	PID int
	// HostPort is its frontend address.
	HostPort string
	// UIPort is its Web UI's port, -1 when it runs without one.
	UIPort int
}

// Owned returns the server Start started (found by PIDFile), when it is
// still running. A stale pid file is removed.
func (t Temporal) Owned() (Server, bool) {
	pid, err := t.readPID()
	if err != nil {
		return Server{}, false
	}
	args, known := procArgs(pid)
	if !alive(pid) || (known && !isStartDev(args)) {
		_ = os.Remove(t.PIDFile())
		return Server{}, false
	}
	srv := Server{PID: pid, HostPort: t.HostPort, UIPort: t.uiPort()}
	if known {
		// The process's own arguments say where it listens.
		host, port := flagValue(args, "--ip", "localhost"), flagValue(args, "--port", "7233")
		srv.HostPort = net.JoinHostPort(host, port)
		srv.UIPort, _ = strconv.Atoi(flagValue(args, "--ui-port", ""))
		if srv.UIPort == 0 {
			p, _ := strconv.Atoi(port)
			srv.UIPort = p + 1000
		}
		if slices.Contains(args, "--headless") {
			srv.UIPort = -1
		}
	}
	return srv, true
}

// ErrNotOwned is returned by Stop when there is no server started by Start
// to stop.
var ErrNotOwned = errors.New("no temporal dev server started by tsync is running")

// Stop stops the server Start started, found by its pid file (wherever it
// listens): SIGTERM to its process group, then SIGKILL after 10 s. A server
// it did not start is left alone (ErrNotOwned).
func (t Temporal) Stop() error {
	_, statErr := os.Stat(t.PIDFile())
	o, ok := t.Owned()
	if !ok {
		if statErr == nil {
			return fmt.Errorf("%w (stale pid file %s removed)", ErrNotOwned, t.PIDFile())
		}
		return ErrNotOwned
	}
	pid := o.PID
	if err := syscall.Kill(-pid, syscall.SIGTERM); err != nil {
		if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
			return fmt.Errorf("stop temporal dev server (pid %d): %w", pid, err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for alive(pid) && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if alive(pid) {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		_ = syscall.Kill(pid, syscall.SIGKILL)
		time.Sleep(200 * time.Millisecond)
	}
	_ = os.Remove(t.PIDFile())
	return nil
}

func (t Temporal) readPID() (int, error) {
	data, err := os.ReadFile(t.PIDFile())
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("pid file %s: bad content %q", t.PIDFile(), bytes.TrimSpace(data))
	}
	return pid, nil
}

// alive reports whether process pid exists (and is not a zombie).
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	if stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		// The state follows the command name in parentheses.
		if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
			return false
		}
	}
	return true
}

// procArgs returns pid's command line, when /proc tells (known false
// elsewhere: the pid file is trusted then).
func procArgs(pid int) (args []string, known bool) {
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return nil, false
	}
	return strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00"), true
}

// isStartDev reports whether args run `temporal server start-dev`.
func isStartDev(args []string) bool {
	return len(args) > 0 && strings.Contains(filepath.Base(args[0]), "temporal") &&
		slices.Contains(args, "server") && slices.Contains(args, "start-dev")
}

// flagValue returns the value of flag name in args ("--name v" or
// "--name=v"), or def.
func flagValue(args []string, name, def string) string {
	for i, a := range args {
		if a == name && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
	}
	return def
}
