package tsync_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync"
)

func TestErrorsAreNilSafe(t *testing.T) {
	require.Equal(t, "deferred", tsync.Defer(nil).Error())
	require.Equal(t, "innocuous error", tsync.Innocuous(nil).Error())
	var d *tsync.DeferredError
	require.Equal(t, "deferred", d.Error())
	require.NoError(t, d.Unwrap())
	var i *tsync.InnocuousError
	require.Equal(t, "innocuous error", i.Error())
	require.NoError(t, i.Unwrap())
	require.True(t, tsync.IsDeferred(tsync.Defer(nil)), "Defer(nil) still defers")
	require.False(t, tsync.IsDeferred(nil))
	require.False(t, tsync.IsInnocuous(nil))
}

func TestErrorsIsAndAs(t *testing.T) {
	cause := errors.New("quota busy")
	err := fmt.Errorf("slice 3: %w", tsync.Deferf("waiting: %w", cause))
	require.ErrorIs(t, err, &tsync.DeferredError{})
	require.ErrorIs(t, err, cause)
	require.NotErrorIs(t, err, &tsync.InnocuousError{})
	var d *tsync.DeferredError
	require.ErrorAs(t, err, &d)
	require.Equal(t, "waiting: quota busy", d.Error())

	note := errors.Join(errors.New("other"), tsync.Innocuousf("exists already: %d", 3))
	require.ErrorIs(t, note, &tsync.InnocuousError{})
	require.True(t, tsync.IsInnocuous(note))
	require.False(t, tsync.IsDeferred(note))
}
