package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/tsync/tsync/internal/workflows"
	"github.com/tsync/tsync/models"
)

// Stalls: a run whose pending objects stop getting in sync says which, and
// what their workflows are doing, while they wait; and, once in sync, which
// runs ended without syncing their object.

const (
	// stallPoll is how often watchStalls counts the pending objects.
	stallPoll = 5 * time.Second
	// stallAfter is how long the count must stand still to be reported.
	stallAfter = 10 * time.Second
)

// watchStalls counts the pending objects of models every stallPoll until
// the returned stop is called. When the count has not moved for
// stallAfter, it prints (once) a few of them and their workflows' runs, as
// visibility has them: status, TsyncState and status memo.
func (e *env) watchStalls(ctx context.Context, out io.Writer, modelNames ...string) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		last, since := -1, time.Now()
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(stallPoll):
			}
			n, err := e.countPending(ctx, modelNames)
			if err != nil {
				return
			}
			if n != last {
				last, since = n, time.Now()
				continue
			}
			if n > 0 && time.Since(since) >= stallAfter {
				fmt.Fprintf(out, "stall: %d objects pending, none in sync for %s: %s\n", n, time.Since(since).Round(time.Second), e.describeStall(ctx, modelNames))
				return
			}
		}
	}()
	return func() { cancel(); <-done }
}

// countPending counts the pending objects of models.
func (e *env) countPending(ctx context.Context, modelNames []string) (int, error) {
	total := 0
	for _, name := range modelNames {
		m, _ := e.app.Store.Graph().Model(name)
		var n int
		if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM `+e.table(m.Table)+` WHERE `+models.PendingPredicate).Scan(&n); err != nil {
			return 0, err
		}
		total += n
	}
	return total, nil
}

// describeStall describes up to three pending objects of each of models,
// with their runs.
func (e *env) describeStall(ctx context.Context, modelNames []string) string {
	var parts []string
	for _, name := range modelNames {
		m, _ := e.app.Store.Graph().Model(name)
		rows, err := e.pool.Query(ctx, `SELECT id FROM `+e.table(m.Table)+` WHERE `+models.PendingPredicate+` ORDER BY id LIMIT 3`)
		if err != nil {
			return err.Error()
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return err.Error()
		}
		for _, id := range ids {
			wid := workflows.WorkflowID(e.app.Config.ObserverName, models.Ref{Model: name, ID: id})
			parts = append(parts, wid+": "+e.describeRuns(ctx, wid))
		}
	}
	return strings.Join(parts, "; ")
}

// describeRuns lists the runs of workflow id, oldest first.
func (e *env) describeRuns(ctx context.Context, id string) string {
	resp, err := e.app.Client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: fmt.Sprintf("WorkflowId = %q", id)})
	if err != nil {
		return err.Error()
	}
	if len(resp.Executions) == 0 {
		return "no run"
	}
	var runs []string
	for _, x := range resp.Executions {
		runs = append(runs, fmt.Sprintf("[%s %s, started %s, state %q, status %q]", x.GetType().GetName(), x.GetStatus(),
			x.GetStartTime().AsTime().Format(time.TimeOnly), workflows.ListedState(x), workflows.ListedStatus(x)))
	}
	slices.Reverse(runs)
	return strings.Join(runs, " ")
}

// reportUnsynced prints the runs of e's synchronizer that ended with their
// object not in sync, by final TsyncState, with a few of their workflow
// IDs: the run that syncs such an object is a later one, started by a
// later scan (a minute later, when the scan that started the first trusted
// it). Nothing when there are none.
func (e *env) reportUnsynced(ctx context.Context, out io.Writer) error {
	query := fmt.Sprintf("TsyncSynchronizer = %q AND ExecutionStatus != 'Running' AND TsyncState != %q",
		e.app.Config.ObserverName, workflows.StateInSync)
	resp, err := e.app.Client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query, PageSize: 1000})
	if err != nil {
		return fmt.Errorf("runs not in sync: %w", err)
	}
	if len(resp.Executions) == 0 {
		return nil
	}
	states := map[string][]string{}
	for _, x := range resp.Executions {
		state := fmt.Sprintf("%s %s", x.GetStatus(), workflows.ListedState(x))
		states[state] = append(states[state], x.GetExecution().GetWorkflowId())
	}
	var parts []string
	for _, state := range slices.Sorted(maps.Keys(states)) {
		ids := states[state]
		parts = append(parts, fmt.Sprintf("%d %s (%s)", len(ids), state, strings.Join(ids[:min(3, len(ids))], ", ")))
	}
	fmt.Fprintf(out, "runs ended with their object not in sync: %s\n", strings.Join(parts, "; "))
	return nil
}
