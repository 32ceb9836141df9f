package app

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync/config"
)

// The default retry schedule, as config/sample.yaml and the README say:
// with observer_backoff_disabled (the default) every 1s, forever; without,
// doubling from 1s to 1m.
func TestParamsRetrySchedule(t *testing.T) {
	cfg := config.Default()
	require.True(t, cfg.ObserverBackoffDisabled)
	p := Params(cfg)
	require.Equal(t, []time.Duration{time.Second, time.Second, time.Second}, p.Retry.Schedule(3))
	require.Equal(t, "every 1s, forever", p.Retry.Describe())

	cfg.ObserverBackoffDisabled = false
	p = Params(cfg)
	require.Equal(t, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 32 * time.Second, time.Minute, time.Minute},
		p.Retry.Schedule(8))
	require.Equal(t, "after 1s, 2s, 4s, 8s, 16s, 32s, then every 1m, forever", p.Retry.Describe())
}
