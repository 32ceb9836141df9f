// Command tsync runs and operates the demo synchronizer that ships with
// tsync, and the local development stack it needs (package cli gives a
// synchronizer of your own the same commands):
//
//	tsync demo                 run the demo until every object is in sync
//	tsync worker | starter     run the demo's worker / starter until SIGINT
//	tsync dispatcher           run the demo's watcher dispatcher (observer_enable_watchers)
//	tsync migrate | seed       create the schema / insert demo objects
//	tsync status | errors      every demo object and its sync state / those in error
//	tsync resync | deps        force a sync / the model dependency graph
//	tsync describe MODEL ID    one object: state, retries, dependencies, workflow, pollers
//	tsync ui                   the object view, a read-only web page of the objects
//	tsync version | completion the versions built in / a shell completion script
//	tsync new                  scaffold a synchronizer of your own
//	tsync dev start|up|stop|status  a local Temporal dev server (with Web UI)
//	tsync dev cluster start|stop|status  a production-shaped Temporal cluster on PostgreSQL
//	tsync health [--live]      ask this host's worker/starter/dispatcher whether it is ready
//
// Configuration comes from --config FILE, else ./config.yaml when it exists,
// else the sample config built into the binary; TSYNC_* environment
// variables override it (see package config).
package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/tsync/tsync"
	"github.com/tsync/tsync/cli"
	"github.com/tsync/tsync/config"
	"github.com/tsync/tsync/demo"
	"github.com/tsync/tsync/models"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// The first signal stops gracefully; a second one kills at once.
		<-ctx.Done()
		stop()
	}()
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Environ())
	stop()
	os.Exit(code)
}

// run runs the tsync command line args and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, environ []string) int {
	return cli.Main(ctx, definition(), args, stdout, stderr, environ)
}

// definition is the demo synchronizer's command line, plus `tsync new`.
func definition() cli.Definition {
	return cli.Definition{
		Name: "tsync",
		Description: `tsync keeps a backend in step with a data model in PostgreSQL; every pending
object's sync is a durable Temporal workflow. This command runs the demo
synchronizer that ships with tsync (its backend is a directory tree, demo_dir),
and manages the local development stack it needs.`,
		Models: demo.Models(),
		Synchronizer: func(cfg config.Config, store *models.Store) (tsync.Synchronizer, error) {
			return demo.Synchronizer(&demo.Backend{Dir: cfg.DemoDir, Store: store}), nil
		},
		DefaultConfig: config.Sample,
		Seed:          demo.Seed,
		SeedUnit:      "sites",
		SeedHelp:      "each site with 2 networks, 2 slices, 6 instances and a service: 12 objects",
		Summary:       summary,
		Commands:      func(c *cli.CLI) []*cobra.Command { return []*cobra.Command{newCommand(c)} },
	}
}
