package cli

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/tsync/tsync/app"
	"github.com/tsync/tsync/internal/workflows"
	"github.com/tsync/tsync/models"
)

// addOutputFlag adds -o table|json.
func addOutputFlag(cmd *cobra.Command, out *string) {
	cmd.Flags().StringVarP(out, "output", "o", "table", "output format: table or json")
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
			id, err := parseID(args[1])
			if err != nil {
				return err
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
			model, err := resolveModel(a.Store.Graph(), args[0])
			if err != nil {
				return err
			}
			ref := models.Ref{Model: model, ID: id}
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
			c.warnNoWorker(cmd.Context(), a.Client)
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
