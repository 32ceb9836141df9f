package activities

import (
	"context"
	"fmt"
	"runtime/debug"
	"time"

	"go.temporal.io/sdk/activity"
)

// RunStep runs fn (a step, a playbook, a watcher's handler) in an activity,
// heartbeating while it runs, and turns a panic into an error. It returns
// when fn returns: fn must honour ctx's cancellation.
func RunStep(ctx context.Context, fn func(context.Context) error) error {
	done := make(chan error, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				done <- fmt.Errorf("panic: %v\n%s", r, firstFrames(debug.Stack()))
			}
		}()
		done <- fn(ctx)
	}()
	interval := time.Second
	if activity.IsActivity(ctx) {
		if hb := activity.GetInfo(ctx).HeartbeatTimeout; hb > 0 {
			interval = hb / 3
		}
	}
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case err := <-done:
			return err
		case <-ticker.C:
			if activity.IsActivity(ctx) {
				activity.RecordHeartbeat(ctx)
			}
		}
	}
}

// firstFrames keeps the start of a stack trace, enough to find a panic.
func firstFrames(stack []byte) string {
	const max = 600
	if len(stack) > max {
		return string(stack[:max])
	}
	return string(stack)
}
