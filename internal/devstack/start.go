package devstack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// StartResult says how Start found or left the server.
type StartResult struct {
	Status
	// Reused reports that a server was listening already, and was left as
	// it was.
	Reused bool
	// Log is the started server's log file ("" when Reused).
	Log string
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
