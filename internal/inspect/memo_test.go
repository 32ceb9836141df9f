package inspect_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"

	"github.com/tsync/tsync/internal/inspect"
)

func memoOf(t *testing.T, fields map[string]any) *commonpb.Memo {
	t.Helper()
	m := &commonpb.Memo{Fields: map[string]*commonpb.Payload{}}
	for k, v := range fields {
		p, err := converter.GetDefaultDataConverter().ToPayload(v)
		require.NoError(t, err)
		m.Fields[k] = p
	}
	return m
}

// The retries a workflow keeps in its memo are read back; a memo without
// them (no failure, or a run of older code) reads as none, and a malformed
// next_retry as unknown.
func TestMemoRetry(t *testing.T) {
	next := time.Date(2026, 12, 1, 1, 2, 3, 400000000, time.UTC)
	n, at := inspect.MemoRetry(memoOf(t, map[string]any{"status": "bad field", "attempt": 3, "next_retry": next.Format(time.RFC3339Nano)}))
	require.Equal(t, 3, n)
	require.NotNil(t, at)
	require.True(t, next.Equal(*at))

	n, at = inspect.MemoRetry(memoOf(t, map[string]any{"status": "OK"}))
	require.Zero(t, n)
	require.Nil(t, at)
	n, at = inspect.MemoRetry(nil)
	require.Zero(t, n)
	require.Nil(t, at)

	n, at = inspect.MemoRetry(memoOf(t, map[string]any{"attempt": 2, "next_retry": "soon"}))
	require.Equal(t, 2, n)
	require.Nil(t, at)
}

// With the memo's count, the step call under way (or next) is the one after
// the failed ones; without it, the pending activity's attempt says.
func TestStepAttemptFromMemo(t *testing.T) {
	require.Equal(t, int32(4), inspect.Workflow{Failed: 3, Attempt: 1, MaximumAttempts: 1}.StepAttempt())
	require.Equal(t, int32(1), inspect.Workflow{Attempt: 1, MaximumAttempts: 1}.StepAttempt())
	require.Equal(t, int32(3), inspect.Workflow{Attempt: 2}.StepAttempt())
}
