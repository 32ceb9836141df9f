package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tsync/tsync/internal/inspect"
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
