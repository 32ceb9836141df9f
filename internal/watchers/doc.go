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
//     affects (Router, from the watched paths of package watchset), gives
//     the change to the WatchObjectWorkflow of each watcher and object
//     (signal-with-start, deterministic ID), in position order, and
//     acknowledges the change only then. Unacknowledged changes of a dead
//     dispatcher are claimed by the others; a change delivered twice runs
//     nothing twice. Malformed events go to a dead-letter stream. In its
//     sweeps, the dispatcher deletes from the outbox the entries every group
//     has handled, and marks unpublished again those whose stream entry
//     Redis lost (a restart without persistence, an older snapshot, a
//     deleted stream or group), so the relay publishes them again. The
//     outbox protocol, and why it loses nothing, is package outbox's doc.
//  4. WatchObjectWorkflow runs the HandleWatchedObject activity for each
//     change, one at a time in the order of the changes' positions (outbox
//     id), the next waiting for the one before to succeed; it loads the
//     object fresh and calls the watcher, retried with the steps' policy.
//     Different objects run concurrently. WatchWorkflow (one per change)
//     is what older dispatchers started; it stays registered for the
//     workflows still open.
//
// The handler of a watcher runs once per affected object and change:
// the workflow skips the event ids it queued or handled, and a change
// delivered after it closed (it lingers Options.Linger) is found in
// HandledTable (kept Options.HandledRetention). A worker that dies during a
// call runs it again (Temporal runs the activity again): at least once
// there. The order holds as one dispatcher reads the stream; a change
// claimed from a dead dispatcher, or read by a second one at the same time,
// may come after a later change was handled, and then runs after it.
//
// A worker runs the workflow and the activity when its options carry
// Activities (worker.Options.Watchers); app.RunDispatcher runs a relay and a
// dispatcher from config.
package watchers
