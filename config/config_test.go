package config

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/viper"
	"github.com/stretchr/testify/require"
)

// named returns the defaults with the given observer name.
func named(name string) Config {
	c := Default()
	c.ObserverName = name
	return c
}

// writeFile writes content to name in a fresh temporary directory, makes
// that directory current and returns name, so that errors mention just name.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600))
	t.Chdir(dir)
	return name
}

func TestDefault(t *testing.T) {
	want := Config{
		ObserverSysDir:          "var/sys",
		ObserverApplist:         []string{"core"},
		ObserverBackoffDisabled: true,
		Temporal:                TemporalConfig{HostPort: "127.0.0.1:7233", Namespace: "default", TaskQueue: "tsync"},
		DatabaseURL:             "postgres://postgres@127.0.0.1:5432/test?sslmode=disable",
		DatabaseSchema:          "public",
		RedisURL:                "redis://127.0.0.1:6379/0",
		LoopInterval:            time.Second,
		FetchBatch:              500,
		Concurrency:             ConcurrencyConfig{Workflows: 200, Activities: 100, Starts: 16},
		Retry:                   RetryConfig{InitialInterval: time.Second, MaxInterval: time.Minute, BackoffCoefficient: 2},
		StepTimeout:             10 * time.Minute,
		HeartbeatTimeout:        30 * time.Second,
		DemoDir:                 "var/demo",
	}
	require.Equal(t, want, Default())
	require.EqualError(t, Default().Validate(),
		"config: observer_name is required (set it in the config file or TSYNC_OBSERVER_NAME)")
	require.NoError(t, named("demo").Validate())

	// Default returns a fresh list each time.
	d := Default()
	d.ObserverApplist[0] = "changed"
	require.Equal(t, []string{"core"}, Default().ObserverApplist)
}

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
	const sample = "../config.yaml"
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
database_url: postgresql://u:p@db/tsync
database_schema: tsync_1
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
		Temporal:                 TemporalConfig{HostPort: "temporal:7233", Namespace: "ns", TaskQueue: "q"},
		DatabaseURL:              "postgresql://u:p@db/tsync",
		DatabaseSchema:           "tsync_1",
		RedisURL:                 "rediss://cache:6380/2",
		LoopInterval:             250 * time.Millisecond,
		FetchBatch:               50,
		Concurrency:              ConcurrencyConfig{Workflows: 20, Activities: 10, Starts: 2},
		Retry:                    RetryConfig{InitialInterval: 2 * time.Second, MaxInterval: 30 * time.Second, BackoffCoefficient: 1.5},
		StepTimeout:              5 * time.Minute,
		HeartbeatTimeout:         10 * time.Second,
		MetricsAddress:           "127.0.0.1:9464",
		DemoDir:                  "/tmp/demo",
	}, c)
}

func TestPrecedence(t *testing.T) {
	file := writeFile(t, "config.yaml", `
observer_name: from-file
fetch_batch: 7
loop_interval: 2s
database_url: postgres://file/db
redis_url: redis://file:6379/0
temporal:
  namespace: file-ns
`)
	c, err := Load(file, []string{
		"TSYNC_LOOP_INTERVAL=1s",
		"TSYNC_LOOP_INTERVAL=3s",                     // a later entry wins
		"TSYNC_FETCH_BATCH=",                         // empty means unset
		"DATABASE_URL=postgres://conventional/db",    // beats the file
		"TSYNC_DATABASE_URL=postgres://prefixed/db",  // beats DATABASE_URL
		"REDIS_URL=redis://conventional:6379/1",      // beats the file
		"PATH=/usr/bin",                              // unrelated
		"TSYNC_CONFIG=/etc/tsync.yaml",               // not a key: ignored
		"NO_EQUALS_SIGN",                             // malformed: ignored
		"TSYNC_TEMPORAL_TASK_QUEUE=env-queue",        // nested key from env
		"tsync_observer_name=lower-case-is-not-used", // names are case-sensitive
	})
	require.NoError(t, err)
	want := named("from-file")
	want.FetchBatch = 7
	want.LoopInterval = 3 * time.Second
	want.DatabaseURL = "postgres://prefixed/db"
	want.RedisURL = "redis://conventional:6379/1"
	want.Temporal.Namespace = "file-ns"
	want.Temporal.TaskQueue = "env-queue"
	require.Equal(t, want, c)

	c, err = Load(file, []string{"TSYNC_OBSERVER_NAME=from-env"})
	require.NoError(t, err)
	require.Equal(t, "from-env", c.ObserverName)
	require.Equal(t, "postgres://file/db", c.DatabaseURL)
}

func TestEnvOverridesEveryKey(t *testing.T) {
	tests := []struct {
		env   string
		value string
		want  func(*Config)
	}{
		{"TSYNC_OBSERVER_DISABLED", "true", func(c *Config) { c.ObserverDisabled = true }},
		{"TSYNC_OBSERVER_STEPS_DIR", "steps", func(c *Config) { c.ObserverStepsDir = "steps" }},
		{"TSYNC_OBSERVER_SYS_DIR", "sys", func(c *Config) { c.ObserverSysDir = "sys" }},
		{"TSYNC_OBSERVER_PRETEND", "1", func(c *Config) { c.ObserverPretend = true }},
		{"TSYNC_OBSERVER_PROXY_SSH", "jump.example.com", func(c *Config) { c.ObserverProxySSH = "jump.example.com" }},
		{"TSYNC_OBSERVER_NAME", "other", func(c *Config) { c.ObserverName = "other" }},
		{"TSYNC_OBSERVER_APPLIST", "core, extra,,more", func(c *Config) { c.ObserverApplist = []string{"core", "extra", "more"} }},
		{"TSYNC_OBSERVER_DEPENDENCY_GRAPH", "g.json", func(c *Config) { c.ObserverDependencyGraph = "g.json" }},
		{"TSYNC_OBSERVER_BACKOFF_DISABLED", "false", func(c *Config) { c.ObserverBackoffDisabled = false }},
		{"TSYNC_OBSERVER_LOGSTASH_HOSTPORT", "[::1]:5044", func(c *Config) { c.ObserverLogstashHostport = "[::1]:5044" }},
		{"TSYNC_OBSERVER_LOG_FILE", "log.txt", func(c *Config) { c.ObserverLogFile = "log.txt" }},
		{"TSYNC_OBSERVER_MODEL_POLICIES_DIR", "mp", func(c *Config) { c.ObserverModelPoliciesDir = "mp" }},
		{"TSYNC_OBSERVER_ENABLE_WATCHERS", "TRUE", func(c *Config) { c.ObserverEnableWatchers = true }},
		{"TSYNC_TEMPORAL_HOST_PORT", "temporal:7233", func(c *Config) { c.Temporal.HostPort = "temporal:7233" }},
		{"TSYNC_TEMPORAL_NAMESPACE", "ns", func(c *Config) { c.Temporal.Namespace = "ns" }},
		{"TSYNC_TEMPORAL_TASK_QUEUE", "q", func(c *Config) { c.Temporal.TaskQueue = "q" }},
		{"TSYNC_DATABASE_URL", "postgres://db/x", func(c *Config) { c.DatabaseURL = "postgres://db/x" }},
		{"TSYNC_DATABASE_SCHEMA", "_s1", func(c *Config) { c.DatabaseSchema = "_s1" }},
		{"TSYNC_REDIS_URL", "redis://r:1/2", func(c *Config) { c.RedisURL = "redis://r:1/2" }},
		{"TSYNC_LOOP_INTERVAL", "250ms", func(c *Config) { c.LoopInterval = 250 * time.Millisecond }},
		{"TSYNC_FETCH_BATCH", " 42 ", func(c *Config) { c.FetchBatch = 42 }},
		{"TSYNC_CONCURRENCY_WORKFLOWS", "3", func(c *Config) { c.Concurrency.Workflows = 3 }},
		{"TSYNC_CONCURRENCY_ACTIVITIES", "4", func(c *Config) { c.Concurrency.Activities = 4 }},
		{"TSYNC_CONCURRENCY_STARTS", "5", func(c *Config) { c.Concurrency.Starts = 5 }},
		{"TSYNC_RETRY_INITIAL_INTERVAL", "500ms", func(c *Config) { c.Retry.InitialInterval = 500 * time.Millisecond }},
		{"TSYNC_RETRY_MAX_INTERVAL", "2m", func(c *Config) { c.Retry.MaxInterval = 2 * time.Minute }},
		{"TSYNC_RETRY_BACKOFF_COEFFICIENT", "1.25", func(c *Config) { c.Retry.BackoffCoefficient = 1.25 }},
		{"TSYNC_STEP_TIMEOUT", "1h", func(c *Config) { c.StepTimeout = time.Hour }},
		{"TSYNC_HEARTBEAT_TIMEOUT", "5s", func(c *Config) { c.HeartbeatTimeout = 5 * time.Second }},
		{"TSYNC_DEMO_DIR", "d", func(c *Config) { c.DemoDir = "d" }},
		{"TSYNC_METRICS_ADDRESS", ":9464", func(c *Config) { c.MetricsAddress = ":9464" }},
		{"DATABASE_URL", "postgresql://conv/db", func(c *Config) { c.DatabaseURL = "postgresql://conv/db" }},
		{"REDIS_URL", "rediss://conv:6380", func(c *Config) { c.RedisURL = "rediss://conv:6380" }},
	}
	covered := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.env, func(t *testing.T) {
			covered[tt.env] = true
			// observer_name is set in the YAML so that overriding it is visible.
			c, err := Parse([]byte("observer_name: demo\n"), []string{tt.env + "=" + tt.value})
			require.NoError(t, err)
			want := named("demo")
			tt.want(&want)
			require.Equal(t, want, c)
		})
	}
	for _, f := range fields() {
		require.True(t, covered[envName(f.key)], "no test overrides %s", f.key)
	}
}

func TestApplist(t *testing.T) {
	for _, tt := range []struct {
		yaml string
		want []string
	}{
		{"observer_applist: [a, b]", []string{"a", "b"}},
		{"observer_applist:\n  - a\n  - b", []string{"a", "b"}},
		{"observer_applist: a,b", []string{"a", "b"}},
		{"observer_applist: a", []string{"a"}},
		{"observer_applist: null", []string{"core"}},
	} {
		c, err := Parse([]byte("observer_name: x\n"+tt.yaml), nil)
		require.NoError(t, err, tt.yaml)
		require.Equal(t, tt.want, c.ObserverApplist, tt.yaml)
	}

	c, err := Parse([]byte("observer_name: x\nobserver_applist: [a]"), []string{"TSYNC_OBSERVER_APPLIST=core,extra"})
	require.NoError(t, err)
	require.Equal(t, []string{"core", "extra"}, c.ObserverApplist)
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

// TestEnvErrors checks the exact message of errors coming from the
// environment; the YAML is valid and sets observer_name.
func TestEnvErrors(t *testing.T) {
	tests := []struct {
		env  string
		want string
	}{
		{"TSYNC_LOOP_INTERVAL=soon",
			`config: loop_interval: invalid duration "soon" (from TSYNC_LOOP_INTERVAL)`},
		{"TSYNC_LOOP_INTERVAL=5",
			`config: loop_interval: invalid duration "5", missing a unit such as "s" or "ms" (from TSYNC_LOOP_INTERVAL)`},
		{"TSYNC_LOOP_INTERVAL=-1s",
			`config: loop_interval: must be > 0, got -1s (from TSYNC_LOOP_INTERVAL)`},
		{"TSYNC_CONCURRENCY_ACTIVITIES=-1",
			`config: concurrency.activities: must be > 0, got -1 (from TSYNC_CONCURRENCY_ACTIVITIES)`},
		{"TSYNC_CONCURRENCY_WORKFLOWS=0",
			`config: concurrency.workflows: must be > 0, got 0 (from TSYNC_CONCURRENCY_WORKFLOWS)`},
		{"TSYNC_CONCURRENCY_STARTS=many",
			`config: concurrency.starts: invalid integer "many" (from TSYNC_CONCURRENCY_STARTS)`},
		{"TSYNC_OBSERVER_PRETEND=yes-ish",
			`config: observer_pretend: invalid boolean "yes-ish", want true or false (from TSYNC_OBSERVER_PRETEND)`},
		{"TSYNC_OBSERVER_NAME=9lives",
			`config: observer_name: invalid name "9lives", must match ^[A-Za-z][A-Za-z0-9_.-]*$ (from TSYNC_OBSERVER_NAME)`},
		{"TSYNC_OBSERVER_NAME=a/b",
			`config: observer_name: invalid name "a/b", must match ^[A-Za-z][A-Za-z0-9_.-]*$ (from TSYNC_OBSERVER_NAME)`},
		{"TSYNC_OBSERVER_PROXY_SSH=user@host:ssh",
			`config: observer_proxy_ssh: invalid jump host "user@host:ssh", want [user@]host[:port] (from TSYNC_OBSERVER_PROXY_SSH)`},
		{"TSYNC_OBSERVER_PROXY_SSH=@host",
			`config: observer_proxy_ssh: invalid jump host "@host", want [user@]host[:port] (from TSYNC_OBSERVER_PROXY_SSH)`},
		{"TSYNC_OBSERVER_APPLIST=,",
			`config: observer_applist: must name at least one app (from TSYNC_OBSERVER_APPLIST)`},
		{"TSYNC_OBSERVER_APPLIST=core,extra,core",
			`config: observer_applist: app "core" is listed twice (from TSYNC_OBSERVER_APPLIST)`},
		{"TSYNC_OBSERVER_LOGSTASH_HOSTPORT=logs",
			`config: observer_logstash_hostport: invalid address "logs", want host:port (from TSYNC_OBSERVER_LOGSTASH_HOSTPORT)`},
		{"TSYNC_TEMPORAL_HOST_PORT=temporal:99999",
			`config: temporal.host_port: invalid address "temporal:99999", want host:port (from TSYNC_TEMPORAL_HOST_PORT)`},
		{"TSYNC_DATABASE_URL=mysql://u:secret@db/x",
			`config: database_url: unsupported scheme "mysql", want a postgres:// or postgresql:// URL (from TSYNC_DATABASE_URL)`},
		{"DATABASE_URL=postgres://u:secret@db:port/x",
			`config: database_url: invalid URL (invalid port ":port" after host), want a postgres:// or postgresql:// URL (from DATABASE_URL)`},
		{"DATABASE_URL=db.example.com/x",
			`config: database_url: missing scheme, want a postgres:// or postgresql:// URL (from DATABASE_URL)`},
		{"TSYNC_DATABASE_SCHEMA=Public",
			`config: database_schema: invalid schema name "Public", must match ^[a-z_][a-z0-9_]*$ and be at most 63 characters (from TSYNC_DATABASE_SCHEMA)`},
		{"TSYNC_DATABASE_SCHEMA=" + strings.Repeat("s", 64),
			`config: database_schema: invalid schema name "` + strings.Repeat("s", 64) + `", must match ^[a-z_][a-z0-9_]*$ and be at most 63 characters (from TSYNC_DATABASE_SCHEMA)`},
		{"REDIS_URL=http://cache:6379",
			`config: redis_url: unsupported scheme "http", want a redis:// or rediss:// URL (from REDIS_URL)`},
		{"TSYNC_REDIS_URL=redis://:secret@/0",
			`config: redis_url: missing host, want a redis:// or rediss:// URL (from TSYNC_REDIS_URL)`},
		{"TSYNC_RETRY_BACKOFF_COEFFICIENT=0.5",
			`config: retry.backoff_coefficient: must be >= 1, got 0.5 (from TSYNC_RETRY_BACKOFF_COEFFICIENT)`},
		{"TSYNC_RETRY_BACKOFF_COEFFICIENT=NaN",
			`config: retry.backoff_coefficient: must be >= 1, got NaN (from TSYNC_RETRY_BACKOFF_COEFFICIENT)`},
		{"TSYNC_RETRY_BACKOFF_COEFFICIENT=+Inf",
			`config: retry.backoff_coefficient: must be >= 1, got +Inf (from TSYNC_RETRY_BACKOFF_COEFFICIENT)`},
		{"TSYNC_RETRY_INITIAL_INTERVAL=0s",
			`config: retry.initial_interval: must be > 0, got 0s (from TSYNC_RETRY_INITIAL_INTERVAL)`},
		{"TSYNC_RETRY_MAX_INTERVAL=500ms",
			`config: retry.max_interval: must be >= retry.initial_interval (1s), got 500ms (from TSYNC_RETRY_MAX_INTERVAL)`},
		{"TSYNC_STEP_TIMEOUT=-1m",
			`config: step_timeout: must be > 0, got -1m0s (from TSYNC_STEP_TIMEOUT)`},
		{"TSYNC_HEARTBEAT_TIMEOUT=0s",
			`config: heartbeat_timeout: must be > 0, got 0s (from TSYNC_HEARTBEAT_TIMEOUT)`},
	}
	for _, tt := range tests {
		t.Run(tt.env, func(t *testing.T) {
			_, err := Parse([]byte("observer_name: demo\n"), []string{tt.env})
			require.EqualError(t, err, tt.want)
			require.NotContains(t, err.Error(), "secret")
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Config)
		want   string
	}{
		{"ok", func(*Config) {}, ""},
		{"jump host forms", func(c *Config) { c.ObserverProxySSH = "me@[::1]:22" }, ""},
		{"jump host ipv6", func(c *Config) { c.ObserverProxySSH = "[fe80::1]" }, ""},
		{"bad name", func(c *Config) { c.ObserverName = "-x" },
			`config: observer_name: invalid name "-x", must match ^[A-Za-z][A-Za-z0-9_.-]*$`},
		{"empty applist", func(c *Config) { c.ObserverApplist = nil },
			`config: observer_applist: must name at least one app`},
		{"empty app", func(c *Config) { c.ObserverApplist = []string{"core", ""} },
			`config: observer_applist: entry 2 is empty`},
		{"app with space", func(c *Config) { c.ObserverApplist = []string{"a b"} },
			`config: observer_applist: invalid app name "a b"`},
		{"empty namespace", func(c *Config) { c.Temporal.Namespace = "" },
			`config: temporal.namespace: must not be empty`},
		{"empty task queue", func(c *Config) { c.Temporal.TaskQueue = "" },
			`config: temporal.task_queue: must not be empty`},
		{"empty database URL", func(c *Config) { c.DatabaseURL = "" },
			`config: database_url: must not be empty, want a postgres:// or postgresql:// URL`},
		{"postgres socket URL", func(c *Config) { c.DatabaseURL = "postgresql:///db?host=/run/postgresql" }, ""},
		{"zero fetch batch", func(c *Config) { c.FetchBatch = 0 },
			`config: fetch_batch: must be > 0, got 0`},
		{"earlier field reported first", func(c *Config) { c.HeartbeatTimeout = 0; c.Temporal.HostPort = "x" },
			`config: temporal.host_port: invalid address "x", want host:port`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := named("demo")
			tt.modify(&c)
			err := c.Validate()
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			require.EqualError(t, err, tt.want)
		})
	}
}

func TestRedacted(t *testing.T) {
	c := named("demo")
	c.DatabaseURL = "postgres://alice:s3cr3t@db:5432/tsync?sslmode=require&password=s3cr3t"
	c.RedisURL = "rediss://default:s3cr3t@cache:6380/1"

	r := c.Redacted()
	require.Equal(t, "postgres://alice:xxxxx@db:5432/tsync?password=xxxxx&sslmode=require", r.DatabaseURL)
	require.Equal(t, "rediss://default:xxxxx@cache:6380/1", r.RedisURL)
	require.Equal(t, "postgres://alice:s3cr3t@db:5432/tsync?sslmode=require&password=s3cr3t", c.DatabaseURL, "c is unchanged")

	// Without a password nothing changes.
	require.Equal(t, Default().DatabaseURL, Default().Redacted().DatabaseURL)
	require.Equal(t, Default().RedisURL, Default().Redacted().RedisURL)

	// A URL that does not parse is hidden whole.
	c.RedisURL = "redis://:s3cr3t@cache:port"
	require.Equal(t, "[REDACTED]", c.Redacted().RedisURL)

	// Formatting and logging the Config never shows the password.
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("loaded", "config", c)
	for _, s := range []string{c.String(), fmt.Sprint(c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c), buf.String()} {
		require.NotContains(t, s, "s3cr3t")
		require.Contains(t, s, "xxxxx")
	}
	require.Contains(t, buf.String(), "config.observer_name=demo")
	require.Contains(t, buf.String(), "config.temporal.host_port=127.0.0.1:7233")
}

// Environ gives every key, and Load reads it back as the same config.
func TestEnvironRoundTrip(t *testing.T) {
	c := named("child")
	c.ObserverDisabled, c.ObserverPretend = true, true
	c.ObserverApplist = []string{"core", "extra"}
	c.ObserverProxySSH = "me@jump:2222"
	c.DatabaseSchema = "s1"
	c.RedisURL = "redis://:secret@r:6380/2"
	c.LoopInterval = 1500 * time.Microsecond
	c.Retry.BackoffCoefficient = 1.1
	c.Concurrency.Starts = 7
	c.DemoDir = "a dir, with commas"
	env := c.Environ()
	got, err := Load("", env)
	require.NoError(t, err)
	require.Equal(t, c, got)
	for _, f := range fields() {
		if f.value(&c).Elem().IsZero() {
			continue
		}
		require.Contains(t, strings.Join(env, "\n"), envName(f.key)+"=", "key %s", f.key)
	}
}
