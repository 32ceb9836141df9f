package config

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/spf13/viper"
	"github.com/stretchr/testify/require"
)

func TestLoadWithoutFile(t *testing.T) {
	c, err := Load("", []string{"TSYNC_OBSERVER_NAME=demo"})
	require.NoError(t, err)
	require.Equal(t, named("demo"), c)

	_, err = Load("", nil)
	require.EqualError(t, err, "config: observer_name is required (set it in a config file or TSYNC_OBSERVER_NAME)")
}

func TestParse(t *testing.T) {
	c, err := Parse([]byte("observer_name: embedded\n"), nil)
	require.NoError(t, err)
	require.Equal(t, named("embedded"), c)

	c, err = Parse(nil, []string{"TSYNC_OBSERVER_NAME=x"})
	require.NoError(t, err)
	require.Equal(t, named("x"), c)

	_, err = Parse([]byte("# nothing\n"), nil)
	require.EqualError(t, err, "config: observer_name is required (set it in the YAML config or TSYNC_OBSERVER_NAME)")
}

// TestSampleConfig checks the project's sample config.yaml: it loads, sets
// every key, and holds the defaults.
func TestSampleConfig(t *testing.T) {
	const sample = "sample.yaml"
	c, err := Load(sample, nil)
	require.NoError(t, err)
	require.Equal(t, named("demo"), c)

	data, err := os.ReadFile(sample)
	require.NoError(t, err)
	v := viper.New()
	v.SetConfigType("yaml")
	require.NoError(t, v.ReadConfig(bytes.NewReader(data)))
	for _, f := range fields() {
		require.True(t, v.IsSet(f.key), "%s does not set %s", sample, f.key)
	}
}

func TestLoadEveryKeyFromFile(t *testing.T) {
	file := writeFile(t, "config.yaml", `
observer_disabled: true
observer_steps_dir: steps
observer_sys_dir: /var/lib/tsync
observer_pretend: true
observer_proxy_ssh: admin@bastion:2222
observer_name: site-1.a_b
observer_applist: [core, extra]
observer_dependency_graph: graph.json
observer_backoff_disabled: false
observer_logstash_hostport: logs:5044
observer_log_file: /tmp/tsync.log
observer_model_policies_dir: policies
observer_enable_watchers: true
temporal:
  host_port: temporal:7233
  namespace: ns
  task_queue: q
  grpc_compression: none
database_url: postgresql://u:p@db/tsync
database_schema: tsync_1
database_auto_migrate: false
redis_url: rediss://cache:6380/2
loop_interval: 250ms
fetch_batch: 50
concurrency:
  workflows: 20
  activities: 10
  starts: 2
retry:
  initial_interval: 2s
  max_interval: 30s
  backoff_coefficient: 1.5
step_timeout: 5m
heartbeat_timeout: 10s
shutdown_timeout: 45s
metrics_address: 127.0.0.1:9464
demo_dir: /tmp/demo
`)
	c, err := Load(file, nil)
	require.NoError(t, err)
	require.Equal(t, Config{
		ObserverDisabled:         true,
		ObserverStepsDir:         "steps",
		ObserverSysDir:           "/var/lib/tsync",
		ObserverPretend:          true,
		ObserverProxySSH:         "admin@bastion:2222",
		ObserverName:             "site-1.a_b",
		ObserverApplist:          []string{"core", "extra"},
		ObserverDependencyGraph:  "graph.json",
		ObserverBackoffDisabled:  false,
		ObserverLogstashHostport: "logs:5044",
		ObserverLogFile:          "/tmp/tsync.log",
		ObserverModelPoliciesDir: "policies",
		ObserverEnableWatchers:   true,
		Temporal:                 TemporalConfig{HostPort: "temporal:7233", Namespace: "ns", TaskQueue: "q", GRPCCompression: "none"},
		DatabaseURL:              "postgresql://u:p@db/tsync",
		DatabaseSchema:           "tsync_1",
		RedisURL:                 "rediss://cache:6380/2",
		LoopInterval:             250 * time.Millisecond,
		FetchBatch:               50,
		Concurrency:              ConcurrencyConfig{Workflows: 20, Activities: 10, Starts: 2},
		Retry:                    RetryConfig{InitialInterval: 2 * time.Second, MaxInterval: 30 * time.Second, BackoffCoefficient: 1.5},
		StepTimeout:              5 * time.Minute,
		HeartbeatTimeout:         10 * time.Second,
		ShutdownTimeout:          45 * time.Second,
		MetricsAddress:           "127.0.0.1:9464",
		DemoDir:                  "/tmp/demo",
	}, c)
}

func TestYAMLKeysAreCaseInsensitive(t *testing.T) {
	c, err := Parse([]byte("Observer_Name: x\nTemporal:\n  Namespace: ns\n"), nil)
	require.NoError(t, err)
	require.Equal(t, "x", c.ObserverName)
	require.Equal(t, "ns", c.Temporal.Namespace)
}

// TestFileErrors checks the exact message of errors coming from a file.
func TestFileErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		env  []string
		want string
	}{
		{"missing name", "fetch_batch: 5\n", nil,
			`config: observer_name is required (set it in config.yaml or TSYNC_OBSERVER_NAME)`},
		{"empty name", "observer_name: ''\n", nil,
			`config: observer_name is required (set it in config.yaml or TSYNC_OBSERVER_NAME)`},
		{"unknown key", "observer_nmae: demo\n", nil,
			`config: unknown key "observer_nmae" in config.yaml (did you mean "observer_name"?)`},
		{"unknown key far from any", "observer_name: demo\nfrobnicate: 1\n", nil,
			`config: unknown key "frobnicate" in config.yaml`},
		{"unknown nested key", "observer_name: demo\ntemporal:\n  hostport: x:1\n", nil,
			`config: unknown key "temporal.hostport" in config.yaml (did you mean "temporal.host_port"?)`},
		{"nested key at top level", "observer_name: demo\ntask_queue: q\n", nil,
			`config: unknown key "task_queue" in config.yaml (did you mean "temporal.task_queue"?)`},
		{"unknown keys sorted", "zzz: 1\naaa: 2\n", nil,
			`config: unknown key "aaa" in config.yaml`},
		{"section not a mapping", "observer_name: demo\nretry: 5\n", nil,
			`config: retry: must be a mapping with keys initial_interval, max_interval, backoff_coefficient, got the integer 5 (in config.yaml)`},
		{"bad YAML", "observer_name: [demo\n", nil,
			`config: invalid YAML in config.yaml: yaml: line 1: did not find expected ',' or ']'`},
		{"duplicate key", "observer_name: a\nobserver_name: b\n", nil,
			`config: invalid YAML in config.yaml: yaml: unmarshal errors: line 2: mapping key "observer_name" already defined at line 1`},
		{"not a mapping", "- a\n- b\n", nil,
			`config: invalid YAML in config.yaml: yaml: unmarshal errors: line 1: cannot unmarshal !!seq into map[string]interface {}`},
		{"list for bool", "observer_name: demo\nobserver_pretend: [true]\n", nil,
			`config: observer_pretend: must be true or false, got a list (in config.yaml)`},
		{"yes-ish for bool", "observer_name: demo\nobserver_disabled: yes-ish\n", nil,
			`config: observer_disabled: invalid boolean "yes-ish", want true or false (in config.yaml)`},
		{"string for int", "observer_name: demo\nfetch_batch: abc\n", nil,
			`config: fetch_batch: invalid integer "abc" (in config.yaml)`},
		{"float for int", "observer_name: demo\nfetch_batch: 1.5\n", nil,
			`config: fetch_batch: must be an integer, got the number 1.5 (in config.yaml)`},
		{"mapping for string", "observer_name: {a: 1}\n", nil,
			`config: observer_name: must be a string, got a mapping (in config.yaml)`},
		{"number for string", "observer_name: 42\n", nil,
			`config: observer_name: must be a string, got the integer 42 (in config.yaml)`},
		{"bare number for duration", "observer_name: demo\nstep_timeout: 30\n", nil,
			`config: step_timeout: invalid duration 30, missing a unit such as "s" or "ms" (in config.yaml)`},
		{"bad duration", "observer_name: demo\nheartbeat_timeout: soon\n", nil,
			`config: heartbeat_timeout: invalid duration "soon" (in config.yaml)`},
		{"bad float", "observer_name: demo\nretry:\n  backoff_coefficient: lots\n", nil,
			`config: retry.backoff_coefficient: invalid number "lots" (in config.yaml)`},
		{"list entry not a string", "observer_name: demo\nobserver_applist: [core, [x]]\n", nil,
			`config: observer_applist: entry 2 must be a string, got a list (in config.yaml)`},
		{"mapping for list", "observer_name: demo\nobserver_applist: {a: b}\n", nil,
			`config: observer_applist: must be a list or a comma-separated string, got a mapping (in config.yaml)`},
		{"negative int", "observer_name: demo\nconcurrency:\n  activities: -1\n", nil,
			`config: concurrency.activities: must be > 0, got -1 (in config.yaml)`},
		{"max < initial", "observer_name: demo\nretry:\n  initial_interval: 10s\n  max_interval: 5s\n", nil,
			`config: retry.max_interval: must be >= retry.initial_interval (10s), got 5s (in config.yaml)`},
		{"first bad key in struct order", "observer_name: demo\nheartbeat_timeout: 0s\nfetch_batch: 0\n", nil,
			`config: fetch_batch: must be > 0, got 0 (in config.yaml)`},
		{"bad file value even if env overrides it", "observer_name: demo\nfetch_batch: abc\n", []string{"TSYNC_FETCH_BATCH=5"},
			`config: fetch_batch: invalid integer "abc" (in config.yaml)`},
		{"bad env over good file", "observer_name: demo\nfetch_batch: 5\n", []string{"TSYNC_FETCH_BATCH=-5"},
			`config: fetch_batch: must be > 0, got -5 (from TSYNC_FETCH_BATCH)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := writeFile(t, "config.yaml", tt.yaml)
			c, err := Load(file, tt.env)
			require.EqualError(t, err, tt.want)
			require.Equal(t, Config{}, c)
			require.NotContains(t, err.Error(), "\n")
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope.yaml")
	_, err := Load(missing, []string{"TSYNC_OBSERVER_NAME=demo"})
	require.EqualError(t, err, "config: config file "+missing+" does not exist")

	dir := t.TempDir()
	_, err = Load(dir, nil)
	require.EqualError(t, err, "config: reading "+dir+": is a directory")
}
