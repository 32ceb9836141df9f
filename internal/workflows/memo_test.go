package workflows

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

// The memo's status stays under the SDK's memo warning size, cut at a
// character boundary; the query and backend_status keep the whole text.
func TestMemoText(t *testing.T) {
	short := strings.Repeat("é", maxMemoStatus/2)
	require.Equal(t, short, memoText(short))
	for _, s := range []string{
		strings.Repeat("x", 5000),
		strings.Repeat("\uFFFD", 1024), // a full status of 3-byte characters
		"a" + strings.Repeat("🚀", 1000),
	} {
		got := memoText(s)
		require.LessOrEqual(t, len(got), maxMemoStatus)
		require.Greater(t, len(got), maxMemoStatus-4-len("…"))
		require.True(t, utf8.ValidString(got))
		require.True(t, strings.HasSuffix(got, "…"))
		require.True(t, strings.HasPrefix(s, strings.TrimSuffix(got, "…")))
	}
}
