package main

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tsync/tsync/cli"
	"github.com/tsync/tsync/demo"
	"github.com/tsync/tsync/generate"
)

// newCommand is `tsync new`: it scaffolds a synchronizer.
func newCommand(c *cli.CLI) *cobra.Command {
	var opts generate.Options
	cmd := &cobra.Command{
		Use:   "new workbased|watcher NAME",
		Short: "Scaffold a synchronizer: models, steps or watchers, tests, a main, a Makefile and a Dockerfile",
		Long: `Scaffold a synchronizer package NAME in --dir: its models (--model, default one
named after NAME), a step each (workbased) or a watcher each (watcher), its own
config section (config.go: the section NAME of config.yaml), a Seed, tests
written with tsynctest, a main under cmd/NAME, a config.yaml, a Makefile
(tools, test, build, run, seed, image) and a Dockerfile. It builds and passes
its tests as generated: cd NAME && go mod tidy && make test
Outside a Go module, it writes a go.mod (module --module, default NAME) whose
replace directive points at --tsync-path: by default the tsync checkout this
binary was built from (none for a binary built elsewhere: then tsync must be
published, or --tsync-path given).`,
		Args:        cobra.ExactArgs(2),
		Annotations: map[string]string{"quiet": "true", "noconfig": "true"},
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Kind, opts.Name = args[0], args[1]
			files, err := generate.Generate(opts)
			if err != nil {
				return err
			}
			for _, f := range files {
				c.Printf("wrote %s", f)
			}
			if opts.TsyncPath == "" && slices.Contains(files, filepath.Join(opts.Dir, opts.Name, "go.mod")) {
				c.Printf("note: no --tsync-path: go mod tidy fetches %s, which must be published", generate.TsyncModule)
			}
			c.Printf("next: cd %s && go mod tidy && make test", filepath.Join(opts.Dir, opts.Name))
			return nil
		},
	}
	cmd.Flags().StringVar(&opts.Dir, "dir", ".", "directory to create the synchronizer in")
	cmd.Flags().StringVar(&opts.Module, "module", "", "module path of a new go.mod (default: NAME)")
	cmd.Flags().StringVar(&opts.TsyncPath, "tsync-path", generate.Checkout(), "local tsync checkout for a replace directive in a new go.mod (\"\": none)")
	cmd.Flags().StringSliceVar(&opts.Models, "model", nil, "model names, Go types (repeat or comma-separate; default: one named after NAME)")
	return cmd
}

// summary says, at the end of `tsync demo`, where the demo's backend tree
// is, and where the watcher logs.
func summary(c *cli.CLI) {
	cfg := c.Config()
	dir := cfg.DemoDir
	abs, _ := filepath.Abs(dir)
	files, examples := backendFiles(dir)
	where := dir
	if abs != "" && abs != dir {
		where = fmt.Sprintf("%s (%s)", dir, abs)
	}
	if files == 0 {
		c.Printf("Backend tree: %s has no files: it was removed after the objects were synced (the database still says they are in sync).", where)
	} else {
		c.Printf("Backend tree: %s, %d files, e.g.", where, files)
		for _, p := range examples {
			c.Printf("  %s", p)
		}
	}
	if cfg.ObserverEnableWatchers {
		c.Printf("Watchers: network CIDR changes are logged to %s", filepath.Join(dir, demo.WatcherLog))
	}
}

// backendFiles counts the files under dir and picks one example path of
// each kind (ids replaced by *), shallowest first.
func backendFiles(dir string) (int, []string) {
	n := 0
	kinds := map[string]string{}
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(path, ".tmp") {
			return nil
		}
		n++
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return nil
		}
		parts := strings.Split(filepath.ToSlash(rel), "/")
		for i, p := range parts {
			if strings.Trim(strings.TrimSuffix(p, filepath.Ext(p)), "0123456789") == "" {
				parts[i] = "*" + filepath.Ext(p)
			}
		}
		kind := strings.Join(parts, "/")
		if _, ok := kinds[kind]; !ok {
			kinds[kind] = path
		}
		return nil
	})
	var examples []string
	for _, p := range kinds {
		examples = append(examples, p)
	}
	sort.Slice(examples, func(i, j int) bool {
		di, dj := strings.Count(examples[i], string(filepath.Separator)), strings.Count(examples[j], string(filepath.Separator))
		if di != dj {
			return di < dj
		}
		return examples[i] < examples[j]
	})
	if len(examples) > 6 {
		examples = examples[:6]
	}
	return n, examples
}
