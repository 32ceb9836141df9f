package watchers

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync"
	"github.com/tsync/tsync/internal/engine"
	"github.com/tsync/tsync/models"
)

// Every handler call logs one line with its outcome, in the words of the
// step lines: warn with the text for a failure, info for the others.
func TestHandlerLogsOutcome(t *testing.T) {
	var buf bytes.Buffer
	a := &Activities{Log: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{
		ReplaceAttr: func(groups []string, attr slog.Attr) slog.Attr {
			if attr.Key == slog.TimeKey && len(groups) == 0 {
				return slog.Attr{}
			}
			return attr
		},
	}))}
	req := Request{Watcher: "owners", Object: models.Ref{Model: "Site", ID: 3}}
	for _, err := range []error{nil, errors.New("ldap down"), tsync.Deferf("waiting"), tsync.Innocuousf("nothing to do")} {
		a.logOutcome(context.Background(), req, engine.Classify(err), 0, err)
	}
	require.Equal(t, []string{
		`level=INFO msg=watch watcher=owners model=Site id=3 outcome=ok duration=0s`,
		`level=WARN msg=watch watcher=owners model=Site id=3 outcome=error duration=0s error="ldap down"`,
		`level=INFO msg=watch watcher=owners model=Site id=3 outcome=deferred duration=0s error=waiting`,
		`level=INFO msg=watch watcher=owners model=Site id=3 outcome=innocuous duration=0s error="nothing to do"`,
	}, strings.Split(strings.TrimSpace(buf.String()), "\n"))

	(&Activities{}).logOutcome(context.Background(), req, engine.Failed, 0, errors.New("x")) // no logger: nothing, no panic
}
