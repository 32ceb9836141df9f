package cli

import (
	"github.com/spf13/cobra"

	"github.com/tsync/tsync/app"
)

func (c *CLI) dispatcherCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "dispatcher",
		Short: "Run the synchronizer's watcher dispatcher until SIGINT/SIGTERM",
		Long: `Run the event-based path of the synchronizer (observer_enable_watchers
must be on): a relay that publishes every committed change of the model store
to the Redis stream "tsync:{<database_schema>}:changes", and a dispatcher that
reads the stream with consumer group <observer_name> and starts a watcher
workflow for every watcher and object each change affects (workers run them).
Run as many as you like; events of a dispatcher that dies are taken over by
the others. Malformed events go to the stream's ":dead-letter" stream.`,
		Args: cobra.NoArgs,
		RunE: c.runApp((*app.App).RunDispatcher),
	}
}
