package cli

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync"
	"github.com/tsync/tsync/config"
	"github.com/tsync/tsync/internal/testenv"
	"github.com/tsync/tsync/models"
)

// Widget and Gadget are the models of a synchronizer of a user's own.
type (
	Widget struct {
		models.Base
		Name string `db:"name"`
	}
	Gadget struct {
		models.Base
		Name     string `db:"name"`
		WidgetID int64  `db:"widget_id"`
	}
)

// userDefinition is a synchronizer with no Seed and no DefaultConfig.
func userDefinition() Definition {
	return Definition{
		Name:        "gizmos",
		Description: "gizmos keeps the gizmo inventory in step.",
		Models:      gizmoModels(),
		Synchronizer: func(config.Config, *models.Store) (tsync.Synchronizer, error) {
			return tsync.Synchronizer{Steps: []tsync.Step{
				tsync.StepOf[Widget](tsync.StepFuncs[Widget]{Sync: func(context.Context, *Widget) error { return nil }}),
				tsync.StepOf[Gadget](tsync.StepFuncs[Gadget]{Sync: func(context.Context, *Gadget) error { return nil }}),
			}}, nil
		},
	}
}

func gizmoModels() *models.Registry {
	reg := models.NewRegistry()
	models.MustRegister[Widget](reg, "Widget")
	models.MustRegister[Gadget](reg, "Gadget", models.LinkTo[Widget]("widget_id"))
	return reg
}

func runCLI(t *testing.T, def Definition, environ []string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := Main(context.Background(), def, args, &stdout, &stderr, environ)
	return code, stdout.String(), stderr.String()
}

func TestConfigSources(t *testing.T) {
	t.Chdir(t.TempDir())
	c := &CLI{def: Definition{DefaultConfig: config.Sample}, environ: []string{"TSYNC_TEMPORAL_TASK_QUEUE=q1"}}
	cfg, source, err := c.loadConfig()
	require.NoError(t, err)
	require.Equal(t, "the built-in default config", source)
	require.Equal(t, "demo", cfg.ObserverName)
	require.Equal(t, "q1", cfg.Temporal.TaskQueue, "environment overrides apply")

	require.NoError(t, os.WriteFile("config.yaml", []byte("observer_name: local\n"), 0o644))
	cfg, source, err = c.loadConfig()
	require.NoError(t, err)
	require.Equal(t, "config.yaml", source)
	require.Equal(t, "local", cfg.ObserverName)

	require.NoError(t, os.WriteFile("other.yaml", []byte("observer_name: other\nloop_interval: 2s\n"), 0o644))
	c.configFile = "other.yaml"
	cfg, source, err = c.loadConfig()
	require.NoError(t, err)
	require.Equal(t, "other.yaml", source)
	require.Equal(t, "other", cfg.ObserverName)
	require.Equal(t, 2*time.Second, cfg.LoopInterval)
}

// A synchronizer of a user's own gets the standard commands for its models;
// without Seed there is no seed or demo, and without DefaultConfig a config
// file is required.
func TestUserSynchronizer(t *testing.T) {
	t.Chdir(t.TempDir())
	def := userDefinition()

	code, stdout, stderr := runCLI(t, def, nil, "--help")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "gizmos keeps the gizmo inventory in step.")
	for _, cmd := range []string{"worker", "starter", "run", "dispatcher", "migrate", "status", "errors", "resync", "deps", "dev", "describe", "version", "completion"} {
		require.Contains(t, stdout, "\n  "+cmd+" ", "command %s", cmd)
	}
	require.NotContains(t, stdout, "\n  seed ")
	require.NotContains(t, stdout, "\n  demo ")
	require.NotContains(t, stdout, "\n  new ")

	code, stdout, stderr = runCLI(t, def, nil, "status")
	require.Equal(t, 1, code)
	require.Empty(t, stdout)
	require.Equal(t, "config: no config file: pass --config FILE or create ./config.yaml\n", stderr)

	code, stdout, stderr = runCLI(t, def, []string{"TSYNC_OBSERVER_NAME=gizmos"}, "--config", "/nonexistent", "deps")
	require.Equal(t, 1, code, stdout)
	require.Contains(t, stderr, "/nonexistent")

	// deps and migrate, status on the real PostgreSQL, for its models.
	_, schema := testenv.Schema(t)
	require.NoError(t, os.WriteFile("config.yaml", []byte("observer_name: gizmos\ndatabase_url: "+testenv.DatabaseURL()+"\ndatabase_schema: "+schema+"\n"), 0o644))
	code, stdout, stderr = runCLI(t, def, nil, "deps")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, `"Gadget" -> "Widget" [label="widget_id"];`)

	code, stdout, stderr = runCLI(t, def, nil, "migrate")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, "schema "+schema+": created tables widget, gadget\nschema "+schema+" is up to date: tables widget, gadget\n", stdout)

	code, stdout, stderr = runCLI(t, def, nil, "errors")
	require.Equal(t, 0, code, stderr)
	require.True(t, strings.Contains(stdout, "no object") || strings.Contains(stdout, "0 objects"), stdout)
}

func TestDefinitionWithoutSynchronizer(t *testing.T) {
	code, _, stderr := runCLI(t, Definition{Name: "x"}, nil, "status")
	require.Equal(t, 1, code)
	require.Equal(t, "cli: the Definition has no Synchronizer\n", stderr)

	def := userDefinition()
	def.Models = nil
	code, _, stderr = runCLI(t, def, nil, "status")
	require.Equal(t, 1, code)
	require.Equal(t, "cli: the Definition has no Models\n", stderr)
}

// A command of the synchronizer's own annotated noconfig runs without a
// config (here there is none to load, and then a bad one): Config is the
// zero Config, and the logger is set up from the flags.
func TestNoconfigCommand(t *testing.T) {
	t.Chdir(t.TempDir())
	def := userDefinition() // no DefaultConfig: a config file is required
	var cli *CLI
	def.Commands = func(c *CLI) []*cobra.Command {
		return []*cobra.Command{{
			Use:         "hello",
			Annotations: map[string]string{"noconfig": "true"},
			RunE: func(*cobra.Command, []string) error {
				cli = c
				c.Printf("hello")
				return nil
			},
		}}
	}
	env := []string{"TSYNC_LOOP_INTERVAL=fast"}
	code, stdout, stderr := runCLI(t, def, env, "hello")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, "hello\n", stdout)
	require.Empty(t, stderr)
	require.Equal(t, config.Config{}, cli.Config())
	require.NotNil(t, cli.Log())

	require.NoError(t, os.WriteFile("config.yaml", []byte("observer_nmae: typo\n"), 0o644))
	code, _, stderr = runCLI(t, def, env, "hello")
	require.Equal(t, 0, code, stderr)

	// A command without the annotation still loads, and refuses, the config.
	code, _, stderr = runCLI(t, def, env, "status")
	require.Equal(t, 1, code)
	require.Equal(t, "config: unknown key \"observer_nmae\" in config.yaml (did you mean \"observer_name\"?)\n", stderr)
}
