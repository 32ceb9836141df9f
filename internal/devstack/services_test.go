package devstack

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync/config"
)

func TestEnsureServices(t *testing.T) {
	ctx := context.Background()
	cfg := config.Default()
	if u := os.Getenv("TSYNC_TEST_DATABASE_URL"); u != "" {
		cfg.DatabaseURL = u
	}
	require.NoError(t, EnsureServices(ctx, cfg), "PostgreSQL and Redis must run for the tests (make services)")

	// Services down on ports that are not this machine's defaults: never
	// started, one error naming both and how to start them.
	down := freePort(t)
	cfg.DatabaseURL = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/test?sslmode=disable", down)
	cfg.RedisURL = fmt.Sprintf("redis://127.0.0.1:%d/0", down)
	err := EnsureServices(ctx, cfg)
	require.Error(t, err)
	msg := err.Error()
	require.NotContains(t, msg, "\n")
	require.Contains(t, msg, fmt.Sprintf("PostgreSQL at 127.0.0.1:%d is not running", down))
	require.Contains(t, msg, fmt.Sprintf("redis at 127.0.0.1:%d is not running", down))
	require.Contains(t, msg, "pg_ctlcluster")
	require.Contains(t, msg, "TSYNC_REDIS_URL")

	// NoStart never starts even the defaults.
	s := Services{NoStart: true}
	require.False(t, s.canStart("127.0.0.1:5432", 5432, "sh"))
	require.False(t, Services{}.canStart("10.0.0.1:5432", 5432, "sh"))
	require.False(t, Services{}.canStart("127.0.0.1:5433", 5432, "sh"))
	require.False(t, Services{}.canStart("127.0.0.1:5432", 5432, "no-such-tool-here"))
	if os.Geteuid() == 0 {
		require.True(t, Services{}.canStart("localhost:5432", 5432, "sh"))
	}
}
