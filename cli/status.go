package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	enumspb "go.temporal.io/api/enums/v1"
	taskqueuepb "go.temporal.io/api/taskqueue/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/tsync/tsync/app"
	"github.com/tsync/tsync/internal/inspect"
	"github.com/tsync/tsync/internal/text"
	"github.com/tsync/tsync/internal/workflows"
	"github.com/tsync/tsync/models"
)

// DefaultWatch is how often status --watch refreshes when given no
// interval.
const DefaultWatch = 2 * time.Second

// statusDialWait bounds how long status, errors and describe wait for
// Temporal: they show the objects without their workflows when it does not
// answer.
const statusDialWait = 5 * time.Second

func (c *CLI) writeObjects(format string, objs []ObjectState, summary bool) error {
	switch format {
	case "json":
		if objs == nil {
			objs = []ObjectState{}
		}
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(objs)
	case "table":
		if len(objs) > 0 {
			if err := printTable(c.stdout, objs); err != nil {
				return err
			}
		}
		if summary {
			c.Printf("%s", stateCounts(objs))
		}
		return nil
	}
	return fmt.Errorf("--output: %q is not one of table, json", format)
}

// checkOutput refuses an -o value before any work is done.
func checkOutput(format string) error {
	if format != "table" && format != "json" {
		return fmt.Errorf("--output: %q is not one of table, json", format)
	}
	return nil
}

// resolveModel returns the model of g named name, ignoring case; an
// unknown name gets one error listing the models, with the closest one.
func resolveModel(g *models.Graph, name string) (string, error) {
	if _, ok := g.Model(name); ok {
		return name, nil
	}
	order := g.Order()
	for _, m := range order {
		if strings.EqualFold(m, name) {
			return m, nil
		}
	}
	hint := ""
	best, bestD := "", -1
	for _, m := range order {
		if d := text.EditDistance(strings.ToLower(name), strings.ToLower(m)); bestD < 0 || d < bestD {
			best, bestD = m, d
		}
	}
	if bestD >= 0 && bestD <= max(2, len(name)/3) {
		hint = fmt.Sprintf(" (did you mean %s?)", best)
	}
	return "", fmt.Errorf("unknown model %q%s; models: %s", name, hint, strings.Join(order, ", "))
}

// parseID parses an object id argument.
func parseID(s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("id %q is not a positive integer", s)
	}
	return id, nil
}

// checkSchema fails when the store's schema, or every table of its
// models, is missing: status would otherwise say "0 objects".
func (c *CLI) checkSchema(ctx context.Context, store *models.Store) error {
	var schema bool
	if err := store.Pool().QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, store.Schema()).Scan(&schema); err != nil {
		return fmt.Errorf("schema %s: %w", store.Schema(), err)
	}
	if !schema {
		return fmt.Errorf("schema %s does not exist: run `%s migrate` to create it (or set database_schema)", store.Schema(), c.def.Name)
	}
	missing, err := missingTables(ctx, store)
	if err != nil {
		return err
	}
	if len(missing) == len(store.Graph().Order()) {
		return fmt.Errorf("schema %s has none of %s's tables: run `%s migrate` to create them", store.Schema(), c.def.Name, c.def.Name)
	}
	return nil
}

// missingTables returns the tables of the store's models that do not
// exist, in graph order.
func missingTables(ctx context.Context, store *models.Store) ([]string, error) {
	var out []string
	for _, name := range store.Graph().Order() {
		m, _ := store.Graph().Model(name)
		var exists bool
		if err := store.Pool().QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, store.Table(m)).Scan(&exists); err != nil {
			return nil, fmt.Errorf("table of %s: %w", name, err)
		}
		if !exists {
			out = append(out, m.Table)
		}
	}
	return out, nil
}

// inspector is an Inspector of store (and cl's workflows, when not nil)
// for this config.
func (c *CLI) inspector(ctx context.Context, store *models.Store, cl client.Client) *inspect.Inspector {
	return inspect.New(store, cl, inspect.Options{
		Synchronizer: c.cfg.ObserverName,
		Namespace:    c.cfg.Temporal.Namespace,
		UIURL:        c.webUIBase(ctx),
	})
}

// dialTemporal dials Temporal for a one-shot command, waiting at most
// statusDialWait; it logs why and returns nil when it cannot.
func (c *CLI) dialTemporal(ctx context.Context, what string) client.Client {
	ctx, cancel := context.WithTimeout(ctx, statusDialWait)
	defer cancel()
	cl, err := app.DialTemporal(ctx, c.cfg, c.log, c.appOptions()...)
	if err != nil {
		c.log.Warn(what+" not shown: Temporal is unreachable", "host_port", c.cfg.Temporal.HostPort)
		c.log.Debug("dial temporal", "error", err)
		return nil
	}
	return cl
}

// statusQuery is what one status run shows.
type statusQuery struct {
	model       string
	id          int64
	state       inspect.State
	output      string
	failOnError bool
}

func (c *CLI) statusCommand() *cobra.Command {
	var output, state string
	var watch, failOnError bool
	var interval time.Duration
	cmd := &cobra.Command{
		Use:   "status [MODEL [ID]]",
		Short: "Show the sync state of every object, of a model's, or of one",
		Long: `Show objects with their model, id, state, backend code (0 pending, 1 OK,
2 error), whether the last successful sync saw their current content
(enacted = updated), their backend status, and the state of their running
workflow (from Temporal, when it answers); then a summary line. Model names
ignore case.

States: in-sync; pending (new, changed or being synced); deferred (the step
deferred it: code 0); held (behind a dependency that is missing, pending or
in error); error (its own sync failed: code 2). --state lists only those.

It warns on stderr when no worker polls the task queue: nothing syncs then.
--watch (-w) refreshes every --interval (default ` + DefaultWatch.String() + `) until Ctrl-C.
--fail-on-error exits 1 when a listed object is in error (code 2: state error,
or held behind a dependency in error). -o json prints every field, with
snake_case keys (model, id, state, code, status, deleted, current, updated,
enacted, workflow, workflow_state).`,
		Args:        cobra.MaximumNArgs(2),
		Annotations: map[string]string{"quiet": "true"},
		RunE: func(cmd *cobra.Command, args []string) error {
			q := statusQuery{output: output, failOnError: failOnError}
			if err := checkOutput(output); err != nil {
				return err
			}
			if watch && failOnError {
				return errors.New("--fail-on-error and --watch do not go together: --watch runs until Ctrl-C")
			}
			if state != "" {
				st, err := inspect.ParseState(state)
				if err != nil {
					return fmt.Errorf("--state: %w", err)
				}
				q.state = st
			}
			if len(args) == 2 {
				id, err := parseID(args[1])
				if err != nil {
					return err
				}
				q.id = id
			}
			store, closeStore, err := c.openStore(cmd.Context(), false)
			if err != nil {
				return err
			}
			defer closeStore()
			if len(args) > 0 {
				if q.model, err = resolveModel(store.Graph(), args[0]); err != nil {
					return err
				}
			}
			if !watch {
				return c.status(cmd.Context(), store, q)
			}
			if interval <= 0 {
				return fmt.Errorf("--interval: %s is not a positive duration", interval)
			}
			ctx, stop := c.untilSignal(cmd.Context())
			defer stop()
			return c.watchStatus(ctx, store, q, interval)
		},
	}
	addOutputFlag(cmd, &output)
	f := cmd.Flags()
	f.StringVar(&state, "state", "", "list only objects in this state: in-sync, pending, deferred, held or error")
	f.BoolVarP(&watch, "watch", "w", false, "refresh every --interval until Ctrl-C")
	f.DurationVarP(&interval, "interval", "n", DefaultWatch, "how often --watch refreshes")
	f.BoolVar(&failOnError, "fail-on-error", false, "exit 1 when a listed object is in error (code 2)")
	return cmd
}

// watchStatus runs status every interval until ctx is done, and then
// returns nil. A terminal is cleared before each refresh.
func (c *CLI) watchStatus(ctx context.Context, store *models.Store, q statusQuery, every time.Duration) error {
	clearScreen := false
	if f, ok := c.stdout.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			clearScreen = true
		}
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		if clearScreen {
			fmt.Fprint(c.stdout, "\033[H\033[2J")
		}
		if q.output == "table" {
			c.Printf("Every %s: %s status (Ctrl-C to stop)  %s", every, c.def.Name, time.Now().Format(time.TimeOnly))
		}
		if err := c.status(ctx, store, q); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			// A failing refresh (PostgreSQL restarting, the schema not
			// created yet) is shown; the next one may succeed.
			fmt.Fprintln(c.stderr, strings.TrimSpace(err.Error()))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// status shows the objects q selects once.
func (c *CLI) status(ctx context.Context, store *models.Store, q statusQuery) error {
	if err := c.checkSchema(ctx, store); err != nil {
		return err
	}
	in := c.inspector(ctx, store, nil)
	rows, err := in.List(ctx, inspect.Filter{Model: q.model})
	if err != nil {
		return err
	}
	var objs []ObjectState
	found := false
	for _, r := range rows {
		if q.id != 0 && r.ID != q.id {
			continue
		}
		found = true
		if q.state != "" && r.State != q.state {
			continue
		}
		objs = append(objs, objectState(r))
	}
	if q.id != 0 && !found {
		return fmt.Errorf("%s %d: %w", q.model, q.id, models.ErrNotFound)
	}
	if cl := c.dialTemporal(ctx, "running workflows"); cl != nil {
		c.addWorkflows(ctx, cl, objs)
		c.warnNoWorker(ctx, cl)
		cl.Close()
	}
	if len(objs) == 0 && q.output == "table" && q.model == "" && q.state == "" {
		c.Printf("%s in schema %s (%s)", stateCounts(nil), store.Schema(), c.seedHint())
	} else if err := c.writeObjects(q.output, objs, true); err != nil {
		return err
	}
	if q.failOnError && anyInError(objs) {
		return exitError{code: 1}
	}
	return nil
}

// anyInError reports whether an object is in error (code 2).
func anyInError(objs []ObjectState) bool {
	for _, o := range objs {
		if o.InError() {
			return true
		}
	}
	return false
}

// addWorkflows fills in the running workflow of each object, from a
// visibility query; it says so and goes on when Temporal cannot answer.
func (c *CLI) addWorkflows(ctx context.Context, cl client.Client, objs []ObjectState) {
	ctx, cancel := context.WithTimeout(ctx, statusDialWait)
	defer cancel()
	running := map[string]string{}
	var token []byte
	for {
		resp, err := cl.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Query:         fmt.Sprintf("TsyncSynchronizer = %q AND ExecutionStatus = 'Running'", c.cfg.ObserverName),
			NextPageToken: token,
		})
		if err != nil {
			c.log.Warn("running workflows not shown", "error", err)
			return
		}
		for _, x := range resp.Executions {
			state := ""
			if p := x.GetSearchAttributes().GetIndexedFields()[workflows.AttrState.GetName()]; p != nil {
				_ = converter.GetDefaultDataConverter().FromPayload(p, &state)
			}
			running[x.Execution.WorkflowId] = state
		}
		if token = resp.NextPageToken; len(token) == 0 {
			break
		}
	}
	for i, o := range objs {
		id := workflows.WorkflowID(c.cfg.ObserverName, models.Ref{Model: o.Model, ID: o.ID})
		if state, ok := running[id]; ok {
			objs[i].Workflow, objs[i].WorkflowState = id, state
		}
	}
}

// Pollers are the workers polling a task queue, by task type.
type Pollers struct {
	// Queue is the task queue's name.
	Queue string
	// Workflow and Activity poll its workflow and activity tasks.
	Workflow, Activity []*taskqueuepb.PollerInfo
}

// pollers asks Temporal who polls the configured task queue.
func (c *CLI) pollers(ctx context.Context, cl client.Client) (Pollers, error) {
	ctx, cancel := context.WithTimeout(ctx, statusDialWait)
	defer cancel()
	p := Pollers{Queue: c.cfg.Temporal.TaskQueue}
	for _, t := range []enumspb.TaskQueueType{enumspb.TASK_QUEUE_TYPE_WORKFLOW, enumspb.TASK_QUEUE_TYPE_ACTIVITY} {
		resp, err := cl.DescribeTaskQueue(ctx, p.Queue, t)
		if err != nil {
			return p, fmt.Errorf("describe task queue %s: %w", p.Queue, err)
		}
		if t == enumspb.TASK_QUEUE_TYPE_WORKFLOW {
			p.Workflow = resp.GetPollers()
		} else {
			p.Activity = resp.GetPollers()
		}
	}
	return p, nil
}

// noWorker is the warning when a task type of the queue has no poller, ""
// when both have one.
func (c *CLI) noWorker(p Pollers) string {
	if len(p.Workflow) > 0 && len(p.Activity) > 0 {
		return ""
	}
	return fmt.Sprintf("no worker polls task queue %s: start `%s worker` (or `%s run`)", p.Queue, c.def.Name, c.def.Name)
}

// warnNoWorker writes the no-worker warning to stderr, when it applies.
func (c *CLI) warnNoWorker(ctx context.Context, cl client.Client) {
	p, err := c.pollers(ctx, cl)
	if err != nil {
		c.log.Warn("task queue pollers not shown", "error", err)
		return
	}
	if w := c.noWorker(p); w != "" {
		fmt.Fprintln(c.stderr, "warning: "+w)
	}
}

func (c *CLI) errorsCommand() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "errors [MODEL]",
		Short: "List the objects in error (code 2) with their error; exit 1 when there are any",
		Long: `List the objects in error (backend code 2), of every model or of MODEL (any
case), with their state (error: its own sync failed; held: behind a
dependency in error) and status, then how many. It exits 1 when it lists
any, 0 when there are none: a check for scripts and monitoring. Deferred and
held objects with code 0 are not errors: see status --state deferred|held.`,
		Args:        cobra.MaximumNArgs(1),
		Annotations: map[string]string{"quiet": "true"},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			store, closeStore, err := c.openStore(cmd.Context(), false)
			if err != nil {
				return err
			}
			defer closeStore()
			model := ""
			if len(args) == 1 {
				if model, err = resolveModel(store.Graph(), args[0]); err != nil {
					return err
				}
			}
			if err := c.checkSchema(cmd.Context(), store); err != nil {
				return err
			}
			rows, err := c.inspector(cmd.Context(), store, nil).List(cmd.Context(), inspect.Filter{Model: model})
			if err != nil {
				return err
			}
			var bad []ObjectState
			for _, r := range rows {
				if o := objectState(r); o.InError() {
					bad = append(bad, o)
				}
			}
			if output == "table" {
				for _, o := range bad {
					c.Printf("%s %d (%s): %s", o.Model, o.ID, o.State, o.Status)
				}
				c.Printf("%d objects in error", len(bad))
			} else if err := c.writeObjects(output, bad, false); err != nil {
				return err
			}
			if len(bad) > 0 {
				return exitError{code: 1}
			}
			return nil
		},
	}
	addOutputFlag(cmd, &output)
	return cmd
}
