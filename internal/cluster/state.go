package cluster

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// State is what a started cluster records in its Dir (cluster.json), for
// the commands that find it later.
type State struct {
	// HostPort is the frontend's gRPC address.
	HostPort string `json:"host_port"`
	// UIURL is the Web UI's URL of the namespace's workflows, "" without.
	UIURL string `json:"ui_url,omitempty"`
	// Namespace is the namespace Start registered.
	Namespace string `json:"namespace"`
	// Database is the persistence database (visibility: +"_visibility").
	Database string `json:"database"`
	// TLS reports whether the frontend requires mTLS.
	TLS bool `json:"tls"`
	// Detached reports whether the processes outlive their starter.
	Detached bool `json:"detached"`
	// Started is when Start returned.
	Started time.Time `json:"started"`
}

func stateFile(dir string) string { return filepath.Join(dir, "cluster.json") }

func (c *Cluster) state() State {
	return State{
		HostPort:  c.hostPort,
		UIURL:     c.uiURL,
		Namespace: c.opts.Namespace,
		Database:  c.db.names[0],
		TLS:       c.tls != nil,
		Detached:  c.opts.Detached,
		Started:   time.Now().UTC().Truncate(time.Second),
	}
}

func writeState(dir string, s State) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("cluster: state: %w", err)
	}
	if err := os.WriteFile(stateFile(dir), append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("cluster: state: %w", err)
	}
	return nil
}

// ProcessStatus says whether one process of a cluster runs.
type ProcessStatus struct {
	// Name is the service's name, or UI.
	Name string
	// PID is its process id, 0 when it does not run.
	PID int
	// Log is its log file (under the dir given to ReadStatus).
	Log string
}

// Running reports whether the process runs.
func (p ProcessStatus) Running() bool { return p.PID != 0 }

// Status is what runs of the cluster started in a Dir.
type Status struct {
	// State is the cluster's cluster.json; nil when there is none (no
	// cluster was started there, or it was stopped).
	State *State
	// Processes are the services, in start order, then the UI (when the
	// cluster has one).
	Processes []ProcessStatus
}

// Running is the number of its processes that run.
func (s Status) Running() int {
	n := 0
	for _, p := range s.Processes {
		if p.Running() {
			n++
		}
	}
	return n
}

// AllRunning reports whether the cluster was started and all its
// processes run.
func (s Status) AllRunning() bool {
	return s.State != nil && s.Running() == len(s.Processes)
}

// ReadStatus reports what runs of the cluster started in dir, by its pid
// files: a process counts only while it runs the binary and service the
// pid file is for, with this dir's config. Stale pid files are removed.
func ReadStatus(dir string) (Status, error) {
	given := dir
	dir, err := filepath.Abs(dir)
	if err != nil {
		return Status{}, fmt.Errorf("cluster: dir: %w", err)
	}
	var st Status
	data, err := os.ReadFile(stateFile(dir))
	switch {
	case err == nil:
		var s State
		if err := json.Unmarshal(data, &s); err != nil {
			return Status{}, fmt.Errorf("cluster: %s: %w", stateFile(dir), err)
		}
		st.State = &s
	case !errors.Is(err, os.ErrNotExist):
		return Status{}, fmt.Errorf("cluster: %w", err)
	}
	for _, name := range append(slices.Clone(Services), UI) {
		pid := ownedPID(dir, name)
		if name == UI && pid == 0 && (st.State == nil || st.State.UIURL == "") {
			continue
		}
		st.Processes = append(st.Processes, ProcessStatus{Name: name, PID: pid, Log: logFile(given, name)})
	}
	return st, nil
}

// ErrNotRunning is returned by StopDir when no process of a cluster runs
// in its dir.
var ErrNotRunning = errors.New("no cluster process started there is running")

// StopDir stops the cluster started (detached) in dir, by its pid files:
// SIGTERM to each process that still runs what its pid file says, then
// SIGKILL to those still running after 20 s. It removes the pid files and
// cluster.json. Processes it does not recognize are left alone; with none
// running it returns ErrNotRunning.
func StopDir(dir string) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("cluster: dir: %w", err)
	}
	var pids []int
	for _, name := range append(slices.Clone(Services), UI) {
		if pid := ownedPID(dir, name); pid != 0 {
			if err := syscall.Kill(pid, syscall.SIGTERM); err == nil {
				pids = append(pids, pid)
			}
		}
	}
	defer func() {
		for _, name := range append(slices.Clone(Services), UI) {
			_ = os.Remove(pidFile(dir, name))
		}
		_ = os.Remove(stateFile(dir))
	}()
	if len(pids) == 0 {
		return ErrNotRunning
	}
	deadline := time.Now().Add(stopGrace)
	for time.Now().Before(deadline) && slices.ContainsFunc(pids, alive) {
		time.Sleep(100 * time.Millisecond)
	}
	var killed []string
	for _, pid := range pids {
		if alive(pid) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			killed = append(killed, strconv.Itoa(pid))
		}
	}
	if len(killed) > 0 {
		for _, pid := range pids {
			for i := 0; i < 50 && alive(pid); i++ {
				time.Sleep(100 * time.Millisecond)
			}
		}
		return fmt.Errorf("cluster: pids %s did not stop within %s of SIGTERM: killed", strings.Join(killed, ", "), stopGrace)
	}
	return nil
}

// ownedPID returns the pid in name's pid file in dir when that process
// runs name with dir's config; else 0, and a stale pid file is removed.
func ownedPID(dir, name string) int {
	file := pidFile(dir, name)
	data, err := os.ReadFile(file)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 || !alive(pid) || !runs(pid, dir, name) {
		_ = os.Remove(file)
		return 0
	}
	return pid
}

// runs reports whether process pid runs name's binary with dir's config,
// as /proc tells; where /proc does not tell, the pid file is trusted.
func runs(pid int, dir, name string) bool {
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		if _, statErr := os.Stat("/proc/self/cmdline"); statErr != nil {
			return true
		}
		return false
	}
	args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
	want, rest := ServerBin, serverArgs(dir, name)
	if name == UI {
		want, rest = UIBin, uiArgs(dir)
	}
	return len(args) > 0 && filepath.Base(args[0]) == want && slices.Equal(args[1:], rest)
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
