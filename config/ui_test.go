package config

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// The object view's token is read from ui_token_file, trimmed; a bad file
// is a one-line error naming the key and never showing the token.
func TestUIToken(t *testing.T) {
	none, err := named("demo").UIToken()
	require.NoError(t, err)
	require.Empty(t, none)

	dir := t.TempDir()
	file := filepath.Join(dir, "token")
	require.NoError(t, os.WriteFile(file, []byte("\n  view-token-1\n"), 0o600))
	c, err := Parse([]byte("observer_name: demo\nui_address: 127.0.0.1:8480\nui_token_file: "+file+"\n"), nil)
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:8480", c.UIAddress)
	tok, err := c.UIToken()
	require.NoError(t, err)
	require.Equal(t, "view-token-1", tok)

	spaced := filepath.Join(dir, "spaced")
	require.NoError(t, os.WriteFile(spaced, []byte("two words"), 0o600))
	_, err = Parse([]byte("observer_name: demo\nui_token_file: "+spaced+"\n"), nil)
	require.ErrorContains(t, err, "ui_token_file: the token in "+spaced+" must be one line of printable ASCII without spaces")
	require.NotContains(t, err.Error(), "two words")

	empty := filepath.Join(dir, "empty")
	require.NoError(t, os.WriteFile(empty, []byte(" \n"), 0o600))
	_, err = Parse([]byte("observer_name: demo\nui_token_file: "+empty+"\n"), nil)
	require.ErrorContains(t, err, "ui_token_file: "+empty+" is empty, want the token")

	_, err = Parse([]byte("observer_name: demo\nui_address: nope\n"), nil)
	require.ErrorContains(t, err, `ui_address: invalid address "nope", want [host]:port`)
	require.NoError(t, os.Remove(file))
	_, err = c.UIToken()
	require.EqualError(t, err, "config: ui_token_file: cannot read "+file+": no such file or directory")
}
