package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync/internal/testenv"
)

// The audit counts overlapping calls of one object, taking a call without
// an end as ended when its process died, or never when it did not die;
// and calls on an older version than an earlier call saw.
func TestAuditRead(t *testing.T) {
	pool, schema := testenv.Schema(t)
	ctx := context.Background()
	calls, deaths := pgx.Identifier{schema, "soak_calls"}.Sanitize(), pgx.Identifier{schema, "soak_deaths"}.Sanitize()
	_, err := pool.Exec(ctx, fmt.Sprintf(callsDDL, calls)+"; "+fmt.Sprintf(deathsDDL, deaths))
	require.NoError(t, err)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	v1, v2 := at(-100), at(-50)
	add := func(proc int, object int64, updated time.Time, start int, end *int, outcome string) {
		var endAt, out any
		if end != nil {
			endAt, out = at(*end), outcome
		}
		_, err := pool.Exec(ctx, `INSERT INTO `+calls+` (proc, pid, op, model, object, updated, start_at, end_at, outcome)
			VALUES ($1, $1 + 1000, 'sync', 'Item', $2, $3, $4, $5, $6)`, proc, object, updated, at(start), endAt, out)
		require.NoError(t, err)
	}
	end := func(s int) *int { return &s }
	// Object 1: process 10's call is cut by its death at 5; process 20 repeats it
	// at 6 (no overlap), then syncs v2.
	add(10, 1, v1, 1, nil, "")
	add(20, 1, v1, 6, end(7), "ok")
	add(20, 1, v2, 8, end(9), "ok")
	// Object 2: process 30 (alive) never ended its call: process 20's later call
	// overlaps it; then a call on v1 after one on v2 is stale.
	add(30, 2, v2, 1, nil, "")
	add(20, 2, v2, 10, end(11), "error")
	add(20, 2, v1, 12, end(13), "ok")
	_, err = pool.Exec(ctx, `INSERT INTO `+deaths+` VALUES (10, 1010, $1, true)`, at(5))
	require.NoError(t, err)

	var a audit
	require.NoError(t, a.read(ctx, pool, calls, deaths))
	require.Equal(t, audit{calls: 6, cut: 1, synced: 3, errs: 1, retries: 2, concurrent: 2, stale: 1}, a)
	bad, err := badCalls(ctx, pool, calls, deaths)
	require.NoError(t, err)
	require.Len(t, bad, 3)
	for i, call := range []string{"call 4 proc 30", "call 5 proc 20", "call 6 proc 20"} {
		require.Contains(t, bad[i], "Item 2: "+call)
	}

	// Had process 10 died only at 6.5, its cut call would overlap process 20's.
	_, err = pool.Exec(ctx, `UPDATE `+deaths+` SET died_at = $1`, at(6).Add(500*time.Millisecond))
	require.NoError(t, err)
	a = audit{}
	require.NoError(t, a.read(ctx, pool, calls, deaths))
	require.Equal(t, 3, a.concurrent)
	bad, err = badCalls(ctx, pool, calls, deaths)
	require.NoError(t, err)
	require.Len(t, bad, 6)
}

func TestFaultPool(t *testing.T) {
	kinds, err := faultPool("kill, blackhole")
	require.NoError(t, err)
	require.Equal(t, []string{"kill", "kill", "kill", "blackhole"}, kinds)
	_, err = faultPool("kill,fire")
	require.ErrorContains(t, err, `unknown kind "fire"`)
	all, err := faultPool(strings.Join(allFaults(), ","))
	require.NoError(t, err)
	require.Len(t, all, 10)
	require.Equal(t, []string{"blackhole", "kill", "latency", "pg-cut", "reset"}, allFaults())
}
