package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tsync/tsync/internal/syncstate"
	"github.com/tsync/tsync/internal/testmodels"
	"github.com/tsync/tsync/models"
)

// The runs of tsync: independent objects, the DAG, pickup latency and
// FetchPending on a large table.

func (b *bench) independent(ctx context.Context, n int) (float64, error) {
	e, cleanup, err := b.open(ctx, noop{})
	if err != nil {
		return 0, err
	}
	defer cleanup()
	if err := e.insertItems(ctx, n); err != nil {
		return 0, err
	}
	stopWorkers, err := e.runWorkers(ctx)
	if err != nil {
		return 0, err
	}
	defer stopWorkers()
	start := time.Now()
	defer e.runStarter(ctx)()
	if err := e.waitInSync(ctx, "item"); err != nil {
		return 0, err
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

func (b *bench) dag(ctx context.Context, sites, networks, slicesPer, instances int) (int, time.Duration, error) {
	e, cleanup, err := b.open(ctx, noop{})
	if err != nil {
		return 0, 0, err
	}
	defer cleanup()
	if err := e.insertDAG(ctx, sites, networks, slicesPer, instances); err != nil {
		return 0, 0, err
	}
	count := sites * (1 + networks + slicesPer + slicesPer*instances)
	stopWorkers, err := e.runWorkers(ctx)
	if err != nil {
		return 0, 0, err
	}
	defer stopWorkers()
	start := time.Now()
	defer e.runStarter(ctx)()
	defer e.watchStalls(ctx, b.out, "Site", "Network", "Slice", "Instance")()
	if err := e.waitInSync(ctx, "site", "network", "slice", "instance"); err != nil {
		return 0, 0, err
	}
	took := time.Since(start)
	if err := e.reportUnsynced(ctx, b.out); err != nil {
		return 0, 0, err
	}
	return count, took, nil
}

// insertDAG inserts sites, each with its networks and slices, and the
// instances of each slice attached to one of its site's networks.
func (e *env) insertDAG(ctx context.Context, sites, networks, slicesPer, instances int) error {
	// Ids are dense from 1, in insertion order, so children can name parents.
	stmts := []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO ` + e.table("site") + ` (name) SELECT 'site-' || s FROM generate_series(1, $1) s`, []any{sites}},
		{`INSERT INTO ` + e.table("network") + ` (name, site_id) SELECT 'net-' || s || '-' || k, s FROM generate_series(1, $1) s, generate_series(1, $2) k ORDER BY s, k`, []any{sites, networks}},
		{`INSERT INTO ` + e.table("slice") + ` (name, site_id) SELECT 'slice-' || s || '-' || k, s FROM generate_series(1, $1) s, generate_series(1, $2) k ORDER BY s, k`, []any{sites, slicesPer}},
		{`INSERT INTO ` + e.table("instance") + ` (name, slice_id, network_id)
			SELECT 'vm-' || sl || '-' || i, sl, ((sl - 1) / $2::int) * $3::int + 1 + (i % $3::int)
			FROM generate_series(1, $1::int * $2::int) sl, generate_series(1, $4::int) i ORDER BY sl, i`, []any{sites, slicesPer, networks, instances}},
	}
	for _, s := range stmts {
		if _, err := e.pool.Exec(ctx, s.sql, s.args...); err != nil {
			return err
		}
	}
	return nil
}

func (b *bench) pickup(ctx context.Context, samples int) (time.Duration, time.Duration, error) {
	started := make(chan time.Time, 1)
	e, cleanup, err := b.open(ctx, noop{started: started})
	if err != nil {
		return 0, 0, err
	}
	defer cleanup()
	e.workers = 0 // the step tells this process when it starts
	stop := e.run(ctx)
	defer stop()
	time.Sleep(2 * time.Second) // idle: worker polling, starter listening
	return sampleLatency(samples, started, "pickup: no SyncRecord", func(int) error {
		return e.app.Store.Insert(ctx, &testmodels.Item{Name: "pickup"})
	})
}

func (b *bench) fetch(ctx context.Context, rows, pending int) (time.Duration, string, error) {
	e, cleanup, err := b.open(ctx, noop{})
	if err != nil {
		return 0, "", err
	}
	defer cleanup()
	t := e.table("item")
	// In sync rows, then pending ones spread over the id range.
	if _, err := e.pool.Exec(ctx, `INSERT INTO `+t+` (name, updated, enacted, backend_code, backend_status)
		SELECT 'row-' || g, now(), now(), 1, 'OK' FROM generate_series(1, $1) g`, rows); err != nil {
		return 0, "", err
	}
	if _, err := e.pool.Exec(ctx, `UPDATE `+t+` SET enacted = NULL, backend_code = 0 WHERE id % ($1::bigint / $2::bigint) = 0`, rows, pending); err != nil {
		return 0, "", err
	}
	if _, err := e.pool.Exec(ctx, `ANALYZE `+t); err != nil {
		return 0, "", err
	}
	var times []time.Duration
	for range 30 {
		start := time.Now()
		ids, err := syncstate.New(e.app.Store).FetchPending(ctx, "Item", false, 0, pending)
		if err != nil {
			return 0, "", err
		}
		times = append(times, time.Since(start))
		if len(ids) != pending {
			return 0, "", fmt.Errorf("fetch: got %d pending, want %d", len(ids), pending)
		}
	}
	slices.Sort(times)
	var plan []string
	rowsPlan, err := e.pool.Query(ctx, `EXPLAIN SELECT id FROM `+t+` WHERE `+models.PendingPredicate+` AND id > $1 ORDER BY id LIMIT $2`, 0, pending)
	if err != nil {
		return 0, "", err
	}
	for rowsPlan.Next() {
		var line string
		if err := rowsPlan.Scan(&line); err != nil {
			return 0, "", err
		}
		plan = append(plan, strings.TrimSpace(line))
	}
	rowsPlan.Close()
	return percentile(times, 50), strings.Join(plan, " | "), nil
}
