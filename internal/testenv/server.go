package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Server is a server process of one test that the test can stop, gracefully
// (Stop) or by SIGKILL (Kill), and start again (Start) with the same
// command line. Its output goes to a log file, across restarts. On Linux it
// dies with the test process (ServerProcAttr); kill it in a t.Cleanup all
// the same.
type Server struct {
	name    string
	bin     string
	args    []string
	logFile string
	ready   func(ctx context.Context) error

	mu sync.Mutex
	// cmd is the running server, nil when there is none; exited is closed
	// when it has exited.
	cmd    *exec.Cmd
	exited chan struct{}
}

// NewServer returns a server, not started yet: name is how errors call it
// ("redis-server on port 6390"), bin and args its command line, logFile
// where its output goes, and ready reports (nil) once a started server
// serves.
func NewServer(name, bin string, args []string, logFile string, ready func(ctx context.Context) error) *Server {
	return &Server{name: name, bin: bin, args: args, logFile: logFile, ready: ready}
}

// LogFile is the file the server's output goes to.
func (s *Server) LogFile() string { return s.logFile }

// Running reports whether the server process runs (it may not serve yet).
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd != nil
}

// Start starts the server (again) and waits until it is ready, ctx is done,
// or the server exits. It fails if the server runs already. A server that
// does not come up is killed, and the error ends with its log's last lines.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	if s.cmd != nil {
		s.mu.Unlock()
		return fmt.Errorf("%s: already running (pid %d)", s.name, s.cmd.Process.Pid)
	}
	logf, err := os.OpenFile(s.logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		s.mu.Unlock()
		return fmt.Errorf("%s: log: %w", s.name, err)
	}
	fmt.Fprintf(logf, "--- %s: %s %s\n", time.Now().Format(time.RFC3339Nano), s.bin, strings.Join(s.args, " "))
	cmd := exec.Command(s.bin, s.args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = ServerProcAttr()
	if err := cmd.Start(); err != nil {
		logf.Close()
		s.mu.Unlock()
		return fmt.Errorf("start %s: %w", s.name, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(exited)
	}()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()

	if err := s.waitReady(ctx, exited); err != nil {
		_ = s.Kill()
		return fmt.Errorf("%s: %w (log %s:\n%s)", s.name, err, s.logFile, s.logTail())
	}
	return nil
}

// waitReady polls ready until it answers nil, ctx is done or exited is
// closed.
func (s *Server) waitReady(ctx context.Context, exited <-chan struct{}) error {
	for {
		last := s.ready(ctx)
		if last == nil {
			return nil
		}
		select {
		case <-exited:
			return errors.New("the server exited")
		case <-ctx.Done():
			return fmt.Errorf("not serving: %w (last error: %v)", ctx.Err(), last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// logTail returns the last lines of the server's log.
func (s *Server) logTail() string {
	data, err := os.ReadFile(s.logFile)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	return strings.Join(lines[max(0, len(lines)-10):], "\n")
}

// Stop stops the server gracefully (SIGTERM) and waits until it has
// exited; after 30 s it is killed, and Stop says so. Stopping a server that
// does not run does nothing.
func (s *Server) Stop() error {
	return s.signal(syscall.SIGTERM, 30*time.Second)
}

// Kill kills the server (SIGKILL), as a crash would, and waits until it has
// exited. Killing a server that does not run does nothing.
func (s *Server) Kill() error {
	return s.signal(syscall.SIGKILL, 0)
}

// signal sends sig to the server and waits for it to exit, killing it after
// grace (0: sig is SIGKILL).
func (s *Server) signal(sig syscall.Signal, grace time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return nil
	}
	cmd, exited := s.cmd, s.exited
	s.cmd, s.exited = nil, nil
	if err := cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		_ = cmd.Process.Kill()
	}
	var err error
	if grace > 0 {
		select {
		case <-exited:
			return nil
		case <-time.After(grace):
			err = fmt.Errorf("%s did not stop within %s on %s: killed", s.name, grace, sig)
			_ = cmd.Process.Kill()
		}
	}
	<-exited
	return err
}
