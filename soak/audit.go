package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tsync/tsync/internal/testmodels"
)

// report waits up to quiesce for quiescence, measures the processes again
// (before: after the warm-up), then prints what the model tables and the
// calls table say (an audit), and fails when an object is lost or a step
// call ran concurrently with another or on stale data.
func (s *soak) report(ctx context.Context, quiesce time.Duration, before []usage) error {
	s.calmWorkers()
	// Quiescence: nothing pending (every live object in sync, every deleted
	// one purged).
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
	quiet := fmt.Sprintf("quiescent after %s", time.Since(s.start).Round(time.Millisecond))
	if notSynced+notPurged > 0 {
		quiet = fmt.Sprintf("not quiescent after %s more", quiesce)
	}
	time.Sleep(5 * time.Second) // let the last workflows end
	after := s.usage(ctx)
	live, err := s.live(ctx)
	if err != nil {
		return err
	}
	lostN := notSynced + notPurged
	var au audit
	if err := au.read(ctx, s.pool, s.step.calls, s.deaths()); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	w1, w2 := s.workers[0], s.workers[1]
	w1.mu.Lock()
	w2.mu.Lock()
	restarts, exits := len(w2.pids)-1, w1.exits+w2.exits
	w1.mu.Unlock()
	w2.mu.Unlock()
	fmt.Printf("audit after %s (%s):\n", time.Since(s.start).Round(time.Millisecond), quiet)
	fmt.Printf("  objects     %d created, %d live, %d updates, %d deleted; %d changes failed under a fault\n", s.created, live, s.updates, s.deleted, s.loadErrs)
	fmt.Printf("  faults      %s\n", s.faultCounts())
	fmt.Printf("  processes   the starter in the soak, %s never killed, %s restarted %d times; %d unexpected worker exits\n", w1.name, w2.name, restarts, exits)
	fmt.Printf("  syncs       %d step calls (%d cut short by a kill), %d succeeded\n", au.calls, au.cut, au.synced)
	fmt.Printf("  retries     %d (calls of an object version called before)\n", au.retries)
	fmt.Printf("  deferrals   %d\n", au.deferrals)
	fmt.Printf("  errors      %d (injected)\n", au.errs)
	fmt.Printf("  deletes     %d\n", au.deletes)
	printGrowth(before, after)
	fmt.Printf("  concurrent  %d\n", au.concurrent)
	fmt.Printf("  stale       %d (calls on an older version than an earlier call saw)\n", au.stale)
	fmt.Printf("  lost        %d (%d not in sync, %d deleted but not purged)\n", lostN, notSynced, notPurged)
	if lostN > 0 || au.concurrent > 0 || au.stale > 0 {
		if err := s.explain(ctx); err != nil {
			return fmt.Errorf("explain the audit: %w", err)
		}
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
	calls, cut, synced, deletes, errs, deferrals, retries, concurrent, stale int
}

// read counts from the calls table. A call without an end of a process
// that died (the deaths table) ended when it died, at the latest; any other
// call without an end never ended, and overlaps everything after it.
func (a *audit) read(ctx context.Context, pool *pgxpool.Pool, calls, deaths string) error {
	if err := pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE end_at IS NULL AND proc IN (SELECT proc FROM `+deaths+`)),
		count(*) FILTER (WHERE op = 'sync' AND outcome = 'ok'), count(*) FILTER (WHERE op = 'delete' AND outcome = 'ok'),
		count(*) FILTER (WHERE outcome = 'error'), count(*) FILTER (WHERE outcome = 'deferred'),
		count(*) - count(DISTINCT (op, model, object, updated)) FROM `+calls).
		Scan(&a.calls, &a.cut, &a.synced, &a.deletes, &a.errs, &a.deferrals, &a.retries); err != nil {
		return err
	}
	if err := pool.QueryRow(ctx, `WITH c AS (SELECT call, model, object, start_at, coalesce(end_at, d.died_at, 'infinity') AS end_at
			FROM `+calls+` LEFT JOIN `+deaths+` AS d USING (proc))
		SELECT count(*) FROM c AS x JOIN c AS y ON x.model = y.model AND x.object = y.object AND x.call < y.call
		AND y.start_at < x.end_at AND x.start_at < y.end_at`).Scan(&a.concurrent); err != nil {
		return err
	}
	return pool.QueryRow(ctx, `SELECT count(*) FROM (SELECT updated < max(updated) OVER (PARTITION BY op, model, object ORDER BY start_at, call
		ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS stale FROM `+calls+`) AS s WHERE stale`).Scan(&a.stale)
}

// explain prints, for a failed audit, the objects lost and the calls of
// the objects with concurrent or stale calls (10 objects at most each).
func (s *soak) explain(ctx context.Context) error {
	var rows []string
	for i, t := range s.tables() {
		r, err := s.pool.Query(ctx, `SELECT format('%s %s: code %s %L, updated %s, enacted %s, deleted %s', $1::text, id, backend_code,
				backend_status, updated, enacted, deleted)
			FROM `+t+` WHERE deleted OR NOT (backend_code = 1 AND enacted IS NOT DISTINCT FROM updated) ORDER BY id LIMIT 10`,
			testmodels.ModelName(soakModels()[i]))
		if err != nil {
			return err
		}
		out, err := pgx.CollectRows(r, pgx.RowTo[string])
		if err != nil {
			return err
		}
		rows = append(rows, out...)
	}
	for _, r := range rows {
		fmt.Println("  lost:       ", r)
	}
	out, err := badCalls(ctx, s.pool, s.step.calls, s.deaths())
	if err != nil {
		return err
	}
	for _, l := range out {
		fmt.Println("  calls:      ", l)
	}
	fmt.Printf("  deaths:     ")
	r, err := s.pool.Query(ctx, `SELECT format('proc %s pid %s at %s', proc, pid, died_at) FROM `+s.deaths()+` ORDER BY died_at`)
	if err != nil {
		return err
	}
	out, err = pgx.CollectRows(r, pgx.RowTo[string])
	if err != nil {
		return err
	}
	fmt.Println(strings.Join(out, "; "))
	return nil
}

// badCalls returns the calls of the objects (10 at most) with concurrent or
// stale calls, one a line.
func badCalls(ctx context.Context, pool *pgxpool.Pool, calls, deaths string) ([]string, error) {
	r, err := pool.Query(ctx, `WITH c AS (SELECT c.*, coalesce(end_at, d.died_at, 'infinity') AS until FROM `+calls+` AS c LEFT JOIN `+deaths+` AS d USING (proc)),
		bad AS (SELECT DISTINCT x.model, x.object FROM c AS x JOIN c AS y ON x.model = y.model AND x.object = y.object AND x.call <> y.call
			AND (x.call < y.call AND y.start_at < x.until AND x.start_at < y.until OR (y.start_at, y.call) > (x.start_at, x.call) AND y.updated < x.updated)
			ORDER BY 1, 2 LIMIT 10)
		SELECT format('%s %s: call %s proc %s pid %s %s of %s, %s .. %s, %s', c.model, c.object, c.call, c.proc, c.pid, c.op, c.updated,
			c.start_at, coalesce(c.end_at::text, '(no end)'), coalesce(c.outcome, '-'))
		FROM c JOIN bad USING (model, object) ORDER BY c.model, c.object, c.start_at, c.call`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(r, pgx.RowTo[string])
}
