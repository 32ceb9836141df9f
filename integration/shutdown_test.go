package integration

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync"
	"github.com/tsync/tsync/cli"
	"github.com/tsync/tsync/config"
	"github.com/tsync/tsync/internal/testenv"
	"github.com/tsync/tsync/internal/testmodels"
	"github.com/tsync/tsync/models"
)

// Graceful shutdown (issue 12): a worker process, the `worker` command of a
// synchronizer's main, gets SIGTERM (or SIGINT) while a step runs.

// TestHelperWorkerCommand is not a test: it is the worker process of the
// TestWorkerSIGTERM tests, `helper worker` run by cli.Main as a
// synchronizer's main runs it (with no signal handling of its own), and it
// exits with the command's exit code. Its Item step takes TSYNC_HELPER_STEP
// (a duration) unless its context is cancelled first, and records each
// call in the table TSYNC_HELPER_CALLS, with the process's generation
// TSYNC_HELPER_GEN and how the call ended.
func TestHelperWorkerCommand(t *testing.T) {
	stepTime := os.Getenv("TSYNC_HELPER_STEP")
	table := os.Getenv("TSYNC_HELPER_CALLS")
	if stepTime == "" || table == "" {
		t.Skip("helper process of the TestWorkerSIGTERM tests")
	}
	d, err := time.ParseDuration(stepTime)
	require.NoError(t, err)
	gen, err := strconv.Atoi(os.Getenv("TSYNC_HELPER_GEN"))
	require.NoError(t, err)
	def := cli.Definition{
		Name:          "helper",
		Models:        testmodels.Registry(new(testmodels.Item)),
		DefaultConfig: []byte("observer_name: helper\n"),
		Synchronizer: func(_ config.Config, store *models.Store) (tsync.Synchronizer, error) {
			pool := store.Pool()
			step := tsync.StepOf[testmodels.Item](tsync.StepFuncs[testmodels.Item]{Sync: func(ctx context.Context, it *testmodels.Item) error {
				var call int64
				if err := pool.QueryRow(ctx, `INSERT INTO `+table+` (gen, id, start_at) VALUES ($1, $2, clock_timestamp()) RETURNING call`,
					gen, it.ID).Scan(&call); err != nil {
					return err
				}
				outcome := "done"
				select {
				case <-time.After(d):
				case <-ctx.Done():
					outcome = fmt.Sprintf("cancelled: %v (cause: %v)", ctx.Err(), context.Cause(ctx))
					// A clean-up that outlasts the SDK worker's stop: the
					// process waits for it (worker.Run, up to 10 s).
					time.Sleep(300 * time.Millisecond)
				}
				// Recorded whatever happened to ctx: the test reads it.
				if _, err := pool.Exec(context.WithoutCancel(ctx), `UPDATE `+table+` SET end_at = clock_timestamp(), outcome = $2 WHERE call = $1`,
					call, outcome); err != nil {
					return err
				}
				return ctx.Err()
			}})
			return tsync.Synchronizer{Steps: []tsync.Step{step}}, nil
		},
	}
	os.Exit(cli.Main(context.Background(), def, []string{"worker", "--log-level", "info"}, os.Stdout, os.Stderr, os.Environ()))
}

// workerProc is a worker process of TestHelperWorkerCommand.
type workerProc struct {
	cmd    *exec.Cmd
	out    *testenv.SyncBuffer
	ready  string // its /readyz
	exited chan struct{}
	// exitedAt and state are set once exited is closed.
	exitedAt time.Time
	state    *os.ProcessState
}

// shutdownEnv is a synchronizer whose objects are Items synced by worker
// processes, and whose starter runs in the test.
type shutdownEnv struct {
	*env
	table string
	admin *pgx.Conn
}

func newShutdownEnv(t *testing.T) *shutdownEnv {
	t.Helper()
	e := newEnv(t)
	table := pgx.Identifier{e.cfg.DatabaseSchema, "helper_calls"}.Sanitize()
	admin := adminConn(t)
	_, err := admin.Exec(e.ctx, `CREATE TABLE `+table+` (call bigserial PRIMARY KEY, gen int NOT NULL, id bigint NOT NULL,
		start_at timestamptz NOT NULL, end_at timestamptz, outcome text)`)
	require.NoError(t, err)
	return &shutdownEnv{env: e, table: table, admin: admin}
}

// start starts worker process gen, whose step takes step, with
// shutdown_timeout shutdown, and waits until it is ready. It is killed when
// the test ends, if it still runs.
func (s *shutdownEnv) start(gen int, step, shutdown time.Duration) *workerProc {
	t := s.t
	t.Helper()
	addr := testenv.FreeAddress(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperWorkerCommand$")
	// Later entries win: the process's own shutdown_timeout and address.
	cmd.Env = append(append(os.Environ(), s.cfg.Environ()...),
		"TSYNC_SHUTDOWN_TIMEOUT="+shutdown.String(),
		"TSYNC_METRICS_ADDRESS="+addr,
		"TSYNC_HELPER_CALLS="+s.table,
		"TSYNC_HELPER_GEN="+strconv.Itoa(gen),
		"TSYNC_HELPER_STEP="+step.String(),
	)
	p := &workerProc{cmd: cmd, out: &testenv.SyncBuffer{}, ready: "http://" + addr + "/readyz", exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	require.NoError(t, cmd.Start())
	go func() {
		_ = cmd.Wait()
		p.exitedAt, p.state = time.Now(), cmd.ProcessState
		close(p.exited)
	}()
	var once sync.Once
	t.Cleanup(func() {
		once.Do(func() {
			_ = cmd.Process.Kill()
			<-p.exited
			if t.Failed() {
				t.Logf("worker %d output:\n%s", gen, p.out)
			}
		})
	})
	waitProbe(t, p.ready, http.StatusOK, func(b string) bool { return strings.Contains(b, "[+]worker ok\n") }, fmt.Sprintf("worker %d", gen))
	return p
}

// wait waits until p has exited, at most timeout, and returns its exit
// code.
func (p *workerProc) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(timeout):
		t.Fatalf("worker still running %s later:\n%s", timeout, p.out)
	}
	return p.state.ExitCode()
}

// call is one step call of a worker process.
type call struct {
	Gen     int
	ID      int64
	Start   time.Time
	End     *time.Time
	Outcome *string
}

func (s *shutdownEnv) calls() []call {
	s.t.Helper()
	rows, err := s.admin.Query(s.ctx, `SELECT gen, id, start_at, end_at, outcome FROM `+s.table+` ORDER BY call`)
	require.NoError(s.t, err)
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[call])
	require.NoError(s.t, err)
	return out
}

// running waits until a step call has started and not ended, and returns
// the time (PostgreSQL's clock) it started.
func (s *shutdownEnv) running() call {
	s.t.Helper()
	var c []call
	require.Eventually(s.t, func() bool {
		c = s.calls()
		return len(c) == 1 && c[0].End == nil
	}, 60*time.Second, 10*time.Millisecond, "the step never ran: %+v", c)
	return c[0]
}

// SIGTERM mid-step: the process turns not ready at once, stops polling (an
// object inserted then waits for another worker), lets the step finish (its
// object ends in sync, the step called once) and exits 0 within
// shutdown_timeout.
func TestWorkerSIGTERMLetsTheStepFinish(t *testing.T) {
	t.Parallel()
	s := newShutdownEnv(t)
	item := s.insert(&testmodels.Item{Name: "slow"})
	s.startStarter()
	const step, shutdown = 6 * time.Second, 60 * time.Second
	p := s.start(0, step, shutdown)
	c := s.running()

	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	signalled := time.Now()
	// At once (the shutdown check is not cached; the others are, for a
	// second): not ready, not polling.
	waitProbe(t, p.ready, http.StatusServiceUnavailable, equals("[+]temporal ok\n[+]postgres ok\n"+
		"[-]worker failed: stopped polling task queue \""+s.cfg.Temporal.TaskQueue+"\"\n"+
		"[-]shutdown failed: shutting down: no new work is taken, work under way may finish\nreadyz check failed\n"), "stopping worker")
	require.Nil(t, s.calls()[0].End, "the step ended before readiness failed")
	// Work that comes now is left to other workers.
	late := s.insert(&testmodels.Item{Name: "late"})

	require.Equal(t, 0, p.wait(t, 2*shutdown), "exit code; output:\n%s", p.out)
	took := p.exitedAt.Sub(signalled)
	t.Logf("worker exited %s after SIGTERM (step %s, started %s before)", took.Round(time.Millisecond), step, signalled.Sub(c.Start).Round(time.Millisecond))
	require.Less(t, took, shutdown, "exited within shutdown_timeout")
	out := p.out.String()
	require.Contains(t, out, "shutting down: readiness fails, no new work is taken, work under way may finish")
	require.Contains(t, out, "signal=terminated")
	require.Contains(t, out, "worker stopped")

	// The step ran to its end, once, and its outcome is recorded.
	calls := s.calls()
	require.Len(t, calls, 1)
	require.Equal(t, 0, calls[0].Gen)
	require.Equal(t, item.ID, calls[0].ID)
	require.NotNil(t, calls[0].End)
	require.Equal(t, "done", *calls[0].Outcome)
	require.GreaterOrEqual(t, calls[0].End.Sub(calls[0].Start), step)
	s.assertInSync(item)

	require.False(t, inSync(s.get(late)), "the stopping worker synced an object inserted after SIGTERM")

	// The next worker closes the first workflow without calling the step
	// again, and syncs the late object.
	s.startWorker()
	s.waitInSync(60*time.Second, late)
	require.Eventually(t, func() bool { return len(s.openWorkflows()) == 0 }, 60*time.Second, 50*time.Millisecond,
		"workflows left open: %v", s.openWorkflows())
	require.Len(t, s.calls(), 1)
	rc := s.rec.Calls()
	require.Len(t, rc, 1, "%+v", rc)
	require.Equal(t, late, rc[0].Ref)
	s.assertInSync(item, late)
}

// SIGTERM mid-step with a shutdown_timeout shorter than the step: the
// process waits shutdown_timeout, cancels the step's context and exits 0,
// leaving the object pending (not in error); the next worker process syncs
// it. SIGINT stops that one as SIGTERM does.
func TestWorkerSIGTERMCancelsStepsPastShutdownTimeout(t *testing.T) {
	t.Parallel()
	s := newShutdownEnv(t)
	item := s.insert(&testmodels.Item{Name: "slower"})
	before := s.get(item)
	s.startStarter()
	const step, shutdown = 5 * time.Minute, 2 * time.Second
	p := s.start(0, step, shutdown)
	s.running()

	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	signalled := time.Now()
	require.Equal(t, 0, p.wait(t, 2*time.Minute), "exit code; output:\n%s", p.out)
	took := p.exitedAt.Sub(signalled)
	t.Logf("worker exited %s after SIGTERM (shutdown_timeout %s, step %s)", took.Round(time.Millisecond), shutdown, step)
	require.GreaterOrEqual(t, took, shutdown, "the step was not given shutdown_timeout")
	require.Less(t, took, time.Minute)

	// The step's context was cancelled by the worker's shutdown.
	calls := s.calls()
	require.Len(t, calls, 1)
	require.NotNil(t, calls[0].End)
	require.Equal(t, "cancelled: context canceled (cause: worker is now shutdown)", *calls[0].Outcome)
	require.GreaterOrEqual(t, calls[0].End.Sub(calls[0].Start), shutdown)
	require.Less(t, calls[0].End.Sub(calls[0].Start), step)
	// Nothing recorded: pending as before, not in error.
	after := s.get(item)
	require.Equal(t, models.CodePending, after.BackendCode)
	require.Equal(t, "", after.BackendStatus)
	require.Nil(t, after.Enacted)
	require.True(t, after.Updated.Equal(before.Updated))
	require.True(t, after.Pending())

	// The next worker process syncs it.
	p1 := s.start(1, 100*time.Millisecond, 30*time.Second)
	s.waitInSync(2*time.Minute, item)
	calls = s.calls()
	require.Len(t, calls, 2, "%+v", calls)
	require.Equal(t, 1, calls[1].Gen)
	require.Equal(t, "done", *calls[1].Outcome)
	require.False(t, calls[1].Start.Before(*calls[0].End), "the calls overlapped: %+v", calls)
	s.assertInSync(item)
	require.Eventually(t, func() bool { return len(s.openWorkflows()) == 0 }, 60*time.Second, 50*time.Millisecond,
		"workflows left open: %v", s.openWorkflows())

	require.NoError(t, p1.cmd.Process.Signal(syscall.SIGINT))
	require.Equal(t, 0, p1.wait(t, time.Minute), "exit code after SIGINT; output:\n%s", p1.out)
	require.Contains(t, p1.out.String(), "signal=interrupt")
	require.Len(t, s.calls(), 2)
	require.Empty(t, s.rec.Calls())
}
