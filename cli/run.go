package cli

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/tsync/tsync/app"
	"github.com/tsync/tsync/models"
)

// runApp is the RunE of a command that opens the synchronizer's app and
// runs one of its processes (worker, starter, dispatcher) until SIGINT or
// SIGTERM, or until the command's context is done: then the process shuts
// down gracefully (readiness fails at once; the worker stops polling and
// lets its running steps finish for up to shutdown_timeout) and the
// command succeeds. A second signal kills the process at once.
func (c *CLI) runApp(run func(*app.App, context.Context) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, _ []string) error {
		ctx, stop := c.untilSignal(cmd.Context())
		defer stop()
		a, err := c.OpenApp(ctx)
		if err != nil {
			if ctx.Err() != nil && cmd.Context().Err() == nil {
				// Told to stop while waiting for a service.
				return nil
			}
			return err
		}
		defer a.Close()
		return run(a, ctx)
	}
}

// untilSignal returns a context of parent that is done on the first
// SIGINT or SIGTERM, which it logs; from then on, the signals have their
// default effect again (unless the synchronizer's main catches them too),
// so that a second one kills the process. Call stop when done with it.
func (c *CLI) untilSignal(parent context.Context) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancel(parent)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		defer close(done)
		select {
		case s := <-sigs:
			signal.Stop(sigs)
			c.log.Info("shutting down: readiness fails, no new work is taken, work under way may finish",
				"signal", s.String(), "shutdown_timeout", c.cfg.ShutdownTimeout)
			cancel()
		case <-ctx.Done():
			signal.Stop(sigs)
			if parent.Err() != nil {
				// The synchronizer's main caught the signal.
				c.log.Info("shutting down: readiness fails, no new work is taken, work under way may finish",
					"shutdown_timeout", c.cfg.ShutdownTimeout)
			}
		}
	}()
	return ctx, func() {
		cancel()
		<-done
	}
}

func (c *CLI) workerCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "worker",
		Short: "Run the synchronizer's worker until SIGINT/SIGTERM",
		Long: `Run the synchronizer's worker: it runs the sync workflows and the steps
(activities) on the configured task queue until SIGINT or SIGTERM. Then it
stops polling, lets the running steps finish for up to shutdown_timeout
(cancelling those still running: they run again on another worker) and exits
0; a second signal kills it at once. Run more workers to scale out; run a
starter too, or nothing gets started. With metrics_address set it serves
/metrics, /healthz and /readyz there; with ui_address set, the object view
(see the ui command).`,
		Args: cobra.NoArgs,
		RunE: c.runApp(c.withUI((*app.App).RunWorker)),
	}
}

func (c *CLI) starterCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "starter",
		Short: "Run the synchronizer's starter until SIGINT/SIGTERM",
		Long: `Run the synchronizer's starter: it finds pending objects every loop
interval (and at once on every change the model store announces) and starts
one workflow per object, until SIGINT or SIGTERM.`,
		Args: cobra.NoArgs,
		RunE: c.runApp((*app.App).RunStarter),
	}
}

func (c *CLI) runCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "run",
		Short: "Run the worker, the starter and (with watchers) the dispatcher in one process until SIGINT/SIGTERM",
		Long: `Run the synchronizer's worker and starter, and its watcher dispatcher when
observer_enable_watchers is set, in this process until SIGINT or SIGTERM: a
small deployment in one process. Larger ones run them as separate processes
(worker, starter, dispatcher), with as many workers as needed. With
ui_address set it serves the object view there (see the ui command).`,
		Args: cobra.NoArgs,
		RunE: c.runApp(c.withUI((*app.App).Run)),
	}
}

func (c *CLI) migrateCommand() *cobra.Command {
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Create or upgrade the synchronizer's tables in the configured schema",
		Long: `Create or upgrade the synchronizer's tables in the configured schema: the
schema, each model's table, columns added to a model, the indexes, and the
triggers through which tsync sees every writer's changes. A table that
drifted from its model (a changed type, a column no longer in the struct, a
renamed column or table) is not touched: migrate stops with an error naming
each difference and the SQL to run. With --dry-run it prints the DDL it would
run and changes nothing (for operators who run their own migrations, with
database_auto_migrate off).`,
		Args:        cobra.NoArgs,
		Annotations: map[string]string{"quiet": "true"},
		RunE: func(cmd *cobra.Command, _ []string) error {
			store, closeStore, err := c.openStore(cmd.Context(), false)
			if err != nil {
				return err
			}
			defer closeStore()
			if dryRun {
				return c.printPlan(cmd.Context(), store)
			}
			missing, err := missingTables(cmd.Context(), store)
			if err != nil {
				return err
			}
			if err := store.Migrate(cmd.Context()); err != nil {
				return err
			}
			var tables []string
			for _, name := range store.Graph().Order() {
				m, _ := store.Graph().Model(name)
				tables = append(tables, m.Table)
			}
			if len(missing) > 0 {
				c.Printf("schema %s: created tables %s", store.Schema(), strings.Join(missing, ", "))
			}
			c.Printf("schema %s is up to date: tables %s", store.Schema(), strings.Join(tables, ", "))
			return nil
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the DDL migrate would run, and change nothing")
	return cmd
}

// printPlan prints the DDL of store's migration, each statement ending
// with ";", and fails on drift.
func (c *CLI) printPlan(ctx context.Context, store *models.Store) error {
	plan, err := store.Plan(ctx)
	if err != nil {
		return err
	}
	if err := plan.Err(); err != nil {
		return err
	}
	if len(plan.Statements) == 0 {
		c.Printf("-- schema %s is up to date: nothing to run", store.Schema())
		return nil
	}
	c.Printf("-- schema %s: %d statements to run", store.Schema(), len(plan.Statements))
	for _, stmt := range plan.Statements {
		c.Printf("%s;", stmt)
	}
	return nil
}

func (c *CLI) seedCommand() *cobra.Command {
	var n int
	unit := c.seedUnit()
	cmd := &cobra.Command{
		Use:   "seed",
		Short: "Insert sample objects" + c.seedHelp(),
		Long: `Insert sample objects: --` + unit + ` of them` + c.seedHelp() + `. Running it again
inserts more. A running starter picks them up at once.`,
		Args:        cobra.NoArgs,
		Annotations: map[string]string{"quiet": "true"},
		RunE: func(cmd *cobra.Command, _ []string) error {
			if n < 1 {
				return fmt.Errorf("--%s must be at least 1, got %d", unit, n)
			}
			store, closeStore, err := c.openStore(cmd.Context(), true)
			if err != nil {
				return err
			}
			defer closeStore()
			objs, err := c.def.Seed(cmd.Context(), store, n)
			if err != nil {
				return err
			}
			c.Printf("seeded %d objects (%d %s) into schema %s", objs, n, unit, store.Schema())
			return nil
		},
	}
	cmd.Flags().IntVar(&n, unit, 2, "number of "+unit+" to insert")
	return cmd
}

// seedUnit names what Definition.Seed counts: SeedUnit, or "sets".
func (c *CLI) seedUnit() string {
	if c.def.SeedUnit != "" {
		return c.def.SeedUnit
	}
	return "sets"
}

// seedHelp is " (SeedHelp)", or "".
func (c *CLI) seedHelp() string {
	if c.def.SeedHelp == "" {
		return ""
	}
	return " (" + c.def.SeedHelp + ")"
}

// seedHint suggests how to get objects: the seed and demo commands, when
// the synchronizer has them.
func (c *CLI) seedHint() string {
	if c.def.Seed == nil {
		return "insert some with your own code, and run a worker and a starter"
	}
	return "insert some with `" + c.def.Name + " seed`, or run `" + c.def.Name + " demo`"
}
