package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"golang.org/x/sync/errgroup"

	"github.com/tsync/tsync"
	"github.com/tsync/tsync/internal/testmodels"
	"github.com/tsync/tsync/models"
)

// The cost of a sync in Temporal: history events (server work) and
// billable actions (Temporal Cloud's unit), counted from the histories of
// the bench's own workflows.

// Cost is what the workflows of some objects cost, per object.
type Cost struct {
	Objects   int     `json:"objects"`
	Workflows int     `json:"workflows"`
	Events    float64 `json:"events_per_object"`
	Actions   float64 `json:"actions_per_object"`
	// Kinds counts the actions by kind, per object.
	Kinds map[string]float64 `json:"actions_by_kind_per_object"`
}

func (c Cost) String() string {
	var kinds []string
	for _, k := range actionKinds {
		if v := c.Kinds[k]; v > 0 {
			kinds = append(kinds, fmt.Sprintf("%s %.2f", k, v))
		}
	}
	return fmt.Sprintf("%.2f (%s)", c.Actions, strings.Join(kinds, ", "))
}

// actionKinds are the billable actions counted, in print order. As Temporal
// Cloud bills them: a workflow start (a run: started, child, continued as
// new), an activity attempt, a batch of local activities completed in one
// workflow task, a timer, a signal sent or received, a search-attribute
// upsert, a memo change (workflow properties modified).
var actionKinds = []string{"start", "activity", "local-activity-batch", "timer", "signal", "upsert", "memo"}

// actions counts the billable actions of one run's history, by kind.
func actions(events []*historypb.HistoryEvent) map[string]int {
	out := map[string]int{}
	lastBatch := int64(-1)
	for _, ev := range events {
		switch ev.GetEventType() {
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
			out["start"]++
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED:
			out["activity"] += int(max(ev.GetActivityTaskStartedEventAttributes().GetAttempt(), 1))
		case enumspb.EVENT_TYPE_MARKER_RECORDED:
			a := ev.GetMarkerRecordedEventAttributes()
			if a.GetMarkerName() == "LocalActivity" && a.GetWorkflowTaskCompletedEventId() != lastBatch {
				lastBatch = a.GetWorkflowTaskCompletedEventId()
				out["local-activity-batch"]++
			}
		case enumspb.EVENT_TYPE_TIMER_STARTED:
			out["timer"]++
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED, enumspb.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED:
			out["signal"]++
		case enumspb.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
			out["upsert"]++
		case enumspb.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED:
			out["memo"]++
		}
	}
	return out
}

// costOf counts the histories of every run on queue whose workflow ID
// contains match ("" for all), for objects objects.
func costOf(ctx context.Context, c client.Client, queue, match string, objects int) (Cost, error) {
	query := fmt.Sprintf("TaskQueue = %q", queue)
	var ids [][2]string
	var token []byte
	for {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query, NextPageToken: token, PageSize: 1000})
		if err != nil {
			return Cost{}, fmt.Errorf("list workflows of %s: %w", queue, err)
		}
		for _, ex := range resp.Executions {
			if strings.Contains(ex.Execution.WorkflowId, match) {
				ids = append(ids, [2]string{ex.Execution.WorkflowId, ex.Execution.RunId})
			}
		}
		if token = resp.NextPageToken; len(token) == 0 {
			break
		}
	}
	var mu sync.Mutex
	events := 0
	kinds := map[string]int{}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for _, id := range ids {
		g.Go(func() error {
			var hist []*historypb.HistoryEvent
			it := c.GetWorkflowHistory(gctx, id[0], id[1], false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
			for it.HasNext() {
				ev, err := it.Next()
				if err != nil {
					return fmt.Errorf("history of %s: %w", id[0], err)
				}
				hist = append(hist, ev)
			}
			mu.Lock()
			defer mu.Unlock()
			events += len(hist)
			for k, v := range actions(hist) {
				kinds[k] += v
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return Cost{}, err
	}
	cost := Cost{Objects: objects, Workflows: len(ids), Events: float64(events) / float64(objects), Kinds: map[string]float64{}}
	for k, v := range kinds {
		cost.Kinds[k] = float64(v) / float64(objects)
		cost.Actions += float64(v) / float64(objects)
	}
	return cost, nil
}

// failOnce is a step that fails (or defers) the first attempt of each
// object, then succeeds.
type failOnce struct {
	noop
	deferIt bool
	seen    sync.Map
	calls   atomic.Int64
}

func (f *failOnce) SyncRecord(ctx context.Context, obj models.Object) error {
	f.calls.Add(1)
	if _, again := f.seen.LoadOrStore(testmodels.RefOf(obj), true); again {
		return nil
	}
	if f.deferIt {
		return tsync.Defer(errors.New("bench: not yet"))
	}
	return errors.New("bench: first attempt fails")
}

// costs measures the cost per object of each kind of sync, on n objects
// each: an independent object, a DAG object whose dependency is in sync,
// a failure with one retry, a deferral, and an object of a whole graph of
// sites inserted at once (the dag run's, where objects wait for others).
func (b *bench) costs(ctx context.Context, n int) (map[string]Cost, error) {
	out := map[string]Cost{}
	var err error
	if out["independent"], err = b.costRun(ctx, noop{}, n, items); err != nil {
		return nil, err
	}
	if out["dag object, dependency in sync"], err = b.costRun(ctx, noop{}, n, slicesOfSyncedSite); err != nil {
		return nil, err
	}
	if out["failure with one retry"], err = b.costRun(ctx, &failOnce{}, n, items); err != nil {
		return nil, err
	}
	if out["deferral"], err = b.costRun(ctx, &failOnce{deferIt: true}, n, items); err != nil {
		return nil, err
	}
	if out["dag of sites at once"], err = b.costRun(ctx, noop{}, n, sitesAtOnce); err != nil {
		return nil, err
	}
	return out, nil
}

// A costKind inserts about n objects to count and returns their number,
// the tables to wait for, and the workflow IDs to count ("" all). Its
// objects are inserted while the worker and starter run (each announced),
// or with before, before they start (found by the starter's first scan).
type costKind struct {
	before bool
	insert func(ctx context.Context, e *env, n int) (objects int, tables []string, match string, err error)
}

// items: n independent Items.
var items = costKind{insert: func(ctx context.Context, e *env, n int) (int, []string, string, error) {
	return n, []string{"item"}, "/Item/", e.insertItems(ctx, n)
}}

// slicesOfSyncedSite: n Slices of a Site synced before them.
var slicesOfSyncedSite = costKind{insert: func(ctx context.Context, e *env, n int) (int, []string, string, error) {
	site := &testmodels.Site{Name: "site"}
	if err := e.app.Store.Insert(ctx, site); err != nil {
		return 0, nil, "", err
	}
	if err := e.waitInSync(ctx, "site"); err != nil {
		return 0, nil, "", err
	}
	_, err := e.pool.Exec(ctx, `INSERT INTO `+e.table("slice")+` (name, site_id) SELECT 'slice-' || g, $2 FROM generate_series(1, $1::int) g`, n, site.ID)
	return n, []string{"slice"}, "/Slice/", err
}}

// sitesAtOnce: the dag run's graph, with as many sites as make about n
// objects, pending before the worker and starter start.
var sitesAtOnce = costKind{before: true, insert: func(ctx context.Context, e *env, n int) (int, []string, string, error) {
	d := dagShape{networks: 2, slices: 4, instances: 5}
	d.sites = max(1, n/d.count1())
	err := e.insertDAG(ctx, d.sites, d.networks, d.slices, d.instances)
	return d.count(), []string{"site", "network", "slice", "instance"}, "", err
}}

// costRun syncs the objects of kind with step and counts their workflows.
func (b *bench) costRun(ctx context.Context, step tsync.Step, n int, kind costKind) (Cost, error) {
	e, cleanup, err := b.open(ctx, step)
	if err != nil {
		return Cost{}, err
	}
	defer cleanup()
	e.workers = 0 // the step is this process's
	var stop func()
	if !kind.before {
		stop = e.run(ctx)
	}
	objects, tables, match, err := kind.insert(ctx, e, n)
	if stop == nil && err == nil {
		stop = e.run(ctx)
	}
	if stop != nil {
		defer stop()
	}
	if err != nil {
		return Cost{}, err
	}
	if err := e.waitInSync(ctx, tables...); err != nil {
		return Cost{}, err
	}
	// The workflows close right after their last write.
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := e.app.Client.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{
			Query: fmt.Sprintf("TaskQueue = %q AND ExecutionStatus = 'Running'", e.app.Config.Temporal.TaskQueue)})
		if err != nil {
			return Cost{}, err
		}
		if resp.Count == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	return costOf(ctx, e.app.Client, e.app.Config.Temporal.TaskQueue, match, objects)
}
