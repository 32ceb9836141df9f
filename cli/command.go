package cli

import (
	"io"

	"github.com/spf13/cobra"
)

// Command returns the command tree of def's command line, the one Main
// runs, without running anything: for checks of command lines written
// elsewhere (a container's command in docker-compose.yml or a Kubernetes
// manifest) against the real commands and flags. Find a command line's
// command with its Find, parse the rest with the command's ParseFlags, and
// check what is left with its ValidateArgs.
func Command(def Definition) *cobra.Command {
	if def.Name == "" {
		def.Name = "tsync"
	}
	c := &CLI{def: def, stdout: io.Discard, stderr: io.Discard}
	return c.rootCommand()
}
