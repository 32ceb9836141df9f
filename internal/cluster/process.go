package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// process is one process of the cluster, a Temporal service or the Web UI
// server, that can be started, killed and started again with the same
// command line. Its output goes to its log file across restarts; its pid
// is in its pid file while it runs.
type process struct {
	name     string
	bin      string
	args     []string
	dir      string
	logFile  string
	pidFile  string
	detached bool
	// ready reports (nil) once the started process serves.
	ready func(ctx context.Context) error

	mu sync.Mutex
	// cmd is the running process, nil when there is none; exited is
	// closed when it has exited.
	cmd    *exec.Cmd
	exited chan struct{}
}

func logFile(dir, name string) string { return filepath.Join(dir, name+".log") }
func pidFile(dir, name string) string { return filepath.Join(dir, name+".pid") }

// newProcess describes a service's (or the UI's) process.
func (c *Cluster) newProcess(name string) *process {
	p := &process{
		name:     name,
		dir:      c.dir,
		logFile:  logFile(c.dir, name),
		pidFile:  pidFile(c.dir, name),
		detached: c.opts.Detached,
	}
	if name == UI {
		p.bin = c.bins.ui
		p.args = uiArgs(c.dir)
		p.ready = c.uiReady
	} else {
		p.bin = c.bins.server
		p.args = serverArgs(c.dir, name)
		p.ready = c.serviceReady(name)
	}
	return p
}

// serverArgs is the command line of a service (after the binary).
func serverArgs(dir, service string) []string {
	return []string{"--root", dir, "--config", "config", "--env", configEnv, "--allow-no-auth", "start", "--service", service}
}

// uiArgs is the UI server's command line (after the binary).
func uiArgs(dir string) []string {
	return []string{"--root", dir, "--config", "ui", "--env", configEnv, "start"}
}

// start starts the process and waits until it serves, ctx is done or it
// exits; a process that does not come up is killed, and the error ends
// with its log's last lines. It fails if the process runs.
func (p *process) start(ctx context.Context) error {
	if err := p.spawn(); err != nil {
		return err
	}
	return p.waitUntil(ctx, p.ready)
}

// spawn starts the process without waiting for it.
func (p *process) spawn() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reapLocked()
	if p.cmd != nil {
		return fmt.Errorf("cluster: %s already runs (pid %d)", p.name, p.cmd.Process.Pid)
	}
	logf, err := os.OpenFile(p.logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("cluster: %s log: %w", p.name, err)
	}
	fmt.Fprintf(logf, "--- %s: %s %s\n", time.Now().Format(time.RFC3339Nano), p.bin, strings.Join(p.args, " "))
	cmd := exec.Command(p.bin, p.args...)
	cmd.Dir = p.dir
	cmd.Stdout, cmd.Stderr = logf, logf
	if p.detached {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	} else {
		cmd.SysProcAttr = attachedProcAttr()
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("cluster: start %s: %w", p.name, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(exited)
	}()
	p.cmd, p.exited = cmd, exited
	if err := os.WriteFile(p.pidFile, []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644); err != nil {
		_ = cmd.Process.Kill()
		<-exited
		p.cmd, p.exited = nil, nil
		return fmt.Errorf("cluster: %s pid file: %w", p.name, err)
	}
	return nil
}

// waitUntil polls check until it answers nil, ctx is done or the process
// exits; then the process is killed and the error ends with its log's
// last lines.
func (p *process) waitUntil(ctx context.Context, check func(ctx context.Context) error) error {
	p.mu.Lock()
	exited := p.exited
	p.mu.Unlock()
	if exited == nil {
		return fmt.Errorf("cluster: %s does not run", p.name)
	}
	var last error
	for {
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		last = check(cctx)
		cancel()
		if last == nil {
			return nil
		}
		var why string
		select {
		case <-exited:
			why = "exited"
		case <-ctx.Done():
			why = fmt.Sprintf("not serving: %v (last check: %v)", ctx.Err(), last)
		case <-time.After(100 * time.Millisecond):
			continue
		}
		_ = p.kill()
		return fmt.Errorf("cluster: %s %s (log %s:\n%s)", p.name, why, p.logFile, logTail(p.logFile, 15))
	}
}

// reapLocked forgets a process that has exited by itself (a crash), and
// its pid file. p.mu is held.
func (p *process) reapLocked() {
	if p.cmd == nil {
		return
	}
	select {
	case <-p.exited:
		p.cmd, p.exited = nil, nil
		_ = os.Remove(p.pidFile)
	default:
	}
}

// pid is the running process's id, 0 when there is none.
func (p *process) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reapLocked()
	if p.cmd == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// kill kills the process (SIGKILL), as a crash would, and waits until it
// has exited.
func (p *process) kill() error { return p.signal(syscall.SIGKILL, 0) }

// stop stops the process (SIGTERM) and waits until it has exited; after
// grace it is killed, and stop says so.
func (p *process) stop(grace time.Duration) error { return p.signal(syscall.SIGTERM, grace) }

// signal sends sig to the process and waits for it to exit, killing it
// after grace (0: sig is SIGKILL); then removes the pid file. A process
// that does not run is left alone.
func (p *process) signal(sig syscall.Signal, grace time.Duration) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return nil
	}
	cmd, exited := p.cmd, p.exited
	p.cmd, p.exited = nil, nil
	defer os.Remove(p.pidFile)
	if err := cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		_ = cmd.Process.Kill()
	}
	var err error
	if grace > 0 {
		select {
		case <-exited:
			return nil
		case <-time.After(grace):
			err = fmt.Errorf("cluster: %s did not stop within %s of %s: killed", p.name, grace, sig)
			_ = cmd.Process.Kill()
		}
	}
	<-exited
	return err
}

// logTail returns the last n lines of a log.
func logTail(file string, n int) string {
	data, err := os.ReadFile(file)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
