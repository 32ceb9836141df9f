package config

import (
	"bytes"
	"fmt"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"
)

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
