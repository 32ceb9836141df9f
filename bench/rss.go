package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/tsync/tsync/app"
	"github.com/tsync/tsync/config"
)

// rss runs a worker and a starter as processes of this binary, with n
// objects pending, and returns their peak RSS (VmHWM) in MiB once all are
// in sync.
func (b *bench) rss(ctx context.Context, n int) (float64, float64, error) {
	e, cleanup, err := b.open(ctx, noop{})
	if err != nil {
		return 0, 0, err
	}
	defer cleanup()
	if err := e.insertItems(ctx, n); err != nil {
		return 0, 0, err
	}
	logFile, err := os.Create(filepath.Join("var", "bench", "rss-processes.log"))
	if err != nil {
		return 0, 0, err
	}
	defer logFile.Close()
	w, s, stop, err := e.processes(logFile)
	if err != nil {
		return 0, 0, err
	}
	defer stop()
	if err := e.waitInSync(ctx, "item"); err != nil {
		return 0, 0, err
	}
	wr, err := peakRSS(w.Process.Pid)
	if err != nil {
		return 0, 0, err
	}
	sr, err := peakRSS(s.Process.Pid)
	return wr, sr, err
}

// processes starts a worker and a starter of e's synchronizer as
// processes of this binary, their stderr to log, and returns them with a
// func that kills both.
func (e *env) processes(log io.Writer) (worker, starter *exec.Cmd, stop func(), err error) {
	cmds, stop, err := e.startRoles(log, "worker", "starter")
	if err != nil {
		return nil, nil, nil, err
	}
	return cmds[0], cmds[1], stop, nil
}

// startRoles starts a process of this binary for each role (worker or
// starter) of e's synchronizer, their stderr to log, and returns them
// with a func that kills them all.
func (e *env) startRoles(log io.Writer, roles ...string) ([]*exec.Cmd, func(), error) {
	cfg := e.app.Config
	env := append(os.Environ(),
		"TSYNC_OBSERVER_NAME="+cfg.ObserverName, "TSYNC_TEMPORAL_HOST_PORT="+cfg.Temporal.HostPort,
		"TSYNC_TEMPORAL_TASK_QUEUE="+cfg.Temporal.TaskQueue, "TSYNC_DATABASE_URL="+cfg.DatabaseURL,
		"TSYNC_DATABASE_SCHEMA="+cfg.DatabaseSchema)
	var started []*exec.Cmd
	stop := func() {
		for _, cmd := range started {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}
	for _, role := range roles {
		cmd := exec.Command(os.Args[0], "-role", role)
		cmd.Env = env
		cmd.Stderr = log
		dieWithParent(cmd)
		if err := cmd.Start(); err != nil {
			stop()
			return nil, nil, err
		}
		started = append(started, cmd)
	}
	return started, stop, nil
}

// peakRSS reads VmHWM of pid, in MiB.
func peakRSS(pid int) (float64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, err := strconv.ParseFloat(f[1], 64)
			return kb / 1024, err
		}
	}
	return 0, fmt.Errorf("no VmHWM for pid %d", pid)
}

// runRole runs a worker or a starter of the benchmark synchronizer, with
// config from TSYNC_*, until killed.
func runRole(role string) error {
	if role == "raw-worker" {
		return runRawWorker()
	}
	cfg, err := config.Load("", os.Environ())
	if err != nil {
		return err
	}
	ctx := context.Background()
	// Warnings and errors, as JSON lines, to stderr (the bench's log file).
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	a, err := app.Open(ctx, cfg, synchronizer(noop{}), log)
	if err != nil {
		return err
	}
	defer a.Close()
	switch role {
	case "worker":
		return a.RunWorker(ctx)
	case "starter":
		return a.RunStarter(ctx)
	}
	return fmt.Errorf("unknown role %q", role)
}
