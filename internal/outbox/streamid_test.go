package outbox_test

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync/internal/outbox"
)

func TestStreamIDNext(t *testing.T) {
	require.Equal(t, sid(0, 1), outbox.StreamID{}.Next())
	require.Equal(t, sid(5, 8), sid(5, 7).Next())
	require.Equal(t, sid(6, 0), sid(5, math.MaxInt64).Next())
	require.Equal(t, outbox.MaxStreamID, outbox.MaxStreamID.Next())
}

func TestParseStreamID(t *testing.T) {
	for s, want := range map[string]outbox.StreamID{"1-0": sid(1, 0), "0-1": sid(0, 1), "1700000000000-42": sid(1700000000000, 42)} {
		got, ok := outbox.ParseStreamID(s)
		require.True(t, ok, s)
		require.Equal(t, want, got, s)
	}
	for _, s := range []string{"", "0-0", "1", "1-", "-1", "a-1", "1-b", "-1-0", "1--1", "99999999999999999999-0", "1-0-0"} {
		_, ok := outbox.ParseStreamID(s)
		require.False(t, ok, s)
	}
}

func TestStreamIDOf(t *testing.T) {
	for s, want := range map[string]outbox.StreamID{
		"":                          {},
		"0-0":                       {},
		"12-3":                      sid(12, 3),
		"12":                        sid(12, 0),
		"x-3":                       sid(0, 3),
		"9223372036854775808-0":     outbox.MaxStreamID,
		"5-18446744073709551615":    sid(5, math.MaxInt64),
		"99999999999999999999999-1": outbox.MaxStreamID,
	} {
		require.Equal(t, want, outbox.StreamIDOf(s), s)
	}
}
