package logging

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
)

// sdkLines logs what the SDK logs for an activity's failed attempts (and
// other errors) through NewSDKLogger over a text handler at level, and
// returns the lines without their time.
func sdkLines(t *testing.T, level slog.Level) []string {
	t.Helper()
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{
		Level: level,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey && len(groups) == 0 {
				return slog.Attr{}
			}
			return a
		},
	}))
	l := sdklog.With(NewSDKLogger(log.With("component", "temporal"), "StepError", "DeferredError"), "WorkerID", "w1")
	l.Error(SDKActivityError, "ActivityType", "SyncObject", "Attempt", 2, "Error", temporal.NewApplicationError("quota exceeded", "StepError"))
	l.Error(SDKActivityError, "ActivityType", "SyncObject", "Attempt", 1, "Error", temporal.NewNonRetryableApplicationError("waiting", "DeferredError", nil))
	l.Error(SDKActivityError, "ActivityType", "SyncObject", "Attempt", 1, "Error", temporal.NewNonRetryableApplicationError("no step", "NoStep", nil))
	l.Error(SDKActivityError, "ActivityType", "Inspect", "Attempt", 3, "Error", errors.New("connection refused"))
	l.Error("Workflow panic", "Error", temporal.NewApplicationError("quota exceeded", "StepError"))
	l.Warn("Failed to poll for task.", "Error", errors.New("unavailable"))
	l.Info("Started Worker")
	return strings.Split(strings.TrimSpace(buf.String()), "\n")
}

// The SDK's lines for attempts that failed with a recorded type are at
// debug; every other line keeps its level.
func TestSDKLoggerDemotesRecordedActivityErrors(t *testing.T) {
	require.Equal(t, []string{
		`level=ERROR msg="Activity error." component=temporal WorkerID=w1 ActivityType=SyncObject Attempt=1 Error="no step (type: NoStep, retryable: false)"`,
		`level=ERROR msg="Activity error." component=temporal WorkerID=w1 ActivityType=Inspect Attempt=3 Error="connection refused"`,
		`level=ERROR msg="Workflow panic" component=temporal WorkerID=w1 Error="quota exceeded (type: StepError, retryable: true)"`,
		`level=WARN msg="Failed to poll for task." component=temporal WorkerID=w1 Error=unavailable`,
		`level=INFO msg="Started Worker" component=temporal WorkerID=w1`,
	}, sdkLines(t, slog.LevelInfo))

	require.Equal(t, []string{
		`level=DEBUG msg="Activity error." component=temporal WorkerID=w1 ActivityType=SyncObject Attempt=2 Error="quota exceeded (type: StepError, retryable: true)"`,
		`level=DEBUG msg="Activity error." component=temporal WorkerID=w1 ActivityType=SyncObject Attempt=1 Error="waiting (type: DeferredError, retryable: false)"`,
		`level=ERROR msg="Activity error." component=temporal WorkerID=w1 ActivityType=SyncObject Attempt=1 Error="no step (type: NoStep, retryable: false)"`,
		`level=ERROR msg="Activity error." component=temporal WorkerID=w1 ActivityType=Inspect Attempt=3 Error="connection refused"`,
		`level=ERROR msg="Workflow panic" component=temporal WorkerID=w1 Error="quota exceeded (type: StepError, retryable: true)"`,
		`level=WARN msg="Failed to poll for task." component=temporal WorkerID=w1 Error=unavailable`,
		`level=INFO msg="Started Worker" component=temporal WorkerID=w1`,
	}, sdkLines(t, slog.LevelDebug))
}
