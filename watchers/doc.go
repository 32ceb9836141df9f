// Package watchers runs the event-based path of a synchronizer: its
// watchers (see tsync.Watcher) are told about the committed changes of the
// models they watch, through Redis Streams, each handler call in a durable
// Temporal workflow.
//
// A change travels in four steps, and none is lost on the way:
//
//  1. The model store (built with models.WithOutbox(true), as app does when
//     observer_enable_watchers is on) writes each change to its outbox table
//     in the transaction of the change itself.
//  2. A Relay adds the outbox entries to the stream StreamName(schema) and
//     deletes them; an entry is published at least once, with a stable
//     event id.
//  3. A Dispatcher reads the stream with a consumer group (one per
//     synchronizer), finds the watchers each change fires and the objects it
//     affects (Router, from the watched paths of package watchset), starts
//     one WatchWorkflow per watcher and object under a deterministic ID, and
//     acknowledges the change only then. Unacknowledged changes of a dead
//     dispatcher are claimed by the others; a change delivered twice starts
//     nothing twice. Malformed events go to a dead-letter stream.
//  4. WatchWorkflow runs the HandleWatchedObject activity, which loads the
//     object fresh and calls the watcher, retried with the steps' policy.
//
// A worker runs the workflow and the activity when its options carry
// Activities (worker.Options.Watchers); app.RunDispatcher runs a relay and a
// dispatcher from config.
package watchers
