// Package replaytest keeps histories of real workflow runs as test data and
// replays them against the current code with the SDK's workflow replayer,
// so that a change of workflow code that would break the workflows running
// at upgrade time fails a test before it ships.
//
// Save writes the histories of the runs of a task queue, recorded on a
// Temporal server (a dev server, by a test that records them again on
// demand); Files and Load read them back; Replay replays one and checks
// what the replayer alone leaves unchecked: that its workflow type is a
// registered one, that it ended, and that a completed run returns the
// recorded result.
package replaytest

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/temporalproto"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// DevServerArgs are the extra `temporal server start-dev` flags of a dev
// server that records histories: by default it fires a timer up to its
// timer processor's time shift (1s) late, and recorded scenarios pause for
// tens of milliseconds, some a hundred times.
func DevServerArgs() []string {
	return []string{"--dynamic-config-value", `history.timerProcessorMaxTimeShift="10ms"`}
}

// Files returns the history files (*.json) under dir, at any depth, sorted.
// It fails when there are none.
func Files(dir string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(path, ".json") {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("histories in %s: %w", dir, err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("histories in %s: none", dir)
	}
	slices.Sort(files)
	return files, nil
}

// Load reads a history file written by Save (or by `temporal workflow show
// --output json`).
func Load(path string) (*historypb.History, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	defer f.Close()
	h, err := client.HistoryFromJSON(f, client.HistoryJSONOptions{})
	if err != nil {
		return nil, fmt.Errorf("history %s: %w", path, err)
	}
	return h, nil
}

// Type returns the workflow type of h: the one its first event started.
func Type(h *historypb.History) (string, error) {
	if len(h.GetEvents()) == 0 {
		return "", errors.New("empty history")
	}
	attrs := h.Events[0].GetWorkflowExecutionStartedEventAttributes()
	if attrs == nil {
		return "", fmt.Errorf("first event is %s, not WorkflowExecutionStarted", h.Events[0].GetEventType())
	}
	return attrs.GetWorkflowType().GetName(), nil
}

// Options say what to replay a history against.
type Options struct {
	// Workflows are the workflow functions, by workflow type name (each is
	// registered under that name).
	Workflows map[string]any
	// Interceptors are the worker's interceptors, if any: a test can
	// change what the workflows do without changing their code.
	Interceptors []interceptor.WorkerInterceptor
	// Logger gets the replayer's log lines; nil discards them.
	Logger log.Logger
}

// Replay replays h against o.Workflows. Besides the replayer's own errors
// (a non-determinism error when the code no longer issues the commands h
// records), it fails when h's workflow type is none of o.Workflows, when h
// has not ended (the replayer then checks nothing of its end), and when a
// completed run returns another result than h records. (For a run that
// failed, the replayer checks the commands before the failure, not the
// failure.)
func Replay(h *historypb.History, o Options) error {
	typ, err := Type(h)
	if err != nil {
		return err
	}
	fn, ok := o.Workflows[typ]
	if !ok {
		return fmt.Errorf("workflow type %s is not registered (registered: %s)", typ, strings.Join(slices.Sorted(maps.Keys(o.Workflows)), ", "))
	}
	last := h.Events[len(h.Events)-1]
	switch last.GetEventType() {
	case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
		enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
		enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
	default:
		return fmt.Errorf("history of %s does not end the run: its last event is %s", typ, last.GetEventType())
	}
	logger := o.Logger
	if logger == nil {
		logger = log.NewStructuredLogger(slog.New(slog.DiscardHandler))
	}
	r, err := worker.NewWorkflowReplayerWithOptions(worker.WorkflowReplayerOptions{
		Interceptors: o.Interceptors,
		// Determinism is what a replay checks. The deadlock detector (1s of
		// wall time per workflow task) would only add failures of a loaded
		// machine.
		DisableDeadlockDetection: true,
	})
	if err != nil {
		return fmt.Errorf("replayer: %w", err)
	}
	r.RegisterWorkflowWithOptions(fn, workflow.RegisterOptions{Name: typ})
	if err := r.ReplayWorkflowHistory(logger, h); err != nil {
		return fmt.Errorf("replay %s: %w", typ, err)
	}
	completed := last.GetWorkflowExecutionCompletedEventAttributes()
	if completed == nil {
		return nil
	}
	// The SDK's replayer keeps the result; its interface does not say so.
	results, ok := r.(interface {
		GetWorkflowResult(workflowID string, valuePtr any) error
	})
	if !ok {
		return fmt.Errorf("replay %s: the SDK's replayer does not return results", typ)
	}
	var got, want any
	if err := results.GetWorkflowResult("", &got); err != nil {
		return fmt.Errorf("replay %s: result: %w", typ, err)
	}
	if err := converter.GetDefaultDataConverter().FromPayloads(completed.GetResult(), &want); err != nil {
		return fmt.Errorf("replay %s: recorded result: %w", typ, err)
	}
	if !reflect.DeepEqual(got, want) {
		return fmt.Errorf("replay %s: result %v, recorded %v", typ, got, want)
	}
	return nil
}

// Save waits (up to wait) until every run of the workflows of task queue
// queue has closed, then writes the history of each into dir as
// <workflow ID, its slashes made dashes>-<n>.json, where n numbers the runs
// of one workflow ID in the order they started (a run continued as new is
// followed by its next run), and returns the histories by file name.
func Save(ctx context.Context, c client.Client, queue, dir string, wait time.Duration) (map[string]*historypb.History, error) {
	runs, err := closedRuns(ctx, c, queue, wait)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("histories: %w", err)
	}
	out := map[string]*historypb.History{}
	n := map[string]int{}
	for _, e := range runs {
		n[e.id]++
		h := &historypb.History{}
		it := c.GetWorkflowHistory(ctx, e.id, e.runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for it.HasNext() {
			ev, err := it.Next()
			if err != nil {
				return nil, fmt.Errorf("history of %s (run %s): %w", e.id, e.runID, err)
			}
			h.Events = append(h.Events, ev)
		}
		data, err := temporalproto.CustomJSONMarshalOptions{Indent: "  "}.Marshal(h)
		if err != nil {
			return nil, fmt.Errorf("history of %s (run %s): %w", e.id, e.runID, err)
		}
		file := fmt.Sprintf("%s-%d.json", strings.ReplaceAll(e.id, "/", "-"), n[e.id])
		if err := os.WriteFile(filepath.Join(dir, file), append(data, '\n'), 0o644); err != nil {
			return nil, fmt.Errorf("histories: %w", err)
		}
		out[file] = h
	}
	return out, nil
}

type run struct {
	id, runID string
	start     time.Time
}

// closedRuns lists the runs of queue, sorted by workflow ID and start, once
// none is running.
func closedRuns(ctx context.Context, c client.Client, queue string, wait time.Duration) ([]run, error) {
	deadline := time.Now().Add(wait)
	for {
		runs, open, err := listRuns(ctx, c, queue)
		switch {
		case err != nil:
			return nil, err
		case open == 0 && len(runs) > 0:
			slices.SortFunc(runs, func(a, b run) int {
				if c := strings.Compare(a.id, b.id); c != 0 {
					return c
				}
				return a.start.Compare(b.start)
			})
			return runs, nil
		case time.Now().After(deadline):
			return nil, fmt.Errorf("runs of task queue %s: %d of %d still running after %v", queue, open, len(runs), wait)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func listRuns(ctx context.Context, c client.Client, queue string) (runs []run, open int, err error) {
	var token []byte
	for {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Query: fmt.Sprintf("TaskQueue = %q", queue), NextPageToken: token,
		})
		if err != nil {
			return nil, 0, fmt.Errorf("list the runs of task queue %s: %w", queue, err)
		}
		for _, e := range resp.Executions {
			if e.Status == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
				open++
			}
			runs = append(runs, run{id: e.Execution.WorkflowId, runID: e.Execution.RunId, start: e.StartTime.AsTime()})
		}
		if token = resp.NextPageToken; len(token) == 0 {
			return runs, open, nil
		}
	}
}

// Count returns how many events of h have type typ and, when name is not
// empty, name it (see EventName).
func Count(h *historypb.History, typ enumspb.EventType, name string) int {
	n := 0
	for _, e := range h.GetEvents() {
		if e.GetEventType() == typ && (name == "" || EventName(e) == name) {
			n++
		}
	}
	return n
}

// EventName is what an event names: the activity type of a scheduled
// activity, the activity type of a local activity's marker (the marker's
// name for other markers), the workflow type of a child's start, the
// signal's name of a signal sent or received; "" otherwise.
func EventName(e *historypb.HistoryEvent) string {
	switch {
	case e.GetActivityTaskScheduledEventAttributes() != nil:
		return e.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName()
	case e.GetMarkerRecordedEventAttributes() != nil:
		a := e.GetMarkerRecordedEventAttributes()
		if a.GetMarkerName() == "LocalActivity" {
			var data struct{ ActivityType string }
			if p := a.GetDetails()["data"]; p != nil && converter.GetDefaultDataConverter().FromPayloads(p, &data) == nil {
				return data.ActivityType
			}
		}
		return a.GetMarkerName()
	case e.GetStartChildWorkflowExecutionInitiatedEventAttributes() != nil:
		return e.GetStartChildWorkflowExecutionInitiatedEventAttributes().GetWorkflowType().GetName()
	case e.GetSignalExternalWorkflowExecutionInitiatedEventAttributes() != nil:
		return e.GetSignalExternalWorkflowExecutionInitiatedEventAttributes().GetSignalName()
	case e.GetWorkflowExecutionSignaledEventAttributes() != nil:
		return e.GetWorkflowExecutionSignaledEventAttributes().GetSignalName()
	}
	return ""
}

// StartInput decodes into v the input h's run started with.
func StartInput(h *historypb.History, v any) error {
	in := h.GetEvents()[0].GetWorkflowExecutionStartedEventAttributes().GetInput()
	return converter.GetDefaultDataConverter().FromPayloads(in, v)
}
