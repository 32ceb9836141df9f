package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync/internal/cluster"
	"github.com/tsync/tsync/internal/testenv/pginstance"
)

// dbDownFor is how long Temporal's PostgreSQL stays down after its crash.
const dbDownFor = 3 * time.Second

// Two tsync worker processes and a starter sync a DAG of 500 objects (10
// Sites, each with 7 Slices of 6 Instances) on a cluster whose services
// persist to a private PostgreSQL (pginstance); tsync's models stay on the
// shared one. Once a third of the objects are in sync, with a step call
// under way, that private server is SIGKILLed (postmaster and backends),
// kept down dbDownFor and restarted (crash recovery). A service process that
// exits meanwhile is started again, as an operator's supervisor would
// (supervise). The checks are TestClusterServicesKilledMidRun's: every
// object ends in sync, its current content synced by a completed step call;
// no two step calls of one object overlap; no content is synced twice
// except after a call cut short (checkCalls); no workflow is left open or
// closed other than completed; no tsync process exits.
func TestClusterDatabaseCrashMidRun(t *testing.T) {
	// Registered first, run last: nothing of the private server is left.
	var pg *pginstance.Instance
	var pgDir string
	t.Cleanup(func() {
		if pg == nil {
			return
		}
		if pg.Running() {
			t.Error("the private PostgreSQL still runs")
		}
		if _, err := os.Stat(pgDir); pgDir != "" && !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the private PostgreSQL's directory %s is left (%v)", pgDir, err)
		}
	})
	pg = pginstance.Start(t)
	pgDir = dataDir(t, pg)
	c := startCluster(t, pg.URL())
	sup := supervise(t, c)
	r := startRun(t, c)

	at := r.waitFor("a third of the objects in sync and a step call just begun", 120*time.Second,
		func(s state) bool { return s.InSync >= len(r.refs)/3 && s.Fresh > 0 })
	pids := servicePIDs(c)
	offsets := logSizes(c)
	r.kills = append(r.kills, kill{"database", time.Now()})
	pg.Kill()
	killed := time.Now()
	t.Logf("Temporal's PostgreSQL SIGKILLed at %s: %s, of %d objects", since(r.begin, killed), at, len(r.refs))
	time.Sleep(time.Until(killed.Add(dbDownFor)))
	r.alive()
	restart := time.Now()
	pg.Restart()
	up := time.Now()
	require.Contains(t, pg.Log(), "database system was interrupted", "the restart recovered from a crash")
	t.Logf("Temporal's PostgreSQL accepts connections again at %s: outage %s (down %s, restart and crash recovery %s); during it: %s",
		since(r.begin, up), up.Sub(killed).Round(time.Millisecond), restart.Sub(killed).Round(time.Millisecond),
		up.Sub(restart).Round(time.Millisecond), r.state())
	took := r.resumed(up, "the database's restart")
	t.Logf("progress resumed %s after the database came back (a step call begun after it completed); %s", took.Round(time.Millisecond), r.state())

	end := r.waitFor("every object in sync", 180*time.Second, func(s state) bool { return s.InSync == len(r.refs) && s.InFlight == 0 })
	done := time.Now()
	t.Logf("all %d objects in sync %s after the database came back, %s after the start; %s",
		len(r.refs), done.Sub(up).Round(time.Millisecond), done.Sub(r.begin).Round(time.Millisecond), end)

	r.checkRun(nil, nil)

	// Every service serves at the end; which ones the crash took down.
	t.Logf("service exits the supervisor restarted: %d", len(sup.stop()))
	after := servicePIDs(c)
	for _, s := range cluster.Services {
		require.NotZero(t, after[s], "the %s service does not run at the end", s)
		if after[s] == pids[s] {
			t.Logf("%s: the same process (pid %d) throughout", s, pids[s])
		}
	}
	// The crash reached Temporal's persistence: the history service (every
	// workflow's state) failed to reach the crashed server.
	lost := lostConnections(t, c, offsets, pg.Port())
	t.Logf("log lines of a connection to the crashed server refused, per service: %v", lost)
	require.Positive(t, lost["history"], "the history service never lost its database")
}

// dataDir returns the directory of pg's files (its data directory's
// parent), which pginstance removes when the test ends.
func dataDir(t *testing.T, pg *pginstance.Instance) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, pg.URL())
	require.NoError(t, err)
	defer conn.Close(ctx)
	var data string
	require.NoError(t, conn.QueryRow(ctx, "SHOW data_directory").Scan(&data))
	return filepath.Dir(data)
}

// servicePIDs returns the process id of every service (0: not running).
func servicePIDs(c *cluster.Cluster) map[string]int {
	pids := map[string]int{}
	for _, s := range cluster.Services {
		pids[s] = c.PID(s)
	}
	return pids
}

// logSizes returns the size of every service's log.
func logSizes(c *cluster.Cluster) map[string]int64 {
	sizes := map[string]int64{}
	for _, s := range cluster.Services {
		if fi, err := os.Stat(c.LogFile(s)); err == nil {
			sizes[s] = fi.Size()
		}
	}
	return sizes
}

// lostConnections counts, per service, the lines its log got after offsets
// that say a connection to the database on port was refused.
func lostConnections(t *testing.T, c *cluster.Cluster, offsets map[string]int64, port int) map[string]int {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d: connect: connection refused", port)
	lost := map[string]int{}
	for _, s := range cluster.Services {
		data, err := os.ReadFile(c.LogFile(s))
		require.NoError(t, err)
		for _, l := range strings.Split(string(data[offsets[s]:]), "\n") {
			if strings.Contains(l, addr) {
				lost[s]++
			}
		}
	}
	return lost
}

// serviceExit is a service process's exit that the supervisor saw.
type serviceExit struct {
	service string
	at      time.Time // when the supervisor saw it
	took    time.Duration
	tries   int
	logTail string
}

// supervisor restarts the cluster's services that exit, as an operator's
// process supervisor would (systemd's Restart=always with RestartSec=1s):
// internal/cluster leaves a dead process dead.
type supervisor struct {
	t      *testing.T
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	exits  []serviceExit
}

// supervise starts a supervisor of c's services, stopped before c when the
// test ends.
func supervise(t *testing.T, c *cluster.Cluster) *supervisor {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &supervisor{t: t, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for ctx.Err() == nil {
			for _, name := range cluster.Services {
				if c.PID(name) == 0 {
					s.restart(ctx, c, name)
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(func() { s.stop() })
	return s
}

// restart starts a service that exited again, trying every second until
// it serves or ctx is done.
func (s *supervisor) restart(ctx context.Context, c *cluster.Cluster, name string) {
	e := serviceExit{service: name, at: time.Now(), logTail: logTail(c.LogFile(name), 15)}
	for ctx.Err() == nil {
		e.tries++
		rctx, cancel := context.WithTimeout(ctx, 90*time.Second)
		err := c.Restart(rctx, name)
		cancel()
		if err == nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	e.took = time.Since(e.at)
	outcome := "restarted by the supervisor"
	if ctx.Err() != nil {
		outcome = "not restarted (the supervisor stopped)"
	}
	s.t.Logf("%s exited (seen at %s), %s in %s (%d tries); last log lines before its exit:\n%s",
		name, e.at.Format("15:04:05.000"), outcome, e.took.Round(time.Millisecond), e.tries, e.logTail)
	s.mu.Lock()
	s.exits = append(s.exits, e)
	s.mu.Unlock()
}

// stop stops the supervisor and returns the exits it saw.
func (s *supervisor) stop() []serviceExit {
	s.cancel()
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.exits
}

// logTail returns the last n lines of a log file.
func logTail(file string, n int) string {
	data, err := os.ReadFile(file)
	if err != nil {
		return err.Error()
	}
	return tail(string(data), n)
}
