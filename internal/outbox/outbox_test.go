package outbox_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync/internal/outbox"
	"github.com/tsync/tsync/internal/storetest"
	"github.com/tsync/tsync/internal/testenv"
	"github.com/tsync/tsync/models"
)

type Site = storetest.Site

var (
	chainRegistry = storetest.Registry
	newStore      = storetest.NewStore
	ctx           = storetest.Ctx
	insertSite    = storetest.InsertSite
)

// withOutbox returns a store over the same schema as s with the outbox on.
func withOutbox(t testing.TB, s *models.Store) *models.Store {
	t.Helper()
	o, err := models.NewStore(s.Pool(), s.Schema(), s.Graph(), models.WithOutbox(true))
	require.NoError(t, err)
	require.True(t, o.OutboxEnabled())
	// The triggers write the outbox as the last migration said.
	require.NoError(t, o.Migrate(ctx(t)))
	return o
}

// fakeStream hands out stream ids as a stream would: 1000-0, 1000-1, ...
type fakeStream struct {
	mu   sync.Mutex
	next outbox.StreamID
}

func (f *fakeStream) ids(n int) []outbox.StreamID {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.next.IsZero() {
		f.next = outbox.StreamID{Ms: 1000}
	}
	out := make([]outbox.StreamID, n)
	for i := range out {
		out[i] = f.next
		f.next.Seq++
	}
	return out
}

// drain relays the whole outbox into a slice, with stream ids from a
// fakeStream.
func drain(t testing.TB, s *models.Store) []outbox.Entry {
	t.Helper()
	var all []outbox.Entry
	var stream fakeStream
	for {
		n, err := outbox.New(s).Relay(ctx(t), 2, func(_ context.Context, es []outbox.Entry) ([]outbox.StreamID, error) {
			all = append(all, es...)
			return stream.ids(len(es)), nil
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
	n, err := outbox.New(s).Len(ctx(t))
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
	n, err := outbox.New(s).Len(c)
	require.NoError(t, err)
	require.EqualValues(t, 4, n)

	entries := drain(t, s)
	require.Len(t, entries, 4)
	var changes []models.Change
	events := map[string]bool{}
	for i, e := range entries {
		var ch models.Change
		require.NoError(t, json.Unmarshal(e.Change, &ch))
		require.False(t, ch.Updated.IsZero(), "the change's updated")
		ch.Updated = time.Time{}
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
	// Published, and kept until settled.
	requireCounts(t, s, 0, 4)
	require.Empty(t, drain(t, s), "a published entry is not relayed again")
}

// requireCounts checks the outbox's unpublished and published entries, and
// that Len counts both.
func requireCounts(t testing.TB, s *models.Store, unpublished, published int64) {
	t.Helper()
	c, err := outbox.New(s).Counts(ctx(t))
	require.NoError(t, err)
	require.Equal(t, outbox.Counts{Unpublished: unpublished, Published: published}, c)
	n, err := outbox.New(s).Len(ctx(t))
	require.NoError(t, err)
	require.Equal(t, unpublished+published, n)
}

func TestRelayOutboxKeepsEntriesOnFailure(t *testing.T) {
	s := withOutbox(t, newStore(t, chainRegistry(t)))
	c := ctx(t)
	for _, name := range []string{"a", "b", "c"} {
		insertSite(t, s, name)
	}
	boom := errors.New("redis down")
	var seen []int64
	n, err := outbox.New(s).Relay(c, 10, func(_ context.Context, es []outbox.Entry) ([]outbox.StreamID, error) {
		for _, e := range es {
			seen = append(seen, e.ID)
			require.True(t, e.Stream.IsZero())
		}
		return nil, boom
	})
	require.ErrorIs(t, err, boom)
	require.Zero(t, n)
	require.Len(t, seen, 3)
	requireCounts(t, s, 3, 0)

	// Wrong answers from publish roll back too.
	_, err = outbox.New(s).Relay(c, 10, func(_ context.Context, es []outbox.Entry) ([]outbox.StreamID, error) {
		return []outbox.StreamID{{Ms: 1}}, nil
	})
	require.ErrorContains(t, err, "published 3 entries but got 1 stream ids")
	_, err = outbox.New(s).Relay(c, 10, func(_ context.Context, es []outbox.Entry) ([]outbox.StreamID, error) {
		return make([]outbox.StreamID, len(es)), nil
	})
	require.ErrorContains(t, err, "bad stream id 0-0")
	requireCounts(t, s, 3, 0)

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
	var stream fakeStream
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				n, err := outbox.New(s).Relay(c, 3, func(_ context.Context, es []outbox.Entry) ([]outbox.StreamID, error) {
					time.Sleep(5 * time.Millisecond) // hold the lock a while
					mu.Lock()
					defer mu.Unlock()
					for _, e := range es {
						got = append(got, e.ID)
					}
					return stream.ids(len(es)), nil
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

// relayAll relays the whole outbox with the given stream ids, in entry
// order, and returns the entries.
func relayAll(t testing.TB, s *models.Store, ids ...outbox.StreamID) []outbox.Entry {
	t.Helper()
	var all []outbox.Entry
	n, err := outbox.New(s).Relay(ctx(t), len(ids)+1, func(_ context.Context, es []outbox.Entry) ([]outbox.StreamID, error) {
		require.Len(t, es, len(ids))
		all = es
		return ids, nil
	})
	require.NoError(t, err)
	require.Equal(t, len(ids), n)
	return all
}

// published returns the outbox's published entries by outbox id, with their
// stream ids, through Settle's view (below the highest id, all
// present, nothing changed: the callback fails to roll back).
func published(t testing.TB, s *models.Store) map[int64]outbox.StreamID {
	t.Helper()
	out := map[int64]outbox.StreamID{}
	stop := errors.New("look only")
	_, _, err := outbox.New(s).Settle(ctx(t), outbox.MaxStreamID, 1000, func(_ context.Context, es []outbox.Entry) ([]bool, error) {
		for _, e := range es {
			out[e.ID] = e.Stream
		}
		return nil, stop
	})
	if len(out) > 0 {
		require.ErrorIs(t, err, stop)
	} else {
		require.NoError(t, err)
	}
	return out
}

func sid(ms, seq int64) outbox.StreamID { return outbox.StreamID{Ms: ms, Seq: seq} }

func TestStreamID(t *testing.T) {
	require.True(t, outbox.StreamID{}.IsZero())
	require.False(t, sid(0, 1).IsZero())
	require.Equal(t, "12-3", sid(12, 3).String())
	require.True(t, sid(1, 9).Less(sid(2, 0)))
	require.True(t, sid(2, 0).Less(sid(2, 1)))
	require.False(t, sid(2, 1).Less(sid(2, 1)))
	require.True(t, sid(2, 1).Less(outbox.MaxStreamID))
}

// The outbox keeps published entries with their stream ids; Settle
// deletes the handled ones still in the stream and marks the lost ones
// unpublished, to be published again with the same event id.
func TestSettleOutbox(t *testing.T) {
	s := withOutbox(t, newStore(t, chainRegistry(t)))
	c := ctx(t)
	for _, name := range []string{"a", "b", "c", "d", "e"} {
		insertSite(t, s, name)
	}
	entries := relayAll(t, s, sid(10, 0), sid(10, 1), sid(20, 0), sid(30, 0), sid(40, 0))
	requireCounts(t, s, 0, 5)
	oldest, err := outbox.New(s).OldestPublished(c)
	require.NoError(t, err)
	require.Equal(t, sid(10, 0), oldest)

	// Handled below 30-0: the first three; the second of them was lost.
	var asked []outbox.StreamID
	deleted, lost, err := outbox.New(s).Settle(c, sid(30, 0), 10, func(_ context.Context, es []outbox.Entry) ([]bool, error) {
		for _, e := range es {
			asked = append(asked, e.Stream)
			require.NotEmpty(t, e.Change)
		}
		return []bool{true, false, true}, nil
	})
	require.NoError(t, err)
	require.Equal(t, []outbox.StreamID{sid(10, 0), sid(10, 1), sid(20, 0)}, asked, "below 30-0, lowest first")
	require.Equal(t, 2, deleted)
	require.Equal(t, 1, lost)
	requireCounts(t, s, 1, 2)
	require.Equal(t, map[int64]outbox.StreamID{entries[3].ID: sid(30, 0), entries[4].ID: sid(40, 0)}, published(t, s))
	oldest, err = outbox.New(s).OldestPublished(c)
	require.NoError(t, err)
	require.Equal(t, sid(30, 0), oldest)

	// The lost one is published again, with its event id.
	again := relayAll(t, s, sid(50, 0))
	require.Equal(t, entries[1].ID, again[0].ID)
	require.Equal(t, entries[1].Event, again[0].Event)
	require.JSONEq(t, string(entries[1].Change), string(again[0].Change))

	// A failing check changes nothing; wrong answers neither.
	boom := errors.New("redis down")
	_, _, err = outbox.New(s).Settle(c, outbox.MaxStreamID, 10, func(context.Context, []outbox.Entry) ([]bool, error) { return nil, boom })
	require.ErrorIs(t, err, boom)
	_, _, err = outbox.New(s).Settle(c, outbox.MaxStreamID, 10, func(context.Context, []outbox.Entry) ([]bool, error) { return []bool{true}, nil })
	require.ErrorContains(t, err, "checked 3 entries but got 1 answers")
	requireCounts(t, s, 0, 3)

	// Everything handled: the outbox is empty.
	deleted, lost, err = outbox.New(s).Settle(c, outbox.MaxStreamID, 2, func(_ context.Context, es []outbox.Entry) ([]bool, error) {
		return []bool{true, true}, nil
	})
	require.NoError(t, err)
	require.Equal(t, 2, deleted, "at most limit")
	require.Zero(t, lost)
	deleted, _, err = outbox.New(s).Settle(c, outbox.MaxStreamID, 2, func(_ context.Context, es []outbox.Entry) ([]bool, error) {
		require.Equal(t, sid(50, 0), es[0].Stream)
		return []bool{true}, nil
	})
	require.NoError(t, err)
	require.Equal(t, 1, deleted)
	requireCounts(t, s, 0, 0)
	oldest, err = outbox.New(s).OldestPublished(c)
	require.NoError(t, err)
	require.True(t, oldest.IsZero())
	deleted, lost, err = outbox.New(s).Settle(c, outbox.MaxStreamID, 2, func(context.Context, []outbox.Entry) ([]bool, error) {
		t.Error("nothing to check")
		return nil, nil
	})
	require.NoError(t, err)
	require.Zero(t, deleted+lost)
}

// Dispatchers settling at once settle each entry once.
func TestSettleOutboxConcurrent(t *testing.T) {
	s := withOutbox(t, newStore(t, chainRegistry(t)))
	c := ctx(t)
	for i := range 40 {
		insertSite(t, s, string(rune('a'+i%26)))
	}
	drain(t, s)
	var mu sync.Mutex
	var got []int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				n, _, err := outbox.New(s).Settle(c, outbox.MaxStreamID, 3, func(_ context.Context, es []outbox.Entry) ([]bool, error) {
					time.Sleep(5 * time.Millisecond) // hold the lock a while
					mu.Lock()
					defer mu.Unlock()
					out := make([]bool, len(es))
					for i, e := range es {
						got = append(got, e.ID)
						out[i] = true
					}
					return out, nil
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
	require.Len(t, slices.Compact(got), 40, "an entry was settled twice")
	requireCounts(t, s, 0, 0)
}

func TestUnpublishLostOutbox(t *testing.T) {
	s := withOutbox(t, newStore(t, chainRegistry(t)))
	c := ctx(t)
	bounds := func(first, last outbox.StreamID) func(context.Context) (outbox.StreamBounds, error) {
		return func(context.Context) (outbox.StreamBounds, error) {
			return outbox.StreamBounds{First: first, Last: last}, nil
		}
	}

	// Nothing published: the stream is not even asked.
	n, err := outbox.New(s).UnpublishLost(c, func(context.Context) (outbox.StreamBounds, error) {
		t.Error("asked")
		return outbox.StreamBounds{}, nil
	})
	require.NoError(t, err)
	require.Zero(t, n)

	for _, name := range []string{"a", "b", "c", "d"} {
		insertSite(t, s, name)
	}
	entries := relayAll(t, s, sid(10, 0), sid(20, 0), sid(20, 1), sid(30, 0))

	// The stream holds them all (and maybe more).
	for _, b := range []outbox.StreamBounds{{First: sid(10, 0), Last: sid(30, 0)}, {First: sid(1, 0), Last: sid(99, 0)}} {
		n, err = outbox.New(s).UnpublishLost(c, bounds(b.First, b.Last))
		require.NoError(t, err)
		require.Zero(t, n)
	}
	// Restored from a snapshot that ends at 20-1: the last one is lost.
	n, err = outbox.New(s).UnpublishLost(c, bounds(sid(10, 0), sid(20, 1)))
	require.NoError(t, err)
	require.EqualValues(t, 1, n)
	require.Equal(t, map[int64]outbox.StreamID{entries[0].ID: sid(10, 0), entries[1].ID: sid(20, 0), entries[2].ID: sid(20, 1)}, published(t, s))

	// A stream made again after a loss, starting at 20-1: those before it
	// are lost.
	n, err = outbox.New(s).UnpublishLost(c, bounds(sid(20, 1), sid(40, 0)))
	require.NoError(t, err)
	require.EqualValues(t, 2, n)
	require.Equal(t, map[int64]outbox.StreamID{entries[2].ID: sid(20, 1)}, published(t, s))
	requireCounts(t, s, 3, 1)

	// An error from the stream changes nothing.
	boom := errors.New("redis down")
	_, err = outbox.New(s).UnpublishLost(c, func(context.Context) (outbox.StreamBounds, error) { return outbox.StreamBounds{}, boom })
	require.ErrorIs(t, err, boom)
	requireCounts(t, s, 3, 1)

	// An empty stream (after 40-0): all lost.
	n, err = outbox.New(s).UnpublishLost(c, bounds(sid(40, 1), sid(40, 0)))
	require.NoError(t, err)
	require.EqualValues(t, 1, n)
	requireCounts(t, s, 4, 0)

	// The stream is gone (zero): every published entry is lost, but not one
	// published while the stream was asked (into a new stream, by another
	// relay).
	relayAll(t, s, sid(50, 0), sid(50, 1), sid(50, 2), sid(50, 3))
	var late *Site
	n, err = outbox.New(s).UnpublishLost(c, func(context.Context) (outbox.StreamBounds, error) {
		late = insertSite(t, s, "late")
		relayAll(t, s, sid(60, 0))
		return outbox.StreamBounds{}, nil
	})
	require.NoError(t, err)
	require.EqualValues(t, 4, n)
	require.Len(t, published(t, s), 1)
	for id, at := range published(t, s) {
		require.Greater(t, id, entries[3].ID, "the entry of %v", late.ID)
		require.Equal(t, sid(60, 0), at)
	}
	requireCounts(t, s, 4, 1)
}

// Migrate adds the stream id columns to an outbox made before they
// existed; its entries are unpublished.
func TestOutboxMigratesOldTable(t *testing.T) {
	pool, schema := testenv.Schema(t)
	c := ctx(t)
	table := pgx.Identifier{schema, models.OutboxTable}.Sanitize()
	for _, stmt := range []string{
		`CREATE SCHEMA IF NOT EXISTS ` + pgx.Identifier{schema}.Sanitize(),
		`CREATE TABLE ` + table + ` (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	event uuid NOT NULL DEFAULT gen_random_uuid(),
	change jsonb NOT NULL,
	created timestamptz NOT NULL DEFAULT clock_timestamp())`,
		`INSERT INTO ` + table + ` (change) VALUES ('{"model": "Site", "id": 1, "op": "create"}')`,
	} {
		_, err := pool.Exec(c, stmt)
		require.NoError(t, err)
	}
	g, err := chainRegistry(t).Graph()
	require.NoError(t, err)
	s, err := models.NewStore(pool, schema, g, models.WithOutbox(true))
	require.NoError(t, err)
	require.NoError(t, s.Migrate(c))
	require.NoError(t, s.Migrate(c), "again")
	requireCounts(t, s, 1, 0)
	insertSite(t, s, "a")
	entries := relayAll(t, s, sid(1, 0), sid(1, 1))
	require.JSONEq(t, `{"model": "Site", "id": 1, "op": "create"}`, string(entries[0].Change))
	requireCounts(t, s, 0, 2)
}
