package cluster_test

import (
	"cmp"
	"context"
	"fmt"
	mrand "math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.temporal.io/sdk/activity"

	"github.com/tsync/tsync/internal/testenv"
	"github.com/tsync/tsync/internal/testmodels"
	"github.com/tsync/tsync/models"
)

// The call table: every step call of the worker processes, one row each,
// written by the step itself (callBook.sync), so that it survives the
// process and holds what the backend saw: which object, which content of
// it (its updated value), when the call began and ended, and how.

// callsDDL creates the call table (its name, schema-qualified and quoted).
func callsDDL(table string) string {
	return `CREATE TABLE ` + table + ` (
		call bigserial PRIMARY KEY,
		token text NOT NULL UNIQUE,       -- chosen by the step
		worker int NOT NULL,              -- worker process (1, 2)
		model text NOT NULL,
		id bigint NOT NULL,
		updated timestamptz NOT NULL,     -- the content version the step was given
		enacted_before timestamptz,       -- the object's enacted when the call began
		attempt text NOT NULL,            -- the activity attempt: workflow run, activity id, attempt
		start_at timestamptz NOT NULL,
		end_at timestamptz,               -- NULL: the call never ended (its process died)
		outcome text                      -- outcomeOK, outcomeCut; NULL while running
	)`
}

// Outcomes of a step call in the call table.
const (
	// outcomeOK: the step ran its whole course (the backend has the content).
	outcomeOK = "ok"
	// outcomeCut: the step was cut short by its activity's cancellation.
	outcomeCut = "cut"
)

// stepTime is how long a step takes: long enough that the kills hit calls
// in flight, short enough not to slow the run (Temporal's round trips, not
// the steps, set its pace: one or two calls are under way at a time).
func stepTime() time.Duration { return time.Duration(20+mrand.IntN(31)) * time.Millisecond }

// callBook is the step of every model in a worker process: it records each
// call in the call table and takes stepTime, or less when its context is
// cancelled first (the call is then cut short and fails).
type callBook struct {
	table  string // the call table, quoted
	schema string // the models' schema
	worker int
	// pool returns the process's pool (the app's, opened after the step
	// is built).
	pool func() *pgxpool.Pool
}

func (b *callBook) sync(ctx context.Context, obj models.Object) error {
	st := obj.SyncState()
	model := testmodels.ModelName(obj)
	objects := pgx.Identifier{b.schema, strings.ToLower(model)}.Sanitize()
	pool := b.pool()
	// The row's key is chosen here, so that a row whose insert failed
	// only in its answer can be found and removed.
	token := testenv.Random(8)
	attempt := ""
	if activity.IsActivity(ctx) {
		info := activity.GetInfo(ctx)
		attempt = fmt.Sprintf("%s/%s/%d", info.WorkflowExecution.RunID, info.ActivityID, info.Attempt)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO `+b.table+` (token, worker, model, id, updated, enacted_before, attempt, start_at)
		SELECT $1, $2, $3, $4, $5, (SELECT enacted FROM `+objects+` WHERE id = $4), $6, clock_timestamp()`,
		token, b.worker, model, st.ID, st.Updated, attempt); err != nil {
		// The step has not begun: no call.
		if derr := bookkeep(ctx, pool, `DELETE FROM `+b.table+` WHERE token = $1`, token); derr != nil {
			return fmt.Errorf("record the call of %s %d: %w (and removing its row: %v)", model, st.ID, err, derr)
		}
		return fmt.Errorf("record the call of %s %d: %w", model, st.ID, err)
	}
	outcome := outcomeOK
	select {
	case <-time.After(stepTime()):
	case <-ctx.Done():
		outcome = outcomeCut
	}
	// Its end is recorded even when the call was cut short, and in spite of
	// a passing failure (PostgreSQL out of connections): the call happened.
	if err := bookkeep(ctx, pool, `UPDATE `+b.table+` SET end_at = clock_timestamp(), outcome = $2 WHERE token = $1`, token, outcome); err != nil {
		return fmt.Errorf("record the end of the call of %s %d: %w", model, st.ID, err)
	}
	if outcome == outcomeCut {
		return fmt.Errorf("step of %s %d cut short: %w", model, st.ID, ctx.Err())
	}
	return nil
}

// bookkeep runs a statement of the call table's bookkeeping, whatever
// becomes of ctx, trying again for up to 30 s while it fails.
func bookkeep(ctx context.Context, pool *pgxpool.Pool, sql string, args ...any) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	for {
		_, err := pool.Exec(ctx, sql, args...)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// stepCall is one row of the call table.
type stepCall struct {
	Call          int64
	Worker        int
	Ref           models.Ref
	Updated       time.Time
	EnactedBefore *time.Time
	// Attempt is the activity attempt that made the call.
	Attempt string
	Start   time.Time
	End     *time.Time
	Outcome string
}

// readCalls reads the call table, in the order the calls began.
func readCalls(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, table string) ([]stepCall, error) {
	rows, err := q.Query(ctx, `SELECT call, worker, model, id, updated, enacted_before, attempt, start_at, end_at, coalesce(outcome, '')
		FROM `+table+` ORDER BY start_at, call`)
	if err != nil {
		return nil, fmt.Errorf("read the call table: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (stepCall, error) {
		var c stepCall
		err := row.Scan(&c.Call, &c.Worker, &c.Ref.Model, &c.Ref.ID, &c.Updated, &c.EnactedBefore, &c.Attempt, &c.Start, &c.End, &c.Outcome)
		return c, err
	})
}

// callReport is what checkCalls finds in the calls of a run.
type callReport struct {
	Calls int
	// Contents is how many (object, content version) pairs were synced.
	Contents int
	// Cut is how many calls were cut short: by their activity's
	// cancellation (outcomeCut) or by the death of their worker process.
	Cut int
	// Repeats is how many calls repeated an earlier call on the same
	// content of the same object, of which RepeatsAfterCut followed a call
	// cut short and RepeatsAfterUnrecorded a call that completed but whose
	// success had not been recorded on the object when the repeat began.
	Repeats, RepeatsAfterCut, RepeatsAfterUnrecorded int
	// Violations are the failures found (empty: none).
	Violations []string
}

// checkCalls checks the step calls of a run (in any order). died holds,
// per worker process that died during the run, a time after its death.
//
//   - No two calls of one object overlap in time. A call whose end was never
//     recorded was cut short by the death of its worker process: it ended at
//     the latest at died[worker]; if that worker did not die, it is a
//     violation (a call that never ended).
//   - No call is given older content than an earlier call of the same object
//     (content goes backwards: a stale sync).
//   - No content is synced twice except where a call was cut short. Calls
//     are grouped by object and content version (its updated value); within
//     a group, every call after the first is a repeat. A repeat is allowed
//     when the call before it in the group was cut short (by its
//     activity's cancellation or its process's death: the backend may not
//     have the content), or when that call completed but its success had
//     not been recorded on the object when the repeat began: the repeat
//     saw enacted older than the content (enacted_before < updated, or
//     NULL), so the synchronizer could not know that the backend had it (a
//     worker dying, or PostgreSQL failing, between the step's end and the
//     recording of its outcome; the activity then fails and is tried
//     again). Two violations: a repeat that began when the object's
//     enacted already covered its content, after a completed call (the
//     content was synced twice though its sync was recorded); and a repeat
//     by the same activity attempt as the completed call before it (an
//     attempt calls the step once: only a new attempt may try again).
func checkCalls(calls []stepCall, died map[int]time.Time) callReport {
	rep := callReport{Calls: len(calls)}
	type content struct {
		ref     models.Ref
		updated int64 // UnixMicro: PostgreSQL's precision
	}
	sorted := slices.Clone(calls)
	slices.SortFunc(sorted, func(a, b stepCall) int {
		return cmp.Or(strings.Compare(a.Ref.Model, b.Ref.Model), cmp.Compare(a.Ref.ID, b.Ref.ID), a.Start.Compare(b.Start), cmp.Compare(a.Call, b.Call))
	})
	// end returns when c ended, at the latest, and whether it was cut short.
	end := func(c stepCall) (time.Time, bool, bool) {
		if c.End != nil {
			return *c.End, c.Outcome == outcomeCut, true
		}
		d, ok := died[c.Worker]
		return d, true, ok
	}
	last := map[content]stepCall{}
	for i, c := range sorted {
		cEnd, cut, ended := end(c)
		if !ended {
			rep.Violations = append(rep.Violations, fmt.Sprintf("call %d of %s never ended, and its worker %d did not die", c.Call, c.Ref, c.Worker))
		}
		if cut {
			rep.Cut++
		}
		if i > 0 && sorted[i-1].Ref == c.Ref {
			p := sorted[i-1]
			if pEnd, _, ok := end(p); ok && c.Start.Before(pEnd) {
				rep.Violations = append(rep.Violations, fmt.Sprintf("calls %d and %d of %s overlap: %s-%s and %s-%s",
					p.Call, c.Call, c.Ref, stamp(p.Start), stamp(pEnd), stamp(c.Start), stamp(cEnd)))
			}
			if c.Updated.Before(p.Updated) {
				rep.Violations = append(rep.Violations, fmt.Sprintf("call %d of %s got content %s, older than call %d's %s",
					c.Call, c.Ref, stamp(c.Updated), p.Call, stamp(p.Updated)))
			}
		}
		key := content{c.Ref, c.Updated.UnixMicro()}
		p, repeat := last[key]
		last[key] = c
		if !repeat {
			rep.Contents++
			continue
		}
		rep.Repeats++
		if _, pCut, _ := end(p); pCut {
			rep.RepeatsAfterCut++
			continue
		}
		switch {
		case c.EnactedBefore != nil && !c.EnactedBefore.Before(c.Updated):
			rep.Violations = append(rep.Violations, fmt.Sprintf("content %s of %s synced twice: call %d completed, and call %d began with enacted %s already covering it",
				stamp(c.Updated), c.Ref, p.Call, c.Call, stamp(*c.EnactedBefore)))
		case c.Attempt == p.Attempt:
			rep.Violations = append(rep.Violations, fmt.Sprintf("content %s of %s synced twice by one activity attempt (%s): calls %d and %d",
				stamp(c.Updated), c.Ref, c.Attempt, p.Call, c.Call))
		default:
			rep.RepeatsAfterUnrecorded++
		}
	}
	return rep
}

// stamp formats a time of the call table.
func stamp(t time.Time) string { return t.Format("15:04:05.000000") }
