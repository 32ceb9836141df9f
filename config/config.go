package config

import "time"

// Config is the whole configuration of a tsync process.
//
// The mapstructure tag of each field is its configuration key; the keys of
// the nested structs are prefixed with the parent's key and a dot
// (temporal.host_port).
type Config struct {
	// ObserverDisabled turns the observer loop off.
	ObserverDisabled bool `mapstructure:"observer_disabled"`
	// ObserverStepsDir is the directory holding the sync steps.
	ObserverStepsDir string `mapstructure:"observer_steps_dir"`
	// ObserverSysDir is the directory for the observer's system files.
	ObserverSysDir string `mapstructure:"observer_sys_dir"`
	// ObserverPretend runs the steps without applying any change.
	ObserverPretend bool `mapstructure:"observer_pretend"`
	// ObserverProxySSH is an SSH jump host of the form "[user@]host[:port]",
	// or "" for none.
	ObserverProxySSH string `mapstructure:"observer_proxy_ssh"`
	// ObserverName names this synchronizer. It is required and must match
	// ^[A-Za-z][A-Za-z0-9_.-]*$ because it becomes part of Temporal
	// workflow IDs.
	ObserverName string `mapstructure:"observer_name"`
	// ObserverApplist lists the apps whose models are synchronized.
	ObserverApplist []string `mapstructure:"observer_applist"`
	// ObserverDependencyGraph is the model dependency graph file, or "".
	ObserverDependencyGraph string `mapstructure:"observer_dependency_graph"`
	// ObserverBackoffDisabled disables the backoff of failing objects.
	ObserverBackoffDisabled bool `mapstructure:"observer_backoff_disabled"`
	// ObserverLogstashHostport is the "host:port" of a logstash to ship
	// logs to, or "" for none.
	ObserverLogstashHostport string `mapstructure:"observer_logstash_hostport"`
	// ObserverLogFile is the log file, or "" to log to stderr.
	ObserverLogFile string `mapstructure:"observer_log_file"`
	// ObserverModelPoliciesDir is the directory of the model policies.
	ObserverModelPoliciesDir string `mapstructure:"observer_model_policies_dir"`
	// ObserverEnableWatchers enables the watchers.
	ObserverEnableWatchers bool `mapstructure:"observer_enable_watchers"`

	// Temporal says how to reach the Temporal server.
	Temporal TemporalConfig `mapstructure:"temporal"`

	// DatabaseURL is the postgres:// or postgresql:// URL of the database.
	// It may carry a password: log Redacted() rather than this field.
	DatabaseURL string `mapstructure:"database_url"`
	// DatabaseSchema is the PostgreSQL schema holding the models.
	DatabaseSchema string `mapstructure:"database_schema"`
	// DatabaseAutoMigrate lets every process migrate the schema at start
	// (tables, added columns, indexes, triggers). Off, for operators who
	// run their own migrations (`tsync migrate`, or the DDL of `tsync
	// migrate --dry-run`), a process whose schema is not up to date stops
	// at start saying what is missing.
	DatabaseAutoMigrate bool `mapstructure:"database_auto_migrate"`
	// RedisURL is the redis:// or rediss:// URL of Redis. It may carry a
	// password: log Redacted() rather than this field.
	RedisURL string `mapstructure:"redis_url"`

	// LoopInterval is the pause between two passes of the observer loop.
	LoopInterval time.Duration `mapstructure:"loop_interval"`
	// FetchBatch is the number of rows fetched per query.
	FetchBatch int `mapstructure:"fetch_batch"`

	// Concurrency bounds the work running at once.
	Concurrency ConcurrencyConfig `mapstructure:"concurrency"`
	// Retry is the retry policy of failing steps.
	Retry RetryConfig `mapstructure:"retry"`

	// StepTimeout bounds the run time of one step.
	StepTimeout time.Duration `mapstructure:"step_timeout"`
	// HeartbeatTimeout is the activity heartbeat timeout.
	HeartbeatTimeout time.Duration `mapstructure:"heartbeat_timeout"`
	// ShutdownTimeout is how long a process told to stop (SIGTERM, SIGINT)
	// lets its running steps finish: the worker stops polling at once, and
	// the steps still running after ShutdownTimeout have their context
	// cancelled (their objects sync again on another worker).
	ShutdownTimeout time.Duration `mapstructure:"shutdown_timeout"`

	// MetricsAddress is the "host:port" on which the worker, the starter
	// and the dispatcher serve Prometheus metrics at /metrics, liveness at
	// /healthz and readiness at /readyz, or "" for none.
	MetricsAddress string `mapstructure:"metrics_address"`

	// UIAddress is the "host:port" of the object view (package
	// objectview): `tsync ui` serves it there (at 127.0.0.1:8480 when
	// ""), and so do `run` and the worker when it is set; "" for none in
	// them.
	UIAddress string `mapstructure:"ui_address"`
	// UITokenFile is a file holding the bearer token the object view
	// requires on every request (surrounding white space ignored); "" for
	// none.
	UITokenFile string `mapstructure:"ui_token_file"`

	// DemoDir is where the demo synchronizer's backend writes.
	DemoDir string `mapstructure:"demo_dir"`
}

// TemporalConfig says how to reach the Temporal server (keys temporal.*).
type TemporalConfig struct {
	// HostPort is the "host:port" of the Temporal frontend.
	HostPort string `mapstructure:"host_port"`
	// Namespace is the Temporal namespace.
	Namespace string `mapstructure:"namespace"`
	// TaskQueue is the Temporal task queue.
	TaskQueue string `mapstructure:"task_queue"`
	// UIURL is the base URL of the Temporal Web UI of this server
	// ("https://temporal.example.com"), for the links tsync prints; "" when
	// unknown (then only a dev server or cluster that tsync started has
	// its Web UI shown).
	UIURL string `mapstructure:"ui_url"`
	// GRPCCompression is how the client compresses its requests to the
	// server (and so the server its answers): CompressionGzip,
	// CompressionNone, or CompressionAuto, the default: none when
	// HostPort's host is this machine, gzip otherwise (see Compresses).
	GRPCCompression string `mapstructure:"grpc_compression"`

	// TLS turns TLS on with the system's root CAs and no client
	// certificate (a server with a public certificate, Temporal Cloud
	// with an API key). TLS is also on whenever TLSCAFile, TLSCertFile,
	// TLSServerName or an API key is set: see TLSEnabled.
	TLS bool `mapstructure:"tls"`
	// TLSCAFile is a PEM file of the CAs the server's certificate must be
	// signed by, instead of the system's; "" for the system's.
	TLSCAFile string `mapstructure:"tls_ca_file"`
	// TLSCertFile and TLSKeyFile are the PEM client certificate (chain)
	// and its private key presented to a server requiring mTLS; both or
	// neither.
	TLSCertFile string `mapstructure:"tls_cert_file"`
	TLSKeyFile  string `mapstructure:"tls_key_file"`
	// TLSServerName is the name the server's certificate must hold, when
	// it is not the host of HostPort.
	TLSServerName string `mapstructure:"tls_server_name"`
	// APIKeyFile is a file holding the API key sent with every request
	// (Temporal Cloud), surrounding white space ignored; "" for none.
	APIKeyFile string `mapstructure:"api_key_file"`
	// APIKey is the API key itself. It is a secret: it is read from the
	// environment only (TSYNC_TEMPORAL_API_KEY), never from a config file,
	// and Redacted hides it. At most one of APIKey and APIKeyFile is set.
	APIKey string `mapstructure:"api_key"`
}

// ConcurrencyConfig bounds the work running at once (keys concurrency.*).
type ConcurrencyConfig struct {
	// Workflows is the number of workflow executions run at once.
	Workflows int `mapstructure:"workflows"`
	// Activities is the number of activity executions run at once.
	Activities int `mapstructure:"activities"`
	// Starts is the number of workflow starts in flight at once.
	Starts int `mapstructure:"starts"`
}

// RetryConfig is the retry policy of failing steps (keys retry.*).
type RetryConfig struct {
	// InitialInterval is the delay before the first retry.
	InitialInterval time.Duration `mapstructure:"initial_interval"`
	// MaxInterval is the largest delay between two retries.
	MaxInterval time.Duration `mapstructure:"max_interval"`
	// BackoffCoefficient multiplies the delay after each retry.
	BackoffCoefficient float64 `mapstructure:"backoff_coefficient"`
}
