package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/temporal"
)

// exitError ends a command with an exit code and no message: what it had
// to say is already written (errors --fail-on-error, status
// --fail-on-error).
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// isCompletion reports whether cmd is cobra's completion command or one of
// its subcommands (completion bash, ...): they need no config.
func isCompletion(cmd *cobra.Command) bool {
	for ; cmd != nil; cmd = cmd.Parent() {
		if cmd.Name() == "completion" && cmd.Parent() != nil && cmd.Parent().Parent() == nil {
			return true
		}
	}
	return false
}

// tsyncModule is tsync's module path: a synchronizer of its own reports
// the version of tsync it was built with.
const tsyncModule = "github.com/tsync/tsync"

// Version is what the version command prints: the versions the running
// binary was built with, from its build info.
type Version struct {
	// Module is the main module's path and Version its version ("(devel)"
	// for a build from a checkout).
	Module, Version string
	// Revision is the VCS revision the binary was built from ("" when
	// unknown), Modified whether the checkout had changes.
	Revision string
	Modified bool
	// Tsync is the version of the tsync module ("" when it is the main
	// module).
	Tsync string
	// Go is the Go version the binary was built with.
	Go string
	// TemporalSDK is the version of the Temporal Go SDK.
	TemporalSDK string
}

// buildVersion reads the running binary's Version.
func buildVersion() Version {
	// The SDK's own constant: test binaries have no dependencies in their
	// build info.
	v := Version{Go: runtime.Version(), Version: "unknown", TemporalSDK: "v" + temporal.SDKVersion}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	v.Module, v.Version, v.Go = bi.Main.Path, bi.Main.Version, bi.GoVersion
	if v.Version == "" {
		v.Version = "(devel)"
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Revision = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	for _, d := range bi.Deps {
		if d.Replace != nil && d.Replace.Version != "" {
			d.Version = d.Replace.Version
		}
		if d.Path == tsyncModule && v.Module != tsyncModule {
			v.Tsync = d.Version
			if d.Replace != nil && d.Replace.Version == "" {
				v.Tsync = "(replaced by " + d.Replace.Path + ")"
			}
		}
	}
	return v
}

func (c *CLI) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the versions this binary was built with: its module, tsync, Go and the Temporal SDK",
		Long: `Print the versions this binary was built with, from its Go build info: its
module's (with the VCS revision when known), tsync's when the binary is a
synchronizer of its own, Go's and the Temporal Go SDK's. It needs no config.`,
		Args:        cobra.NoArgs,
		Annotations: map[string]string{"noconfig": "true"},
		RunE: func(*cobra.Command, []string) error {
			v := buildVersion()
			line := c.def.Name + " " + v.Version
			if v.Module != "" {
				line += " (" + v.Module + ")"
			}
			c.Printf("%s", line)
			if v.Revision != "" {
				rev := v.Revision
				if v.Modified {
					rev += " (modified)"
				}
				c.Printf("revision %s", rev)
			}
			if v.Tsync != "" {
				c.Printf("tsync %s", v.Tsync)
			}
			c.Printf("go %s", v.Go)
			c.Printf("temporal sdk %s", v.TemporalSDK)
			return nil
		},
	}
}
