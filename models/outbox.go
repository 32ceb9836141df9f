package models

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// The outbox: a store built WithOutbox(true) writes each Change it
// announces into the outbox table, in the same transaction as the change
// itself, so that the watchers get every committed change even when a
// process or Redis fails. The protocol, and the code that publishes and
// settles the entries, are in package internal/outbox.

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
