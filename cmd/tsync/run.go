package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tsync/tsync/app"
	"github.com/tsync/tsync/demo"
)

// runApp is the RunE of a command that opens the synchronizer's app and
// runs one of its processes (worker, starter, dispatcher) until SIGINT.
func (c *cli) runApp(run func(*app.App, context.Context) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, _ []string) error {
		a, err := c.openApp(cmd.Context())
		if err != nil {
			return err
		}
		defer a.Close()
		return run(a, cmd.Context())
	}
}

func (c *cli) workerCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "worker",
		Short: "Run the demo synchronizer's worker until SIGINT/SIGTERM",
		Long: `Run the demo synchronizer's worker: it runs the sync workflows and the steps
(activities) on the configured task queue until SIGINT or SIGTERM. Run more
workers to scale out; run a starter too, or nothing gets started.`,
		Args: cobra.NoArgs,
		RunE: c.runApp((*app.App).RunWorker),
	}
}

func (c *cli) starterCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "starter",
		Short: "Run the demo synchronizer's starter until SIGINT/SIGTERM",
		Long: `Run the demo synchronizer's starter: it finds pending objects every loop
interval (and at once on every change the model store announces) and starts
one workflow per object, until SIGINT or SIGTERM.`,
		Args: cobra.NoArgs,
		RunE: c.runApp((*app.App).RunStarter),
	}
}

func (c *cli) migrateCommand() *cobra.Command {
	return &cobra.Command{
		Use:         "migrate",
		Short:       "Create or upgrade the demo's tables in the configured schema",
		Args:        cobra.NoArgs,
		Annotations: map[string]string{"quiet": "true"},
		RunE: func(cmd *cobra.Command, _ []string) error {
			store, closeStore, err := c.openStore(cmd.Context(), true)
			if err != nil {
				return err
			}
			defer closeStore()
			var tables []string
			for _, name := range store.Graph().Order() {
				m, _ := store.Graph().Model(name)
				tables = append(tables, m.Table)
			}
			c.printf("schema %s is up to date: tables %s", store.Schema(), strings.Join(tables, ", "))
			return nil
		},
	}
}

func (c *cli) seedCommand() *cobra.Command {
	var sites int
	cmd := &cobra.Command{
		Use:   "seed",
		Short: "Insert demo objects (each site with 2 networks, 2 slices, 6 instances and a service)",
		Long: `Insert demo objects: each site gets two networks, two slices of three
instances each, and a service (synced by an Ansible playbook), 12 objects per
site. Running it again inserts more. A running starter picks them up at once.`,
		Args:        cobra.NoArgs,
		Annotations: map[string]string{"quiet": "true"},
		RunE: func(cmd *cobra.Command, _ []string) error {
			if sites < 1 {
				return fmt.Errorf("--sites must be at least 1, got %d", sites)
			}
			store, closeStore, err := c.openStore(cmd.Context(), true)
			if err != nil {
				return err
			}
			defer closeStore()
			n, err := demo.Seed(cmd.Context(), store, sites)
			if err != nil {
				return err
			}
			c.printf("seeded %d objects (%d sites) into schema %s", n, sites, store.Schema())
			return nil
		},
	}
	cmd.Flags().IntVar(&sites, "sites", 2, "number of sites to insert")
	return cmd
}
