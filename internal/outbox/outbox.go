package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tsync/tsync/models"
)

// Outbox is the outbox of a model store (see the package doc).
type Outbox struct {
	store *models.Store
}

// New returns the outbox of store. It is used whether or not store writes
// its outbox (models.WithOutbox): without, it stays empty.
func New(store *models.Store) *Outbox { return &Outbox{store: store} }

// Entry is one change kept in the outbox.
type Entry struct {
	// ID orders the entries (in the order their transactions took an id,
	// which is not always the order they committed in).
	ID int64
	// Event identifies the change for good: a random UUID, unlike ID never
	// reused even if the table is recreated, and the same every time the
	// entry is published. Consumers deduplicate on it.
	Event string
	// Change is the models.Change, as JSON.
	Change json.RawMessage
	// Created is when the change was made.
	Created time.Time
	// Stream is the stream entry the entry was last published as; zero while
	// it is unpublished.
	Stream StreamID
}

// Counts says what the outbox holds.
type Counts struct {
	// Unpublished entries wait for a relay (new, or found lost by Redis).
	Unpublished int64
	// Published entries are in the stream (as far as the outbox knows) and
	// wait until every consumer group has handled them.
	Published int64
}

// Total is every entry the outbox holds: the changes not yet known to be
// handled by every consumer group.
func (c Counts) Total() int64 { return c.Unpublished + c.Published }

func (o *Outbox) table() string {
	return pgx.Identifier{o.store.Schema(), models.OutboxTable}.Sanitize()
}

const columns = `id, event::text, change, created, coalesce(stream_ms, 0), coalesce(stream_seq, 0)`

func scanEntries(rows pgx.Rows) ([]Entry, error) {
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Entry, error) {
		var e Entry
		var change []byte
		err := r.Scan(&e.ID, &e.Event, &change, &e.Created, &e.Stream.Ms, &e.Stream.Seq)
		e.Change = change
		return e, err
	})
}

func entryIDs(entries []Entry) []int64 {
	ids := make([]int64, len(entries))
	for i, e := range entries {
		ids[i] = e.ID
	}
	return ids
}

// Relay hands up to limit unpublished outbox entries, oldest first, to
// publish, which returns the stream id each became (in the entries' order),
// and records those ids; it returns how many entries it relayed. The entries
// stay in the outbox, published, until Settle deletes them.
//
// It holds a transaction meanwhile, with the entries locked (FOR UPDATE SKIP
// LOCKED): relays running at once share the work and never publish an entry
// both, and an entry whose publish fails, or whose stream id is lost in a
// crash, stays unpublished and is published again later (with a new stream
// id). Consumers must therefore tolerate an entry published twice
// (deduplicate on Event).
func (o *Outbox) Relay(ctx context.Context, limit int, publish func(context.Context, []Entry) ([]StreamID, error)) (int, error) {
	n := 0
	err := pgx.BeginFunc(ctx, o.store.Pool(), func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT `+columns+` FROM `+o.table()+` WHERE stream_ms IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED`, limit)
		if err != nil {
			return err
		}
		entries, err := scanEntries(rows)
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
		if _, err := tx.Exec(ctx, `UPDATE `+o.table()+` AS o SET stream_ms = u.ms, stream_seq = u.seq
FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS u(id, ms, seq) WHERE o.id = u.id`, entryIDs(entries), ms, seq); err != nil {
			return err
		}
		n = len(entries)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("relay outbox of schema %s: %w", o.store.Schema(), err)
	}
	return n, nil
}

// Settle settles up to limit published entries whose stream id is below
// handled, the stream position before which every consumer group has
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
// lowest stream id the outbox still holds (OldestPublished).
func (o *Outbox) Settle(ctx context.Context, handled StreamID, limit int, present func(context.Context, []Entry) ([]bool, error)) (deleted, unpublished int, err error) {
	err = pgx.BeginFunc(ctx, o.store.Pool(), func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT `+columns+` FROM `+o.table()+`
WHERE stream_ms IS NOT NULL AND (stream_ms, stream_seq) < ($1, $2)
ORDER BY stream_ms, stream_seq LIMIT $3 FOR UPDATE SKIP LOCKED`, handled.Ms, handled.Seq, limit)
		if err != nil {
			return err
		}
		entries, err := scanEntries(rows)
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
			if _, err := tx.Exec(ctx, `DELETE FROM `+o.table()+` WHERE id = ANY($1)`, handledIDs); err != nil {
				return err
			}
		}
		if len(lostIDs) > 0 {
			if _, err := tx.Exec(ctx, `UPDATE `+o.table()+` SET stream_ms = NULL, stream_seq = NULL WHERE id = ANY($1)`, lostIDs); err != nil {
				return err
			}
		}
		deleted, unpublished = len(handledIDs), len(lostIDs)
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("settle outbox of schema %s: %w", o.store.Schema(), err)
	}
	return deleted, unpublished, nil
}

// UnpublishLost marks unpublished the published entries the stream cannot
// hold, so that they are published again, and returns how many it marked.
// Those are the entries whose stream id is
//
//   - above bounds' Last: the stream does not hold it (Redis restarted from
//     an older snapshot, or empty, or the stream was deleted and made
//     again);
//   - below bounds' First: the stream no longer holds it, and it was not
//     trimmed, because a stream is trimmed only below the oldest entry the
//     outbox holds (see Settle), so it was lost (a stream made again after a
//     loss starts after every entry of the lost one).
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
func (o *Outbox) UnpublishLost(ctx context.Context, bounds func(context.Context) (StreamBounds, error)) (int64, error) {
	top, err := o.end(ctx, "DESC")
	if err != nil || top.IsZero() {
		return 0, err
	}
	b, err := bounds(ctx)
	if err != nil {
		return 0, fmt.Errorf("outbox of schema %s: stream bounds: %w", o.store.Schema(), err)
	}
	if !b.Last.Less(top) {
		// None above Last: any below First?
		oldest, err := o.end(ctx, "ASC")
		if err != nil || !oldest.Less(b.First) {
			return 0, err
		}
	}
	tag, err := o.store.Pool().Exec(ctx, `UPDATE `+o.table()+` SET stream_ms = NULL, stream_seq = NULL
WHERE stream_ms IS NOT NULL AND (stream_ms, stream_seq) <= ($1, $2)
AND ((stream_ms, stream_seq) < ($3, $4) OR (stream_ms, stream_seq) > ($5, $6))`,
		top.Ms, top.Seq, b.First.Ms, b.First.Seq, b.Last.Ms, b.Last.Seq)
	if err != nil {
		return 0, fmt.Errorf("outbox of schema %s: unpublish lost entries: %w", o.store.Schema(), err)
	}
	return tag.RowsAffected(), nil
}

// OldestPublished returns the lowest stream id of the published entries, or
// the zero StreamID when there is none. A stream must not be trimmed above
// it: the outbox still needs to find that entry in the stream (see Settle).
func (o *Outbox) OldestPublished(ctx context.Context) (StreamID, error) {
	return o.end(ctx, "ASC")
}

// end returns the lowest (dir "ASC") or highest ("DESC") published stream
// id, zero when none.
func (o *Outbox) end(ctx context.Context, dir string) (StreamID, error) {
	var id StreamID
	err := o.store.Pool().QueryRow(ctx, `SELECT stream_ms, stream_seq FROM `+o.table()+`
WHERE stream_ms IS NOT NULL ORDER BY stream_ms `+dir+`, stream_seq `+dir+` LIMIT 1`).Scan(&id.Ms, &id.Seq)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return StreamID{}, nil
	case err != nil:
		return StreamID{}, fmt.Errorf("outbox of schema %s: %w", o.store.Schema(), err)
	}
	return id, nil
}

// Len returns how many entries the outbox holds: every change not yet known
// to be handled by every consumer group of the stream, published or not
// (Counts tells them apart). It is zero once everything written was
// handled.
func (o *Outbox) Len(ctx context.Context) (int64, error) {
	c, err := o.Counts(ctx)
	return c.Total(), err
}

// Counts returns how many entries the outbox holds, unpublished and
// published.
func (o *Outbox) Counts(ctx context.Context) (Counts, error) {
	var c Counts
	err := o.store.Pool().QueryRow(ctx, `SELECT count(*) FILTER (WHERE stream_ms IS NULL), count(*) FILTER (WHERE stream_ms IS NOT NULL) FROM `+o.table()).
		Scan(&c.Unpublished, &c.Published)
	if err != nil {
		return Counts{}, fmt.Errorf("outbox of schema %s: %w", o.store.Schema(), err)
	}
	return c, nil
}
