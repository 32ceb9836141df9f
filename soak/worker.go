package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tsync/tsync/app"
	"github.com/tsync/tsync/config"
	"github.com/tsync/tsync/internal/testenv"
)

// proc is one worker process of the soak, restarted whenever it dies
// until the soak ends.
type proc struct {
	name    string
	metrics string // host:port of its metrics endpoint
	stopped chan struct{}

	mu      sync.Mutex
	cmd     *exec.Cmd
	pids    []int // every process it ran, the current one last
	procs   []int // their numbers in the soak (see callsDDL)
	killing bool  // the soak SIGKILLs the current one
	exits   int   // deaths the soak did not cause
}

// current returns the process running now, its pid and its number.
func (p *proc) current() (cmd *exec.Cmd, pid, num int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd, p.pids[len(p.pids)-1], p.procs[len(p.procs)-1]
}

// deathsDDL creates the deaths table: one row a worker process that died,
// with a time of PostgreSQL's clock after it did (a call of it without an
// end ended then, at the latest).
const deathsDDL = `CREATE TABLE %s (proc int PRIMARY KEY, pid int NOT NULL, died_at timestamptz NOT NULL, killed bool NOT NULL)`

// deaths is the deaths table, quoted.
func (s *soak) deaths() string { return pgx.Identifier{s.cfg.DatabaseSchema, "soak_deaths"}.Sanitize() }

// startWorkers starts worker-1 and worker-2 and waits until both serve
// their metrics. They run, restarted when they die, until ctx ends.
func (s *soak) startWorkers(ctx context.Context) error {
	for _, name := range []string{"worker-1", "worker-2"} {
		port, err := testenv.FreePort()
		if err != nil {
			return err
		}
		w := &proc{name: name, metrics: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), stopped: make(chan struct{})}
		cmd, num, err := s.startWorkerProcess(w)
		if err != nil {
			return fmt.Errorf("start %s: %w", name, err)
		}
		w.cmd, w.pids, w.procs = cmd, []int{cmd.Process.Pid}, []int{num}
		s.workers = append(s.workers, w)
		go s.supervise(ctx, w)
	}
	for _, w := range s.workers {
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
			resp, err := http.Get("http://" + w.metrics + "/metrics")
			if err == nil {
				_ = resp.Body.Close()
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s serves no metrics after a minute: %w", w.name, err)
			}
		}
	}
	return nil
}

// supervise waits for w's process to die, records its death and restarts
// it, until ctx ends.
func (s *soak) supervise(ctx context.Context, w *proc) {
	defer close(w.stopped)
	for {
		cmd, pid, num := w.current()
		werr := cmd.Wait()
		if ctx.Err() != nil {
			return
		}
		w.mu.Lock()
		killed := w.killing
		if !killed {
			w.exits++
		}
		w.mu.Unlock()
		if _, err := s.pool.Exec(ctx, `INSERT INTO `+s.deaths()+` VALUES ($1, $2, clock_timestamp(), $3)`, num, pid, killed); err != nil {
			fmt.Printf("error  %s: record the death of %s pid %d: %v\n", stamp(s.start), w.name, pid, err)
		}
		if !killed {
			fmt.Printf("exit   %s  %s pid %d died unexpectedly: %v\n", stamp(s.start), w.name, pid, werr)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Duration(rand.IntN(1000)) * time.Millisecond):
		}
		for {
			next, num, err := s.startWorkerProcess(w)
			if err == nil {
				w.mu.Lock()
				w.cmd, w.pids, w.procs, w.killing = next, append(w.pids, next.Process.Pid), append(w.procs, num), false
				w.mu.Unlock()
				fmt.Printf("start  %s  %s restarted as pid %d\n", stamp(s.start), w.name, next.Process.Pid)
				break
			}
			fmt.Printf("error  %s: restart %s: %v\n", stamp(s.start), w.name, err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
	}
}

// calmWorkers turns the injected step failures and deferrals off in the
// worker processes, and in those started from now on.
func (s *soak) calmWorkers() {
	s.calm.Store(true)
	for _, w := range s.workers {
		cmd, _, _ := w.current()
		_ = cmd.Process.Signal(syscall.SIGUSR1)
	}
}

// stopWorkers ends the supervision (cancel) and kills the worker processes.
func (s *soak) stopWorkers(cancel context.CancelFunc) {
	cancel()
	for _, w := range s.workers {
		cmd, _, _ := w.current()
		_ = cmd.Process.Kill()
		<-w.stopped
	}
}

// kill SIGKILLs worker-2, with a step call under way when one comes within
// 2 s; its supervisor restarts it. It returns the pid killed and the number
// of its calls under way.
func (s *soak) kill(ctx context.Context) (pid, underWay int, err error) {
	w := s.workers[1]
	w.mu.Lock()
	w.killing = true
	w.mu.Unlock()
	cmd, pid, num := w.current()
	for wait := time.Now().Add(2 * time.Second); time.Now().Before(wait); time.Sleep(time.Millisecond) {
		if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM `+s.step.calls+` WHERE proc = $1 AND end_at IS NULL`, num).Scan(&underWay); err != nil {
			return pid, 0, err
		}
		if underWay > 0 {
			break
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return pid, 0, fmt.Errorf("kill %s: %w", w.name, err)
	}
	return pid, underWay, nil
}

// Environment of the worker processes, besides TSYNC_*.
const (
	callsEnv  = "SOAK_CALLS_TABLE" // the calls table, quoted
	recordEnv = "SOAK_RECORD_URL"  // the URL of the pool that records the calls
	calmEnv   = "SOAK_CALM"        // set: no injected step failures or deferrals
	procEnv   = "SOAK_PROC"        // the process's number in the soak
)

// runWorkerProcess is a worker process: the same step, chaos on until
// SIGUSR1 (or off with SOAK_CALM set), until it is killed. It records its calls straight to PostgreSQL, past the proxy
// and with an application_name of its own: no fault cuts the record but a
// kill.
func runWorkerProcess() error {
	ctx := context.Background()
	cfg, err := config.Load("", os.Environ())
	if err != nil {
		return err
	}
	pool, err := pgxpool.New(ctx, os.Getenv(recordEnv))
	if err != nil {
		return err
	}
	defer pool.Close()
	num, err := strconv.Atoi(os.Getenv(procEnv))
	if err != nil {
		return fmt.Errorf("%s: %w", procEnv, err)
	}
	st := &step{pool: pool, calls: os.Getenv(callsEnv), proc: num}
	st.chaos.Store(os.Getenv(calmEnv) == "")
	calm := make(chan os.Signal, 1)
	signal.Notify(calm, syscall.SIGUSR1)
	go func() { <-calm; st.chaos.Store(false) }()
	a, err := app.Open(ctx, cfg, synchronizer(st), slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer a.Close()
	return a.RunWorker(ctx)
}

// startWorkerProcess starts this program as w's worker process, through
// the proxies, serving its metrics on w.metrics. It returns the process and
// its number in the soak.
func (s *soak) startWorkerProcess(w *proc) (*exec.Cmd, int, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, 0, err
	}
	num := int(s.procs.Add(1))
	cfg := s.workerCfg
	cfg.MetricsAddress = w.metrics
	cmd := exec.Command(self, "-worker")
	cmd.Env = append(append(os.Environ(), cfg.Environ()...), callsEnv+"="+s.step.calls, recordEnv+"="+s.recordURL, procEnv+"="+strconv.Itoa(num))
	if s.calm.Load() {
		cmd.Env = append(cmd.Env, calmEnv+"=1")
	}
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.SysProcAttr = testenv.ServerProcAttr() // dies with the soak
	return cmd, num, cmd.Start()
}
