// Package outbox keeps the stream bookkeeping of the model store's outbox:
// the record, in PostgreSQL, of the changes still to be handled by the
// watchers, and of where each one is in the Redis stream that carries them.
// This comment is the outbox protocol; the relay and the dispatcher of
// package watchers carry it out.
//
// # Why
//
// The outbox makes every committed change reach the watchers, even when a
// process dies between the PostgreSQL commit and the publication to Redis (a
// transactional outbox), and even when Redis loses what it was given (a
// restart without persistence, an older snapshot restored, a failover to a
// replica that lagged, the stream or a consumer group deleted): the outbox,
// not Redis, is the record of the changes still to be handled, and Redis
// only carries them.
//
// # The entries
//
// A store built with models.WithOutbox(true) writes each change it
// announces into the outbox table (models.OutboxTable in the store's schema)
// in the same transaction as the change itself, so the change and its
// outbox entry commit or vanish together. Then:
//
//   - a relay publishes the unpublished entries to a Redis stream and
//     records, on each, the id of the stream entry it became (Outbox.Relay);
//   - once every consumer group of the stream has handled the entries below
//     some stream id, they are deleted (Outbox.Settle), after checking that
//     each one's stream entry is still there;
//   - an entry whose stream entry Redis lost is marked unpublished again, and
//     so published again, with the same event id (Outbox.Settle,
//     Outbox.UnpublishLost).
//
// An entry thus goes unpublished -> published (stream id set) -> deleted, or
// back to unpublished when its stream entry is lost. Consumers see an entry
// at least once and must deduplicate on its event id (Entry.Event); the
// dispatcher does, by starting each workflow of a change under an ID made
// from it.
//
// The table's name starts with an underscore, which no model's table can
// (model names start with a letter), so it never collides with a model.
// models.Store.Migrate always creates it (and adds the stream id columns to
// a table made by an older version), so turning the outbox on needs no
// migration; only a store with the outbox on writes it, so it stays empty
// while watchers are disabled. While the outbox is on and no relay (or no
// dispatcher) runs, entries wait in it: nothing is lost, and they are
// published (deleted) when one starts.
//
// # Settling
//
// In every sweep, a dispatcher brings the outbox and the stream in step, in
// this order:
//
//  1. It finds the lowest stream id any group still needs: for each group,
//     its oldest pending entry, or the first after the last it was
//     delivered. Everything below was handled by every group.
//  2. The outbox entries published below it are settled (Outbox.Settle):
//     those still in the stream are deleted; those missing from it were lost
//     by Redis and are marked unpublished, to be published again.
//  3. Published entries outside the stream's ends were lost too
//     (Outbox.UnpublishLost): those above its last entry (Redis restored from
//     an older snapshot, or restarted empty) and those below its first entry
//     (a stream made again after a loss). This finds lost changes no group
//     has read past yet.
//  4. The stream is trimmed below the lowest id of step 1, but never above
//     the oldest entry the outbox still holds (Outbox.OldestPublished), so
//     that steps 2 and 3 never take an entry this (or another) dispatcher
//     trimmed for one Redis lost.
//
// So every lost entry is published again, however Redis lost it: at once
// when it is outside the stream's ends, else once every group has read past
// it. A group nobody reads any more (a synchronizer renamed or retired)
// holds the stream and the outbox back: remove it with XGROUP DESTROY.
//
// An entry is handled by a group once it is acknowledged, that is once its
// workflows are started: a change is deleted from the outbox only when
// Temporal holds its workflows. Without a group (none was made yet, or
// Redis lost them) nothing is deleted or trimmed. A relay that finds the
// stream gone (it adds with NOMKSTREAM) makes it again and runs step 3
// itself.
//
// # Why the races are safe
//
// A change published twice is harmless: it starts no workflow twice. The
// only dangers are deleting an entry that is not handled, and never
// publishing one again.
//
//   - Redis dies after a relay's XADD and before its commit: the entry is
//     unpublished, and published again. Or after its commit: the entry holds
//     an id of the lost stream, and is outside the new stream's ends, or
//     missing once the group has read past it.
//   - A relay adds entries to a new stream before any dispatcher noticed the
//     loss: the group is gone all the same (NOGROUP), and is made again from
//     "0", so it reads them; the lost entries are below the new stream's
//     first entry, marked at the sweep that follows NOGROUP (or by the relay,
//     which found the stream missing).
//   - Two dispatchers: both see NOGROUP, one creates the group, the other
//     gets BUSYGROUP (ignored). Outbox.Settle locks the entries it checks
//     (FOR UPDATE SKIP LOCKED), so each is deleted or marked once; the
//     marking of Outbox.UnpublishLost is idempotent and leaves alone entries
//     published again meanwhile (they are above the highest id it read
//     first). Neither trims the stream above the oldest entry the outbox
//     holds, so neither makes an entry the other checks look lost.
//   - Relays running at once share the outbox without publishing an entry
//     twice (Outbox.Relay locks what it publishes).
//   - Redis dies between a dispatcher's workflow starts and its XACK: the
//     entries are published again and their starts find the workflows.
//   - A relay commits an entry's stream id only after the dispatchers
//     handled and trimmed it (a relay stalled for a sweep between XADD and
//     commit): the entry looks lost and is published again, once more
//     harmlessly.
package outbox
