package integration

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync"
	"github.com/tsync/tsync/internal/activities"
	"github.com/tsync/tsync/internal/testenv"
	"github.com/tsync/tsync/internal/testmodels"
	"github.com/tsync/tsync/models"
	"github.com/tsync/tsync/workflows"
)

// logLine is one line of slog's text handler, parsed.
type logLine struct {
	text  string
	attrs map[string]string
}

// parseLogLines parses slog text lines (key=value, values quoted when
// needed).
func parseLogLines(t *testing.T, out string) []logLine {
	t.Helper()
	var lines []logLine
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l == "" {
			continue
		}
		attrs := map[string]string{}
		rest := l
		for rest != "" {
			eq := strings.IndexByte(rest, '=')
			if eq < 0 {
				break
			}
			key := strings.TrimSpace(rest[:eq])
			rest = rest[eq+1:]
			var val string
			if strings.HasPrefix(rest, `"`) {
				// A quoted value: find its closing quote.
				i := 1
				for ; i < len(rest); i++ {
					if rest[i] == '\\' {
						i++
						continue
					}
					if rest[i] == '"' {
						break
					}
				}
				var err error
				val, err = unquote(rest[:i+1])
				require.NoError(t, err, "line %q", l)
				rest = strings.TrimPrefix(rest[min(i+1, len(rest)):], " ")
			} else {
				sp := strings.IndexByte(rest, ' ')
				if sp < 0 {
					sp = len(rest)
				}
				val, rest = rest[:sp], strings.TrimPrefix(rest[sp:], " ")
			}
			attrs[key] = val
		}
		lines = append(lines, logLine{text: l, attrs: attrs})
	}
	return lines
}

// unquote undoes strconv.Quote, as slog's text handler quotes.
func unquote(s string) (string, error) {
	var out string
	_, err := fmt.Sscanf(s, "%q", &out)
	return out, err
}

// TestLogsTellTheStory runs a worker and a starter for a few seconds with
// one Item whose step fails, one whose step defers and one that syncs, all
// logged at info to a buffer, and checks the lines: one per step call
// (warn with the error text for a failure, info for a deferral and a
// success), and no ERROR line (the SDK's per-attempt "Activity error."
// lines are demoted to debug, below what is logged).
func TestLogsTellTheStory(t *testing.T) {
	var buf testenv.SyncBuffer
	_, schema := testenv.Schema(t)
	cfg := testenv.Config(t, temporalServer.HostPort(), schema)
	rec := newRecorder()
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	e := openEnv(t, cfg, tsync.Synchronizer{Models: registry(), Steps: []tsync.Step{rec}}, log)
	e.rec = rec

	failing := e.insert(&testmodels.Item{Name: "failing"})
	deferring := e.insert(&testmodels.Item{Name: "deferring"})
	ok := e.insert(&testmodels.Item{Name: "ok"})
	rec.SetHook(func(_ context.Context, _ string, ref models.Ref, _ models.Object) error {
		switch ref {
		case failing:
			return errors.New("backend refused: quota exceeded")
		case deferring:
			return tsync.Deferf("waiting for the backend's network")
		}
		return nil
	})
	w := e.startWorker()
	e.startStarter()
	e.waitInSync(time.Minute, ok)
	require.Eventually(t, func() bool {
		return len(rec.CallsOf("sync", failing)) >= 4 && len(rec.CallsOf("sync", deferring)) >= 3
	}, time.Minute, 50*time.Millisecond)
	w.Stop() // every call has ended, and been logged
	out := buf.String()
	t.Logf("%d log lines:\n%s", strings.Count(out, "\n"), out)

	lines := parseLogLines(t, out)
	outcomes := map[models.Ref][]logLine{}
	ids := []string{workflows.WorkflowID(cfg.ObserverName, failing), workflows.WorkflowID(cfg.ObserverName, deferring), workflows.WorkflowID(cfg.ObserverName, ok)}
	for _, l := range lines {
		if l.attrs["level"] == "ERROR" {
			assert.NotEqual(t, "Activity error.", l.attrs["msg"], "an SDK ERROR line for a recorded outcome: %s", l.text)
			assert.NotContains(t, ids, l.attrs["WorkflowID"], "an ERROR line about the test's objects: %s", l.text)
		}
		if l.attrs["msg"] != activities.StepLogMessage {
			continue
		}
		ref := models.Ref{Model: l.attrs["model"]}
		_, err := fmt.Sscan(l.attrs["id"], &ref.ID)
		require.NoError(t, err, "line %s", l.text)
		outcomes[ref] = append(outcomes[ref], l)
	}

	// check checks the lines of ref: one per step call, the attempt of
	// call i (from 0) being attempt(i).
	check := func(ref models.Ref, level, outcome, errText string, attempt func(i int) int) {
		t.Helper()
		calls := rec.CallsOf("sync", ref)
		got := outcomes[ref]
		require.Len(t, got, len(calls), "one line per step call of %s", ref)
		for i, l := range got {
			assert.Equal(t, level, l.attrs["level"], "%s", l.text)
			assert.Equal(t, "activities", l.attrs["component"], "%s", l.text)
			assert.Equal(t, "sync", l.attrs["operation"], "%s", l.text)
			assert.Equal(t, outcome, l.attrs["outcome"], "%s", l.text)
			assert.Equal(t, errText, l.attrs["error"], "%s", l.text)
			assert.Equal(t, fmt.Sprint(attempt(i)), l.attrs["attempt"], "%s", l.text)
			assert.Equal(t, workflows.WorkflowID(cfg.ObserverName, ref), l.attrs["workflow_id"], "%s", l.text)
			d, err := time.ParseDuration(l.attrs["duration"])
			assert.NoError(t, err, "%s", l.text)
			assert.GreaterOrEqual(t, d, time.Duration(0), "%s", l.text)
		}
	}
	first := func(int) int { return 1 }
	// A failure is retried by the workflow, each retry an activity of its
	// own after a durable timer: every line says attempt 1 (the count of
	// retries is in the workflow's memo, shown by status and describe).
	check(failing, "WARN", "error", "backend refused: quota exceeded", first)
	check(ok, "INFO", "ok", "", first)
	// A deferral's tries are not retries (each is a new first attempt,
	// after loop_interval).
	check(deferring, "INFO", "deferred", "waiting for the backend's network", first)
}
