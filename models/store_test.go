package models_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync/internal/syncstate"
	"github.com/tsync/tsync/internal/testenv"
	"github.com/tsync/tsync/models"
)

func TestNewStoreRejectsBadSchema(t *testing.T) {
	g, err := chainRegistry(t).Graph()
	require.NoError(t, err)
	for _, schema := range []string{"", "Upper", "x;drop", `a"b`, "1abc", "with space", strings.Repeat("a", 57)} {
		_, err := models.NewStore(nil, schema, g)
		require.Error(t, err, schema)
		require.ErrorContains(t, err, "must match", schema)
	}
	s, err := models.NewStore(nil, "t_ok", g)
	require.NoError(t, err)
	require.Equal(t, "tsync_t_ok", s.Channel())
	require.Equal(t, "t_ok", s.Schema())
	require.Same(t, g, s.Graph())
}

func TestMigrateIdempotentAndConcurrent(t *testing.T) {
	pool, schema := testenv.Schema(t)
	g, err := chainRegistry(t).Graph()
	require.NoError(t, err)
	s, err := models.NewStore(pool, schema, g)
	require.NoError(t, err)

	require.NoError(t, s.Migrate(ctx(t)))
	site := insertSite(t, s, "kept")
	require.NoError(t, s.Migrate(ctx(t)))

	// Concurrent migrations of the same schema all succeed.
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- s.Migrate(context.Background())
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	// Data survives.
	require.Equal(t, "kept", load[Site](t, s, site.ID).Name)

	// Two concurrent first migrations of a fresh schema (not created yet).
	fresh := schema + "_b"
	t.Cleanup(func() { _, _ = pool.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+fresh+" CASCADE") })
	s2, err := models.NewStore(pool, fresh, g)
	require.NoError(t, err)
	var wg2 sync.WaitGroup
	errs2 := make([]error, 2)
	for i := range errs2 {
		wg2.Add(1)
		go func() {
			defer wg2.Done()
			errs2[i] = s2.Migrate(context.Background())
		}()
	}
	wg2.Wait()
	require.NoError(t, errs2[0])
	require.NoError(t, errs2[1])

	// The indexes exist.
	var idx []string
	rows, err := pool.Query(ctx(t), `SELECT indexname FROM pg_indexes WHERE schemaname = $1 ORDER BY indexname`, schema)
	require.NoError(t, err)
	idx, err = pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	for _, want := range []string{"site_pending", "site_deleting", "slice_pending", "slice_site_id", "instance_slice_id", "instance_image_id", "everything_pending"} {
		require.Contains(t, idx, want)
	}
}

// A migration adds a column declared after the table was created.
type SiteV1 struct {
	models.Base
	Name string
}

type SiteV2 struct {
	models.Base
	Name     string
	Location string
	Capacity *int32
}

func TestMigrateAddsColumns(t *testing.T) {
	pool, schema := testenv.Schema(t)
	reg1 := models.NewRegistry()
	require.NoError(t, models.Register[SiteV1](reg1, "Site"))
	g1, err := reg1.Graph()
	require.NoError(t, err)
	s1, err := models.NewStore(pool, schema, g1)
	require.NoError(t, err)
	require.NoError(t, s1.Migrate(ctx(t)))
	old := &SiteV1{Name: "old"}
	require.NoError(t, s1.Insert(ctx(t), old))

	reg2 := models.NewRegistry()
	require.NoError(t, models.Register[SiteV2](reg2, "Site"))
	g2, err := reg2.Graph()
	require.NoError(t, err)
	s2, err := models.NewStore(pool, schema, g2)
	require.NoError(t, err)
	require.NoError(t, s2.Migrate(ctx(t)))
	got := load[SiteV2](t, s2, old.ID)
	require.Equal(t, "old", got.Name)
	require.Equal(t, "", got.Location)
	require.Nil(t, got.Capacity)
}

func TestInsertRoundTripsEveryType(t *testing.T) {
	s := newStore(t, chainRegistry(t))
	nasty := "'; DROP TABLE x; --"
	values := []string{
		nasty,
		`it's "quoted" \ back\slash`,
		"line1\nline2\r\n\ttab",
		"unicode: héllo wörld — 日本語 🚀",
		"$1 $2 %s %d ? :name",
		"",
	}
	for _, v := range values {
		t.Run(v, func(t *testing.T) {
			opt := v
			when := time.Date(2024, 2, 29, 13, 14, 15, 123456789, time.FixedZone("X", 5*3600))
			optWhen := time.Now()
			in := &Everything{
				Text:    v,
				OptText: &opt,
				Big:     -1 << 62,
				Small:   -1 << 30,
				Plain:   42,
				Flag:    true,
				Ratio:   3.14159,
				When:    when,
				OptWhen: &optWhen,
				Blob:    []byte("\x00\x01\xff" + v),
				Tags:    []string{v, "b", "", `"`, "{}", "NULL", "a,b"},
				Attrs:   map[string]any{"k": v, v: "key", "n": 1.5, "nested": map[string]any{"list": []any{"x", true, nil}}},
				Raw:     json.RawMessage(`{"v": ` + mustJSON(t, v) + `, "n": [1, 2]}`),
				Order:   v,
				User:    v,
				Ignored: "not stored",
			}
			in.NoSync = true
			in.WriteProtect = true
			before := time.Now()
			require.NoError(t, s.Insert(ctx(t), in))
			require.NotZero(t, in.ID)
			require.False(t, in.Updated.IsZero())
			require.WithinDuration(t, before, in.Updated, 5*time.Second)

			got := load[Everything](t, s, in.ID)
			require.Equal(t, in.ID, got.ID)
			require.True(t, in.Updated.Equal(got.Updated), "%v != %v", in.Updated, got.Updated)
			require.Equal(t, v, got.Text)
			require.NotNil(t, got.OptText)
			require.Equal(t, v, *got.OptText)
			require.Equal(t, in.Big, got.Big)
			require.Equal(t, in.Small, got.Small)
			require.Equal(t, in.Plain, got.Plain)
			require.True(t, got.Flag)
			require.InDelta(t, in.Ratio, got.Ratio, 0)
			require.True(t, when.Truncate(time.Microsecond).Equal(got.When), "%v != %v", when, got.When)
			require.NotNil(t, got.OptWhen)
			require.True(t, optWhen.Truncate(time.Microsecond).Equal(*got.OptWhen))
			require.Equal(t, in.Blob, got.Blob)
			require.Equal(t, in.Tags, got.Tags)
			require.Equal(t, in.Attrs, got.Attrs)
			require.JSONEq(t, string(in.Raw), string(got.Raw))
			require.Equal(t, v, got.Order)
			require.Equal(t, v, got.User)
			require.Empty(t, got.Ignored)
			// Operator flags are written; sync state starts empty.
			require.True(t, got.NoSync)
			require.True(t, got.WriteProtect)
			require.False(t, got.LazyBlocked)
			require.Nil(t, got.Enacted)
			require.Nil(t, got.Policed)
			require.False(t, got.Deleted)
			require.Equal(t, models.CodePending, got.BackendCode)
			require.Empty(t, got.BackendStatus)
			require.False(t, got.BackendNeedDelete)

			// Get returns the same object.
			obj, err := s.Get(ctx(t), "Everything", in.ID)
			require.NoError(t, err)
			require.Equal(t, got, obj.(*Everything))
		})
	}

	// The table survived every injection attempt.
	var n int
	require.NoError(t, s.Pool().QueryRow(ctx(t), `SELECT count(*) FROM `+pgx.Identifier{s.Schema(), "everything"}.Sanitize()).Scan(&n))
	require.Equal(t, len(values), n)
}

func TestInsertZeroValuesAndNulls(t *testing.T) {
	s := newStore(t, chainRegistry(t))
	in := &Everything{}
	require.NoError(t, s.Insert(ctx(t), in))
	got := load[Everything](t, s, in.ID)
	require.Equal(t, "", got.Text)
	require.Nil(t, got.OptText)
	require.Nil(t, got.OptWhen)
	require.Nil(t, got.Blob)
	require.Nil(t, got.Tags)
	require.Nil(t, got.Attrs)
	require.Empty(t, got.Raw)
	require.True(t, got.When.IsZero(), "%v", got.When)

	// Empty, non-nil values come back empty.
	in2 := &Everything{Blob: []byte{}, Tags: []string{}, Attrs: map[string]any{}, Raw: json.RawMessage(`[]`)}
	require.NoError(t, s.Insert(ctx(t), in2))
	got2 := load[Everything](t, s, in2.ID)
	require.Empty(t, got2.Blob)
	require.Empty(t, got2.Tags)
	require.Empty(t, got2.Attrs)
	require.JSONEq(t, `[]`, string(got2.Raw))

	require.Greater(t, in2.ID, in.ID)
}

func TestGetAndLoadErrors(t *testing.T) {
	s := newStore(t, chainRegistry(t))
	_, err := s.Get(ctx(t), "Site", 12345)
	require.ErrorIs(t, err, models.ErrNotFound)
	_, err = models.Load[Site](ctx(t), s, 12345)
	require.ErrorIs(t, err, models.ErrNotFound)
	_, err = s.Get(ctx(t), "Nope", 1)
	require.ErrorContains(t, err, `unknown model "Nope"`)
	_, err = models.Load[Other](ctx(t), s, 1)
	require.ErrorContains(t, err, "not a registered model")
	require.Error(t, s.Insert(ctx(t), &Other{}))
	require.Error(t, s.Save(ctx(t), &Other{}))
	require.ErrorContains(t, s.Delete(ctx(t), "Nope", 1), `unknown model "Nope"`)

	// Save of a missing object.
	err = s.Save(ctx(t), &Site{Base: models.Base{ID: 999}})
	require.ErrorIs(t, err, models.ErrNotFound)
}

func TestSaveBumpsUpdatedStrictly(t *testing.T) {
	s := newStore(t, chainRegistry(t))
	site := insertSite(t, s, "a")
	prev := site.Updated
	for i := range 50 {
		site.Name = "name" + string(rune('a'+i%26))
		require.NoError(t, s.Save(ctx(t), site))
		require.True(t, site.Updated.After(prev), "save %d: updated %v not after %v", i, site.Updated, prev)
		got := load[Site](t, s, site.ID)
		require.True(t, got.Updated.Equal(site.Updated))
		prev = site.Updated
	}
	// A save that changes nothing still bumps updated.
	require.NoError(t, s.Save(ctx(t), site))
	require.True(t, site.Updated.After(prev))

	// Concurrent saves of one object serialize and every one bumps updated.
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o := &Site{Base: models.Base{ID: site.ID}, Name: "c" + string(rune('a'+i))}
			errs <- s.Save(context.Background(), o)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	got := load[Site](t, s, site.ID)
	require.True(t, got.Updated.After(site.Updated))
}

func TestSaveNeverTouchesSyncState(t *testing.T) {
	s := newStore(t, chainRegistry(t))
	site := insertSite(t, s, "a")
	ref := models.Ref{Model: "Site", ID: site.ID}
	_, err := syncstate.New(s).BeginSync(ctx(t), ref)
	require.NoError(t, err)
	pending, err := syncstate.New(s).RecordSuccess(ctx(t), ref, site.Updated, "OK")
	require.NoError(t, err)
	require.False(t, pending)
	_, err = s.Pool().Exec(ctx(t), `UPDATE `+pgx.Identifier{s.Schema(), "site"}.Sanitize()+` SET policed = now() WHERE id = $1`, site.ID)
	require.NoError(t, err)
	synced := load[Site](t, s, site.ID)
	require.NotNil(t, synced.Enacted)
	require.NotNil(t, synced.Policed)

	// The in-memory object has stale, bogus sync state: Save ignores it.
	site.Name = "b"
	site.Enacted = nil
	site.Policed = nil
	site.BackendCode = models.CodeError
	site.BackendStatus = "bogus"
	site.BackendNeedDelete = false
	site.Deleted = true
	site.LazyBlocked = true // an operator flag: written
	require.NoError(t, s.Save(ctx(t), site))

	got := load[Site](t, s, site.ID)
	require.Equal(t, "b", got.Name)
	require.True(t, got.LazyBlocked)
	require.True(t, got.Enacted.Equal(*synced.Enacted))
	require.True(t, got.Policed.Equal(*synced.Policed))
	require.Equal(t, models.CodeOK, got.BackendCode)
	require.Equal(t, "OK", got.BackendStatus)
	require.True(t, got.BackendNeedDelete)
	require.False(t, got.Deleted)
	require.True(t, got.Updated.After(*got.Enacted))
	require.True(t, got.Updated.Equal(site.Updated))
}

func TestDeleteSoftDeletes(t *testing.T) {
	s := newStore(t, chainRegistry(t))
	site := insertSite(t, s, "a")
	require.NoError(t, s.Delete(ctx(t), "Site", site.ID))
	got := load[Site](t, s, site.ID)
	require.True(t, got.Deleted)
	require.True(t, got.Updated.After(site.Updated))
	require.Equal(t, "a", got.Name)

	err := s.Delete(ctx(t), "Site", site.ID)
	require.ErrorIs(t, err, models.ErrNotFound)
	require.True(t, load[Site](t, s, site.ID).Updated.Equal(got.Updated), "a failed delete must not bump updated")

	require.ErrorIs(t, s.Delete(ctx(t), "Site", 4242), models.ErrNotFound)

	// Save of a deleted object fails and changes nothing.
	site.Name = "zombie"
	err = s.Save(ctx(t), site)
	require.Error(t, err)
	require.ErrorContains(t, err, "deleted")
	again := load[Site](t, s, site.ID)
	require.Equal(t, "a", again.Name)
	require.True(t, again.Updated.Equal(got.Updated))
}

// listen opens a separate connection listening on the store's channel.
// The changes it returns have their Updated checked set (but for OpMany)
// and then cleared, for comparisons; listenRaw's keep it.
func listen(t *testing.T, s *models.Store) func() models.Change {
	t.Helper()
	next := listenRaw(t, s)
	return func() models.Change {
		t.Helper()
		ch := next()
		if ch.Op != models.OpMany {
			require.False(t, ch.Updated.IsZero(), "announcement without updated: %+v", ch)
		}
		ch.Updated = time.Time{}
		return ch
	}
}

// listenRaw is listen, with the changes as announced.
func listenRaw(t *testing.T, s *models.Store) func() models.Change {
	t.Helper()
	conn, err := pgx.Connect(ctx(t), testenv.DatabaseURL())
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	_, err = conn.Exec(ctx(t), "LISTEN "+pgx.Identifier{s.Channel()}.Sanitize())
	require.NoError(t, err)
	return func() models.Change {
		t.Helper()
		c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		n, err := conn.WaitForNotification(c)
		require.NoError(t, err, "no notification")
		require.Equal(t, s.Channel(), n.Channel)
		var ch models.Change
		require.NoError(t, json.Unmarshal([]byte(n.Payload), &ch), n.Payload)
		return ch
	}
}

func TestNotify(t *testing.T) {
	s := newStore(t, chainRegistry(t))
	next := listen(t, s)

	site := insertSite(t, s, "a")
	require.Equal(t, models.Change{Model: "Site", ID: site.ID, Op: "create"}, next())

	site.Name = "b"
	require.NoError(t, s.Save(ctx(t), site))
	require.Equal(t, models.Change{Model: "Site", ID: site.ID, Op: "update", Fields: []string{"name"}}, next())

	site.Login = "root"
	site.NoSync = true
	require.NoError(t, s.Save(ctx(t), site))
	require.Equal(t, models.Change{Model: "Site", ID: site.ID, Op: "update", Fields: []string{"login", "no_sync"}}, next())

	// Nothing changed: an update with no fields.
	require.NoError(t, s.Save(ctx(t), site))
	require.Equal(t, models.Change{Model: "Site", ID: site.ID, Op: "update"}, next())

	require.NoError(t, s.Delete(ctx(t), "Site", site.ID))
	require.Equal(t, models.Change{Model: "Site", ID: site.ID, Op: "delete"}, next())

	// A failed operation announces nothing: the next notification is the
	// next successful change.
	require.Error(t, s.Delete(ctx(t), "Site", site.ID))
	require.Error(t, s.Save(ctx(t), site))
	sl := insertSlice(t, s, "s", site.ID)
	require.Equal(t, models.Change{Model: "Slice", ID: sl.ID, Op: "create"}, next())

	// Sync-state writes are not content changes: no notification.
	ref := models.Ref{Model: "Slice", ID: sl.ID}
	_, err := syncstate.New(s).BeginSync(ctx(t), ref)
	require.NoError(t, err)
	_, err = syncstate.New(s).RecordSuccess(ctx(t), ref, sl.Updated, "OK")
	require.NoError(t, err)
	require.NoError(t, syncstate.New(s).RecordError(ctx(t), ref, "e"))
	require.NoError(t, syncstate.New(s).RecordStatus(ctx(t), ref, 0, "deferred: x"))
	inst := insertInstance(t, s, "i", sl.ID)
	require.Equal(t, models.Change{Model: "Instance", ID: inst.ID, Op: "create"}, next())
}

// Fields lists exactly the columns whose stored value changed, whatever the
// in-memory representation of the unchanged ones (nanosecond times, JSON
// numbers, JSON formatting).
func TestNotifyFieldsExact(t *testing.T) {
	s := newStore(t, chainRegistry(t))
	next := listen(t, s)

	now := time.Now() // nanoseconds and a monotonic reading: stored as microseconds
	in := &Everything{
		Text:    "a",
		When:    now,
		OptWhen: &now,
		Tags:    []string{"x"},
		Attrs:   map[string]any{"n": 1, "s": "x"}, // int: read back as float64
		Raw:     json.RawMessage(`{"b":1,  "a":[1,2]}`),
		Blob:    []byte{},
	}
	require.NoError(t, s.Insert(ctx(t), in))
	require.Equal(t, models.OpCreate, next().Op)

	in.Text = "b"
	require.NoError(t, s.Save(ctx(t), in))
	require.Equal(t, []string{"text"}, next().Fields)

	in.Small = 3
	in.Tags = []string{"x", "y"}
	in.Attrs = map[string]any{"n": 2, "s": "x"}
	require.NoError(t, s.Save(ctx(t), in))
	require.Equal(t, []string{"small", "tags", "attrs"}, next().Fields)

	later := now.Add(time.Hour)
	in.OptWhen = &later
	in.Raw = json.RawMessage(`{"a":[1,2],"b":2}`)
	require.NoError(t, s.Save(ctx(t), in))
	require.Equal(t, []string{"opt_when", "raw"}, next().Fields)

	in.OptWhen = nil
	in.Blob = []byte("x")
	require.NoError(t, s.Save(ctx(t), in))
	require.Equal(t, []string{"opt_when", "blob"}, next().Fields)

	// A fresh copy loaded from the database and saved unchanged: no fields.
	fresh := load[Everything](t, s, in.ID)
	require.NoError(t, s.Save(ctx(t), fresh))
	require.Empty(t, next().Fields)
}

func TestErrNotFoundWrapping(t *testing.T) {
	s := newStore(t, chainRegistry(t))
	err := s.Delete(ctx(t), "Site", 7)
	require.True(t, errors.Is(err, models.ErrNotFound))
	require.Contains(t, err.Error(), "Site 7")
}
