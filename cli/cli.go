// Package cli is the command line of a synchronizer: a synchronizer's main
// calls Main with its Definition and gets, for its own models, the commands
// tsync's own command has for its demo:
//
//	NAME worker | starter      run the worker / starter until SIGINT/SIGTERM
//	NAME run                   worker, starter (and dispatcher) in one process
//	NAME dispatcher            run the watcher dispatcher (observer_enable_watchers)
//	NAME migrate               create or upgrade the schema
//	NAME status [MODEL [ID]]   the sync state of objects (--state, --watch, --fail-on-error)
//	NAME errors [MODEL]        the objects in error (exit 1 when there are any)
//	NAME describe MODEL ID     one object: state, attempts, dependencies, workflow, workers
//	NAME resync MODEL ID       force a sync of one object
//	NAME deps                  the model-deps file and the dependency graph
//	NAME dev start|up|stop|status  a local Temporal dev server (with Web UI), or the whole stack
//	NAME health [--live]       ask this host's worker/starter/dispatcher whether it is ready (alive)
//	NAME seed | demo           sample objects, and a run until they are in sync (with Seed)
//	NAME version | completion  build versions; shell completion scripts
//
// Configuration comes from --config FILE, else ./config.yaml when it exists,
// else the Definition's DefaultConfig; TSYNC_* environment variables
// override it (see package config). The worker, starter, dispatcher and run
// commands stop gracefully on the first SIGINT or SIGTERM (readiness fails,
// running steps get shutdown_timeout to finish) and exit 0; a second signal
// kills, unless the main still catches it. A main (its context stops the
// other commands):
//
//	func main() {
//		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
//		context.AfterFunc(ctx, stop) // a second signal kills
//		def := cli.Definition{Name: "mysync", Models: mysync.Models(), Synchronizer: mysync.New}
//		code := cli.Main(ctx, def, os.Args[1:], os.Stdout, os.Stderr, os.Environ())
//		stop()
//		os.Exit(code)
//	}
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"

	"github.com/tsync/tsync"
	"github.com/tsync/tsync/config"
	"github.com/tsync/tsync/logging"
	"github.com/tsync/tsync/models"
)

// Definition is what a synchronizer's command line is made of.
type Definition struct {
	// Name is the command's name, as its help shows it ("mysync").
	Name string
	// Description is the help's first paragraph: what the synchronizer
	// keeps in step with what.
	Description string
	// Models are the synchronizer's models (required).
	Models *models.Registry
	// Synchronizer builds the synchronizer for cfg over the store of Models
	// (required); steps that read other objects keep the store. It must not
	// use the store before it returns (see app.Build). The synchronizer's
	// own Models may be left nil: they are Models.
	Synchronizer func(cfg config.Config, store *models.Store) (tsync.Synchronizer, error)
	// Config, when set, points to a struct of the synchronizer's own
	// settings, holding their defaults: a section of the same config file
	// and environment (config.Section), named ConfigSection. Main fills it
	// when it loads the config, before it calls Synchronizer, which reads
	// it through the pointer:
	//
	//	opts := mysync.Options{TargetDir: "var/mysync"}
	//	def := cli.Definition{Name: "mysync", Config: &opts,
	//		Synchronizer: func(config.Config, *models.Store) (tsync.Synchronizer, error) {
	//			return mysync.New(opts.TargetDir), nil
	//		}}
	//
	// reads "mysync:\n  target_dir: /srv/x" or TSYNC_MYSYNC_TARGET_DIR.
	// A load that fails leaves it as it was; a command annotated noconfig
	// leaves it alone. Unknown TSYNC_* variables, this section's too, are
	// logged as warnings with the closest variable (config.UnknownEnv).
	Config any
	// ConfigSection names Config's section; default Name, lower case, with
	// '-' and '.' as '_'.
	ConfigSection string
	// DefaultConfig is the YAML config used when there is neither --config
	// nor ./config.yaml; nil: one of them is required.
	DefaultConfig []byte
	// Seed, when set, adds the seed command, which calls it to insert n
	// (--count) sets of sample objects and returns how many objects it
	// inserted.
	Seed func(ctx context.Context, store *models.Store, n int) (int, error)
	// SeedUnit names what Seed's n counts, and so the flag of the seed and
	// demo commands ("sites"); default "sets".
	SeedUnit string
	// SeedHelp describes what one unit holds ("12 objects each").
	SeedHelp string
	// Summary, when set, prints lines of the synchronizer's own at the end
	// of the demo command: where to look in its backend, say.
	Summary func(c *CLI)
	// Commands, when set, returns commands of the synchronizer's own, added
	// to the standard ones (tsync's demo and new). Two annotations of a
	// command (cobra.Command.Annotations) change how it is set up:
	// noconfig="true" runs it without loading any config, so that a missing
	// or bad config file or TSYNC_* variable cannot stop it (c.Config() is
	// then the zero Config, and logging follows the flags alone: stderr);
	// quiet="true" logs at warn unless --log-level is given.
	Commands func(c *CLI) []*cobra.Command
	// ClientOptions, when set, changes the Temporal client's options before
	// every dial, after they are set from the config (app.WithClientOptions):
	// for what the config does not cover, such as a data converter or
	// interceptors.
	ClientOptions func(*client.Options)
}

// Main runs the command line args of def's synchronizer and returns the
// exit code. An error is printed as it is, without a usage dump: a config
// error is one line.
func Main(ctx context.Context, def Definition, args []string, stdout, stderr io.Writer, environ []string) int {
	if def.Synchronizer == nil {
		fmt.Fprintln(stderr, "cli: the Definition has no Synchronizer")
		return 1
	}
	if def.Models == nil {
		fmt.Fprintln(stderr, "cli: the Definition has no Models")
		return 1
	}
	if def.Name == "" {
		def.Name = "tsync"
	}
	c := &CLI{def: def, stdout: stdout, stderr: stderr, environ: environ}
	root := c.rootCommand()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	c.closeLog()
	var exit exitError
	if errors.As(err, &exit) {
		// The command said what it had to: only the exit code is left.
		return exit.code
	}
	if err != nil {
		fmt.Fprintln(stderr, strings.TrimSpace(err.Error()))
		return 1
	}
	return 0
}

// CLI is a running command line: its Definition, global flags, and the
// config and logger they load (set before any command runs).
type CLI struct {
	def            Definition
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

func (c *CLI) rootCommand() *cobra.Command {
	defaults := "the built-in default config"
	if c.def.DefaultConfig == nil {
		defaults = "nothing: one of them is required"
	}
	root := &cobra.Command{
		Use:   c.def.Name,
		Short: "Run and operate the " + c.def.Name + " synchronizer",
		Long: strings.TrimSpace(c.description() + `

Configuration: --config FILE, else ./config.yaml when it exists, else ` + defaults + `.
TSYNC_* environment variables override any key, e.g.
TSYNC_TEMPORAL_HOST_PORT=127.0.0.1:7233 or TSYNC_LOOP_INTERVAL=250ms.` + c.sectionHelp()),
		SilenceUsage:      true,
		SilenceErrors:     true,
		PersistentPreRunE: c.setup,
		// A bare `tsync` shows the help.
		Run: func(cmd *cobra.Command, _ []string) { _ = cmd.Help() },
	}
	pf := root.PersistentFlags()
	pf.StringVar(&c.configFile, "config", "", "config file (default: ./config.yaml if it exists, else the built-in default)")
	pf.StringVar(&c.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	pf.StringVar(&c.logFormat, "log-format", "text", "log format: text or json")
	root.AddCommand(
		c.workerCommand(),
		c.starterCommand(),
		c.runCommand(),
		c.dispatcherCommand(),
		c.migrateCommand(),
		c.statusCommand(),
		c.errorsCommand(),
		c.resyncCommand(),
		c.depsCommand(),
		c.devCommand(),
		c.healthCommand(),
		c.describeCommand(),
		c.versionCommand(),
		c.uiCommand(),
	)
	if c.def.Seed != nil {
		root.AddCommand(c.seedCommand(), c.demoCommand())
	}
	if c.def.Commands != nil {
		root.AddCommand(c.def.Commands(c)...)
	}
	return root
}

// description is the Definition's, or a default one.
func (c *CLI) description() string {
	if c.def.Description != "" {
		return c.def.Description
	}
	return c.def.Name + ` keeps a backend in step with a data model in PostgreSQL; every
pending object's sync is a durable Temporal workflow (tsync).`
}

// setup loads the config and sets up logging, before any subcommand runs.
// A command annotated noconfig="true" loads no config: its logging is set up
// from the flags with the zero Config.
func (c *CLI) setup(cmd *cobra.Command, _ []string) error {
	if cmd.Name() == "help" || !cmd.Runnable() || cmd == cmd.Root() || isCompletion(cmd) {
		return nil
	}
	loaded := cmd.Annotations["noconfig"] != "true"
	if loaded {
		cfg, source, err := c.loadConfig()
		if err != nil {
			return err
		}
		c.cfg, c.cfgSource = cfg, source
	}
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
	if loaded {
		log.Debug("config loaded", "source", c.cfgSource, "config", c.cfg)
		for _, w := range config.UnknownEnv(c.environ, c.sections()...) {
			log.Warn(w)
		}
	}
	return nil
}

// loadConfig loads --config, else ./config.yaml, else the default config,
// with the environment's overrides.
func (c *CLI) loadConfig() (config.Config, string, error) {
	if c.configFile != "" {
		cfg, err := config.Load(c.configFile, c.environ, c.sections()...)
		return cfg, c.configFile, err
	}
	const local = "config.yaml"
	if _, err := os.Stat(local); err == nil {
		cfg, err := config.Load(local, c.environ, c.sections()...)
		return cfg, local, err
	} else if !errors.Is(err, fs.ErrNotExist) {
		return config.Config{}, "", fmt.Errorf("config: %v", err)
	}
	if c.def.DefaultConfig == nil {
		return config.Config{}, "", fmt.Errorf("config: no config file: pass --config FILE or create ./config.yaml")
	}
	cfg, err := config.Parse(c.def.DefaultConfig, c.environ, c.sections()...)
	return cfg, "the built-in default config", err
}

// sectionHelp says where the Definition's own keys go, if it has any.
func (c *CLI) sectionHelp() string {
	secs := c.sections()
	if len(secs) == 0 {
		return ""
	}
	name := secs[0].Name
	return "\n" + c.def.Name + "'s own keys are in the section " + name + ": of the same file, each\noverridden by TSYNC_" +
		strings.ToUpper(name) + "_<KEY>."
}

// sections is the Definition's own config section, if it has one.
func (c *CLI) sections() []config.Section {
	if c.def.Config == nil {
		return nil
	}
	name := c.def.ConfigSection
	if name == "" {
		name = strings.NewReplacer("-", "_", ".", "_").Replace(strings.ToLower(c.def.Name))
	}
	return []config.Section{{Name: name, Ptr: c.def.Config}}
}

// newLogger logs to stderr, or to observer_log_file when it is set, and
// also to observer_logstash_hostport when that is set.
func (c *CLI) newLogger(level string) (*slog.Logger, error) {
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

func (c *CLI) closeLog() {
	if c.logCloser != nil {
		c.logCloser.Close()
		c.logCloser = nil
	}
}

// Config is the loaded config.
func (c *CLI) Config() config.Config { return c.cfg }

// Log is the logger the global flags and the config set up.
func (c *CLI) Log() *slog.Logger { return c.log }

// Stdout is where the command's output goes.
func (c *CLI) Stdout() io.Writer { return c.stdout }

// Printf writes a line of the command's output.
func (c *CLI) Printf(format string, args ...any) {
	fmt.Fprintf(c.stdout, format+"\n", args...)
}
