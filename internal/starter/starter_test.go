package starter

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/api/serviceerror"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tsync/tsync/models"
)

// A start refused because the namespace does not serve the search
// attributes yet says so, rather than blaming the server being down; the
// texts are the real server's (v1.29.1), as the SDK returns them.
func TestStartError(t *testing.T) {
	ref := models.Ref{Model: "Site", ID: 2}
	start := func(err error) error { return fmt.Errorf("start workflow of %s: %w", ref, err) }

	notServed := serviceerror.FromStatus(status.New(codes.InvalidArgument, "Namespace default has no mapping defined for search attribute TsyncObjectID"))
	require.True(t, SearchAttributesNotServed(notServed))
	err := startError(start(notServed))
	require.EqualError(t, err, "starting workflows failed: the namespace does not serve the Tsync* search attributes yet "+
		"(a real Temporal server serves newly registered ones only a few seconds later; the next scan tries again): "+
		"start workflow of model Site id 2: Namespace default has no mapping defined for search attribute TsyncObjectID")
	require.ErrorIs(t, err, errStart, "the scan stops there, as for any failed start")

	query := serviceerror.NewInvalidArgument("invalid query: invalid expression: column name 'TsyncState' is not a valid search attribute")
	require.True(t, SearchAttributesNotServed(query))

	for _, other := range []error{
		serviceerror.NewUnavailable("connection refused"),
		serviceerror.NewInvalidArgument("Namespace default has no mapping defined for search attribute CustomerID"),
		serviceerror.NewInvalidArgument("WorkflowId is not set on request."),
		errors.New("no mapping defined for search attribute TsyncObjectID"), // not the server's
	} {
		require.False(t, SearchAttributesNotServed(other), "%v", other)
	}
	err = startError(start(serviceerror.NewUnavailable("connection refused")))
	require.EqualError(t, err, "starting workflows failed (is the Temporal server up?): start workflow of model Site id 2: connection refused")
	require.ErrorIs(t, err, errStart)
}

// A scan signals (rather than only starts) an object whose content changed
// since the starter last started its workflow, in case the announcement of
// the change was lost; not one it never started, nor one unchanged.
func TestChangedSince(t *testing.T) {
	s := New(nil, nil, nil, Options{})
	ref := models.Ref{Model: "Site", ID: 2}
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	require.False(t, s.changedSince(ref, t0), "never started")
	s.record(ref, t0, "run-1")
	require.False(t, s.changedSince(ref, t0), "same content")
	require.True(t, s.changedSince(ref, t0.Add(time.Millisecond)), "changed since")
	require.False(t, s.changedSince(ref, time.Time{}), "content unknown")
	s.record(models.Ref{Model: "Site", ID: 3}, time.Time{}, "run-2")
	require.False(t, s.changedSince(models.Ref{Model: "Site", ID: 3}, t0), "started for unknown content")
}

// An announcement of a created object whose workflow a scan is starting
// for the same content at that moment waits for that start and, when it
// started a new run, sends no signal: the run sees that content. Not for
// other content, nor when the scan's start joined a run seen before (which
// may predate the content).
func TestStartedByScan(t *testing.T) {
	ctx := context.Background()
	s := New(nil, nil, nil, Options{})
	ref := models.Ref{Model: "Site", ID: 2}
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	require.False(t, s.startedByScan(ctx, ref, t0), "no scan started it")

	done := s.scanStarting(ref, t0)
	got := make(chan bool)
	go func() { got <- s.startedByScan(ctx, ref, t0) }()
	select {
	case <-got:
		t.Fatal("did not wait for the scan's start in flight")
	case <-time.After(50 * time.Millisecond):
	}
	s.record(ref, t0, "run-1")
	done()
	require.True(t, <-got, "the scan's new run is for that content")
	require.False(t, s.startedByScan(ctx, ref, t0.Add(time.Millisecond)), "other content")

	other := models.Ref{Model: "Site", ID: 3}
	s.record(other, t0.Add(-time.Second), "run-2")
	done = s.scanStarting(other, t0)
	s.record(other, t0, "run-2") // joined the run seen before
	done()
	require.False(t, s.startedByScan(ctx, other, t0), "joined a run seen before")
}

// The pause after a scan shorter than paceAfter is what is left of the
// loop interval; after a longer one, the loop interval or scanPace times
// the scan, up to half a trust window.
func TestPauseGrowsWithTheScan(t *testing.T) {
	for _, c := range []struct {
		loop, took, want time.Duration
	}{
		{time.Second, time.Millisecond, 999 * time.Millisecond},
		{20 * time.Millisecond, 100 * time.Millisecond, 0},
		{time.Second, 2 * time.Second, 8 * time.Second},
		{time.Second, 100 * time.Second, 30 * time.Second},
		{10 * time.Second, time.Second, 10 * time.Second},
		{10 * time.Second, 20 * time.Second, 50 * time.Second},
	} {
		s := New(nil, nil, nil, Options{LoopInterval: c.loop})
		require.Equal(t, c.want, s.pause(c.took), "loop %s, scan %s", c.loop, c.took)
	}
}
