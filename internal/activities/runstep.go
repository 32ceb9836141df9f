package activities

import (
	"context"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
)

// RunStep runs fn (a step, a playbook, a watcher's handler) in an activity,
// heartbeating while it runs (unless ctx is under KeepAlive already, whose
// heartbeats then cover it), and turns a panic into an error. It returns
// when fn returns: fn must honour ctx's cancellation.
func RunStep(ctx context.Context, fn func(context.Context) error) error {
	ctx, stop := KeepAlive(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				done <- fmt.Errorf("panic: %v\n%s", r, firstFrames(debug.Stack()))
			}
		}()
		done <- fn(ctx)
	}()
	return <-done
}

// keepAliveKey marks a context whose activity KeepAlive heartbeats.
type keepAliveKey struct{}

// KeepAlive heartbeats the activity of ctx, every third of its heartbeat
// timeout (every second without one: heartbeats bring the activity its
// cancellation), until stop (called once) is called; the context it returns tells the
// KeepAlive and RunStep calls made under it that those heartbeats cover
// them. Step activities call it first, so that the whole attempt
// heartbeats, not only its step: an attempt made of several parts, each
// shorter than a heartbeat interval (loading a huge object, a row locked
// by another transaction, the step, recording the outcome), would
// otherwise never heartbeat and be timed out by the server while it works.
//
// Outside an activity, or under KeepAlive already, it does nothing. An
// attempt shorter than an interval sends no heartbeat at all.
func KeepAlive(ctx context.Context) (context.Context, func()) {
	if !activity.IsActivity(ctx) || ctx.Value(keepAliveKey{}) != nil {
		return ctx, func() {}
	}
	interval := time.Second
	if hb := activity.GetInfo(ctx).HeartbeatTimeout; hb > 0 {
		interval = hb / 3
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		ticker := time.NewTicker(interval)
		defer ticker.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-ticker.C:
				activity.RecordHeartbeat(ctx)
			}
		}
	}()
	return context.WithValue(ctx, keepAliveKey{}, true), func() { close(done); wg.Wait() }
}

// firstFrames keeps the start of a stack trace, enough to find a panic.
func firstFrames(stack []byte) string {
	const max = 600
	if len(stack) > max {
		return string(stack[:max])
	}
	return string(stack)
}
