package text_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync/internal/text"
)

func TestOneLine(t *testing.T) {
	for _, tc := range []struct{ in, sep, want string }{
		{"", "; ", ""},
		{"one", "; ", "one"},
		{"  yaml: line 3:\n\t  mapping values\n\n  are not allowed  \n", "; ", "yaml: line 3:; mapping values; are not allowed"},
		{"\r\nfirst\r\n  second \n", " / ", "first / second"},
		{"a  b\n", " / ", "a  b"}, // spaces within a line stay
		{" \n \t\n", " / ", ""},
	} {
		require.Equal(t, tc.want, text.OneLine(tc.in, tc.sep), "%q", tc.in)
	}
}

func TestSqueeze(t *testing.T) {
	require.Equal(t, "a b c", text.Squeeze("  a \t b\n\n c \n"))
	require.Equal(t, "", text.Squeeze(" \n "))
}

func TestCut(t *testing.T) {
	require.Equal(t, "héllo", text.Cut("héllo", 5))
	require.Equal(t, "hél…", text.Cut("héllo", 4))
	require.Equal(t, "…", text.Cut("héllo", 1))
}

func ExampleOneLine() {
	fmt.Println(text.OneLine("TASK [write]:\n  permission denied\n\n", " / "))
	// Output: TASK [write]: / permission denied
}

func TestEditDistance(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"abc", "", 3}, {"", "ab", 2}, {"kitten", "sitting", 3},
		{"database_url", "database_urll", 1}, {"Slise", "Slice", 1}, {"same", "same", 0},
	} {
		require.Equal(t, c.want, text.EditDistance(c.a, c.b), "%q %q", c.a, c.b)
		require.Equal(t, c.want, text.EditDistance(c.b, c.a), "%q %q", c.b, c.a)
	}
}
