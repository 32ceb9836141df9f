package config

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

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
	pki := writePKI(t)
	keyFile := writeFile(t, "api-key", "k3y\n")
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
		{"TSYNC_TEMPORAL_UI_URL", "https://temporal.example.com", func(c *Config) { c.Temporal.UIURL = "https://temporal.example.com" }},
		{"TSYNC_TEMPORAL_GRPC_COMPRESSION", "gzip", func(c *Config) { c.Temporal.GRPCCompression = "gzip" }},
		{"TSYNC_TEMPORAL_TLS", "true", func(c *Config) { c.Temporal.TLS = true }},
		{"TSYNC_TEMPORAL_TLS_CA_FILE", pki.CAFile, func(c *Config) { c.Temporal.TLSCAFile = pki.CAFile }},
		{"TSYNC_TEMPORAL_TLS_SERVER_NAME", "temporal.example.com", func(c *Config) { c.Temporal.TLSServerName = "temporal.example.com" }},
		{"TSYNC_TEMPORAL_API_KEY_FILE", keyFile, func(c *Config) { c.Temporal.APIKeyFile = keyFile }},
		{"TSYNC_TEMPORAL_API_KEY", "k3y.x-Y_z=", func(c *Config) { c.Temporal.APIKey = "k3y.x-Y_z=" }},
		{"TSYNC_DATABASE_URL", "postgres://db/x", func(c *Config) { c.DatabaseURL = "postgres://db/x" }},
		{"TSYNC_DATABASE_SCHEMA", "_s1", func(c *Config) { c.DatabaseSchema = "_s1" }},
		{"TSYNC_DATABASE_AUTO_MIGRATE", "false", func(c *Config) { c.DatabaseAutoMigrate = false }},
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
		{"TSYNC_SHUTDOWN_TIMEOUT", "2m", func(c *Config) { c.ShutdownTimeout = 2 * time.Minute }},
		{"TSYNC_DEMO_DIR", "d", func(c *Config) { c.DemoDir = "d" }},
		{"TSYNC_METRICS_ADDRESS", ":9464", func(c *Config) { c.MetricsAddress = ":9464" }},
		{"TSYNC_UI_ADDRESS", "127.0.0.1:8481", func(c *Config) { c.UIAddress = "127.0.0.1:8481" }},
		{"TSYNC_UI_TOKEN_FILE", keyFile, func(c *Config) { c.UITokenFile = keyFile }},
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
	// A client certificate comes with its key.
	t.Run("TSYNC_TEMPORAL_TLS_CERT_FILE", func(t *testing.T) {
		env := []string{"TSYNC_TEMPORAL_TLS_CERT_FILE=" + pki.ClientCertFile, "TSYNC_TEMPORAL_TLS_KEY_FILE=" + pki.ClientKeyFile}
		covered["TSYNC_TEMPORAL_TLS_CERT_FILE"], covered["TSYNC_TEMPORAL_TLS_KEY_FILE"] = true, true
		c, err := Parse([]byte("observer_name: demo\n"), env)
		require.NoError(t, err)
		want := named("demo")
		want.Temporal.TLSCertFile, want.Temporal.TLSKeyFile = pki.ClientCertFile, pki.ClientKeyFile
		require.Equal(t, want, c)
	})
	for _, f := range fields() {
		require.True(t, covered[envName(f.key)], "no test overrides %s", f.key)
	}
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

// EnvVars names every variable that changes the config, and nothing else.
func TestEnvVars(t *testing.T) {
	names := EnvVars()
	require.Contains(t, names, "TSYNC_SHUTDOWN_TIMEOUT")
	require.Contains(t, names, "TSYNC_TEMPORAL_HOST_PORT")
	require.Contains(t, names, "DATABASE_URL")
	require.Contains(t, names, "REDIS_URL")
	require.NotContains(t, names, "TSYNC_SHUTDOWN_TIMEOUTS")
	for _, name := range names {
		value := "x"
		c, err := Parse([]byte("observer_name: demo\n"), []string{name + "=" + value})
		if err == nil {
			require.NotEqual(t, named("demo"), c, "%s changes nothing", name)
		} // else: refused, so read
	}
	c, err := Parse([]byte("observer_name: demo\n"), []string{"TSYNC_SHUTDOWN_TIMEOUTS=1s"})
	require.NoError(t, err)
	require.Equal(t, named("demo"), c, "a name not in EnvVars changes nothing")
}
