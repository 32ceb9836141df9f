package engine

import (
	"fmt"

	"github.com/tsync/tsync"
)

// Outcome is what a step's, watcher's or policy's returned error means.
type Outcome int

// Outcomes of Classify.
const (
	// Succeeded: a nil error.
	Succeeded Outcome = iota
	// Deferred: the error wraps a tsync.DeferredError.
	Deferred
	// Noted: the error wraps a tsync.InnocuousError and no DeferredError.
	Noted
	// Failed: any other error.
	Failed
)

// Classify decides what err means, by the precedence documented in package
// tsync (errors.go): nil, then deferred (even when also innocuous), then
// innocuous, then failure. Every part of the engine classifies errors with
// it.
func Classify(err error) Outcome {
	switch {
	case err == nil:
		return Succeeded
	case tsync.IsDeferred(err):
		return Deferred
	case tsync.IsInnocuous(err):
		return Noted
	}
	return Failed
}

// String names the outcome.
func (o Outcome) String() string {
	switch o {
	case Succeeded:
		return "succeeded"
	case Deferred:
		return "deferred"
	case Noted:
		return "noted"
	case Failed:
		return "failed"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}
