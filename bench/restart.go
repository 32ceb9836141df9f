package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"golang.org/x/sync/errgroup"

	"github.com/tsync/tsync/internal/starter"
	"github.com/tsync/tsync/internal/workflows"
	"github.com/tsync/tsync/models"
)

// Restart measures a starter restarted while n objects' runs are at work
// (no worker: their runs stay open): its first scan adopts them (see the
// starter's adoptRunning) rather than start each again, against the first
// starter's scan, which started them.
type Restart struct {
	N int `json:"n"`
	// First and Restarted are the first starter's first scan and the
	// restarted starter's.
	First     ScanCost `json:"first_scan"`
	Restarted ScanCost `json:"restarted_scan"`
	Adopted   int64    `json:"adopted"`
	// Joins are n start calls that find each run at work, 16 in flight:
	// what a restarted starter's first scan made before it adopted runs.
	Joins ScanCost `json:"joins"`
	// List and Count are visibility's answers to the question a scan asks
	// of the runs whose trust is over, for the n runs at work, 100
	// workflow IDs per query: each run's record, or their number.
	List  ScanCost `json:"verify_list"`
	Count ScanCost `json:"verify_count"`
}

// ScanCost is one scan's time, start calls (or visibility queries) and
// CPU time per object.
type ScanCost struct {
	Seconds float64      `json:"wall_s"`
	Starts  int64        `json:"calls"`
	CPU     CPUPerObject `json:"cpu_per_object"`
}

func (b *bench) restart(ctx context.Context, n int) (Restart, error) {
	r := Restart{N: n}
	e, cleanup, err := b.open(ctx, noop{})
	if err != nil {
		return r, err
	}
	defer cleanup()
	if err := e.insertItems(ctx, n); err != nil {
		return r, err
	}
	scan := func(s *starter.Starter) (ScanCost, error) {
		return measure(n, func() (int64, error) {
			_, err := s.Scan(ctx)
			return s.Started(), err
		})
	}
	if r.First, err = scan(e.app.NewStarter()); err != nil {
		return r, err
	}
	// The restarted starter's scan asks visibility, which shows a run
	// shortly after its start.
	for {
		_, open, err := countByStatus(ctx, e.app.Client, fmt.Sprintf("TaskQueue = %q", e.app.Config.Temporal.TaskQueue))
		if err != nil {
			return r, err
		}
		if open >= int64(n) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	restarted := e.app.NewStarter()
	if r.Restarted, err = scan(restarted); err != nil {
		return r, err
	}
	r.Adopted = restarted.Adopted()
	joiner := e.app.NewStarter()
	if r.Joins, err = measure(n, func() (int64, error) {
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(16)
		for i := range n {
			g.Go(func() error { return joiner.Start(gctx, models.Ref{Model: "Item", ID: int64(i + 1)}, false) })
		}
		err := g.Wait()
		return joiner.Started(), err
	}); err != nil {
		return r, err
	}
	ids := make([]string, n)
	for i := range n {
		ids[i] = workflows.WorkflowID(e.app.Params().Synchronizer, models.Ref{Model: "Item", ID: int64(i + 1)})
	}
	if r.List, err = verifyCost(ids, func(q string) (int, error) {
		resp, err := e.app.Client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{PageSize: 100, Query: q})
		return len(resp.GetExecutions()), err
	}); err != nil {
		return r, err
	}
	r.Count, err = verifyCost(ids, func(q string) (int, error) {
		resp, err := e.app.Client.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Query: q})
		return int(resp.GetCount()), err
	})
	return r, err
}

// verifyCost asks ask, for 100 of ids at a time, how many of their
// workflows run, as a scan's verification does, and returns the time and
// CPU it took; each answer must be all 100.
func verifyCost(ids []string, ask func(query string) (int, error)) (ScanCost, error) {
	return measure(len(ids), func() (int64, error) {
		var queries int64
		for batch := range slices.Chunk(ids, 100) {
			got, err := ask(starter.RunningQuery(batch))
			if err != nil {
				return queries, err
			}
			if got != len(batch) {
				return queries, fmt.Errorf("verify: %d of %d workflows running", got, len(batch))
			}
			queries++
		}
		return queries, nil
	})
}

// measure runs fn, which returns how many calls it made, and returns its
// time, those calls and the CPU time per object of n.
func measure(n int, fn func() (int64, error)) (ScanCost, error) {
	before, start := readCPU(), time.Now()
	calls, err := fn()
	if err != nil {
		return ScanCost{}, err
	}
	return ScanCost{Seconds: time.Since(start).Seconds(), Starts: calls, CPU: cpuSince(before, n)}, nil
}

func (r Restart) print(w io.Writer) {
	fmt.Fprintf(w, "restart: %d objects at work: first scan %.2fs, %d starts (cpu per object, ms: %s); restarted starter's first scan %.2fs, %d starts, %d runs adopted (%s)\n",
		r.N, r.First.Seconds, r.First.Starts, r.First.CPU, r.Restarted.Seconds, r.Restarted.Starts, r.Adopted, r.Restarted.CPU)
	fmt.Fprintf(w, "restart: before, that scan made %d start calls that joined the runs at work: %d joins %.2fs (%s); adopted/joins server cpu %.2f\n",
		r.N, r.Joins.Starts, r.Joins.Seconds, r.Joins.CPU, r.Restarted.CPU.Temporal/r.Joins.CPU.Temporal)
	fmt.Fprintf(w, "verify: %d runs at work, 100 workflow IDs per query: list %.2fs (%s); count %.2fs (%s); count/list server cpu %.2f\n",
		r.N, r.List.Seconds, r.List.CPU, r.Count.Seconds, r.Count.CPU, r.Count.CPU.Temporal/r.List.CPU.Temporal)
}
