// Command tsync runs and operates the demo synchronizer that ships with
// tsync, and the local development stack it needs.
//
//	tsync demo                 run the demo until every object is in sync
//	tsync worker | starter     run the demo's worker / starter until SIGINT
//	tsync dispatcher           run the demo's watcher dispatcher (observer_enable_watchers)
//	tsync migrate | seed       create the schema / insert demo objects
//	tsync status               every demo object and its sync state
//	tsync dev start|stop|status  a local Temporal dev server (with Web UI)
//
// Configuration comes from --config FILE, else ./config.yaml when it exists,
// else the sample config built into the binary; TSYNC_* environment
// variables override it (see package config).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/tsync/tsync"
	"github.com/tsync/tsync/config"
	"github.com/tsync/tsync/logging"
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

// run runs the tsync command line args and returns the exit code. An error
// is printed as it is, without a usage dump: a config error is one line.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, environ []string) int {
	c := &cli{stdout: stdout, stderr: stderr, environ: environ}
	root := c.rootCommand()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	c.closeLog()
	if err != nil {
		fmt.Fprintln(stderr, strings.TrimSpace(err.Error()))
		return 1
	}
	return 0
}

// cli holds the global flags and what they load.
type cli struct {
	stdout, stderr io.Writer
	environ        []string

	configFile string
	logLevel   string
	logFormat  string

	cfg       config.Config
	cfgSource string
	log       *slog.Logger
	logCloser io.Closer
}

func (c *cli) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "tsync",
		Short: "Run and operate the tsync demo synchronizer and its local dev stack",
		Long: `tsync keeps a backend in step with a data model in PostgreSQL; every pending
object's sync is a durable Temporal workflow. This command runs the demo
synchronizer that ships with tsync (its backend is a directory tree, demo_dir),
and manages the local development stack it needs.

Configuration: --config FILE, else ./config.yaml when it exists, else the sample
config built into the binary. TSYNC_* environment variables override any key,
e.g. TSYNC_TEMPORAL_HOST_PORT=127.0.0.1:7233 or TSYNC_LOOP_INTERVAL=250ms.`,
		SilenceUsage:      true,
		SilenceErrors:     true,
		PersistentPreRunE: c.setup,
		// A bare `tsync` shows the help.
		Run: func(cmd *cobra.Command, _ []string) { _ = cmd.Help() },
	}
	root.CompletionOptions.DisableDefaultCmd = true
	pf := root.PersistentFlags()
	pf.StringVar(&c.configFile, "config", "", "config file (default: ./config.yaml if it exists, else the built-in sample config)")
	pf.StringVar(&c.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	pf.StringVar(&c.logFormat, "log-format", "text", "log format: text or json")
	root.AddCommand(
		c.workerCommand(),
		c.starterCommand(),
		c.dispatcherCommand(),
		c.migrateCommand(),
		c.seedCommand(),
		c.statusCommand(),
		c.errorsCommand(),
		c.resyncCommand(),
		c.depsCommand(),
		c.newCommand(),
		c.devCommand(),
		c.demoCommand(),
	)
	return root
}

// setup loads the config and sets up logging, before any subcommand runs.
func (c *cli) setup(cmd *cobra.Command, _ []string) error {
	if cmd.Name() == "help" || !cmd.Runnable() || cmd == cmd.Root() {
		return nil
	}
	cfg, source, err := c.loadConfig()
	if err != nil {
		return err
	}
	c.cfg, c.cfgSource = cfg, source
	level := c.logLevel
	if cmd.Annotations["quiet"] == "true" && !cmd.Flags().Changed("log-level") {
		// Commands whose output is for people log only what goes wrong.
		level = "warn"
	}
	log, err := c.newLogger(level)
	if err != nil {
		return err
	}
	c.log = log
	slog.SetDefault(log)
	log.Debug("config loaded", "source", source, "config", cfg)
	return nil
}

// loadConfig loads --config, else ./config.yaml, else the built-in sample,
// with the environment's overrides.
func (c *cli) loadConfig() (config.Config, string, error) {
	if c.configFile != "" {
		cfg, err := config.Load(c.configFile, c.environ)
		return cfg, c.configFile, err
	}
	const local = "config.yaml"
	if _, err := os.Stat(local); err == nil {
		cfg, err := config.Load(local, c.environ)
		return cfg, local, err
	} else if !errors.Is(err, fs.ErrNotExist) {
		return config.Config{}, "", fmt.Errorf("config: %v", err)
	}
	cfg, err := config.Parse(tsync.SampleConfig, c.environ)
	return cfg, "the built-in sample config", err
}

// newLogger logs to stderr, or to observer_log_file when it is set, and
// also to observer_logstash_hostport when that is set.
func (c *cli) newLogger(level string) (*slog.Logger, error) {
	lv, err := logging.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("--log-level: %q is not one of debug, info, warn, error", level)
	}
	if c.logFormat != "text" && c.logFormat != "json" {
		return nil, fmt.Errorf("--log-format: %q is not one of text, json", c.logFormat)
	}
	log, closer, err := logging.New(logging.Options{
		Level: lv, Format: c.logFormat, Stderr: c.stderr,
		File: c.cfg.ObserverLogFile, Logstash: c.cfg.ObserverLogstashHostport,
	})
	if err != nil {
		return nil, err
	}
	c.logCloser = closer
	return log, nil
}

func (c *cli) closeLog() {
	if c.logCloser != nil {
		c.logCloser.Close()
		c.logCloser = nil
	}
}

// printf writes a line of the command's output.
func (c *cli) printf(format string, args ...any) {
	fmt.Fprintf(c.stdout, format+"\n", args...)
}
