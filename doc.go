// Package tsync is the API for authors of synchronizer steps.
//
// A synchronizer keeps a backend in step with a data model held in
// PostgreSQL (see package models). Each step synchronizes one or more models:
// tsync calls SyncRecord for every object pending for sync and DeleteRecord
// for every deleted object, each inside a durable Temporal workflow that first
// brings the object's dependencies in sync, records the outcome in the
// object's sync state, and retries failures with backoff.
//
// A step is usually written against its model's struct; its model is the
// one registered for that Go type:
//
//	siteStep := tsync.StepOf[Site](tsync.StepFuncs[Site]{
//		Sync: func(ctx context.Context, s *Site) error {
//			return backend.EnsureSite(ctx, s.Name)
//		},
//		Delete: func(ctx context.Context, s *Site) error {
//			return backend.RemoveSite(ctx, s.Name)
//		},
//	})
//
// Steps, Ansible steps (AnsibleStepOf), watchers (WatcherOf) and model
// policies (PolicyOf) are registered with their models in a Synchronizer,
// which package app opens and runs (or package cli, as a command line) and
// package tsynctest tests. The errors a module returns mean what Step
// documents: Defer for a temporary condition, Innocuous for a note, anything
// else a failure retried with backoff.
package tsync
