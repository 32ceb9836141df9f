package config

import "time"

// Default returns the default configuration. Its ObserverName is empty, so
// it does not pass Validate until a name is set.
func Default() Config {
	return Config{
		ObserverSysDir:          "var/sys",
		ObserverApplist:         []string{"core"},
		ObserverBackoffDisabled: true,
		Temporal: TemporalConfig{
			HostPort:  "127.0.0.1:7233",
			Namespace: "default",
			TaskQueue: "tsync",
			// Compression pays only over a network: see Compresses.
			GRPCCompression: CompressionAuto,
		},
		DatabaseURL:         "postgres://postgres@127.0.0.1:5432/test?sslmode=disable",
		DatabaseSchema:      "public",
		DatabaseAutoMigrate: true,
		RedisURL:            "redis://127.0.0.1:6379/0",
		LoopInterval:        time.Second,
		FetchBatch:          500,
		Concurrency: ConcurrencyConfig{
			Workflows:  200,
			Activities: 100,
			Starts:     16,
		},
		Retry: RetryConfig{
			InitialInterval:    time.Second,
			MaxInterval:        time.Minute,
			BackoffCoefficient: 2.0,
		},
		StepTimeout:      10 * time.Minute,
		HeartbeatTimeout: 30 * time.Second,
		ShutdownTimeout:  30 * time.Second,
		DemoDir:          "var/demo",
	}
}
