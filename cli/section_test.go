package cli

import (
	"testing"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync"
	"github.com/tsync/tsync/config"
	"github.com/tsync/tsync/models"
)

// gizmoOptions is the gizmos synchronizer's own config section.
type gizmoOptions struct {
	TargetDir string `mapstructure:"target_dir"`
	Limit     int    `mapstructure:"limit"`
}

// A Definition's Config is a section of the same config file and
// environment, filled before its Synchronizer is called; unknown TSYNC_*
// variables get a warning naming the closest one.
func TestDefinitionConfigSection(t *testing.T) {
	t.Chdir(t.TempDir())
	opts := gizmoOptions{TargetDir: "var/gizmos", Limit: 10}
	def := userDefinition()
	def.Config = &opts
	var seen gizmoOptions
	sync := def.Synchronizer
	def.Synchronizer = func(cfg config.Config, store *models.Store) (tsync.Synchronizer, error) {
		seen = opts
		return sync(cfg, store)
	}
	def.Commands = func(c *CLI) []*cobra.Command {
		return []*cobra.Command{{
			Use: "show",
			RunE: func(*cobra.Command, []string) error {
				_, err := c.build()(nil)
				c.Printf("%s %d", seen.TargetDir, seen.Limit)
				return err
			},
		}}
	}
	def.DefaultConfig = []byte("observer_name: gizmos\ngizmos:\n  target_dir: /srv/gizmos\n")

	code, stdout, stderr := runCLI(t, def, nil, "--help")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "\ngizmos's own keys are in the section gizmos: of the same file, each\noverridden by TSYNC_GIZMOS_<KEY>.\n")

	code, stdout, stderr = runCLI(t, def, []string{"TSYNC_GIZMOS_LIMIT=3"}, "show")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, "/srv/gizmos 3\n", stdout)
	require.Empty(t, stderr)

	// A typo in the environment is a warning; the command goes on.
	opts = gizmoOptions{TargetDir: "var/gizmos", Limit: 10}
	code, stdout, stderr = runCLI(t, def, []string{"TSYNC_GIZMOS_LIMT=3", "TSYNC_DATABASE_URLL=x", "TSYNC_TEMPORAL_BIN=x"}, "show")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, "/srv/gizmos 10\n", stdout)
	require.Contains(t, stderr, `level=WARN msg="TSYNC_DATABASE_URLL is not a tsync variable: ignored (did you mean TSYNC_DATABASE_URL?)"`)
	require.Contains(t, stderr, `level=WARN msg="TSYNC_GIZMOS_LIMT is not a tsync variable: ignored (did you mean TSYNC_GIZMOS_LIMIT?)"`)
	require.NotContains(t, stderr, "TSYNC_TEMPORAL_BIN")

	// A mistake in the section is the config's one-line error.
	code, _, stderr = runCLI(t, def, []string{"TSYNC_GIZMOS_LIMIT=lots"}, "show")
	require.Equal(t, 1, code)
	require.Equal(t, "config: gizmos.limit: invalid integer \"lots\" (from TSYNC_GIZMOS_LIMIT)\n", stderr)
	def.DefaultConfig = []byte("observer_name: gizmos\ntarget_dir: /srv/gizmos\n")
	code, _, stderr = runCLI(t, def, nil, "show")
	require.Equal(t, 1, code)
	require.Equal(t, "config: unknown key \"target_dir\" in the YAML config (did you mean \"gizmos.target_dir\"?)\n", stderr)

	// ConfigSection renames the section.
	def.ConfigSection = "gizmo_opts"
	def.DefaultConfig = []byte("observer_name: gizmos\ngizmo_opts:\n  limit: 7\n")
	code, stdout, stderr = runCLI(t, def, nil, "show")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, "/srv/gizmos 7\n", stdout)
}
