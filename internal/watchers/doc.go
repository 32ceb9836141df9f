// Package watchers runs the event-based path of a synchronizer: its
// watchers (see tsync.Watcher) are told about the committed changes of the
// models they watch, through Redis Streams, each handler call in a durable
// Temporal workflow.
//
// A change travels in four steps, and none is lost on the way, even when
// Redis loses its data: PostgreSQL is the record of the changes in flight,
// Redis only carries them.
//
//  1. The model store (built with models.WithOutbox(true), as app does when
//     observer_enable_watchers is on) writes each change to its outbox table
//     in the transaction of the change itself.
//  2. A Relay adds the unpublished outbox entries to the stream
//     StreamName(schema) and records on each the id of its stream entry; an
//     entry is published at least once, always with the same event id.
//  3. A Dispatcher reads the stream with a consumer group (one per
//     synchronizer), finds the watchers each change fires and the objects it
//     affects (Router, from the watched paths of package watchset), starts
//     one WatchWorkflow per watcher and object under a deterministic ID, and
//     acknowledges the change only then. Unacknowledged changes of a dead
//     dispatcher are claimed by the others; a change delivered twice starts
//     nothing twice. Malformed events go to a dead-letter stream. In its
//     sweeps, the dispatcher deletes from the outbox the entries every group
//     has handled, and marks unpublished again those whose stream entry
//     Redis lost (a restart without persistence, an older snapshot, a
//     deleted stream or group), so the relay publishes them again. The
//     outbox protocol, and why it loses nothing, is package outbox's doc.
//  4. WatchWorkflow runs the HandleWatchedObject activity, which loads the
//     object fresh and calls the watcher, retried with the steps' policy.
//
// The handler of a watcher runs at least once per affected object and
// change; exactly once unless a worker dies during it (Temporal runs the
// activity again), as long as Temporal retains the closed workflows (the
// namespace's retention period) for the time a change may take to be
// delivered again.
//
// A worker runs the workflow and the activity when its options carry
// Activities (worker.Options.Watchers); app.RunDispatcher runs a relay and a
// dispatcher from config.
package watchers
