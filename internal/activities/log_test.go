package activities

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync"
	"github.com/tsync/tsync/models"
)

// Every step call logs one line with its outcome: warn with the text for a
// failure, info for the others (with the text of a deferral or an
// innocuous error); a panic is a failure. Outside an activity the attempt
// is 1 and no workflow is named.
func TestCallLogsOutcome(t *testing.T) {
	var buf bytes.Buffer
	a := &Activities{Log: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{
		Level: slog.LevelInfo,
		ReplaceAttr: func(groups []string, attr slog.Attr) slog.Attr {
			switch {
			case attr.Key == slog.TimeKey && len(groups) == 0:
				return slog.Attr{}
			case attr.Key == "duration":
				d, ok := attr.Value.Any().(time.Duration)
				require.True(t, ok, "duration is a time.Duration")
				require.GreaterOrEqual(t, d, 5*time.Millisecond, "the step's own time")
				return slog.String("duration", "D")
			}
			return attr
		},
	}))}
	ctx := context.Background()
	ref := models.Ref{Model: "Site", ID: 7}
	step := func(err error) func(context.Context) error {
		return func(context.Context) error {
			time.Sleep(5 * time.Millisecond)
			return err
		}
	}
	require.NoError(t, a.call(ctx, ref, "sync", step(nil)))
	require.Error(t, a.call(ctx, ref, "sync", step(errors.New("quota exceeded"))))
	require.Error(t, a.call(ctx, ref, "sync", step(tsync.Deferf("waiting for %s", "network"))))
	require.Error(t, a.call(ctx, ref, "delete", step(tsync.Innocuousf("already gone"))))
	require.Error(t, a.call(ctx, ref, "policy", func(context.Context) error {
		time.Sleep(5 * time.Millisecond)
		panic("boom")
	}))

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	require.Len(t, lines, 5)
	require.Equal(t, []string{
		`level=INFO msg=step model=Site id=7 operation=sync outcome=ok attempt=1 duration=D`,
		`level=WARN msg=step model=Site id=7 operation=sync outcome=error attempt=1 duration=D error="quota exceeded"`,
		`level=INFO msg=step model=Site id=7 operation=sync outcome=deferred attempt=1 duration=D error="waiting for network"`,
		`level=INFO msg=step model=Site id=7 operation=delete outcome=innocuous attempt=1 duration=D error="already gone"`,
	}, lines[:4])
	require.True(t, strings.HasPrefix(lines[4], `level=WARN msg=step model=Site id=7 operation=policy outcome=error attempt=1 duration=D error="panic: boom\n`), lines[4])

	// Without a logger, nothing is logged and nothing fails.
	a.Log = nil
	require.NoError(t, a.call(ctx, ref, "sync", step(nil)))
}
