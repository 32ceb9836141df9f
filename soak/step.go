package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tsync/tsync"
	"github.com/tsync/tsync/internal/testmodels"
	"github.com/tsync/tsync/models"
)

// soakModels is the soak's models: the chain Site <- Slice, and independent
// Items.
func soakModels() []models.Object {
	return []models.Object{new(testmodels.Site), new(testmodels.Slice), new(testmodels.Item)}
}

// synchronizer is the soak's synchronizer: st on every model.
func synchronizer(st *step) tsync.Synchronizer {
	return tsync.Synchronizer{Models: testmodels.Registry(soakModels()...), Steps: []tsync.Step{st}}
}

// step syncs every model, failing or deferring at random while chaos is on,
// and records each call in the table calls (see callsDDL).
type step struct {
	chaos atomic.Bool
	pool  *pgxpool.Pool
	calls string // the calls table, quoted
	proc  int    // the worker process's number in the soak
}

// callsDDL creates the calls table: one row a step call, from any worker
// process (proc: its number in the soak, unique where a pid may be reused);
// end_at and outcome stay NULL for a call its process's death cut short.
const callsDDL = `CREATE TABLE %s (call bigserial PRIMARY KEY, proc int NOT NULL, pid int NOT NULL, op text NOT NULL,
	model text NOT NULL, object bigint NOT NULL, updated timestamptz NOT NULL,
	start_at timestamptz NOT NULL, end_at timestamptz, outcome text)`

func (s *step) Synchronizes() []models.Object { return soakModels() }

// record runs body as a call of op on obj, recorded in the calls table from
// its start to its outcome.
func (s *step) record(ctx context.Context, op string, obj models.Object, body func(context.Context) (string, error)) error {
	r := testmodels.RefOf(obj)
	var call int64
	// Not cancelled with the call: a start committed but not seen by the
	// call (its context ended during the INSERT) would be a call that never
	// ended, overlapping the next one in the audit though its body never
	// ran.
	if err := s.pool.QueryRow(context.WithoutCancel(ctx), `INSERT INTO `+s.calls+` (proc, pid, op, model, object, updated, start_at)
		VALUES ($1, $2, $3, $4, $5, $6, clock_timestamp()) RETURNING call`, s.proc, os.Getpid(), op, r.Model, r.ID, obj.SyncState().Updated).Scan(&call); err != nil {
		return fmt.Errorf("record the call: %w", err)
	}
	outcome, err := body(ctx)
	if _, rerr := s.pool.Exec(context.WithoutCancel(ctx), `UPDATE `+s.calls+` SET end_at = clock_timestamp(), outcome = $2 WHERE call = $1`, call, outcome); rerr != nil {
		return errors.Join(err, fmt.Errorf("record the outcome: %w", rerr))
	}
	return err
}

func (s *step) SyncRecord(ctx context.Context, obj models.Object) error {
	return s.record(ctx, "sync", obj, func(ctx context.Context) (string, error) {
		select {
		case <-time.After(time.Duration(rand.IntN(20)) * time.Millisecond):
		case <-ctx.Done():
			return "cancelled", ctx.Err()
		}
		if s.chaos.Load() {
			switch n := rand.IntN(100); {
			case n < 10:
				return "error", errors.New("injected failure")
			case n < 15:
				return "deferred", tsync.Deferf("injected deferral")
			}
		}
		return "ok", nil
	})
}

func (s *step) DeleteRecord(ctx context.Context, obj models.Object) error {
	return s.record(ctx, "delete", obj, func(ctx context.Context) (string, error) {
		if s.chaos.Load() && rand.IntN(100) < 10 {
			return "error", errors.New("injected delete failure")
		}
		return "ok", nil
	})
}
