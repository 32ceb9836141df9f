package main

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tsync/tsync/internal/testmodels"
)

// report waits up to quiesce for quiescence, then prints what the model
// tables and the calls table say (an audit), and fails when an object is
// lost or a step call ran concurrently with another or on stale data. start
// is when the soak began.
func (s *soak) report(ctx context.Context, start time.Time, quiesce time.Duration) error {
	// Quiescence: nothing pending (every live object in sync, every deleted
	// one purged) and no workflow running.
	deadline := time.Now().Add(quiesce)
	var notSynced, notPurged int
	for {
		var err error
		if notSynced, notPurged, err = s.lost(ctx); err != nil {
			return err
		}
		if notSynced+notPurged == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	live, err := s.live(ctx)
	if err != nil {
		return err
	}
	lostN := notSynced + notPurged
	if s.child == nil || s.killedAt.IsZero() {
		return fmt.Errorf("the worker process was not started and killed: run longer (-duration)")
	}
	au := audit{childPid: s.child.Process.Pid, killedAt: s.killedAt}
	if err := au.read(ctx, s.pool, s.step.calls); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	fmt.Printf("audit after %s:\n", time.Since(start).Round(time.Millisecond))
	fmt.Printf("  objects     %d created, %d live, %d updates, %d deleted\n", s.created, live, s.updates, s.deleted)
	fmt.Printf("  worker      replaced by a worker process (pid %d), which was SIGKILLed with %d step calls under way, then replaced\n", au.childPid, au.cut)
	fmt.Printf("  syncs       %d step calls (%d by the killed process), %d succeeded\n", au.calls, au.childCalls, au.synced)
	fmt.Printf("  retries     %d (calls of an object version called before)\n", au.retries)
	fmt.Printf("  deferrals   %d\n", au.deferrals)
	fmt.Printf("  errors      %d (injected)\n", au.errs)
	fmt.Printf("  deletes     %d\n", au.deletes)
	fmt.Printf("  concurrent  %d\n", au.concurrent)
	fmt.Printf("  stale       %d (calls on an older version than an earlier call saw)\n", au.stale)
	fmt.Printf("  lost        %d (%d not in sync, %d deleted but not purged)\n", lostN, notSynced, notPurged)
	if lostN > 0 || au.concurrent > 0 || au.stale > 0 {
		return fmt.Errorf("%d objects lost, %d concurrent step calls, %d stale step calls", lostN, au.concurrent, au.stale)
	}
	return nil
}

// tables returns the tables of the soak's models, quoted.
func (s *soak) tables() []string {
	var out []string
	for _, obj := range soakModels() {
		m, _ := s.app.Store.Graph().Model(testmodels.ModelName(obj))
		out = append(out, pgx.Identifier{s.cfg.DatabaseSchema, m.Table}.Sanitize())
	}
	return out
}

// lost counts the live objects not in sync and the deleted ones not purged.
func (s *soak) lost(ctx context.Context) (notSynced, notPurged int, err error) {
	for _, t := range s.tables() {
		var ns, np int
		if err := s.pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE NOT deleted AND NOT (backend_code = 1 AND enacted IS NOT DISTINCT FROM updated)),
				count(*) FILTER (WHERE deleted) FROM `+t).Scan(&ns, &np); err != nil {
			return 0, 0, err
		}
		notSynced, notPurged = notSynced+ns, notPurged+np
	}
	return notSynced, notPurged, nil
}

// live counts the rows of the soak's models.
func (s *soak) live(ctx context.Context) (int, error) {
	var live int
	for _, t := range s.tables() {
		var n int
		if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM `+t).Scan(&n); err != nil {
			return 0, err
		}
		live += n
	}
	return live, nil
}

// audit is what the calls table says of the step calls.
type audit struct {
	childPid int
	killedAt time.Time

	calls, childCalls, cut, synced, deletes, errs, deferrals, retries, concurrent, stale int
}

// read counts from the calls table. A call the kill cut short ended when
// the process died, at the latest; any other call without an end never
// ended, and overlaps everything after it.
func (a *audit) read(ctx context.Context, pool *pgxpool.Pool, calls string) error {
	if err := pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE pid = $1), count(*) FILTER (WHERE pid = $1 AND end_at IS NULL),
		count(*) FILTER (WHERE op = 'sync' AND outcome = 'ok'), count(*) FILTER (WHERE op = 'delete' AND outcome = 'ok'),
		count(*) FILTER (WHERE outcome = 'error'), count(*) FILTER (WHERE outcome = 'deferred'),
		count(*) - count(DISTINCT (op, model, object, updated)) FROM `+calls, a.childPid).
		Scan(&a.calls, &a.childCalls, &a.cut, &a.synced, &a.deletes, &a.errs, &a.deferrals, &a.retries); err != nil {
		return err
	}
	ended := `coalesce(end_at, CASE WHEN pid = $1 THEN $2::timestamptz ELSE 'infinity' END)`
	if err := pool.QueryRow(ctx, `WITH c AS (SELECT call, model, object, start_at, `+ended+` AS end_at FROM `+calls+`)
		SELECT count(*) FROM c AS x JOIN c AS y ON x.model = y.model AND x.object = y.object AND x.call < y.call
		AND y.start_at < x.end_at AND x.start_at < y.end_at`, a.childPid, a.killedAt).Scan(&a.concurrent); err != nil {
		return err
	}
	return pool.QueryRow(ctx, `SELECT count(*) FROM (SELECT updated < max(updated) OVER (PARTITION BY op, model, object ORDER BY start_at, call
		ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS stale FROM `+calls+`) AS s WHERE stale`).Scan(&a.stale)
}
