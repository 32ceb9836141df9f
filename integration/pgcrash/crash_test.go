package pgcrash

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync/app"
	"github.com/tsync/tsync/internal/testmodels"
	"github.com/tsync/tsync/models"
)

// outage is how long the server stays down.
const outage = 3 * time.Second

// The server crashes (SIGKILL to postmaster and backends) at about 30% of a
// tree of 310 objects in sync, with steps running and objects being
// inserted, renamed and deleted, and restarts after a few seconds: every
// object ends in sync or purged, no call overlaps another of its object,
// only calls the outage cut short are repeated, the worker and the starter
// keep running and each logs that it waits for the database and when it
// is back.
func TestPostgresCrash(t *testing.T) {
	e := newEnv(t)
	e.openStore()
	all, leaves := e.insertTree(10, 5, 5)
	total := len(all)
	require.GreaterOrEqual(t, total, 300)
	worker := e.start("worker", (*app.App).RunWorker)
	starter := e.start("starter", (*app.App).RunStarter)
	churnCtx, stopChurn := context.WithCancel(e.ctx)
	defer stopChurn()
	deletes := e.churn(churnCtx, leaves)

	var syncedAtKill int
	require.Eventually(t, func() bool {
		syncedAtKill, _ = e.state()
		return syncedAtKill >= total*3/10 && e.inflight.Load() > 0
	}, 60*time.Second, 5*time.Millisecond, "30%% of the tree in sync with calls in flight")
	inflight := e.inflight.Load()
	killAt := time.Now()
	e.pg.Kill()
	time.Sleep(outage)
	e.pg.Restart()
	restartAt := time.Now()
	t.Logf("killed PostgreSQL with %d/%d objects in sync and %d calls in flight; down for %s (restart included)",
		syncedAtKill, total, inflight, restartAt.Sub(killAt).Round(time.Millisecond))

	time.Sleep(2 * time.Second) // inserts and deletes go on after the restart
	stopChurn()
	deleted := <-deletes
	var unsettled int
	require.Eventually(t, func() bool {
		_, unsettled = e.state()
		return unsettled == 0
	}, 60*time.Second, 100*time.Millisecond, "every object in sync or purged")
	settledAt := time.Now()

	rows, err := e.rows(e.ctx)
	require.NoError(t, err)
	present := map[models.Ref]bool{}
	for _, r := range rows {
		require.False(t, r.deleted, "%s: deleted and not purged", r.ref)
		require.True(t, r.inSync(), "%s: code %d enacted %v updated %v", r.ref, r.code, r.enacted, r.updated)
		present[r.ref] = true
	}
	for _, ref := range all {
		require.True(t, present[ref] || deleted[ref], "%s: gone, never deleted", ref)
	}
	calls := e.rec.Calls()
	purged := 0
	for ref := range deleted {
		if present[ref] {
			continue // its delete failed while the database was down
		}
		purged++
		if succeeded(calls, "sync", ref) {
			require.True(t, succeeded(calls, "delete", ref), "%s: synced, purged without DeleteRecord", ref)
		}
	}
	require.Empty(t, e.rec.Violations())
	rep := checkCalls(calls, killAt.Add(-time.Second), restartAt.Add(3*time.Second), restartAt)
	require.Empty(t, rep.problems)
	require.False(t, rep.firstProgress.IsZero(), "no call succeeded after the restart")

	for _, p := range []*process{worker, starter} {
		p.running(t)
		log := p.log.String()
		require.Equal(t, 1, count(log, "database unreachable: waiting for it"), "%s log:\n%s", p.name, log)
		require.Equal(t, 1, count(log, "database is back"), "%s log:\n%s", p.name, log)
	}
	t.Logf("outage %s; restart to first progress %s; restart to all in sync %s; %d objects in sync, %d purged (%d deletes tried); %d calls, %d repeats of the same content",
		restartAt.Sub(killAt).Round(time.Millisecond), rep.firstProgress.Sub(restartAt).Round(time.Millisecond),
		settledAt.Sub(restartAt).Round(time.Millisecond), len(rows), purged, len(deleted), rep.calls, rep.repeats)
	t.Logf("error lines logged during the run: worker %d, starter %d (starter's \"scan failed\": %d)",
		count(worker.log.String(), "level=ERROR"), count(starter.log.String(), "level=ERROR"), count(starter.log.String(), "scan failed"))
}

// A process started while the database is down waits for it, logging so,
// and syncs once it is up; a later outage is logged once by its one
// watcher.
func TestDatabaseDownAtStart(t *testing.T) {
	e := newEnv(t)
	e.openStore()
	e.pg.Kill()
	proc := e.start("synchronizer", (*app.App).Run)
	require.Eventually(t, func() bool { return count(proc.log.String(), "waiting for the database: unreachable") >= 2 },
		15*time.Second, 20*time.Millisecond)
	select {
	case <-proc.opened:
		t.Fatal("the app opened without its database")
	default:
	}
	proc.running(t)
	e.pg.Restart()
	select {
	case <-proc.opened:
	case <-time.After(30 * time.Second):
		t.Fatalf("the app did not open once the database was back:\n%s", proc.log)
	}
	require.Contains(t, proc.log.String(), "database is reachable")
	var refs []models.Ref
	for i := range 20 {
		refs = append(refs, e.insert(&testmodels.Item{Name: string(rune('a' + i))}))
	}
	require.Eventually(t, func() bool {
		synced, unsettled := e.state()
		return synced == len(refs) && unsettled == 0
	}, 30*time.Second, 50*time.Millisecond)
	proc.running(t)

	// One process running the worker and the starter (app.Run) has one
	// database watcher: one line when the database goes, one when it is back.
	e.pg.Kill()
	require.Eventually(t, func() bool { return count(proc.log.String(), "database unreachable: waiting for it") == 1 },
		10*time.Second, 20*time.Millisecond)
	time.Sleep(1500 * time.Millisecond)
	e.pg.Restart()
	require.Eventually(t, func() bool { return count(proc.log.String(), "database is back") == 1 },
		10*time.Second, 20*time.Millisecond)
	time.Sleep(1500 * time.Millisecond)
	require.Equal(t, 1, count(proc.log.String(), "database unreachable: waiting for it"), "%s", proc.log)
	require.Equal(t, 1, count(proc.log.String(), "database is back"), "%s", proc.log)
	proc.running(t)
}
