package syncstate_test

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync/internal/testenv"
	"github.com/tsync/tsync/models"
)

// Listen calls listening once a session is up and notify with every
// announcement; a lost session is logged and followed by another, which
// calls listening again.
func TestListenReconnects(t *testing.T) {
	s := newStore(t, chainRegistry(t))
	c, cancel := context.WithCancel(ctx(t))
	var logs testenv.SyncBuffer
	var sessions atomic.Int32
	up := make(chan struct{}, 4)
	payloads := make(chan string, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Listen(c, slog.New(slog.NewTextHandler(&logs, nil)), func() {
			sessions.Add(1)
			up <- struct{}{}
		}, func(p string) { payloads <- p })
	}()
	next := func() models.Change {
		t.Helper()
		select {
		case p := <-payloads:
			ch, err := models.ParseChange(p)
			require.NoError(t, err, p)
			ch.Updated = time.Time{}
			return ch
		case <-time.After(10 * time.Second):
			t.Fatal("no announcement")
			return models.Change{}
		}
	}
	waitUp := func() {
		t.Helper()
		select {
		case <-up:
		case <-time.After(10 * time.Second):
			t.Fatal("no session")
		}
	}

	waitUp()
	site := insertSite(t, s, "a")
	require.Equal(t, models.Change{Model: "Site", ID: site.ID, Op: models.OpCreate}, next())

	// The session's connection dies: another one starts, and listening is
	// called again.
	_, err := s.Pool().Exec(c, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = $1 AND pid <> pg_backend_pid()`,
		`LISTEN "`+s.Channel()+`"`)
	require.NoError(t, err)
	waitUp()
	require.EqualValues(t, 2, sessions.Load())
	require.Contains(t, logs.String(), "listening for changes failed; reconnecting")
	site.Name = "b"
	require.NoError(t, s.Save(c, site))
	require.Equal(t, models.Change{Model: "Site", ID: site.ID, Op: models.OpUpdate, Fields: []string{"name"}}, next())

	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Listen did not return when its context ended")
	}
}
