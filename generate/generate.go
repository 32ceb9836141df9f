// Package generate scaffolds synchronizers: `tsync new workbased NAME`
// writes a package with a model, a step, a test and a main that runs its
// worker and starter (the XOS gen_workbased.py), and `tsync new watcher
// NAME` the same with a watcher (gen_watcher.py). What it writes builds and
// passes its own test as it is.
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
	// points at with a replace directive.
	TsyncPath string
}

var nameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]{0,40}$`)

// data is what the templates see.
type data struct {
	Name       string // as given
	Package    string // Go package name
	Model      string // model name / Go type
	Table      string
	ImportPath string // of the generated package
	Kind       string
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
	if opts.Dir == "" {
		opts.Dir = "."
	}
	root := filepath.Join(opts.Dir, opts.Name)
	if _, err := os.Stat(root); err == nil {
		return nil, fmt.Errorf("generate: %s exists already", root)
	}
	d := data{Name: opts.Name, Package: packageName(opts.Name), Model: modelName(opts.Name), Kind: opts.Kind}
	d.Table = d.Package
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
	base := path.Join("templates", opts.Kind)
	err = fs.WalkDir(templates, base, func(p string, e fs.DirEntry, err error) error {
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
		t, err := template.New(rel).Parse(string(src))
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
	if err != nil {
		return written, fmt.Errorf("generate: %w", err)
	}
	return written, nil
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
