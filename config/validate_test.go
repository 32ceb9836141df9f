package config

import (
	"testing"

	"github.com/stretchr/testify/require"
)

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
