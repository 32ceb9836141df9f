package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tsync/tsync/internal/devstack"
	"github.com/tsync/tsync/models"
)

// demoOptions are the flags of the demo command.
type demoOptions struct {
	dev     devFlags
	sites   int
	timeout time.Duration
	stay    bool
	// noSeed leaves empty tables empty (dev up).
	noSeed bool
}

func (c *CLI) demoCommand() *cobra.Command {
	var opts demoOptions
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the demo synchronizer until every demo object is in sync",
		Long: `Run the demo end to end: make sure PostgreSQL and Redis are up (starting them
on a development machine where that is possible), start a Temporal dev server
with its Web UI (or reuse the server listening at temporal.host_port), seed the
demo objects when the demo's tables are empty, run a worker and a starter in
this process, and wait until every demo object is in sync (backend code 1,
enacted = updated). Then print where the backend tree and the Web UI are.

Exits 0 once all objects are in sync (with --stay, keeps the worker and the
starter running until SIGINT), and 1 with the objects not in sync when
--timeout passes first.`,
		Args:        cobra.NoArgs,
		Annotations: map[string]string{"quiet": "true"},
		RunE: func(cmd *cobra.Command, _ []string) error {
			if opts.sites < 1 {
				return fmt.Errorf("--%s must be at least 1, got %d", c.seedUnit(), opts.sites)
			}
			if opts.timeout <= 0 {
				return fmt.Errorf("--timeout must be positive, got %s", opts.timeout)
			}
			return c.runDemo(cmd.Context(), opts)
		},
	}
	opts.dev.register(cmd.Flags())
	cmd.Flags().IntVar(&opts.sites, c.seedUnit(), 2, "number of "+c.seedUnit()+" to seed when the tables are empty"+c.seedHelp())
	cmd.Flags().DurationVar(&opts.timeout, "timeout", 2*time.Minute, "how long to wait for every object to be in sync")
	cmd.Flags().BoolVar(&opts.stay, "stay", false, "keep the worker and the starter running after all objects are in sync, until SIGINT")
	return cmd
}

func (c *CLI) runDemo(ctx context.Context, opts demoOptions) error {
	begin := time.Now()
	if c.cfg.ObserverDisabled {
		return fmt.Errorf("demo: observer_disabled is set, so nothing would be synced (unset it or TSYNC_OBSERVER_DISABLED)")
	}
	services := devstack.Services{Notify: func(line string) { c.Printf("Services: %s", line) }}
	if err := services.Ensure(ctx, c.cfg); err != nil {
		return err
	}
	c.Printf("Services: PostgreSQL and Redis are up")
	tres, err := c.startTemporal(ctx, opts.dev)
	if err != nil {
		return err
	}
	a, err := c.OpenApp(ctx)
	if err != nil {
		return err
	}
	defer a.Close()

	objs, err := listObjects(ctx, a.Store)
	if err != nil {
		return err
	}
	if len(objs) == 0 && !opts.noSeed && c.def.Seed != nil {
		n, err := c.def.Seed(ctx, a.Store, opts.sites)
		if err != nil {
			return err
		}
		c.Printf("Seeded %d demo objects (%d %s) into schema %s", n, opts.sites, c.seedUnit(), a.Store.Schema())
		if objs, err = listObjects(ctx, a.Store); err != nil {
			return err
		}
	} else if !opts.noSeed {
		c.Printf("Found %d demo objects in schema %s; not seeding", len(objs), a.Store.Schema())
	}
	before := count(objs)

	// The worker and the starter run until the demo is done.
	runCtx, stopRun := context.WithCancel(ctx)
	failed := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := a.Run(runCtx); err != nil && runCtx.Err() == nil {
			failed <- err
		}
	}()
	defer func() {
		stopRun()
		<-done
	}()
	c.Printf("Syncing: a worker and a starter on task queue %s (namespace %s); waiting up to %s",
		a.Config.Temporal.TaskQueue, a.Config.Temporal.Namespace, opts.timeout)
	if a.Config.ObserverEnableWatchers {
		c.Printf("Watchers: a dispatcher on stream %s (group %s)", a.Stream(), a.Config.ObserverName)
	}

	final, err := c.waitInSync(ctx, a.Store, opts.timeout, failed)
	if err != nil {
		return err
	}
	c.printSummary(final, before, time.Since(begin), tres.Status, opts)
	if !opts.stay {
		return nil
	}
	c.Printf("")
	c.Printf("Staying up: the worker and the starter keep running (%s, in another shell); press Ctrl-C to stop.", c.seedHint())
	last := final
	ticker := time.NewTicker(time.Second)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			c.Printf("Stopping.")
			return nil
		case err := <-failed:
			return err
		case <-ticker.C:
		}
		objs, err := listObjects(ctx, a.Store)
		if err != nil {
			if ctx.Err() != nil {
				continue
			}
			return err
		}
		if t := count(objs); t != last {
			c.Printf("[%6.1fs] %s", time.Since(begin).Seconds(), t)
			last = t
		}
	}
}

// maxErrorLines bounds the new errors waitInSync prints per poll.
const maxErrorLines = 5

// waitInSync polls the store until every object is in sync, printing
// progress and each new error, and returns the final tally. On timeout it
// prints the objects not in sync and fails.
func (c *CLI) waitInSync(ctx context.Context, store *models.Store, timeout time.Duration, failed <-chan error) (tally, error) {
	begin := time.Now()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	ticker := time.NewTicker(250 * time.Millisecond)
	defer ticker.Stop()
	last := tally{total: -1}
	seenErrors := map[string]bool{}
	var objs []ObjectState
	for {
		var err error
		if objs, err = listObjects(ctx, store); err != nil {
			if ctx.Err() != nil {
				return tally{}, fmt.Errorf("demo interrupted")
			}
			return tally{}, err
		}
		t := count(objs)
		if t != last {
			c.Printf("[%6.1fs] %s", time.Since(begin).Seconds(), t)
			last = t
		}
		shown, more := 0, 0
		for _, o := range objs {
			if key := fmt.Sprintf("%s/%d/%s", o.Model, o.ID, o.Status); o.InError() && !seenErrors[key] {
				seenErrors[key] = true
				if shown == maxErrorLines {
					more++
					continue
				}
				shown++
				c.Printf("          %s %d in error: %s", o.Model, o.ID, oneLine(o.Status))
			}
		}
		if more > 0 {
			c.Printf("          ... and %d more in error (`%s status` lists them all)", more, c.def.Name)
		}
		if t.total > 0 && t.inSync == t.total {
			return t, nil
		}
		select {
		case <-ctx.Done():
			return t, fmt.Errorf("demo interrupted: %s", t)
		case err := <-failed:
			return t, err
		case <-deadline.C:
			var behind []ObjectState
			for _, o := range objs {
				if !o.InSync() {
					behind = append(behind, o)
				}
			}
			c.Printf("")
			c.Printf("Timed out after %s; %d of %d objects are not in sync:", timeout, len(behind), t.total)
			_ = printTable(c.stdout, behind)
			return t, fmt.Errorf("demo: %d of %d objects not in sync after %s (see `%s status`; rerun with --log-level info for the worker's log)",
				len(behind), t.total, timeout, c.def.Name)
		case <-ticker.C:
		}
	}
}

// printSummary says what the demo did and where to look.
func (c *CLI) printSummary(final, before tally, wall time.Duration, st devstack.Status, opts demoOptions) {
	synced := final.inSync - before.inSync
	if wall < 10*time.Second {
		wall = wall.Round(10 * time.Millisecond)
	} else {
		wall = wall.Round(100 * time.Millisecond)
	}
	c.Printf("")
	noun := "demo objects"
	if opts.noSeed {
		noun = "objects" // dev up: whatever the tables hold
	}
	if synced == 0 {
		c.Printf("All %d %s in sync (they were already); wall time %s.", final.total, noun, wall)
	} else {
		c.Printf("All %d %s in sync (%d synced by this run); wall time %s.", final.total, noun, synced, wall)
	}
	if c.def.Summary != nil {
		c.def.Summary(c)
	}
	c.Printf("%s", c.uiLine(st))
	bin := c.temporalBinHint(opts.dev)
	query := fmt.Sprintf("'TaskQueue=%q'", c.cfg.Temporal.TaskQueue)
	ns := ""
	if c.cfg.Temporal.Namespace != "default" {
		ns = " --namespace " + c.cfg.Temporal.Namespace
	}
	c.Printf("Workflows: %s workflow list --address %s%s --query %s", bin, c.cfg.Temporal.HostPort, ns, query)
	c.Printf("Objects:   %s status", c.selfHint())
}

// temporalBinHint is how to run the temporal CLI from the working
// directory.
func (c *CLI) temporalBinHint(f devFlags) string {
	bin, err := devstack.FindTemporalBin(f.temporalBin)
	if err != nil {
		return "temporal"
	}
	return relHint(bin)
}

// selfHint is how to run this binary from the working directory (its
// name, for one `go run` built in a temporary directory).
func (c *CLI) selfHint() string {
	exe, err := os.Executable()
	if err != nil || isGoRunBinary(exe) {
		return c.def.Name
	}
	return relHint(exe)
}

// isGoRunBinary tells whether exe was built by `go run` (or `go test`): it
// is in a go-build temporary directory, ".../go-build123/b001/exe/tsync".
// A binary of a checkout that happens to be under /tmp is not.
func isGoRunBinary(exe string) bool {
	return goRunDir.MatchString(filepath.ToSlash(filepath.Dir(exe)))
}

var goRunDir = regexp.MustCompile(`/go-build[0-9]+/b[0-9]+(/exe)?$`)

// relHint shortens path to one relative to the working directory, when it
// is below it.
func relHint(path string) string {
	wd, err := os.Getwd()
	if err != nil {
		return path
	}
	rel, err := filepath.Rel(wd, path)
	if err != nil || strings.HasPrefix(rel, "..") {
		return path
	}
	if !strings.Contains(rel, string(filepath.Separator)) {
		return "./" + rel
	}
	return rel
}
