package models

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
)

// The outbox makes every committed change reach the watchers, even when a
// process dies between the PostgreSQL commit and the publication to Redis (a
// transactional outbox), and even when Redis loses what it was given: the
// outbox, not Redis, is the record of the changes still to be handled. A
// store built WithOutbox(true) writes each Change it announces into the
// outbox table in the same transaction as the change itself, so the change
// and its outbox entry commit or vanish together. Then (package watchers):
//
//   - a relay publishes the unpublished entries to a Redis stream and records,
//     on each, the id of the stream entry it became (RelayOutbox);
//   - once every consumer group of the stream has handled the entries below
//     some stream id, they are deleted (SettleOutbox), after checking that
//     each one's stream entry is still there;
//   - an entry whose stream entry Redis lost (a restart without persistence,
//     an older snapshot restored, the stream deleted) is marked unpublished
//     again, and so published again, with the same event id (SettleOutbox,
//     UnpublishLostOutbox).
//
// An entry thus goes unpublished -> published (stream id set) -> deleted, or
// back to unpublished when its stream entry is lost. Consumers see an entry
// at least once and must deduplicate on its event id.
//
// The table is OutboxTable in the store's schema. Its name starts with an
// underscore, which no model's table can (model names start with a letter),
// so it never collides with a model. Migrate always creates it (and adds the
// stream id columns to a table made by an older version), so turning the
// outbox on needs no migration; only a store with the outbox on writes it,
// so it stays empty while watchers are disabled. While the outbox is on and
// no relay (or no dispatcher) runs, entries wait in it: nothing is lost, and
// they are published (deleted) when one starts.

// OutboxTable is the name of the outbox table in the store's schema.
const OutboxTable = "_tsync_outbox"

// Option configures a Store.
type Option func(*Store)

// WithOutbox turns the outbox on or off (default off). Applications turn it
// on exactly when watchers are enabled (observer_enable_watchers); every
// process that writes objects must use the same setting, or the changes it
// makes are not seen by watchers.
func WithOutbox(on bool) Option {
	return func(s *Store) { s.outbox = on }
}

// OutboxEnabled reports whether the store writes its changes to the outbox.
func (s *Store) OutboxEnabled() bool { return s.outbox }

// StreamID is the id of the stream entry an outbox entry was published as:
// a Redis stream entry id "<Ms>-<Seq>", in PostgreSQL's bigint range. The
// zero StreamID (0-0, which no stream entry has) means "not published".
type StreamID struct{ Ms, Seq int64 }

// MaxStreamID is the highest StreamID.
var MaxStreamID = StreamID{math.MaxInt64, math.MaxInt64}

// IsZero reports whether id is the zero StreamID.
func (id StreamID) IsZero() bool { return id == StreamID{} }

// Less reports whether id comes before o in a stream.
func (id StreamID) Less(o StreamID) bool {
	return id.Ms < o.Ms || (id.Ms == o.Ms && id.Seq < o.Seq)
}

// String returns id as Redis writes it, "<Ms>-<Seq>".
func (id StreamID) String() string { return fmt.Sprintf("%d-%d", id.Ms, id.Seq) }

// OutboxEntry is one change kept in the outbox.
type OutboxEntry struct {
	// ID orders the entries (in the order their transactions took an id,
	// which is not always the order they committed in).
	ID int64
	// Event identifies the change for good: a random UUID, unlike ID never
	// reused even if the table is recreated, and the same every time the
	// entry is published. Consumers deduplicate on it.
	Event string
	// Change is the Change, as JSON.
	Change json.RawMessage
	// Created is when the change was made.
	Created time.Time
	// Stream is the stream entry the entry was last published as; zero while
	// it is unpublished.
	Stream StreamID
}

// OutboxCounts says what the outbox holds.
type OutboxCounts struct {
	// Unpublished entries wait for a relay (new, or found lost by Redis).
	Unpublished int64
	// Published entries are in the stream (as far as the outbox knows) and
	// wait until every consumer group has handled them.
	Published int64
}

// Total is every entry the outbox holds: the changes not yet known to be
// handled by every consumer group.
func (c OutboxCounts) Total() int64 { return c.Unpublished + c.Published }

func (s *Store) outboxTable() string { return pgx.Identifier{s.schema, OutboxTable}.Sanitize() }

// outboxDDL creates the outbox table (gen_random_uuid needs PostgreSQL 13),
// adds the stream id columns to a table made before they existed, and
// indexes the unpublished entries (for the relays) and the published ones by
// stream id (for settling). stream_ms and stream_seq are both NULL (not
// published) or both set.
func (s *Store) outboxDDL() []string {
	t := s.outboxTable()
	return []string{
		`CREATE TABLE IF NOT EXISTS ` + t + ` (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	event uuid NOT NULL DEFAULT gen_random_uuid(),
	change jsonb NOT NULL,
	created timestamptz NOT NULL DEFAULT clock_timestamp())`,
		`ALTER TABLE ` + t + ` ADD COLUMN IF NOT EXISTS stream_ms bigint, ADD COLUMN IF NOT EXISTS stream_seq bigint`,
		`CREATE INDEX IF NOT EXISTS ` + pgx.Identifier{OutboxTable + "_unpublished"}.Sanitize() + ` ON ` + t + ` (id) WHERE stream_ms IS NULL`,
		`CREATE INDEX IF NOT EXISTS ` + pgx.Identifier{OutboxTable + "_published"}.Sanitize() + ` ON ` + t + ` (stream_ms, stream_seq) WHERE stream_ms IS NOT NULL`,
	}
}

// notifyWithOutbox writes the change to the outbox and announces it on the
// store's channel, in one statement of transaction tx.
func (s *Store) notifyWithOutbox(ctx context.Context, tx pgx.Tx, payload []byte) error {
	_, err := tx.Exec(ctx, `WITH o AS (INSERT INTO `+s.outboxTable()+` (change) VALUES ($2::text::jsonb)) SELECT pg_notify($1::text, $2::text)`,
		s.Channel(), string(payload))
	if err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	return nil
}

const outboxColumns = `id, event::text, change, created, coalesce(stream_ms, 0), coalesce(stream_seq, 0)`

func scanOutboxEntries(rows pgx.Rows) ([]OutboxEntry, error) {
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (OutboxEntry, error) {
		var e OutboxEntry
		var change []byte
		err := r.Scan(&e.ID, &e.Event, &change, &e.Created, &e.Stream.Ms, &e.Stream.Seq)
		e.Change = change
		return e, err
	})
}

func entryIDs(entries []OutboxEntry) []int64 {
	ids := make([]int64, len(entries))
	for i, e := range entries {
		ids[i] = e.ID
	}
	return ids
}

// RelayOutbox hands up to limit unpublished outbox entries, oldest first, to
// publish, which returns the stream id each became (in the entries' order),
// and records those ids; it returns how many entries it relayed. The entries
// stay in the outbox, published, until SettleOutbox deletes them.
//
// It holds a transaction meanwhile, with the entries locked (FOR UPDATE SKIP
// LOCKED): relays running at once share the work and never publish an entry
// both, and an entry whose publish fails, or whose stream id is lost in a
// crash, stays unpublished and is published again later (with a new stream
// id). Consumers must therefore tolerate an entry published twice
// (deduplicate on Event).
func (s *Store) RelayOutbox(ctx context.Context, limit int, publish func(context.Context, []OutboxEntry) ([]StreamID, error)) (int, error) {
	n := 0
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT `+outboxColumns+` FROM `+s.outboxTable()+` WHERE stream_ms IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED`, limit)
		if err != nil {
			return err
		}
		entries, err := scanOutboxEntries(rows)
		if err != nil || len(entries) == 0 {
			return err
		}
		ids, err := publish(ctx, entries)
		if err != nil {
			return err
		}
		if len(ids) != len(entries) {
			return fmt.Errorf("published %d entries but got %d stream ids", len(entries), len(ids))
		}
		ms := make([]int64, len(ids))
		seq := make([]int64, len(ids))
		for i, id := range ids {
			if id.IsZero() || id.Ms < 0 || id.Seq < 0 {
				return fmt.Errorf("entry %d: bad stream id %s", entries[i].ID, id)
			}
			ms[i], seq[i] = id.Ms, id.Seq
		}
		if _, err := tx.Exec(ctx, `UPDATE `+s.outboxTable()+` AS o SET stream_ms = u.ms, stream_seq = u.seq
FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS u(id, ms, seq) WHERE o.id = u.id`, entryIDs(entries), ms, seq); err != nil {
			return err
		}
		n = len(entries)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("relay outbox of schema %s: %w", s.schema, err)
	}
	return n, nil
}

// SettleOutbox settles up to limit published entries whose stream id is
// below handled, the stream position before which every consumer group has
// handled the stream, lowest stream id first: present, given the entries,
// reports (in their order) whether each one's stream entry is still in the
// stream. An entry whose stream entry is there was handled by every group
// and is deleted; one whose stream entry is not was lost by Redis (or
// deleted from the stream by hand) before every group could read it, and is
// marked unpublished, to be published again. It returns how many entries it
// deleted and how many it marked unpublished; fewer than limit in all means
// none is left below handled (but those other callers hold).
//
// The entries are locked (FOR UPDATE SKIP LOCKED) from the moment they are
// read until the deletion or the marking commits, so callers running at
// once settle each entry once, and nothing else changes an entry while
// present looks at it. An entry whose stream entry was removed by a trim
// the caller made must not be found missing: trim a stream only below the
// lowest stream id the outbox still holds (OutboxOldestPublished).
func (s *Store) SettleOutbox(ctx context.Context, handled StreamID, limit int, present func(context.Context, []OutboxEntry) ([]bool, error)) (deleted, unpublished int, err error) {
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT `+outboxColumns+` FROM `+s.outboxTable()+`
WHERE stream_ms IS NOT NULL AND (stream_ms, stream_seq) < ($1, $2)
ORDER BY stream_ms, stream_seq LIMIT $3 FOR UPDATE SKIP LOCKED`, handled.Ms, handled.Seq, limit)
		if err != nil {
			return err
		}
		entries, err := scanOutboxEntries(rows)
		if err != nil || len(entries) == 0 {
			return err
		}
		there, err := present(ctx, entries)
		if err != nil {
			return err
		}
		if len(there) != len(entries) {
			return fmt.Errorf("checked %d entries but got %d answers", len(entries), len(there))
		}
		var handledIDs, lostIDs []int64
		for i, e := range entries {
			if there[i] {
				handledIDs = append(handledIDs, e.ID)
			} else {
				lostIDs = append(lostIDs, e.ID)
			}
		}
		if len(handledIDs) > 0 {
			if _, err := tx.Exec(ctx, `DELETE FROM `+s.outboxTable()+` WHERE id = ANY($1)`, handledIDs); err != nil {
				return err
			}
		}
		if len(lostIDs) > 0 {
			if _, err := tx.Exec(ctx, `UPDATE `+s.outboxTable()+` SET stream_ms = NULL, stream_seq = NULL WHERE id = ANY($1)`, lostIDs); err != nil {
				return err
			}
		}
		deleted, unpublished = len(handledIDs), len(lostIDs)
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("settle outbox of schema %s: %w", s.schema, err)
	}
	return deleted, unpublished, nil
}

// StreamBounds are the ends of a stream: every entry it holds has an id in
// [First, Last].
type StreamBounds struct {
	// First is the id of the stream's first entry; for an empty stream, the
	// id after Last; for a missing stream, zero.
	First StreamID
	// Last is the id of the stream's last entry; for an empty stream, the
	// last id it gave (last-generated-id); for a missing stream, zero.
	Last StreamID
}

// UnpublishLostOutbox marks unpublished the published entries the stream
// cannot hold, so that they are published again, and returns how many it
// marked. Those are the entries whose stream id is
//
//   - above bounds' Last: the stream does not hold it (Redis restarted from
//     an older snapshot, or empty, or the stream was deleted and made
//     again);
//   - below bounds' First: the stream no longer holds it, and it was not
//     trimmed, because a stream is trimmed only below the oldest entry the
//     outbox holds (see SettleOutbox), so it was lost (a stream made again
//     after a loss starts after every entry of the lost one).
//
// bounds returns the stream's StreamBounds (zero for a stream that does not
// exist: every entry is lost).
//
// The order of the reads makes the first rule exact: the highest stream id
// held is read first, then bounds is called, then only entries up to that
// highest id are marked. An entry published before the first read was added
// to the stream before bounds is asked, so if the stream still holds it, its
// id is at most Last: it is not marked. An entry published after the first
// read (into the same stream, or into a new one made after a loss) has a
// higher id than any before it, so it is above the highest id read and is
// not marked either, unless Redis's clock went back; then it is published
// twice, which consumers tolerate. The second rule has one harmless miss: a
// relay that commits an entry only after the dispatchers handled it and
// trimmed it from the stream (an entry is recorded as published only once
// added) makes it look lost, and it is published (and ignored) twice.
func (s *Store) UnpublishLostOutbox(ctx context.Context, bounds func(context.Context) (StreamBounds, error)) (int64, error) {
	top, err := s.outboxEnd(ctx, "DESC")
	if err != nil || top.IsZero() {
		return 0, err
	}
	b, err := bounds(ctx)
	if err != nil {
		return 0, fmt.Errorf("outbox of schema %s: stream bounds: %w", s.schema, err)
	}
	if !b.Last.Less(top) {
		// None above Last: any below First?
		oldest, err := s.outboxEnd(ctx, "ASC")
		if err != nil || !oldest.Less(b.First) {
			return 0, err
		}
	}
	tag, err := s.pool.Exec(ctx, `UPDATE `+s.outboxTable()+` SET stream_ms = NULL, stream_seq = NULL
WHERE stream_ms IS NOT NULL AND (stream_ms, stream_seq) <= ($1, $2)
AND ((stream_ms, stream_seq) < ($3, $4) OR (stream_ms, stream_seq) > ($5, $6))`,
		top.Ms, top.Seq, b.First.Ms, b.First.Seq, b.Last.Ms, b.Last.Seq)
	if err != nil {
		return 0, fmt.Errorf("outbox of schema %s: unpublish lost entries: %w", s.schema, err)
	}
	return tag.RowsAffected(), nil
}

// OutboxOldestPublished returns the lowest stream id of the published
// entries, or the zero StreamID when there is none. A stream must not be
// trimmed above it: the outbox still needs to find that entry in the stream
// (see SettleOutbox).
func (s *Store) OutboxOldestPublished(ctx context.Context) (StreamID, error) {
	return s.outboxEnd(ctx, "ASC")
}

// outboxEnd returns the lowest (dir "ASC") or highest ("DESC") published
// stream id, zero when none.
func (s *Store) outboxEnd(ctx context.Context, dir string) (StreamID, error) {
	var id StreamID
	err := s.pool.QueryRow(ctx, `SELECT stream_ms, stream_seq FROM `+s.outboxTable()+`
WHERE stream_ms IS NOT NULL ORDER BY stream_ms `+dir+`, stream_seq `+dir+` LIMIT 1`).Scan(&id.Ms, &id.Seq)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return StreamID{}, nil
	case err != nil:
		return StreamID{}, fmt.Errorf("outbox of schema %s: %w", s.schema, err)
	}
	return id, nil
}

// OutboxLen returns how many entries the outbox holds: every change not yet
// known to be handled by every consumer group of the stream, published or
// not (OutboxCounts tells them apart). It is zero once everything written
// was handled.
func (s *Store) OutboxLen(ctx context.Context) (int64, error) {
	c, err := s.OutboxCounts(ctx)
	return c.Total(), err
}

// OutboxCounts returns how many entries the outbox holds, unpublished and
// published.
func (s *Store) OutboxCounts(ctx context.Context) (OutboxCounts, error) {
	var c OutboxCounts
	err := s.pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE stream_ms IS NULL), count(*) FILTER (WHERE stream_ms IS NOT NULL) FROM `+s.outboxTable()).
		Scan(&c.Unpublished, &c.Published)
	if err != nil {
		return OutboxCounts{}, fmt.Errorf("outbox of schema %s: %w", s.schema, err)
	}
	return c, nil
}

// Referrers returns, in id order and each once, the ids of the objects of
// model whose integer column via holds one of ids: the objects that reach
// those ids through that column, deleted or not. Watchers use it to follow
// links in reverse.
func (s *Store) Referrers(ctx context.Context, model, via string, ids []int64) ([]int64, error) {
	m, err := s.model(model)
	if err != nil {
		return nil, err
	}
	f, ok := m.Field(via)
	if !ok || !f.Integer {
		return nil, fmt.Errorf("referrers: %s has no integer column %q", model, via)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT DISTINCT id FROM `+s.table(m)+` WHERE `+pgx.Identifier{via}.Sanitize()+` = ANY($1) ORDER BY id`, ids)
	if err != nil {
		return nil, fmt.Errorf("referrers of %s via %s: %w", model, via, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("referrers of %s via %s: %w", model, via, err)
	}
	return out, nil
}
