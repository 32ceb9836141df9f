package generate

import (
	"fmt"
	"slices"
)

// keywords are Go's keywords, which no package can be named.
var keywords = []string{
	"break", "case", "chan", "const", "continue", "default", "defer", "else", "fallthrough", "for", "func",
	"go", "goto", "if", "import", "interface", "map", "package", "range", "return", "select", "struct",
	"switch", "type", "var",
}

// stdRoots are the first elements of the standard library's import paths
// (`go list std`): a module named one of them cannot be imported (the go
// command looks for it in GOROOT), and a package named one of them hides
// it in the files that import both.
var stdRoots = []string{
	"archive", "bufio", "builtin", "bytes", "cmp", "compress", "container", "context", "crypto", "database",
	"debug", "embed", "encoding", "errors", "expvar", "flag", "fmt", "go", "hash", "html", "image", "index",
	"internal", "io", "iter", "log", "maps", "math", "mime", "net", "os", "path", "plugin", "reflect",
	"regexp", "runtime", "slices", "sort", "strconv", "strings", "structs", "sync", "syscall", "testing",
	"text", "time", "unicode", "unique", "unsafe", "vendor", "weak",
}

// imported are the names of the packages the generated files import, which
// a package of the same name would hide.
var imported = []string{
	"json", "filepath", "fs", "signal", "models", "cli", "config", "tsynctest",
}

// tsyncPackages are the names of tsync's own packages: a synchronizer named
// one of them is confusing next to tsync's, and "tsync" hides tsync itself
// in its main.
var tsyncPackages = []string{
	"tsync", "activities", "app", "cli", "config", "demo", "generate", "logging", "metrics", "models",
	"playbooks", "starter", "tsynctest", "worker", "workflows",
}

// checkPackage refuses a Go package name the generated module would not
// build with.
func checkPackage(pkg string) error {
	switch {
	case pkg == "main":
		return fmt.Errorf("package main is a command, not a synchronizer package: pick another name")
	case slices.Contains(keywords, pkg):
		return fmt.Errorf("%s is a Go keyword: pick another name, e.g. my%s", pkg, pkg)
	case slices.Contains(stdRoots, pkg), slices.Contains(imported, pkg) && !slices.Contains(tsyncPackages, pkg):
		return fmt.Errorf("%s clashes with the standard library's package %s: pick another name, e.g. my%s", pkg, pkg, pkg)
	case slices.Contains(tsyncPackages, pkg):
		return fmt.Errorf("%s clashes with tsync's package %s: pick another name, e.g. my%s", pkg, pkg, pkg)
	}
	return nil
}
