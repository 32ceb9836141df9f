// Package config loads, validates and redacts the configuration of a tsync
// process.
//
// A configuration is built in layers, each overriding the previous one:
//
//  1. the built-in defaults ([Default]);
//  2. a YAML file ([Load]) or YAML bytes ([Parse]);
//  3. the conventional DATABASE_URL and REDIS_URL environment variables;
//  4. TSYNC_* environment variables.
//
// Every key can be overridden by an environment variable named TSYNC_
// followed by the key upper-cased with "." replaced by "_", for example
// TSYNC_OBSERVER_NAME, TSYNC_TEMPORAL_HOST_PORT or TSYNC_LOOP_INTERVAL=250ms.
// The environment is passed in explicitly (in [os.Environ] form); the
// process environment is never read by this package. An environment variable
// with an empty value is treated as unset. List keys accept a comma-separated
// string in the environment (TSYNC_OBSERVER_APPLIST=core,extra), and either a
// YAML list or such a string in the file. Durations are strings with a unit
// ("250ms", "1m"); a bare number is rejected rather than read as nanoseconds.
//
// Unknown keys in the YAML, values of the wrong type and values that fail
// validation are errors. Each error is a single line naming the key and,
// when known, where the bad value came from (file name or environment
// variable). Invalid YAML is reported first, then unknown keys (in
// alphabetical order), then the first bad key in the order below. Errors never echo database or Redis URLs, which may carry
// passwords, nor the Temporal API key; use [Config.Redacted] (or log the
// Config itself, which implements [fmt.Stringer] and [log/slog.LogValuer])
// to print one safely.
//
// The Temporal client's TLS files and API key file are read when the
// configuration is validated, and again when the client dials: a file that
// cannot be read, a certificate without its key, a key that is not the
// certificate's, an empty API key file are configuration errors. TLS is on
// when temporal.tls is true or any other temporal.tls_* key or an API key
// is set (an API key is never sent in clear); to send an API key to a
// server without TLS, set ConnectionOptions.TLSDisabled with the client
// options hook (app.WithClientOptions).
//
// Keys, with their defaults:
//
//	observer_disabled           false      do not run the observer loop
//	observer_steps_dir          ""         directory of sync steps
//	observer_sys_dir            "var/sys"  directory for the observer's system files
//	observer_pretend            false      run steps without applying changes
//	observer_proxy_ssh          ""         SSH jump host, "[user@]host[:port]"
//	observer_name               (required) name of this synchronizer, ^[A-Za-z][A-Za-z0-9_.-]*$
//	observer_applist            ["core"]   apps whose models are synchronized
//	observer_dependency_graph   ""         model dependency graph file (must exist when set)
//	observer_backoff_disabled   true       no backoff: a failing step is retried every
//	                                       retry.initial_interval, forever (false: the delay
//	                                       grows by retry.backoff_coefficient to retry.max_interval)
//	observer_logstash_hostport  ""         logstash "host:port" to ship logs to
//	observer_log_file           ""         log file ("" logs to stderr)
//	observer_model_policies_dir ""         directory of model policies
//	observer_enable_watchers    false      enable watchers
//	temporal.host_port          "127.0.0.1:7233"  Temporal frontend "host:port"
//	temporal.namespace          "default"  Temporal namespace
//	temporal.task_queue         "tsync"    Temporal task queue
//	temporal.ui_url             ""         base URL of the server's Web UI, for printed links
//	                                       ("" unknown: only a server tsync started shows one)
//	temporal.grpc_compression   "auto"     gzip, none, or auto: none when host_port's host is this
//	                                       machine (localhost, a loopback address), else gzip
//	temporal.tls                false      TLS with the system's root CAs (also on when any key
//	                                       below is set)
//	temporal.tls_ca_file        ""         PEM CAs the server's certificate is checked against
//	                                       ("" for the system's)
//	temporal.tls_cert_file      ""         PEM client certificate for mTLS (with tls_key_file)
//	temporal.tls_key_file       ""         its PEM private key (with tls_cert_file)
//	temporal.tls_server_name    ""         name the server's certificate must hold ("" for the
//	                                       host of temporal.host_port)
//	temporal.api_key_file       ""         file holding the API key (Temporal Cloud), trimmed
//	temporal.api_key            ""         the API key itself: from TSYNC_TEMPORAL_API_KEY only,
//	                                       never from a config file; not both with api_key_file
//	database_url                "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
//	                                       PostgreSQL URL (postgres:// or postgresql://)
//	database_schema             "public"   PostgreSQL schema, ^[a-z_][a-z0-9_]*$, at most 63 bytes
//	database_auto_migrate       true       migrate the schema at start (false: check it only, and
//	                                       stop when it is not up to date; run `tsync migrate`)
//	redis_url                   "redis://127.0.0.1:6379/0"  Redis URL (redis:// or rediss://)
//	loop_interval               1s         pause between observer passes (after a pass of 1s or
//	                                       more, 4x its time, up to max(30s, 5 intervals)), > 0
//	fetch_batch                 500        rows fetched per query, > 0
//	concurrency.workflows       200        concurrent workflow executions, > 0
//	concurrency.activities      100        concurrent activity executions, > 0
//	concurrency.starts          16         concurrent workflow starts, > 0
//	retry.initial_interval      1s         first retry delay (every retry's, backoff disabled), > 0
//	retry.max_interval          1m         largest retry delay (with backoff), >= retry.initial_interval
//	retry.backoff_coefficient   2.0        retry delay multiplier (with backoff), >= 1
//	step_timeout                10m        timeout of one step, > 0
//	heartbeat_timeout           30s        activity heartbeat timeout, > 0
//	shutdown_timeout            30s        on SIGTERM/SIGINT, how long running steps may finish, > 0
//	metrics_address             ""         metrics and health: "host:port" serving /metrics,
//	                                       /healthz and /readyz ("" for none)
//	ui_address                  ""         object view: "host:port" where `run` and the worker serve
//	                                       it too ("" for none; `ui` then serves at 127.0.0.1:8480)
//	ui_token_file               ""         file holding the bearer token the object view requires
//	                                       ("" for none), trimmed
//	demo_dir                    "var/demo" where the demo synchronizer's backend writes
//
// A synchronizer's own keys are a Section of the same file: a top-level
// mapping named after it, decoded into a struct of its own, each key
// overridden by TSYNC_<SECTION>_<KEY>, checked as tsync's keys are
// (cli.Definition.Config). A TSYNC_* variable that overrides no key is
// ignored; UnknownEnv names each, with the closest variable (the cli logs
// them as warnings).
package config
