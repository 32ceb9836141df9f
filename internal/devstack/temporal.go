// Package devstack runs the local development stack of a tsync synchronizer:
// a Temporal dev server (the temporal CLI, Web UI included) that outlives the
// command that started it, and the PostgreSQL and Redis services the config
// points at.
//
// A Temporal server already listening at the configured address is always
// reused, never replaced: Start reports it and returns.
//
//	t := devstack.Temporal{Bin: bin, HostPort: cfg.Temporal.HostPort, Namespace: cfg.Temporal.Namespace}
//	res, err := t.Start(ctx) // res.Reused says whether it was running already
//	...
//	err = t.Stop() // only stops a server this package started (by its pid file)
package devstack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"

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

// Status says what runs at a Temporal dev server's address.
type Status struct {
	// HostPort is the frontend address.
	HostPort string
	// Listening reports whether something accepts connections there.
	Listening bool
	// Healthy reports whether a Temporal client connected and passed a
	// health check there.
	Healthy bool
	// PID is the process started by Start, from the pid file; 0 when
	// there is none, or it is not running any more.
	PID int
	// UIURL is the Web UI's URL for the namespace's workflows.
	UIURL string
	// UIServed reports whether the Web UI's port accepts connections.
	UIServed bool
}

// Owned reports whether the server at HostPort is the one Start started.
func (s Status) Owned() bool { return s.PID != 0 }

// StartResult says how Start found or left the server.
type StartResult struct {
	Status
	// Reused reports that a server was listening already, and was left as
	// it was.
	Reused bool
	// Log is the started server's log file ("" when Reused).
	Log string
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

// Listening reports whether something accepts TCP connections at hostPort.
func Listening(hostPort string) bool {
	conn, err := net.DialTimeout("tcp", hostPort, 500*time.Millisecond)
	if err != nil {
		return false
	}
	conn.Close()
	return true
}

// CheckHealth connects a Temporal client to hostPort and runs its health
// check.
func CheckHealth(ctx context.Context, hostPort, namespace string) error {
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := client.DialContext(dctx, client.Options{
		HostPort:  hostPort,
		Namespace: namespace,
		Logger:    quietLogger(),
	})
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.CheckHealth(dctx, &client.CheckHealthRequest{}); err != nil {
		return err
	}
	// The namespace must exist too: a fresh server registers it a moment
	// after the frontend answers.
	ns, err := c.WorkflowService().DescribeNamespace(dctx, &workflowservice.DescribeNamespaceRequest{Namespace: namespace})
	if err != nil {
		return fmt.Errorf("namespace %s: %w", namespace, err)
	}
	if st := ns.GetNamespaceInfo().GetState(); st != enumspb.NAMESPACE_STATE_REGISTERED {
		return fmt.Errorf("namespace %s is %s", namespace, st)
	}
	return nil
}

// Status reports what runs at t.HostPort, and whether it is the server
// Start started (then UIURL uses the UI port it was started with).
func (t Temporal) Status(ctx context.Context) Status {
	if o, ok := t.Owned(); ok && o.HostPort == t.HostPort {
		t.UIPort = o.UIPort
		s := t.status(ctx)
		s.PID = o.PID
		return s
	}
	return t.status(ctx)
}

func (t Temporal) status(ctx context.Context) Status {
	s := Status{HostPort: t.HostPort, UIURL: t.UIURL()}
	s.Listening = Listening(t.HostPort)
	if s.Listening {
		s.Healthy = CheckHealth(ctx, t.HostPort, t.namespace()) == nil
	}
	if s.UIURL != "" {
		s.UIServed = Listening(t.uiAddr())
	}
	return s
}

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

// Start reuses a server listening at t.HostPort, or else starts
// `temporal server start-dev` detached from the calling process (in its own
// session, so it outlives it), logging to LogFile and recording its pid in
// PIDFile, and waits until a client can connect and the namespace is
// served.
func (t Temporal) Start(ctx context.Context) (StartResult, error) {
	o, owned := t.Owned()
	if owned && o.HostPort == t.HostPort && !Listening(t.HostPort) {
		// Ours, still starting: wait for it rather than start another.
		if err := t.waitHealthy(ctx, nil); err != nil {
			return StartResult{}, fmt.Errorf("the dev server started by tsync (pid %d) at %s does not serve: %w (stop it with tsync dev stop)", o.PID, t.HostPort, err)
		}
	}
	if Listening(t.HostPort) {
		if err := t.waitHealthy(ctx, nil); err != nil {
			return StartResult{}, fmt.Errorf("something listens at %s but it is not a usable Temporal server: %w", t.HostPort, err)
		}
		return StartResult{Status: t.Status(ctx), Reused: true}, nil
	}
	if owned {
		return StartResult{}, fmt.Errorf("the dev server started by tsync (pid %d, %s) listens at %s, not %s: stop it first (tsync dev stop) or set temporal.host_port to %[3]s",
			o.PID, t.PIDFile(), o.HostPort, t.HostPort)
	}
	bin := t.Bin
	if bin == "" {
		var err error
		if bin, err = FindTemporalBin(""); err != nil {
			return StartResult{}, err
		}
	}
	args, err := t.Args()
	if err != nil {
		return StartResult{}, err
	}
	if err := os.MkdirAll(t.dir(), 0o755); err != nil {
		return StartResult{}, err
	}
	if t.DBFile != "" {
		if err := os.MkdirAll(filepath.Dir(t.DBFile), 0o755); err != nil {
			return StartResult{}, err
		}
	}
	logf, err := os.OpenFile(t.LogFile(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return StartResult{}, err
	}
	defer logf.Close()
	logStart, _ := logf.Seek(0, io.SeekEnd)
	fmt.Fprintf(logf, "--- %s: %s %s\n", time.Now().Format(time.RFC3339), bin, strings.Join(args, " "))

	// Not exec.CommandContext: the server must survive ctx and this process.
	cmd := exec.Command(bin, args...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return StartResult{}, fmt.Errorf("start %s: %w", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	pid := cmd.Process.Pid
	if err := os.WriteFile(t.PIDFile(), []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		return StartResult{}, err
	}
	if err := t.waitHealthy(ctx, exited); err != nil {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		_ = os.Remove(t.PIDFile())
		return StartResult{}, fmt.Errorf("temporal dev server did not start at %s: %w%s", t.HostPort, err, t.logTail(logStart))
	}
	if t.uiPort() > 0 {
		// The UI comes up with the server; give it a moment.
		deadline := time.Now().Add(5 * time.Second)
		for !Listening(t.uiAddr()) && time.Now().Before(deadline) && ctx.Err() == nil {
			time.Sleep(100 * time.Millisecond)
		}
	}
	return StartResult{Status: t.Status(ctx), Log: t.LogFile()}, nil
}

// waitHealthy waits until CheckHealth passes, the start timeout passes, ctx
// is done or (when exited is not nil) the server exits.
func (t Temporal) waitHealthy(ctx context.Context, exited <-chan error) error {
	timeout := t.StartTimeout
	if timeout <= 0 {
		timeout = DefaultStartTimeout
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		if last = CheckHealth(wctx, t.HostPort, t.namespace()); last == nil {
			return nil
		}
		select {
		case err := <-exited:
			if err == nil {
				err = errors.New("exit status 0")
			}
			return fmt.Errorf("the server exited: %w", err)
		case <-wctx.Done():
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("not ready after %s: %w", timeout, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// logTail returns the last lines the server logged since offset, for an
// error message.
func (t Temporal) logTail(offset int64) string {
	data, err := os.ReadFile(t.LogFile())
	if err != nil || int64(len(data)) <= offset {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(data[offset:])), "\n")
	if len(lines) > 6 {
		lines = lines[len(lines)-6:]
	}
	return fmt.Sprintf(" (log %s:\n%s)", t.LogFile(), strings.Join(lines, "\n"))
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

// FindTemporalBin returns the temporal CLI to run: flag when set, else
// bin/temporal next to the go.mod at or above the working directory, else
// `temporal` on PATH.
func FindTemporalBin(flag string) (string, error) {
	if flag != "" {
		if _, err := os.Stat(flag); err != nil {
			if p, lerr := exec.LookPath(flag); lerr == nil {
				return p, nil
			}
			return "", fmt.Errorf("temporal CLI %s: %w", flag, err)
		}
		return flag, nil
	}
	if dir, err := os.Getwd(); err == nil {
		for {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				p := filepath.Join(dir, "bin", "temporal")
				if _, err := os.Stat(p); err == nil {
					return p, nil
				}
				break
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	if p, err := exec.LookPath("temporal"); err == nil {
		return p, nil
	}
	return "", errors.New("temporal CLI not found: run `make tools` (builds bin/temporal), put `temporal` on PATH, or pass --temporal-bin")
}

// quietLogger keeps the SDK's connection retries out of the output.
func quietLogger() sdklog.Logger { return sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler)) }
