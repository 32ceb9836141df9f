package main

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tsync/tsync/app"
	"github.com/tsync/tsync/config"
	"github.com/tsync/tsync/internal/testenv"
	"github.com/tsync/tsync/worker"
)

// startWorker starts an in-process worker of the soak's synchronizer.
func (s *soak) startWorker() error {
	w, err := worker.New(s.app.Client, worker.Options{TaskQueue: s.cfg.Temporal.TaskQueue, StopTimeout: time.Second}, s.app.Activities())
	if err != nil {
		return err
	}
	s.worker = w
	return w.Start()
}

// handOver hands the work over to another worker: the first time from the
// in-process worker, stopped gracefully, to a worker process; the second
// time from that process, SIGKILLed (with a step call under way, when one
// comes within 2s), to a new in-process worker.
func (s *soak) handOver(ctx context.Context) error {
	if s.child == nil {
		s.worker.Stop()
		var err error
		if s.child, err = startWorkerProcess(s.cfg, s.step.calls); err != nil {
			return fmt.Errorf("start the worker process: %w", err)
		}
		return nil
	}
	for wait := time.Now().Add(2 * time.Second); time.Now().Before(wait); time.Sleep(time.Millisecond) {
		var busy bool
		if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT FROM `+s.step.calls+` WHERE pid = $1 AND end_at IS NULL)`, s.child.Process.Pid).Scan(&busy); err != nil {
			return err
		}
		if busy {
			break
		}
	}
	if err := s.child.Process.Signal(syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill the worker process: %w", err)
	}
	_ = s.child.Wait()
	if err := s.pool.QueryRow(ctx, `SELECT clock_timestamp()`).Scan(&s.killedAt); err != nil {
		return err
	}
	time.Sleep(time.Duration(rand.IntN(1000)) * time.Millisecond)
	return s.startWorker()
}

// killChild kills the worker process, if it runs still.
func (s *soak) killChild() {
	if s.child != nil && s.killedAt.IsZero() {
		_ = s.child.Process.Kill()
		_ = s.child.Wait()
	}
}

// callsEnv names the calls table for the worker process.
const callsEnv = "SOAK_CALLS_TABLE"

// runWorkerProcess is the worker process: the same step, chaos on, until it
// is killed.
func runWorkerProcess() error {
	ctx := context.Background()
	cfg, err := config.Load("", os.Environ())
	if err != nil {
		return err
	}
	pool, err := pgxpool.New(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	st := &step{pool: pool, calls: os.Getenv(callsEnv)}
	st.chaos.Store(true)
	a, err := app.Open(ctx, cfg, synchronizer(st), slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer a.Close()
	return a.RunWorker(ctx)
}

// startWorkerProcess starts this program as a worker process of cfg's
// synchronizer.
func startWorkerProcess(cfg config.Config, calls string) (*exec.Cmd, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "-worker")
	cmd.Env = append(append(os.Environ(), cfg.Environ()...), callsEnv+"="+calls)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.SysProcAttr = testenv.ServerProcAttr() // dies with the soak
	return cmd, cmd.Start()
}
