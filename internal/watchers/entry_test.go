package watchers

import (
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync"
	"github.com/tsync/tsync/models"
)

// The changes of model policies reach watchers as updates of the columns
// the policies changed; policies that changed nothing tell them nothing.
func TestParseEntryPoliced(t *testing.T) {
	reg := models.NewRegistry()
	models.MustRegister[fuzzSite](reg, "Site")
	g, err := reg.Graph()
	require.NoError(t, err)

	ev, skip, bad := parseEntry(g, redis.XMessage{ID: "1-0", Values: map[string]any{
		FieldEvent: "ev-1", FieldChange: `{"model":"Site","id":3,"op":"policed","fields":["name"]}`,
	}})
	require.Empty(t, bad)
	require.False(t, skip)
	require.Equal(t, tsync.WatchEvent{ID: "ev-1", Changed: models.Ref{Model: "Site", ID: 3}, Op: models.OpUpdate, Fields: []string{"name"}}, ev)

	ev, skip, bad = parseEntry(g, redis.XMessage{ID: "2-0", Values: map[string]any{
		FieldEvent: "ev-2", FieldChange: `{"model":"Site","id":3,"op":"policed"}`,
	}})
	require.Empty(t, bad)
	require.True(t, skip)
	require.Zero(t, ev)
}
