package cli

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	taskqueuepb "go.temporal.io/api/taskqueue/v1"

	"github.com/tsync/tsync/app"
	"github.com/tsync/tsync/internal/inspect"
)

func (c *CLI) describeCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "describe MODEL ID",
		Short: "Show why an object is where it is: state, error, attempts, dependencies, workflow, workers",
		Long: `Show one object (MODEL in any case): its state (in-sync, pending, deferred,
held, error), backend code and status, updated and enacted times; the
attempts of the step under way and when the next retry is due (from its
workflow's pending activity) and the retry schedule of the config; the chain
of objects it depends on, with their states (a missing one is marked); the
objects it holds (depending on it, directly or not, and not in sync); its
fields; its workflow's ID, status and Temporal Web UI link; and the workers
polling the task queue, with a warning when none does: then nothing syncs.`,
		Args:        cobra.ExactArgs(2),
		Annotations: map[string]string{"quiet": "true"},
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			id, err := parseID(args[1])
			if err != nil {
				return err
			}
			store, closeStore, err := c.openStore(ctx, false)
			if err != nil {
				return err
			}
			defer closeStore()
			model, err := resolveModel(store.Graph(), args[0])
			if err != nil {
				return err
			}
			if err := c.checkSchema(ctx, store); err != nil {
				return err
			}
			cl := c.dialTemporal(ctx, "workflow and workers")
			if cl != nil {
				defer cl.Close()
			}
			obj, err := c.inspector(ctx, store, cl).Object(ctx, model, id)
			if err != nil {
				return err
			}
			var pollers *Pollers
			var pollErr error
			if cl != nil {
				p, err := c.pollers(ctx, cl)
				if err != nil {
					pollErr = err
				} else {
					pollers = &p
				}
			} else {
				pollErr = fmt.Errorf("temporal at %s is unreachable", c.cfg.Temporal.HostPort)
			}
			return c.printDescribe(c.stdout, obj, pollers, pollErr, time.Now())
		},
	}
}

// printDescribe writes obj as the describe command shows it; pollers is
// nil when they are unknown, for pollErr.
func (c *CLI) printDescribe(w io.Writer, obj *inspect.Object, pollers *Pollers, pollErr error, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	line := func(k, format string, args ...any) {
		fmt.Fprintf(tw, "%s:\t"+format+"\n", append([]any{k}, args...)...)
	}
	fmt.Fprintf(tw, "%s %d\n", obj.Model, obj.ID)
	line("State", "%s", obj.State)
	line("Code", "%d", obj.Code)
	status := obj.Status
	if status == "" {
		status = "-"
	}
	line("Status", "%s", oneLine(status))
	if obj.Deleted {
		line("Deleted", "yes (its workflow deletes it from the backend, then purges the row)")
	}
	line("Updated", "%s", stamp(&obj.Updated))
	line("Enacted", "%s", stamp(obj.Enacted))
	wf := obj.Workflow
	switch {
	case wf.Activity != "" && wf.Failed > 0:
		// A retry under way: its failures so far are in the memo, the
		// last one in the object's status.
		line("Attempt", "%d of %s, running", wf.StepAttempt(), wf.Activity)
		line("Last failure", "%s", oneLine(obj.Status))
	case wf.Activity != "":
		line("Attempt", "%d of %s%s", wf.StepAttempt(), wf.Activity, nextRetry(wf, now))
		if wf.LastFailure != "" {
			line("Last failure", "%s", oneLine(wf.LastFailure))
		}
	case wf.Failed > 0:
		// Between attempts: the workflow's memo keeps the count.
		line("Attempt", "%d failed%s", wf.Failed, nextRetry(wf, now))
		line("Last failure", "%s", oneLine(obj.Status))
	case wf.Known:
		line("Attempt", "none under way")
	}
	line("Retries", "%s", app.Params(c.cfg).Retry.Describe())
	line("Workflow", "%s", workflowLine(wf))
	if wf.URL != "" {
		line("Web UI", "%s", wf.URL)
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintln(w, "\nDepends on:")
	if len(obj.Dependencies) == 0 {
		fmt.Fprintln(w, "  nothing")
	}
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, d := range obj.Dependencies {
		writeDep(tw, d)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "\nHolds (depending on it, not in sync):")
	if len(obj.Dependents) == 0 {
		fmt.Fprintln(w, "  nothing")
	}
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, d := range obj.Dependents {
		writeDep(tw, d)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if obj.MoreDependents > 0 {
		fmt.Fprintf(w, "  ... and %d more\n", obj.MoreDependents)
	}

	if len(obj.Fields) > 0 {
		fmt.Fprintln(w, "\nFields:")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, f := range obj.Fields {
			v := oneLine(f.Value)
			if f.Link != "" {
				v += " (" + f.Link + ")"
			}
			fmt.Fprintf(tw, "  %s\t%s\n", f.Column, v)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}

	fmt.Fprintf(w, "\nTask queue %s:\n", c.cfg.Temporal.TaskQueue)
	if pollers == nil {
		fmt.Fprintf(w, "  workers unknown: %v\n", pollErr)
		return nil
	}
	writePollers(w, "workflow", pollers.Workflow, now)
	writePollers(w, "activity", pollers.Activity, now)
	if warn := c.noWorker(*pollers); warn != "" {
		fmt.Fprintf(w, "WARNING: %s\n", warn)
	}
	return nil
}

// writeDep writes one object of a dependency chain, indented by depth.
func writeDep(tw io.Writer, d inspect.Dep) {
	indent := strings.Repeat("  ", d.Depth)
	if d.Missing {
		fmt.Fprintf(tw, "%s%s %d\tvia %s\tmissing\tdoes not exist\n", indent, d.Model, d.ID, d.Via)
		return
	}
	fmt.Fprintf(tw, "%s%s %d\tvia %s\t%s\t%s\n", indent, d.Model, d.ID, d.Via, d.State, oneLine(d.Status))
}

// writePollers writes the pollers of one task type.
func writePollers(w io.Writer, kind string, ps []*taskqueuepb.PollerInfo, now time.Time) {
	if len(ps) == 0 {
		fmt.Fprintf(w, "  %s tasks: no poller\n", kind)
		return
	}
	fmt.Fprintf(w, "  %s tasks: %d poller(s)\n", kind, len(ps))
	for _, p := range ps {
		seen := "?"
		if t := p.GetLastAccessTime(); t != nil && t.IsValid() {
			seen = now.Sub(t.AsTime()).Round(time.Second).String() + " ago"
		}
		fmt.Fprintf(w, "    %s (last poll %s)\n", p.GetIdentity(), seen)
	}
}

// nextRetry says when the pending activity's next attempt is due.
func nextRetry(wf inspect.Workflow, now time.Time) string {
	if wf.NextRetry == nil {
		return ", running"
	}
	in := wf.NextRetry.Sub(now).Round(time.Second)
	if in < 0 {
		in = 0
	}
	return fmt.Sprintf(", next retry in %s (%s)", in, wf.NextRetry.UTC().Format(time.RFC3339))
}

// workflowLine is the workflow's ID and status.
func workflowLine(wf inspect.Workflow) string {
	s := wf.ID
	switch {
	case !wf.Known:
		s += " (status unknown"
		if wf.Problem != "" {
			s += ": " + wf.Problem
		}
		return s + ")"
	case wf.Status == "":
		s += " (never ran, or no longer kept)"
	default:
		s += " (" + wf.Status
		if wf.Live != nil {
			s += ", " + string(wf.Live.State)
			if wf.Live.Operation != "" {
				s += " " + wf.Live.Operation
			}
		}
		s += ")"
	}
	if wf.Problem != "" {
		s += "; " + wf.Problem
	}
	return s
}

// stamp formats a time, "-" for none.
func stamp(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
