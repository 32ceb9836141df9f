package watchers

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tsync/tsync/models"
)

// HandledTable is the table, in the store's schema, of the changes each
// watcher handled for each object: the record that keeps a change delivered
// again after its WatchObjectWorkflow closed from running twice.
const HandledTable = "_tsync_watch_handled"

// DefaultHandledRetention is Options.HandledRetention's default.
const DefaultHandledRetention = 7 * 24 * time.Hour

// handledLog reads and writes HandledTable of a store, creating it on
// first use.
type handledLog struct {
	mu   sync.Mutex
	made bool
}

func handledTable(store *models.Store) string {
	return pgx.Identifier{store.Schema(), HandledTable}.Sanitize()
}

// ensure creates the table when missing.
func (h *handledLog) ensure(ctx context.Context, store *models.Store) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.made {
		return nil
	}
	_, err := store.Pool().Exec(ctx, `CREATE TABLE IF NOT EXISTS `+handledTable(store)+` (
	watcher text NOT NULL,
	model text NOT NULL,
	id bigint NOT NULL,
	event text NOT NULL,
	at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (watcher, model, id, event))`)
	if err == nil {
		_, err = store.Pool().Exec(ctx, `CREATE INDEX IF NOT EXISTS `+pgx.Identifier{HandledTable + "_at"}.Sanitize()+` ON `+handledTable(store)+` (at)`)
	}
	if err != nil {
		return fmt.Errorf("create %s: %w", HandledTable, err)
	}
	h.made = true
	return nil
}

// seen reports whether watcher handled event for object.
func (h *handledLog) seen(ctx context.Context, store *models.Store, watcher string, object models.Ref, event string) (bool, error) {
	if err := h.ensure(ctx, store); err != nil {
		return false, err
	}
	var n int
	err := store.Pool().QueryRow(ctx, `SELECT count(*) FROM `+handledTable(store)+` WHERE watcher = $1 AND model = $2 AND id = $3 AND event = $4`,
		watcher, object.Model, object.ID, event).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("read %s: %w", HandledTable, err)
	}
	return n > 0, nil
}

// record records that watcher handled event for object.
func (h *handledLog) record(ctx context.Context, store *models.Store, watcher string, object models.Ref, event string) error {
	if err := h.ensure(ctx, store); err != nil {
		return err
	}
	_, err := store.Pool().Exec(ctx, `INSERT INTO `+handledTable(store)+` (watcher, model, id, event) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`,
		watcher, object.Model, object.ID, event)
	if err != nil {
		return fmt.Errorf("write %s: %w", HandledTable, err)
	}
	return nil
}

// prune deletes the records older than retention.
func (h *handledLog) prune(ctx context.Context, store *models.Store, retention time.Duration) (int64, error) {
	if err := h.ensure(ctx, store); err != nil {
		return 0, err
	}
	tag, err := store.Pool().Exec(ctx, `DELETE FROM `+handledTable(store)+` WHERE at < now() - $1::interval`, fmt.Sprintf("%d milliseconds", retention.Milliseconds()))
	if err != nil {
		return 0, fmt.Errorf("prune %s: %w", HandledTable, err)
	}
	return tag.RowsAffected(), nil
}
