package cli

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/tsync/tsync/internal/cluster"
	"github.com/tsync/tsync/internal/devstack"
)

// devFlags are the flags of the commands that start a dev server.
type devFlags struct {
	temporalBin string
	uiPort      int
}

func (f *devFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.temporalBin, "temporal-bin", "", "temporal CLI to run (default: bin/temporal next to the go.mod above the working directory, else temporal on PATH)")
	fs.IntVar(&f.uiPort, "ui-port", devstack.DefaultUIPort, "port of the Temporal Web UI")
}

// devStateDir holds the dev server's pid file, log and database.
const devStateDir = "var"

// temporal describes the dev server at the configured temporal.host_port.
func (c *CLI) temporal(f devFlags) devstack.Temporal {
	return devstack.Temporal{
		Bin:       f.temporalBin,
		HostPort:  c.cfg.Temporal.HostPort,
		Namespace: c.cfg.Temporal.Namespace,
		UIPort:    f.uiPort,
		Dir:       devStateDir,
		DBFile:    filepath.Join(devStateDir, "temporal.db"),
		LogLevel:  "warn",
	}
}

// startTemporal starts the dev server, or reuses the one listening, and
// says which.
func (c *CLI) startTemporal(ctx context.Context, f devFlags) (devstack.StartResult, error) {
	t := c.temporal(f)
	if f.temporalBin != "" && !devstack.Listening(t.HostPort) {
		bin, err := devstack.FindTemporalBin(f.temporalBin)
		if err != nil {
			return devstack.StartResult{}, err
		}
		t.Bin = bin
	}
	res, err := t.Start(ctx)
	if err != nil {
		return res, err
	}
	switch {
	case !res.Reused:
		c.Printf("Temporal: started a dev server at %s (pid %d, log %s, db %s)", t.HostPort, res.PID, res.Log, t.DBFile)
	case res.Owned():
		c.Printf("Temporal: a dev server is already running at %s (pid %d, started by "+c.def.Name+" dev); reusing it", t.HostPort, res.PID)
	default:
		c.Printf("Temporal: a server is already listening at %s; reusing it", t.HostPort)
	}
	return res, nil
}

// uiLine says where the Web UI of the server at st.HostPort is, or why
// none is shown: temporal.ui_url when set; else the dev server's or the
// cluster's when tsync started the one at that address; else it is unknown
// (a server tsync did not start may have its UI anywhere, or none: a guess
// would send the reader to another server's UI).
func (c *CLI) uiLine(st devstack.Status) string {
	ns := c.cfg.Temporal.Namespace
	if u := c.cfg.Temporal.UIURL; u != "" {
		return "Temporal Web UI: " + strings.TrimSuffix(u, "/") + "/namespaces/" + url.PathEscape(ns) + "/workflows"
	}
	if !st.Owned() {
		if cs, err := cluster.ReadStatus(clusterStateDir); err == nil && cs.State != nil && cs.Running() > 0 && cs.State.HostPort == st.HostPort {
			if cs.State.UIURL == "" {
				return "Temporal Web UI: off (the cluster of `" + c.def.Name + " dev cluster` runs without it)"
			}
			return "Temporal Web UI: " + cs.State.UIURL
		}
		return fmt.Sprintf("Temporal Web UI: unknown for the server at %s, which %s did not start (set temporal.ui_url to show it)",
			st.HostPort, c.def.Name)
	}
	switch {
	case st.UIURL == "":
		return "Temporal Web UI: off"
	case st.UIServed:
		return "Temporal Web UI: " + st.UIURL
	default:
		return "Temporal Web UI: not answering yet at " + st.UIURL
	}
}

func (c *CLI) devCommand() *cobra.Command {
	var flags devFlags
	dev := &cobra.Command{
		Use:   "dev",
		Short: "Manage a local Temporal dev server (with the Web UI)",
		Long: `Manage a local Temporal dev server: the temporal CLI's "server start-dev", with
the Web UI, its state in var/temporal.db, its log in var/temporal.log and its
pid in var/temporal.pid. A server already listening at temporal.host_port is
reused, never replaced.`,
	}
	flags.register(dev.PersistentFlags())

	start := &cobra.Command{
		Use:         "start",
		Short:       "Start the dev server (or reuse the one running) and wait until it serves",
		Args:        cobra.NoArgs,
		Annotations: map[string]string{"quiet": "true"},
		RunE: func(cmd *cobra.Command, _ []string) error {
			res, err := c.startTemporal(cmd.Context(), flags)
			if err != nil {
				return err
			}
			c.Printf("%s", c.uiLine(res.Status))
			return nil
		},
	}
	up := &cobra.Command{
		Use:   "up",
		Short: "Run the whole dev stack: the dev server, and a worker and a starter (and a dispatcher with watchers) until SIGINT",
		Long: `Run the local dev stack for the synchronizer: make sure PostgreSQL and
Redis are up, start the Temporal dev server with its Web UI (or reuse the one
running), then run a worker and a starter (and a dispatcher when
observer_enable_watchers is set) in this process until SIGINT, printing the
objects' tally as it changes. Nothing is seeded: add objects and watch them
sync.`,
		Args:        cobra.NoArgs,
		Annotations: map[string]string{"quiet": "true"},
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.runDemo(cmd.Context(), demoOptions{dev: flags, sites: 1, timeout: 24 * time.Hour, stay: true, noSeed: true})
		},
	}
	stop := &cobra.Command{
		Use:         "stop",
		Short:       "Stop the dev server started by `dev start` (by its pid file)",
		Args:        cobra.NoArgs,
		Annotations: map[string]string{"quiet": "true"},
		RunE: func(cmd *cobra.Command, _ []string) error {
			t := c.temporal(flags)
			srv, _ := t.Owned()
			err := t.Stop()
			switch {
			case err == nil:
				c.Printf("Temporal: stopped the dev server at %s (pid %d)", srv.HostPort, srv.PID)
			case errors.Is(err, devstack.ErrNotOwned):
				c.Printf("Temporal: %v", err)
				if devstack.Listening(t.HostPort) {
					c.Printf("Temporal: the server listening at %s was not started by `"+c.def.Name+" dev start`; left running", t.HostPort)
				}
			default:
				return err
			}
			return nil
		},
	}
	status := &cobra.Command{
		Use:         "status",
		Short:       "Show whether Temporal, PostgreSQL and Redis are up",
		Args:        cobra.NoArgs,
		Annotations: map[string]string{"quiet": "true"},
		RunE: func(cmd *cobra.Command, _ []string) error {
			st := c.temporal(flags).Status(cmd.Context())
			down := 0
			switch {
			case st.Healthy && st.Owned():
				c.Printf("Temporal: serving at %s (pid %d, started by "+c.def.Name+" dev)", st.HostPort, st.PID)
			case st.Healthy:
				c.Printf("Temporal: serving at %s (not started by "+c.def.Name+" dev)", st.HostPort)
			case st.Listening:
				c.Printf("Temporal: something listens at %s but does not pass a Temporal health check", st.HostPort)
				down++
			default:
				c.Printf("Temporal: not running at %s (start it with `"+c.def.Name+" dev start`)", st.HostPort)
				down++
			}
			if st.Healthy {
				c.Printf("%s", c.uiLine(st))
			}
			if err := (devstack.Services{NoStart: true}).Ensure(cmd.Context(), c.cfg); err != nil {
				c.Printf("Services: %v", err)
				down++
			} else {
				c.Printf("Services: PostgreSQL and Redis are up")
			}
			if down > 0 {
				return errors.New("the dev stack is not all up")
			}
			return nil
		},
	}
	dev.AddCommand(start, up, stop, status, c.devClusterCommand())
	return dev
}
