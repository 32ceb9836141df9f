package config

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestApplist(t *testing.T) {
	for _, tt := range []struct {
		yaml string
		want []string
	}{
		{"observer_applist: [a, b]", []string{"a", "b"}},
		{"observer_applist:\n  - a\n  - b", []string{"a", "b"}},
		{"observer_applist: a,b", []string{"a", "b"}},
		{"observer_applist: a", []string{"a"}},
		{"observer_applist: null", []string{"core"}},
	} {
		c, err := Parse([]byte("observer_name: x\n"+tt.yaml), nil)
		require.NoError(t, err, tt.yaml)
		require.Equal(t, tt.want, c.ObserverApplist, tt.yaml)
	}

	c, err := Parse([]byte("observer_name: x\nobserver_applist: [a]"), []string{"TSYNC_OBSERVER_APPLIST=core,extra"})
	require.NoError(t, err)
	require.Equal(t, []string{"core", "extra"}, c.ObserverApplist)
}
