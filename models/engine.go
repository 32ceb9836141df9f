package models

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// The helpers in this file give the engine's halves of the store
// (internal/syncstate: sync-state writers and engine queries;
// internal/outbox: the outbox's stream bookkeeping) the store's own SQL
// pieces, so that a table, a column list or a change announcement is written
// in one place. Step authors do not need them.

// BumpUpdated is the SET clause with which every content write bumps
// updated. It keeps updated strictly increasing even for two writes within
// one clock tick, so that no change can hide behind an equal timestamp.
const BumpUpdated = `updated = greatest(clock_timestamp(), updated + interval '1 microsecond')`

// Table returns the quoted, schema-qualified name of m's table.
func (s *Store) Table(m *Model) string { return s.table(m) }

// SelectColumns returns the columns of an object of m, quoted and
// comma-separated, in the order of ScanTargets: the sync state, then the
// content.
func (m *Model) SelectColumns() string { return m.columns() }

// ScanTargets returns pointers into obj (an object of m) for the columns of
// SelectColumns.
func (m *Model) ScanTargets(obj Object) []any { return m.scanTargets(obj) }

// Writable returns the columns a content write sets (content, then the
// operator flags no_sync, lazy_blocked and write_protect) and obj's values
// for them.
func (m *Model) Writable(obj Object) (cols []string, vals []any) { return m.writable(obj) }

// FetchPredicates returns the conditions of the pending scans, which the
// partial indexes Migrate creates serve: pending for sync (for a model with
// policies, also needing its policies) and pending for deletion.
func (m *Model) FetchPredicates() (pending, deleting string) { return m.fetchPredicates() }

// GetForUpdate loads object id of model name in tx, fresh, and locks its row
// until tx ends.
func (s *Store) GetForUpdate(ctx context.Context, tx pgx.Tx, model string, id int64) (Object, error) {
	m, err := s.model(model)
	if err != nil {
		return nil, err
	}
	return s.get(ctx, tx, m, id, true)
}

// Announce announces c in tx as every write of the store does: on the
// store's channel and, with the outbox on, in the outbox, both only if tx
// commits.
func (s *Store) Announce(ctx context.Context, tx pgx.Tx, c Change) error { return s.notify(ctx, tx, c) }
