package models

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrNotFound is returned (wrapped) when an object does not exist.
var ErrNotFound = errors.New("object not found")

// Change is what the store announces on its NOTIFY channel for every
// committed change.
type Change struct {
	Model string `json:"model"`
	ID    int64  `json:"id"`
	// Op is what happened.
	Op Op `json:"op"`
	// Fields lists the columns whose value changed (for "update").
	Fields []string `json:"fields,omitempty"`
	// Count is the number of rows of an OpMany announcement (ID is 0).
	Count int64 `json:"count,omitempty"`
	// Updated is the object's updated value after the change (before it,
	// for a hard delete): the version of its content the change made.
	// Zero for OpMany and in announcements made before it was added.
	Updated time.Time `json:"updated,omitzero"`
}

// Store keeps the objects of a Graph's models in PostgreSQL, in one schema.
// Every SQL identifier it uses is quoted by pgx.Identifier; every value is a
// query parameter.
type Store struct {
	pool   *pgxpool.Pool
	schema string
	graph  *Graph
	// outbox: every change is also written to the outbox (see outbox.go).
	outbox bool
}

var schemaName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,55}$`)

// NewStore returns a store of graph's models in the given schema, with the
// given options (see WithOutbox).
func NewStore(pool *pgxpool.Pool, schema string, graph *Graph, opts ...Option) (*Store, error) {
	if !schemaName.MatchString(schema) {
		return nil, fmt.Errorf("store: schema %q must match %s", schema, schemaName)
	}
	s := &Store{pool: pool, schema: schema, graph: graph}
	for _, o := range opts {
		o(s)
	}
	return s, nil
}

// Graph returns the store's dependency graph.
func (s *Store) Graph() *Graph { return s.graph }

// Pool returns the store's connection pool.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Schema returns the store's schema.
func (s *Store) Schema() string { return s.schema }

// Channel is the PostgreSQL NOTIFY channel on which the store announces
// every committed change, as a JSON Change.
func (s *Store) Channel() string { return "tsync_" + s.schema }

func (s *Store) table(m *Model) string { return pgx.Identifier{s.schema, m.Table}.Sanitize() }

func (s *Store) model(name string) (*Model, error) {
	m, ok := s.graph.Model(name)
	if !ok {
		return nil, fmt.Errorf("unknown model %q", name)
	}
	return m, nil
}

// PendingPredicate is the SQL condition of objects pending for sync (as in
// XOS): not deleted, not no_sync, not lazy_blocked, and never enacted or
// enacted before the last update.
const PendingPredicate = `NOT deleted AND NOT no_sync AND NOT lazy_blocked AND (enacted IS NULL OR enacted < updated)`

// DeletionPredicate is the SQL condition of objects pending for deletion.
const DeletionPredicate = `deleted AND NOT write_protect`

// Pending reports whether b is pending for sync, by PendingPredicate.
func (b *Base) Pending() bool {
	return !b.Deleted && !b.NoSync && !b.LazyBlocked && (b.Enacted == nil || b.Enacted.Before(b.Updated))
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

const baseSelect = `id, updated, enacted, policed, deleted, backend_code, backend_status, backend_need_delete, no_sync, lazy_blocked, write_protect`

func (m *Model) columns() string {
	cols := baseSelect
	for _, f := range m.Fields {
		cols += ", " + pgx.Identifier{f.Column}.Sanitize()
	}
	return cols
}

// scanTargets returns pointers into obj for the columns of m.columns().
func (m *Model) scanTargets(obj Object) []any {
	b := obj.SyncState()
	targets := []any{&b.ID, &b.Updated, &b.Enacted, &b.Policed, &b.Deleted, &b.BackendCode, &b.BackendStatus,
		&b.BackendNeedDelete, &b.NoSync, &b.LazyBlocked, &b.WriteProtect}
	v := reflect.ValueOf(obj).Elem()
	for _, f := range m.Fields {
		targets = append(targets, v.FieldByIndex(f.index).Addr().Interface())
	}
	return targets
}

func (s *Store) get(ctx context.Context, q pgx.Tx, m *Model, id int64, lock bool) (Object, error) {
	obj := m.New()
	sql := `SELECT ` + m.columns() + ` FROM ` + s.table(m) + ` WHERE id = $1`
	if lock {
		sql += ` FOR UPDATE`
	}
	var row pgx.Row
	if q != nil {
		row = q.QueryRow(ctx, sql, id)
	} else {
		row = s.pool.QueryRow(ctx, sql, id)
	}
	if err := row.Scan(m.scanTargets(obj)...); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, fmt.Errorf("%s %d: %w", m.Name, id, ErrNotFound)
		}
		return nil, fmt.Errorf("load %s %d: %w", m.Name, id, err)
	}
	return obj, nil
}

// Get loads object id of model name, fresh from the database.
func (s *Store) Get(ctx context.Context, model string, id int64) (Object, error) {
	m, err := s.model(model)
	if err != nil {
		return nil, err
	}
	return s.get(ctx, nil, m, id, false)
}

// Load loads object id of the model stored as T.
func Load[T any](ctx context.Context, s *Store, id int64) (*T, error) {
	m, ok := s.graph.byType[reflect.TypeFor[T]()]
	if !ok {
		return nil, fmt.Errorf("type %s is not a registered model", reflect.TypeFor[T]())
	}
	obj, err := s.get(ctx, nil, m, id, false)
	if err != nil {
		return nil, err
	}
	return any(obj).(*T), nil
}

func (s *Store) notify(ctx context.Context, tx pgx.Tx, c Change) error {
	payload, err := json.Marshal(c)
	if err != nil {
		return err
	}
	if s.outbox {
		return s.notifyWithOutbox(ctx, tx, payload)
	}
	_, err = tx.Exec(ctx, `SELECT pg_notify($1, $2)`, s.Channel(), string(payload))
	return err
}

// writable are the columns a save writes: content plus the operator flags.
func (m *Model) writable(obj Object) (cols []string, vals []any) {
	for _, f := range m.Fields {
		cols = append(cols, f.Column)
		vals = append(vals, m.value(obj, f))
	}
	b := obj.SyncState()
	cols = append(cols, "no_sync", "lazy_blocked", "write_protect")
	vals = append(vals, b.NoSync, b.LazyBlocked, b.WriteProtect)
	return cols, vals
}

// Insert stores a new object and sets its ID and Updated; the table's
// triggers announce it, as they do any writer's insert (see ManyChanges). A
// field value PostgreSQL cannot store as given is refused with a
// *FieldError before anything is written (see Model.Check).
func (s *Store) Insert(ctx context.Context, obj Object) error {
	m, err := s.graph.ModelOf(obj)
	if err != nil {
		return err
	}
	if err := m.Check(obj); err != nil {
		return fmt.Errorf("insert %s: %w", m.Name, err)
	}
	cols, vals := m.writable(obj)
	quoted := make([]string, len(cols))
	params := make([]string, len(cols))
	for i, c := range cols {
		quoted[i] = pgx.Identifier{c}.Sanitize()
		params[i] = fmt.Sprintf("$%d", i+1)
	}
	b := obj.SyncState()
	sql := `INSERT INTO ` + s.table(m) + ` (` + strings.Join(quoted, ", ") + `) VALUES (` + strings.Join(params, ", ") + `) RETURNING id, updated`
	if err := s.pool.QueryRow(ctx, sql, vals...).Scan(&b.ID, &b.Updated); err != nil {
		return fmt.Errorf("insert %s: %w", m.Name, err)
	}
	return nil
}

// Save writes obj's content and operator flags (no_sync, lazy_blocked,
// write_protect) and bumps updated; the table's triggers announce the
// change with the columns that changed. Sync state is never written by Save. A field value
// PostgreSQL cannot store as given is refused with a *FieldError and nothing
// is written.
func (s *Store) Save(ctx context.Context, obj Object) error {
	m, err := s.graph.ModelOf(obj)
	if err != nil {
		return err
	}
	b := obj.SyncState()
	if err := m.Check(obj); err != nil {
		return fmt.Errorf("save %s %d: %w", m.Name, b.ID, err)
	}
	cols, vals := m.writable(obj)
	var sets []string
	for i, c := range cols {
		sets = append(sets, fmt.Sprintf("%s = $%d", pgx.Identifier{c}.Sanitize(), i+2))
	}
	// The table's triggers announce the change with the columns whose
	// stored value changed (so that an unchanged value held differently in
	// memory, a time with nanoseconds or JSON formatting, is not reported).
	sql := `UPDATE ` + s.table(m) + ` SET ` + strings.Join(sets, ", ") + `, ` + BumpUpdated + ` WHERE id = $1 AND NOT deleted RETURNING updated`
	err = s.pool.QueryRow(ctx, sql, append([]any{b.ID}, vals...)...).Scan(&b.Updated)
	if errors.Is(err, pgx.ErrNoRows) {
		var deleted bool
		if qerr := s.pool.QueryRow(ctx, `SELECT deleted FROM `+s.table(m)+` WHERE id = $1`, b.ID).Scan(&deleted); qerr == nil && deleted {
			return fmt.Errorf("save %s %d: object is deleted", m.Name, b.ID)
		}
		return fmt.Errorf("save %s %d: %w", m.Name, b.ID, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("save %s %d: %w", m.Name, b.ID, err)
	}
	return nil
}

// Delete soft-deletes object id of model name: it is marked deleted, its
// updated bumped, and the change announced. The row is purged once the
// synchronizer has deleted it from the backend.
func (s *Store) Delete(ctx context.Context, model string, id int64) error {
	m, err := s.model(model)
	if err != nil {
		return err
	}
	tag, err := s.pool.Exec(ctx, `UPDATE `+s.table(m)+` SET deleted = true, `+BumpUpdated+` WHERE id = $1 AND NOT deleted`, id)
	if err != nil {
		return fmt.Errorf("delete %s %d: %w", m.Name, id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("delete %s %d: %w", m.Name, id, ErrNotFound)
	}
	return nil
}

// Touch bumps the updated column of object id of model name without
// changing its content, so that it is pending again (a forced resync), and
// announces it as an update with no changed column.
func (s *Store) Touch(ctx context.Context, model string, id int64) error {
	m, err := s.model(model)
	if err != nil {
		return err
	}
	tag, err := s.pool.Exec(ctx, `UPDATE `+s.table(m)+` SET `+BumpUpdated+` WHERE id = $1 AND NOT deleted`, id)
	if err != nil {
		return fmt.Errorf("touch %s %d: %w", m.Name, id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("touch %s %d: %w", m.Name, id, ErrNotFound)
	}
	return nil
}
