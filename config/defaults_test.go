package config

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestDefault(t *testing.T) {
	want := Config{
		ObserverSysDir:          "var/sys",
		ObserverApplist:         []string{"core"},
		ObserverBackoffDisabled: true,
		Temporal:                TemporalConfig{HostPort: "127.0.0.1:7233", Namespace: "default", TaskQueue: "tsync", GRPCCompression: "auto"},
		DatabaseURL:             "postgres://postgres@127.0.0.1:5432/test?sslmode=disable",
		DatabaseSchema:          "public",
		DatabaseAutoMigrate:     true,
		RedisURL:                "redis://127.0.0.1:6379/0",
		LoopInterval:            time.Second,
		FetchBatch:              500,
		Concurrency:             ConcurrencyConfig{Workflows: 200, Activities: 100, Starts: 16},
		Retry:                   RetryConfig{InitialInterval: time.Second, MaxInterval: time.Minute, BackoffCoefficient: 2},
		StepTimeout:             10 * time.Minute,
		HeartbeatTimeout:        30 * time.Second,
		ShutdownTimeout:         30 * time.Second,
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
