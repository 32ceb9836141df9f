package activities

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync/models"
)

// Drain waits for the step calls under way, including a cancelled one that
// takes a while to clean up, and gives up when its context ends.
func TestDrainWaitsForRunningSteps(t *testing.T) {
	a := &Activities{}
	quick, cancelQuick := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancelQuick()
	require.True(t, Drain(quick, a), "no step call: drained at once")

	ctx, cancel := context.WithCancel(context.Background())
	started, cleaned := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- a.call(ctx, models.Ref{Model: "Site", ID: 1}, "sync", func(ctx context.Context) error {
			close(started)
			<-ctx.Done()
			time.Sleep(300 * time.Millisecond) // its clean-up
			close(cleaned)
			return ctx.Err()
		})
	}()
	<-started

	short, cancelShort := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancelShort()
	require.False(t, Drain(short, a), "the step runs")

	cancel()
	long, cancelLong := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancelLong()
	require.True(t, Drain(long, a))
	select {
	case <-cleaned:
	default:
		t.Fatal("Drain returned before the step's clean-up ended")
	}
	require.ErrorIs(t, <-done, context.Canceled)
}
