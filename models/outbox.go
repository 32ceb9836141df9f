package models

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// The outbox makes every committed change reach the watchers, even when a
// process dies between the PostgreSQL commit and the publication to Redis (a
// transactional outbox). A store built WithOutbox(true) writes each Change it
// announces into the outbox table in the same transaction as the change
// itself, so the change and its outbox row commit or vanish together; a relay
// (package watchers) then publishes the rows to Redis and deletes them
// (RelayOutbox).
//
// The table is OutboxTable in the store's schema. Its name starts with an
// underscore, which no model's table can (model names start with a letter),
// so it never collides with a model. Migrate always creates it, so turning
// the outbox on needs no migration; only a store with the outbox on writes
// it, so it stays empty (and bounded) while watchers are disabled. While the
// outbox is on and no relay runs, rows wait in it: nothing is lost, and they
// are published when a relay starts.

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

// OutboxEntry is one change waiting in the outbox.
type OutboxEntry struct {
	// ID orders the entries (in the order their transactions took an id,
	// which is not always the order they committed in).
	ID int64
	// Event identifies the change for good: a random UUID, unlike ID never
	// reused even if the table is recreated. Consumers deduplicate on it.
	Event string
	// Change is the Change, as JSON.
	Change json.RawMessage
	// Created is when the change was made.
	Created time.Time
}

func (s *Store) outboxTable() string { return pgx.Identifier{s.schema, OutboxTable}.Sanitize() }

// outboxDDL creates the outbox table (gen_random_uuid needs PostgreSQL 13).
func (s *Store) outboxDDL() []string {
	return []string{`CREATE TABLE IF NOT EXISTS ` + s.outboxTable() + ` (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	event uuid NOT NULL DEFAULT gen_random_uuid(),
	change jsonb NOT NULL,
	created timestamptz NOT NULL DEFAULT clock_timestamp())`}
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

// RelayOutbox hands up to limit outbox entries, oldest first, to publish,
// and deletes them when publish returns nil; it returns how many it relayed.
// It holds a transaction meanwhile, with the entries locked (FOR UPDATE SKIP
// LOCKED): relays running at once share the work and never publish an entry
// both, and an entry whose publish fails, or whose deletion is lost in a
// crash, stays in the outbox and is published again later. Consumers must
// therefore tolerate an entry published twice (deduplicate on Event).
func (s *Store) RelayOutbox(ctx context.Context, limit int, publish func(context.Context, []OutboxEntry) error) (int, error) {
	n := 0
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT id, event::text, change, created FROM `+s.outboxTable()+` ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED`, limit)
		if err != nil {
			return err
		}
		entries, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (OutboxEntry, error) {
			var e OutboxEntry
			var change []byte
			err := r.Scan(&e.ID, &e.Event, &change, &e.Created)
			e.Change = change
			return e, err
		})
		if err != nil || len(entries) == 0 {
			return err
		}
		if err := publish(ctx, entries); err != nil {
			return err
		}
		ids := make([]int64, len(entries))
		for i, e := range entries {
			ids[i] = e.ID
		}
		if _, err := tx.Exec(ctx, `DELETE FROM `+s.outboxTable()+` WHERE id = ANY($1)`, ids); err != nil {
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

// OutboxLen returns how many entries wait in the outbox.
func (s *Store) OutboxLen(ctx context.Context) (int64, error) {
	var n int64
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM `+s.outboxTable()).Scan(&n); err != nil {
		return 0, fmt.Errorf("outbox of schema %s: %w", s.schema, err)
	}
	return n, nil
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
