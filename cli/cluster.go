package cli

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tsync/tsync/internal/cluster"
	"github.com/tsync/tsync/internal/devstack"
)

// clusterStateDir holds the cluster's configs, logs and pid files.
var clusterStateDir = filepath.Join(devStateDir, "cluster")

// The cluster's default ports: away from the dev server's 7233 and 8233.
const (
	defaultClusterPort   = 7333
	defaultClusterUIPort = 8333
)

// clusterFlags are the flags of `dev cluster start`.
type clusterFlags struct {
	binDir   string
	database string
	host     string
	port     int
	uiPort   int
	timeout  time.Duration
}

// clusterOptions are the options of the cluster `dev cluster start` starts.
func (c *CLI) clusterOptions(f clusterFlags) cluster.Options {
	return cluster.Options{
		BinDir:      f.binDir,
		Dir:         clusterStateDir,
		DatabaseURL: c.cfg.DatabaseURL,
		Database:    f.database,
		Host:        f.host,
		Port:        f.port,
		UIPort:      f.uiPort,
		Namespace:   c.cfg.Temporal.Namespace,
		Command:     c.def.Name,
		Detached:    true,
		Log:         c.log,
	}
}

// startCluster starts the cluster, or reuses the one running, and says
// where it is and how to point the synchronizer at it.
func (c *CLI) startCluster(ctx context.Context, f clusterFlags) error {
	st, err := cluster.ReadStatus(clusterStateDir)
	if err != nil {
		return err
	}
	switch {
	case st.AllRunning():
		if err := devstack.CheckHealth(ctx, st.State.HostPort, st.State.Namespace); err != nil {
			return fmt.Errorf("the Temporal cluster in %s runs but does not serve at %s: %v (its logs: %s/*.log; `%s dev cluster stop`, then start it again)",
				clusterStateDir, st.State.HostPort, err, clusterStateDir, c.def.Name)
		}
		c.Printf("Temporal cluster: already running (started by `%s dev cluster start` %s); reusing it", c.def.Name, st.State.Started.Local().Format(time.DateTime))
		c.printCluster(*st.State)
		return nil
	case st.Running() > 0:
		c.Printf("Temporal cluster: only %d of its %d processes run (%s down); stopping them to start it again",
			st.Running(), len(st.Processes), strings.Join(down(st), ", "))
		if err := cluster.StopDir(clusterStateDir); err != nil && !errors.Is(err, cluster.ErrNotRunning) {
			return err
		}
	}
	opts := c.clusterOptions(f)
	c.Printf("Temporal cluster: starting %s (databases %s and %s_visibility, state in %s)",
		cluster.ServerVersion, f.database, f.database, clusterStateDir)
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	begin := time.Now()
	cl, err := cluster.Start(ctx, opts)
	if err != nil {
		return err
	}
	st, err = cluster.ReadStatus(clusterStateDir)
	if err != nil {
		return err
	}
	ui := ""
	if cl.UIURL() != "" {
		ui = ", and the Web UI"
	}
	c.Printf("Temporal cluster: serving after %s: frontend, history, matching and worker as separate processes%s",
		time.Since(begin).Round(100*time.Millisecond), ui)
	c.printCluster(*st.State)
	return nil
}

// printCluster says where a cluster is and how to use it.
func (c *CLI) printCluster(s cluster.State) {
	c.Printf("Frontend: %s (namespace %s)", s.HostPort, s.Namespace)
	if s.UIURL != "" {
		c.Printf("Web UI:   %s", s.UIURL)
	} else {
		c.Printf("Web UI:   off")
	}
	c.Printf("Logs:     %s/ (history.log, matching.log, frontend.log, worker.log, ui.log)", clusterStateDir)
	use := "TSYNC_TEMPORAL_HOST_PORT=" + s.HostPort
	if c.cfg.Temporal.HostPort == s.HostPort {
		c.Printf("Use it:   %s (temporal.host_port already points at it)", use)
	} else {
		c.Printf("Use it:   export %s", use)
	}
	c.Printf("Stop it:  %s dev cluster stop (or make cluster-stop)", c.def.Name)
}

// down names the processes of a cluster that do not run.
func down(st cluster.Status) []string {
	var names []string
	for _, p := range st.Processes {
		if !p.Running() {
			names = append(names, p.Name)
		}
	}
	return names
}

func (c *CLI) devClusterCommand() *cobra.Command {
	var flags clusterFlags
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Manage a local production-shaped Temporal cluster (separate service processes on PostgreSQL)",
		Long: `Manage a local Temporal cluster shaped like a production one: the Temporal
server's frontend, history, matching and worker services as separate processes
persisting to the configured PostgreSQL (database_url's server; the databases
named by --database, and that name with _visibility appended, are created and
migrated when missing), with SQL visibility and the Web UI. Its binaries are built by ` + "`make cluster-tools`" + `.
Its configs, logs and pid files are in ` + clusterStateDir + `; it keeps running until
` + "`dev cluster stop`" + `. Its ports differ from the dev server's: the frontend at
--port (history, matching and worker on the next three, their membership
ports 100 above), the Web UI at --ui-port.`,
	}
	start := &cobra.Command{
		Use:         "start",
		Short:       "Start the cluster (or reuse the one running) and wait until its namespace serves",
		Args:        cobra.NoArgs,
		Annotations: map[string]string{"quiet": "true"},
		RunE: func(cmd *cobra.Command, _ []string) error {
			if flags.database == "" {
				return errors.New("--database must not be empty")
			}
			if flags.timeout <= 0 {
				return fmt.Errorf("--timeout must be positive, got %s", flags.timeout)
			}
			return c.startCluster(cmd.Context(), flags)
		},
	}
	fs := start.Flags()
	fs.StringVar(&flags.binDir, "bin-dir", "", "directory of temporal-server, temporal-sql-tool and temporal-ui-server (default: bin/ next to the go.mod above the working directory)")
	fs.StringVar(&flags.database, "database", "tsync_temporal", "the cluster's persistence database (visibility: DATABASE_visibility), on database_url's server")
	fs.StringVar(&flags.host, "host", "127.0.0.1", "IP address the cluster's processes listen on")
	fs.IntVar(&flags.port, "port", defaultClusterPort, "the frontend's gRPC port (the other services take the next three)")
	fs.IntVar(&flags.uiPort, "ui-port", defaultClusterUIPort, "the Web UI's port (-1: no Web UI)")
	fs.DurationVar(&flags.timeout, "timeout", 3*time.Minute, "how long to wait for the cluster to serve")

	stop := &cobra.Command{
		Use:         "stop",
		Short:       "Stop the cluster started by `dev cluster start` (by its pid files)",
		Args:        cobra.NoArgs,
		Annotations: map[string]string{"quiet": "true"},
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := cluster.ReadStatus(clusterStateDir)
			if err != nil {
				return err
			}
			err = cluster.StopDir(clusterStateDir)
			switch {
			case errors.Is(err, cluster.ErrNotRunning):
				c.Printf("Temporal cluster: none started by `%s dev cluster start` is running (%s)", c.def.Name, clusterStateDir)
				return nil
			case err != nil:
				return err
			}
			var pids []string
			for _, p := range st.Processes {
				if p.Running() {
					pids = append(pids, fmt.Sprintf("%s %d", p.Name, p.PID))
				}
			}
			c.Printf("Temporal cluster: stopped (%s); its databases stay", strings.Join(pids, ", "))
			return nil
		},
	}
	status := &cobra.Command{
		Use:         "status",
		Short:       "Show whether the cluster runs and serves, process by process",
		Args:        cobra.NoArgs,
		Annotations: map[string]string{"quiet": "true"},
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := cluster.ReadStatus(clusterStateDir)
			if err != nil {
				return err
			}
			if st.Running() == 0 {
				c.Printf("Temporal cluster: not running (start it with `%s dev cluster start` or `make cluster`)", c.def.Name)
				return errors.New("the Temporal cluster is not running")
			}
			var problem error
			switch {
			case st.State == nil || !st.AllRunning():
				c.Printf("Temporal cluster: only %d of its %d processes run (%s down); `%s dev cluster start` restarts it",
					st.Running(), len(st.Processes), strings.Join(down(st), ", "), c.def.Name)
				problem = errors.New("the Temporal cluster is not all up")
			default:
				if err := devstack.CheckHealth(cmd.Context(), st.State.HostPort, st.State.Namespace); err != nil {
					c.Printf("Temporal cluster: its processes run but it does not serve at %s: %v", st.State.HostPort, err)
					problem = errors.New("the Temporal cluster does not serve")
				} else {
					c.Printf("Temporal cluster: serving at %s (namespace %s; started %s)", st.State.HostPort, st.State.Namespace, st.State.Started.Local().Format(time.DateTime))
				}
			}
			for _, p := range st.Processes {
				state := "not running"
				if p.Running() {
					state = fmt.Sprintf("pid %d", p.PID)
				}
				c.Printf("  %-9s %-12s log %s", p.Name, state, p.Log)
			}
			if st.State != nil && problem == nil {
				if st.State.UIURL != "" {
					c.Printf("Web UI:   %s", st.State.UIURL)
				}
				c.Printf("Use it:   export TSYNC_TEMPORAL_HOST_PORT=%s", st.State.HostPort)
			}
			return problem
		},
	}
	cmd.AddCommand(start, stop, status)
	return cmd
}
