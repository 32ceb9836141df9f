package models_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync/models"
)

// withOutbox returns a store over the same schema as s with the outbox on.
func withOutbox(t testing.TB, s *models.Store) *models.Store {
	t.Helper()
	o, err := models.NewStore(s.Pool(), s.Schema(), s.Graph(), models.WithOutbox(true))
	require.NoError(t, err)
	require.True(t, o.OutboxEnabled())
	return o
}

// drain relays the whole outbox into a slice.
func drain(t testing.TB, s *models.Store) []models.OutboxEntry {
	t.Helper()
	var all []models.OutboxEntry
	for {
		n, err := s.RelayOutbox(ctx(t), 2, func(_ context.Context, es []models.OutboxEntry) error {
			all = append(all, es...)
			return nil
		})
		require.NoError(t, err)
		if n == 0 {
			return all
		}
	}
}

func TestOutboxOffWritesNothing(t *testing.T) {
	s := newStore(t, chainRegistry(t))
	require.False(t, s.OutboxEnabled())
	site := insertSite(t, s, "a")
	site.Name = "b"
	require.NoError(t, s.Save(ctx(t), site))
	require.NoError(t, s.Delete(ctx(t), "Site", site.ID))
	n, err := s.OutboxLen(ctx(t))
	require.NoError(t, err)
	require.Zero(t, n)
}

func TestOutboxRecordsEveryCommittedChange(t *testing.T) {
	s := withOutbox(t, newStore(t, chainRegistry(t)))
	c := ctx(t)

	// The store still announces every change on its channel.
	conn, err := s.Pool().Acquire(c)
	require.NoError(t, err)
	defer conn.Release()
	_, err = conn.Exec(c, `LISTEN "`+s.Channel()+`"`)
	require.NoError(t, err)

	site := insertSite(t, s, "a")
	site.Name = "b"
	require.NoError(t, s.Save(c, site))
	require.NoError(t, s.Save(c, site)) // nothing changed: announced with no fields
	require.NoError(t, s.Delete(c, "Site", site.ID))
	// Failed writes roll back: no outbox entry.
	require.Error(t, s.Save(c, site))                                    // deleted
	require.ErrorIs(t, s.Delete(c, "Site", site.ID), models.ErrNotFound) // already deleted

	for range 4 {
		wctx, cancel := context.WithTimeout(c, 5*time.Second)
		_, err := conn.Conn().WaitForNotification(wctx)
		cancel()
		require.NoError(t, err)
	}
	n, err := s.OutboxLen(c)
	require.NoError(t, err)
	require.EqualValues(t, 4, n)

	entries := drain(t, s)
	require.Len(t, entries, 4)
	var changes []models.Change
	events := map[string]bool{}
	for i, e := range entries {
		var ch models.Change
		require.NoError(t, json.Unmarshal(e.Change, &ch))
		changes = append(changes, ch)
		require.Len(t, e.Event, 36, "a UUID")
		events[e.Event] = true
		require.False(t, e.Created.IsZero())
		if i > 0 {
			require.Greater(t, e.ID, entries[i-1].ID)
		}
	}
	require.Len(t, events, 4, "every change has its own event id")
	require.Equal(t, []models.Change{
		{Model: "Site", ID: site.ID, Op: "create"},
		{Model: "Site", ID: site.ID, Op: "update", Fields: []string{"name"}},
		{Model: "Site", ID: site.ID, Op: "update"},
		{Model: "Site", ID: site.ID, Op: "delete"},
	}, changes)
	n, err = s.OutboxLen(c)
	require.NoError(t, err)
	require.Zero(t, n)
}

func TestRelayOutboxKeepsEntriesOnFailure(t *testing.T) {
	s := withOutbox(t, newStore(t, chainRegistry(t)))
	c := ctx(t)
	for _, name := range []string{"a", "b", "c"} {
		insertSite(t, s, name)
	}
	boom := errors.New("redis down")
	var seen []int64
	n, err := s.RelayOutbox(c, 10, func(_ context.Context, es []models.OutboxEntry) error {
		for _, e := range es {
			seen = append(seen, e.ID)
		}
		return boom
	})
	require.ErrorIs(t, err, boom)
	require.Zero(t, n)
	require.Len(t, seen, 3)

	// Published again, with the same ids and event ids.
	again := drain(t, s)
	require.Len(t, again, 3)
	for i, e := range again {
		require.Equal(t, seen[i], e.ID)
	}
}

// Relays running at once never hand out the same entry.
func TestRelayOutboxConcurrent(t *testing.T) {
	s := withOutbox(t, newStore(t, chainRegistry(t)))
	c := ctx(t)
	for i := range 40 {
		insertSite(t, s, string(rune('a'+i%26)))
	}
	var mu sync.Mutex
	var got []int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				n, err := s.RelayOutbox(c, 3, func(_ context.Context, es []models.OutboxEntry) error {
					time.Sleep(5 * time.Millisecond) // hold the lock a while
					mu.Lock()
					defer mu.Unlock()
					for _, e := range es {
						got = append(got, e.ID)
					}
					return nil
				})
				if err != nil {
					t.Error(err)
					return
				}
				if n == 0 {
					return
				}
			}
		})
	}
	wg.Wait()
	slices.Sort(got)
	require.Len(t, got, 40)
	require.Len(t, slices.Compact(got), 40, "an entry was relayed twice")
}

func TestReferrers(t *testing.T) {
	s := newStore(t, chainRegistry(t))
	c := ctx(t)
	a, b := insertSite(t, s, "a"), insertSite(t, s, "b")
	s1 := insertSlice(t, s, "s1", a.ID)
	s2 := insertSlice(t, s, "s2", a.ID)
	s3 := insertSlice(t, s, "s3", b.ID)
	insertSlice(t, s, "other", insertSite(t, s, "c").ID)
	require.NoError(t, s.Delete(c, "Slice", s2.ID))

	ids, err := s.Referrers(c, "Slice", "site_id", []int64{b.ID, a.ID, a.ID})
	require.NoError(t, err)
	require.Equal(t, []int64{s1.ID, s2.ID, s3.ID}, ids, "deleted ones included, each once, in id order")
	ids, err = s.Referrers(c, "Slice", "site_id", nil)
	require.NoError(t, err)
	require.Empty(t, ids)
	_, err = s.Referrers(c, "Slice", "name", []int64{1})
	require.ErrorContains(t, err, `no integer column "name"`)
	_, err = s.Referrers(c, "Nope", "site_id", []int64{1})
	require.ErrorContains(t, err, "unknown model")
}
