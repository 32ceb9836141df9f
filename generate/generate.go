// Package generate scaffolds synchronizers: `tsync new workbased NAME`
// writes a package with models, a step each, its own config section, a
// Seed, a test written with tsynctest and a main that runs its worker and
// starter (the XOS gen_workbased.py), and `tsync new watcher NAME` the same
// with watchers (gen_watcher.py); both with a Makefile (tools, test, run)
// and a Dockerfile. What it writes builds and passes its own test as it is.
package generate

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"go/format"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"text/template"
	"unicode"
)

//go:embed templates
var templates embed.FS

// Kinds of synchronizer Generate writes.
const (
	Workbased = "workbased"
	Watcher   = "watcher"
)

// TsyncModule is the module path of tsync.
const TsyncModule = "github.com/tsync/tsync"

// Options say what to generate.
type Options struct {
	// Kind is Workbased or Watcher.
	Kind string
	// Name names the synchronizer: its package (lower case), directory and
	// observer_name. Letters, digits, '-' and '_', starting with a letter.
	Name string
	// Dir is where the synchronizer's directory is created ("" for ".").
	Dir string
	// Module is the module path of a new go.mod, written when Dir is not
	// inside a Go module ("" for Name).
	Module string
	// TsyncPath, when set, is a local copy of tsync that the new go.mod
	// points at with a replace directive (Checkout finds the one this
	// program was built from).
	TsyncPath string
	// Models names the models, Go types ("Site"; a lower-case first letter
	// is raised); none: one named after Name ("my-vpn": MyVpn).
	Models []string
}

// TemporalCLIVersion is the temporal CLI the generated Makefile's tools
// target installs: the one tsync's own Makefile installs.
const TemporalCLIVersion = "v1.5.1"

var (
	nameRE  = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]{0,40}$`)
	modelRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]{0,40}$`)
)

// data is what the templates see.
type data struct {
	Name       string // as given
	Package    string // Go package name, also its config section
	Model      string // the first model's name
	Models     []model
	ImportPath string // of the generated package
	Kind       string
	Temporal   string // TemporalCLIVersion
}

// model is one model of the generated synchronizer.
type model struct {
	Name  string // Go type and model name: "NetworkPort"
	Table string // its directory in the generated backend: "network_port"
}

// Generate writes the synchronizer and returns the paths it wrote. It never
// overwrites: an existing directory is an error.
func Generate(opts Options) ([]string, error) {
	if opts.Kind != Workbased && opts.Kind != Watcher {
		return nil, fmt.Errorf("generate: kind %q is not %s or %s", opts.Kind, Workbased, Watcher)
	}
	if !nameRE.MatchString(opts.Name) {
		return nil, fmt.Errorf("generate: name %q must match %s", opts.Name, nameRE)
	}
	if err := checkPackage(packageName(opts.Name)); err != nil {
		return nil, fmt.Errorf("generate: name %q: %w", opts.Name, err)
	}
	mods, err := modelsOf(opts)
	if err != nil {
		return nil, err
	}
	if opts.Dir == "" {
		opts.Dir = "."
	}
	root := filepath.Join(opts.Dir, opts.Name)
	if _, err := os.Stat(root); err == nil {
		return nil, fmt.Errorf("generate: %s exists already", root)
	}
	d := data{Name: opts.Name, Package: packageName(opts.Name), Models: mods, Model: mods[0].Name, Kind: opts.Kind, Temporal: TemporalCLIVersion}
	var written []string
	modRoot, modPath, err := findModule(opts.Dir)
	if err != nil {
		return nil, err
	}
	if modRoot == "" {
		modPath = opts.Module
		if modPath == "" {
			modPath = d.Package
		}
		d.ImportPath = modPath
		if err := os.MkdirAll(root, 0o755); err != nil {
			return nil, fmt.Errorf("generate: %w", err)
		}
		gomod := fmt.Sprintf("module %s\n\ngo 1.26\n\nrequire %s v0.0.0-00010101000000-000000000000\n", modPath, TsyncModule)
		if opts.TsyncPath != "" {
			abs, err := filepath.Abs(opts.TsyncPath)
			if err != nil {
				return nil, fmt.Errorf("generate: %w", err)
			}
			gomod += fmt.Sprintf("\nreplace %s => %s\n", TsyncModule, abs)
		}
		p := filepath.Join(root, "go.mod")
		if err := os.WriteFile(p, []byte(gomod), 0o644); err != nil {
			return nil, fmt.Errorf("generate: %w", err)
		}
		written = append(written, p)
	} else {
		absRoot, err := filepath.Abs(root)
		if err != nil {
			return nil, fmt.Errorf("generate: %w", err)
		}
		rel, err := filepath.Rel(modRoot, absRoot)
		if err != nil {
			return nil, fmt.Errorf("generate: %w", err)
		}
		d.ImportPath = path.Join(modPath, filepath.ToSlash(rel))
	}
	for _, base := range []string{path.Join("templates", "common"), path.Join("templates", opts.Kind)} {
		files, err := render(base, root, d)
		written = append(written, files...)
		if err != nil {
			return written, fmt.Errorf("generate: %w", err)
		}
	}
	return written, nil
}

// render writes the templates under base to root, and returns the paths
// it wrote.
func render(base, root string, d data) ([]string, error) {
	var written []string
	err := fs.WalkDir(templates, base, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		rel := strings.TrimSuffix(strings.TrimPrefix(p, base+"/"), ".tmpl")
		rel = strings.ReplaceAll(rel, "NAME", d.Package)
		out := filepath.Join(root, filepath.FromSlash(rel))
		src, err := templates.ReadFile(p)
		if err != nil {
			return err
		}
		t, err := template.New(rel).Funcs(template.FuncMap{"upper": strings.ToUpper}).Parse(string(src))
		if err != nil {
			return fmt.Errorf("template %s: %w", p, err)
		}
		var buf bytes.Buffer
		if err := t.Execute(&buf, d); err != nil {
			return fmt.Errorf("template %s: %w", p, err)
		}
		content := buf.Bytes()
		if strings.HasSuffix(out, ".go") {
			if content, err = format.Source(content); err != nil {
				return fmt.Errorf("template %s: %w", p, err)
			}
		}
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(out, content, 0o644); err != nil {
			return err
		}
		written = append(written, out)
		return nil
	})
	return written, err
}

// findModule returns the root and module path of the Go module holding dir,
// or "" when there is none.
func findModule(dir string) (string, string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", "", err
	}
	for d := abs; ; d = filepath.Dir(d) {
		data, err := os.ReadFile(filepath.Join(d, "go.mod"))
		if err == nil {
			for _, line := range strings.Split(string(data), "\n") {
				if f := strings.Fields(line); len(f) == 2 && f[0] == "module" {
					return d, strings.Trim(f[1], `"`), nil
				}
			}
			return "", "", fmt.Errorf("generate: %s has no module line", filepath.Join(d, "go.mod"))
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", "", err
		}
		if filepath.Dir(d) == d {
			return "", "", nil
		}
	}
}

// modelsOf checks the models of opts and names their tables.
func modelsOf(opts Options) ([]model, error) {
	names := opts.Models
	if len(names) == 0 {
		names = []string{modelName(opts.Name)}
	}
	// Identifiers the generated package declares itself.
	reserved := []string{"Backend", "Config", "DefaultConfig", "Models", "Seed", "Synchronizer"}
	if opts.Kind == Watcher {
		reserved = append(reserved, "Owner")
	}
	var out []model
	for _, n := range names {
		if !modelRE.MatchString(n) {
			return nil, fmt.Errorf("generate: model %q must match %s", n, modelRE)
		}
		n = strings.ToUpper(n[:1]) + n[1:]
		if slices.Contains(reserved, n) || strings.HasSuffix(n, "Step") && slices.ContainsFunc(names, func(m string) bool { return strings.EqualFold(m+"Step", n) }) {
			return nil, fmt.Errorf("generate: model %q clashes with the generated %s", n, n)
		}
		for _, m := range out {
			if m.Name == n {
				return nil, fmt.Errorf("generate: model %q is given twice", n)
			}
		}
		out = append(out, model{Name: n, Table: tableName(n)})
	}
	return out, nil
}

// tableName turns "NetworkPort" into "network_port".
func tableName(model string) string {
	var b strings.Builder
	for i, r := range model {
		if unicode.IsUpper(r) {
			if i > 0 {
				b.WriteByte('_')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Checkout returns the tsync checkout this program was built from, for
// TsyncPath: the directory above this source file when it is still there
// and holds tsync's go.mod. It is "" for a binary built with -trimpath or
// from the module cache (a published tsync needs no replace directive).
func Checkout() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok || !filepath.IsAbs(file) {
		return ""
	}
	dir := filepath.Dir(filepath.Dir(file))
	if strings.Contains(dir, "@") { // the module cache: module@version
		return ""
	}
	data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "module" && strings.Trim(f[1], `"`) == TsyncModule {
			return dir
		}
	}
	return ""
}

// packageName turns "my-vpn" into "myvpn".
func packageName(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// modelName turns "my-vpn" into "MyVpn".
func modelName(name string) string {
	var b strings.Builder
	up := true
	for _, r := range name {
		if r == '-' || r == '_' {
			up = true
			continue
		}
		if up {
			r = unicode.ToUpper(r)
			up = false
		}
		b.WriteRune(r)
	}
	return b.String()
}
