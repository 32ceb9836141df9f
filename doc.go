// Package tsync is the API for authors of synchronizer steps.
//
// A synchronizer keeps a backend in step with a data model held in
// PostgreSQL (see package models). Each step synchronizes one or more models:
// tsync calls SyncRecord for every object pending for sync and DeleteRecord
// for every deleted object, each inside a durable Temporal workflow that first
// brings the object's dependencies in sync, records the outcome in the
// object's sync state, and retries failures with backoff.
//
// A step is usually written against its model's struct:
//
//	var SiteStep = tsync.Typed[Site]("Site", tsync.StepFuncs[Site]{
//		Sync: func(ctx context.Context, s *Site) error {
//			return backend.EnsureSite(ctx, s.Name)
//		},
//		Delete: func(ctx context.Context, s *Site) error {
//			return backend.RemoveSite(ctx, s.Name)
//		},
//	})
//
// and registered with its models in a Synchronizer, which the worker and the
// starter run.
package tsync
