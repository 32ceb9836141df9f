package models_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync/internal/syncstate"
	"github.com/tsync/tsync/models"
)

// unstorable are field values PostgreSQL cannot store as given, with the
// column, path and reason of the error each must get.
var unstorable = []struct {
	name                 string
	set                  func(*Everything)
	column, path, reason string
}{
	{"invalid UTF-8", func(e *Everything) { e.Text = "ab\xffcd" }, "text", "", "invalid UTF-8 at byte 2"},
	{"truncated rune", func(e *Everything) { e.Order = "héllo\xc3" }, "order", "", "invalid UTF-8 at byte 6"},
	{"NUL in text", func(e *Everything) { s := "x\x00y"; e.OptText = &s }, "opt_text", "", "NUL byte at byte 1"},
	{"array element", func(e *Everything) { e.Tags = []string{"ok", "\xc3("} }, "tags", "[1]", "invalid UTF-8 at byte 0"},
	{"map value", func(e *Everything) { e.Attrs = map[string]any{"k": "\xfe"} }, "attrs", `["k"]`, "invalid UTF-8 at byte 0"},
	{"map key", func(e *Everything) { e.Attrs = map[string]any{"bad\xff": 1} }, "attrs", "[\"bad\uFFFD\"]", "key: invalid UTF-8 at byte 3"},
	{"nested NUL", func(e *Everything) { e.Attrs = map[string]any{"a": []any{"x", "\x00"}} }, "attrs", `["a"][1]`, "NUL byte at byte 0"},
	{"NaN in JSON", func(e *Everything) { e.Attrs = map[string]any{"n": math.NaN()} }, "attrs", `["n"]`, "NaN cannot be stored in JSON"},
	{"raw not JSON", func(e *Everything) { e.Raw = json.RawMessage(`{"a":`) }, "raw", "", "not valid JSON: unexpected end of JSON input"},
	{"raw NUL escape", func(e *Everything) { e.Raw = json.RawMessage(`{"a":"\u0000"}`) }, "raw", `["a"]`, "NUL byte at byte 0"},
}

// Values PostgreSQL cannot store as given get one clear error naming the
// field, and nothing is written: Insert stores no row, Save changes none.
func TestUnstorableValuesRefused(t *testing.T) {
	s := newStore(t, chainRegistry(t))
	table := pgx.Identifier{s.Schema(), "everything"}.Sanitize()
	count := func() int {
		var n int
		require.NoError(t, s.Pool().QueryRow(ctx(t), `SELECT count(*) FROM `+table).Scan(&n))
		return n
	}
	kept := &Everything{Text: "kept", Tags: []string{"a"}}
	require.NoError(t, s.Insert(ctx(t), kept))
	stored := load[Everything](t, s, kept.ID)

	for _, c := range unstorable {
		t.Run(c.name, func(t *testing.T) {
			check := func(err error, op string) {
				t.Helper()
				require.ErrorIs(t, err, models.ErrInvalidValue)
				var fe *models.FieldError
				require.True(t, errors.As(err, &fe), "%v", err)
				require.Equal(t, "Everything", fe.Model)
				require.Equal(t, c.column, fe.Column)
				require.Equal(t, c.path, fe.Path)
				require.Equal(t, c.reason, fe.Reason)
				require.True(t, strings.HasPrefix(err.Error(), op+" Everything"), "%v", err)
				require.Contains(t, err.Error(), "column "+c.column+")")
			}
			in := &Everything{}
			c.set(in)
			check(s.Insert(ctx(t), in), "insert")
			require.Zero(t, in.ID)
			require.Equal(t, 1, count(), "insert wrote a row")

			up := load[Everything](t, s, kept.ID)
			c.set(up)
			check(s.Save(ctx(t), up), "save")
			require.Equal(t, stored, load[Everything](t, s, kept.ID), "save changed the row")

			_, err := syncstate.New(s).SavePolicied(ctx(t), models.Ref{Model: "Everything", ID: kept.ID}, stored.Updated, up)
			check(err, "policed")
			require.Equal(t, stored, load[Everything](t, s, kept.ID), "policed changed the row")
		})
	}

	// A text error says where binary data belongs.
	err := s.Insert(ctx(t), &Everything{Text: "\xff"})
	require.EqualError(t, err, "insert Everything: model Everything field Text (column text): invalid UTF-8 at byte 0 (binary data belongs in a []byte field)")
}

// Huge values (16 MiB of text, of bytes that are not UTF-8, of JSON) and a
// float column's NaN and infinities round-trip exactly, and a Save of a huge
// change announces the changed columns.
func TestHugeValuesRoundTrip(t *testing.T) {
	s := newStore(t, chainRegistry(t))
	const size = 16 << 20
	text := strings.Repeat("héllo wörld 🚀 ", size/20)
	blob := bytes.Repeat([]byte{0xff, 0x00, 0xfe, 'x', 0xc3}, size/5)
	tags := []string{strings.Repeat("t", size/4), ""}
	attrs := map[string]any{"big": strings.Repeat("a", size/4)}
	in := &Everything{Text: text, Blob: blob, Tags: tags, Attrs: attrs, Ratio: math.Inf(-1)}
	require.NoError(t, s.Insert(ctx(t), in))
	got := load[Everything](t, s, in.ID)
	require.True(t, text == got.Text, "text differs (%d bytes read back of %d)", len(got.Text), len(text))
	require.True(t, bytes.Equal(blob, got.Blob), "blob differs (%d bytes read back of %d)", len(got.Blob), len(blob))
	require.Equal(t, tags, got.Tags)
	require.Equal(t, attrs, got.Attrs)
	require.True(t, math.IsInf(got.Ratio, -1))

	next := listen(t, s)
	before := got.Updated
	got.Text += "!"
	got.Ratio = math.NaN()
	require.NoError(t, s.Save(ctx(t), got))
	again := load[Everything](t, s, in.ID)
	require.Equal(t, text+"!", again.Text)
	require.True(t, math.IsNaN(again.Ratio))
	require.True(t, again.Updated.After(before))
	ch := next()
	require.Equal(t, models.Change{Model: "Everything", ID: in.ID, Op: "update", Fields: []string{"text", "ratio"}}, ch)
}
