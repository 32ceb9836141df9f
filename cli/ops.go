package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/converter"

	"github.com/tsync/tsync/app"
	"github.com/tsync/tsync/internal/workflows"
	"github.com/tsync/tsync/models"
)

// addOutputFlag adds -o table|json.
func addOutputFlag(cmd *cobra.Command, out *string) {
	cmd.Flags().StringVarP(out, "output", "o", "table", "output format: table or json")
}

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
			c.Printf("%s", count(objs).String())
		}
		return nil
	}
	return fmt.Errorf("--output: %q is not one of table, json", format)
}

// filterObjects keeps the objects of model (and id), when given.
func filterObjects(objs []ObjectState, args []string) ([]ObjectState, error) {
	if len(args) == 0 {
		return objs, nil
	}
	var id int64
	if len(args) == 2 {
		var err error
		if id, err = strconv.ParseInt(args[1], 10, 64); err != nil || id <= 0 {
			return nil, fmt.Errorf("id %q is not a positive integer", args[1])
		}
	}
	var out []ObjectState
	for _, o := range objs {
		if o.Model == args[0] && (id == 0 || o.ID == id) {
			out = append(out, o)
		}
	}
	return out, nil
}

// addWorkflows fills in the running workflow of each object, from a
// visibility query; it says so and goes on when Temporal cannot answer.
func (c *CLI) addWorkflows(ctx context.Context, objs []ObjectState) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cl, err := app.DialTemporal(ctx, c.cfg, c.log, app.WithClientOptions(c.def.ClientOptions))
	if err != nil {
		c.log.Warn("running workflows not shown: Temporal is unreachable", "host_port", c.cfg.Temporal.HostPort)
		c.log.Debug("dial temporal", "error", err)
		return
	}
	defer cl.Close()
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

func (c *CLI) statusCommand() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "status [MODEL [ID]]",
		Short: "Show the sync state of every object, of a model's, or of one",
		Long: `Show objects with their model, id, backend code (0 pending, 1 OK, 2 error),
whether the last successful sync saw their current content (enacted =
updated), their backend status, and the state of their running workflow (from
Temporal, when it answers); then a summary line. -o json prints every field,
enacted and updated included.`,
		Args:        cobra.MaximumNArgs(2),
		Annotations: map[string]string{"quiet": "true"},
		RunE: func(cmd *cobra.Command, args []string) error {
			store, closeStore, err := c.openStore(cmd.Context(), false)
			if err != nil {
				return err
			}
			defer closeStore()
			if len(args) > 0 {
				if _, ok := store.Graph().Model(args[0]); !ok {
					return fmt.Errorf("unknown model %q (models: %v)", args[0], store.Graph().Order())
				}
			}
			objs, err := listObjects(cmd.Context(), store)
			if err != nil {
				return err
			}
			if objs, err = filterObjects(objs, args); err != nil {
				return err
			}
			if len(args) == 2 && len(objs) == 0 {
				return fmt.Errorf("%s %s: %w", args[0], args[1], models.ErrNotFound)
			}
			c.addWorkflows(cmd.Context(), objs)
			if len(objs) == 0 && output == "table" {
				c.Printf("0 objects, 0 in sync, 0 pending, 0 in error in schema %s (%s)", store.Schema(), c.seedHint())
				return nil
			}
			return c.writeObjects(output, objs, true)
		},
	}
	addOutputFlag(cmd, &output)
	return cmd
}

func (c *CLI) errorsCommand() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:         "errors",
		Short:       "List every object in error (code 2) with its error",
		Args:        cobra.NoArgs,
		Annotations: map[string]string{"quiet": "true"},
		RunE: func(cmd *cobra.Command, _ []string) error {
			store, closeStore, err := c.openStore(cmd.Context(), false)
			if err != nil {
				return err
			}
			defer closeStore()
			objs, err := listObjects(cmd.Context(), store)
			if err != nil {
				return err
			}
			var bad []ObjectState
			for _, o := range objs {
				if o.InError() {
					bad = append(bad, o)
				}
			}
			if output == "table" {
				for _, o := range bad {
					c.Printf("%s %d: %s", o.Model, o.ID, o.Status)
				}
				c.Printf("%d objects in error", len(bad))
				return nil
			}
			return c.writeObjects(output, bad, false)
		},
	}
	addOutputFlag(cmd, &output)
	return cmd
}

// resyncDialWait is how long resync waits for an unreachable Temporal
// server before giving up with the dial's error.
const resyncDialWait = 15 * time.Second

func (c *CLI) resyncCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "resync MODEL ID",
		Short: "Force a sync of one object",
		Long: `Force a sync of one object: its updated column is bumped, so it is pending
again, and its workflow is started at once (a running one is left to finish,
and syncs it again).`,
		Args:        cobra.ExactArgs(2),
		Annotations: map[string]string{"quiet": "true"},
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseInt(args[1], 10, 64)
			if err != nil || id <= 0 {
				return fmt.Errorf("id %q is not a positive integer", args[1])
			}
			// A one-shot command: it waits for an unreachable Temporal
			// server (app.Open logs why) only so long.
			octx, cancel := context.WithTimeout(cmd.Context(), resyncDialWait)
			a, err := c.OpenApp(octx)
			cancel()
			if err != nil {
				return err
			}
			defer a.Close()
			ref := models.Ref{Model: args[0], ID: id}
			if !a.Synchronizes(ref.Model) {
				return fmt.Errorf("no step synchronizes model %q (models with steps: %v)", ref.Model, a.Synchronized())
			}
			if err := a.Store.Touch(cmd.Context(), ref.Model, ref.ID); err != nil {
				return err
			}
			if err := a.NewStarter().Start(cmd.Context(), ref, false); err != nil {
				return err
			}
			c.Printf("%s %d: pending again; workflow %s started", ref.Model, ref.ID, workflows.WorkflowID(c.cfg.ObserverName, ref))
			return nil
		},
	}
}

func (c *CLI) depsCommand() *cobra.Command {
	var format, output, depsFile string
	cmd := &cobra.Command{
		Use:   "deps",
		Short: "Write the model-deps file and the dependency graph (DOT, SVG or PNG)",
		Long: `Write the model-deps file (JSON: each model and the models it depends on) to
--deps-file, default observer_dependency_graph (skipped when both are empty):
workers refuse to start when the file disagrees with the code's links. Then
write the graph as Graphviz DOT to --output (default stdout), or render it
with graphviz's dot as --format svg or png (which need --output).`,
		Args:        cobra.NoArgs,
		Annotations: map[string]string{"quiet": "true"},
		RunE: func(cmd *cobra.Command, _ []string) error {
			g, err := app.Graph(c.cfg, c.def.Models, c.build())
			if err != nil {
				return err
			}
			if depsFile == "" {
				depsFile = c.cfg.ObserverDependencyGraph
			}
			if depsFile != "" {
				if err := os.MkdirAll(filepath.Dir(depsFile), 0o755); err != nil {
					return err
				}
				if err := os.WriteFile(depsFile, g.DepsFile(), 0o644); err != nil {
					return fmt.Errorf("deps file: %w", err)
				}
				c.log.Info("wrote model-deps file", "file", depsFile)
			}
			dot := []byte(g.DOT())
			switch format {
			case "dot":
				if output == "" || output == "-" {
					_, err := c.stdout.Write(dot)
					return err
				}
				return os.WriteFile(output, dot, 0o644)
			case "svg", "png":
				if output == "" || output == "-" {
					return fmt.Errorf("--format %s needs --output FILE", format)
				}
				bin, err := exec.LookPath("dot")
				if err != nil {
					return fmt.Errorf("--format %s needs graphviz's dot (apt-get install graphviz, or `make tools`): %w", format, err)
				}
				render := exec.CommandContext(cmd.Context(), bin, "-T"+format, "-o", output)
				render.Stdin = bytes.NewReader(dot)
				if out, err := render.CombinedOutput(); err != nil {
					return fmt.Errorf("dot: %v: %s", err, out)
				}
				c.Printf("wrote %s", output)
				return nil
			}
			return fmt.Errorf("--format: %q is not one of dot, svg, png", format)
		},
	}
	cmd.Flags().StringVar(&format, "format", "dot", "graph format: dot, svg or png")
	cmd.Flags().StringVar(&output, "output", "", "graph file (default: stdout, for dot)")
	cmd.Flags().StringVar(&depsFile, "deps-file", "", "model-deps file (default: observer_dependency_graph)")
	return cmd
}
