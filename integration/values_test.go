package integration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"

	"github.com/tsync/tsync"
	"github.com/tsync/tsync/internal/activities"
	"github.com/tsync/tsync/internal/syncstate"
	"github.com/tsync/tsync/internal/testmodels"
	"github.com/tsync/tsync/internal/workflows"
	"github.com/tsync/tsync/models"
)

// Bad and huge object fields through a whole sync (issue 7): a value
// PostgreSQL cannot store is refused at once with one clear error and
// nothing started; 8 MiB of text and 8 MiB of non-UTF-8 bytes reach the step
// exactly; a step error quoting those bytes is recorded as a clean status
// and reaches Temporal as the same clean text (a failure message must be
// valid UTF-8 and small), so the retry comes at once and nothing waits out
// a timeout; the object then syncs, and is deleted, once each.
func TestHugeAndBinaryFieldsThroughSync(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startWorker()
	e.startStarter()

	// Refused: nothing stored, nothing synced.
	err := e.app.Store.Insert(e.ctx, &testmodels.Blob{Name: "caf\xe9"})
	var fe *models.FieldError
	require.True(t, errors.As(err, &fe), "%v", err)
	require.Equal(t, "insert Blob: model Blob field Name (column name): invalid UTF-8 at byte 3 (binary data belongs in a []byte field)", err.Error())
	err = e.app.Store.Insert(e.ctx, &testmodels.Blob{Name: "ok", Meta: map[string]any{"k": "nul\x00"}})
	require.ErrorIs(t, err, models.ErrInvalidValue)
	require.ErrorContains(t, err, `field Meta (column meta)["k"]: NUL byte at byte 3`)
	ids, err := syncstate.New(e.app.Store).FetchPending(e.ctx, "Blob", false, 0, 10)
	require.NoError(t, err)
	require.Empty(t, ids, "a refused insert left a row")

	const size = 8 << 20
	name := strings.Repeat("nöme 🚀 ", size/12)
	data := bytes.Repeat([]byte{0xff, 0xfe, 0x00, 'z', 0xc3}, size/5)
	meta := map[string]any{"notes": strings.Repeat("ñ", size/8)}
	want := sha256.Sum256(append([]byte(name), data...))

	var mu sync.Mutex
	var sums [][32]byte
	calls := 0
	retry := make(chan struct{}) // closed once the failure was checked
	e.rec.SetHook(func(ctx context.Context, op string, ref models.Ref, obj models.Object) error {
		b, ok := obj.(*testmodels.Blob)
		if !ok {
			return nil
		}
		mu.Lock()
		sums = append(sums, sha256.Sum256(append([]byte(b.Name), b.Data...)))
		calls++
		first := calls == 1
		mu.Unlock()
		if !reflect.DeepEqual(b.Meta, meta) {
			return errors.New("meta differs")
		}
		if first {
			return errors.New("backend refused: " + string(b.Data))
		}
		select {
		case <-retry:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	blob := e.insert(&testmodels.Blob{Name: name, Data: data, Meta: meta})

	// The failure is recorded cleanly: code 2, valid UTF-8, cut.
	require.Eventually(t, func() bool { return e.get(blob).BackendCode == models.CodeError }, 30*time.Second, 20*time.Millisecond,
		"no error recorded: %.200s", e.describe(blob))
	status := e.get(blob).BackendStatus
	require.True(t, utf8.ValidString(status))
	require.NotContains(t, status, "\x00")
	require.Equal(t, syncstate.MaxStatusLen, utf8.RuneCountInString(status))
	require.True(t, strings.HasPrefix(status, "backend refused: \uFFFD\uFFFDz\uFFFD\uFFFDz"), "%.40q", status)
	require.Equal(t, syncstate.StatusText("backend refused: "+string(data)), status)
	close(retry)
	e.waitInSync(30*time.Second, blob)

	// Temporal got the same clean text as the failure of the first attempt.
	wfID := workflows.WorkflowID(e.cfg.ObserverName, blob)
	var failed, events []string
	iter := e.app.Client.GetWorkflowHistory(e.ctx, wfID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for iter.HasNext() {
		ev, err := iter.Next()
		require.NoError(t, err)
		events = append(events, ev.GetEventType().String())
		if a := ev.GetActivityTaskFailedEventAttributes(); a != nil {
			f := a.GetFailure()
			require.Equal(t, activities.ErrTypeStep, f.GetApplicationFailureInfo().GetType())
			failed = append(failed, f.GetMessage())
		}
	}
	require.Equal(t, []string{syncstate.StatusText("backend refused: " + string(data))}, failed,
		"events of the last run: %v; runs: %v", events, e.runsOf(wfID))

	// Deleted: the delete step sees the same bytes; the row is purged.
	require.NoError(t, e.app.Store.Delete(e.ctx, blob.Model, blob.ID))
	require.Eventually(t, func() bool { return !e.exists(blob) }, 30*time.Second, 20*time.Millisecond, "not purged: %s", e.describe(blob))
	require.Len(t, e.rec.CallsOf("sync", blob), 2)
	require.Len(t, e.rec.CallsOf("delete", blob), 1)
	// Every call got every byte: the failed sync, its retry, the delete.
	mu.Lock()
	require.Equal(t, [][32]byte{want, want, want}, sums)
	mu.Unlock()
	require.Empty(t, e.rec.Violations())
	e.waitNoneOpen(15 * time.Second)
}

// A model policy that sets a value PostgreSQL cannot store fails like any
// policy: the object is held in error with the FieldError, its content is
// unchanged, its step never runs; once the policy behaves, it syncs.
func TestPolicySettingUnstorableValue(t *testing.T) {
	t.Parallel()
	var broken atomic.Bool
	broken.Store(true)
	policy := tsync.PolicyOf[testmodels.Blob](tsync.PolicyFuncs[testmodels.Blob]{
		Create: func(ctx context.Context, b *testmodels.Blob) error {
			if broken.Load() {
				b.Name += "\xff"
			}
			return nil
		},
	})
	e := newEnvWithPolicies(t, []tsync.Policy{policy})
	blob := e.insert(&testmodels.Blob{Name: "plain"})
	e.startWorker()
	e.startStarter()
	want := fmt.Sprintf("model policy create failed: policed Blob %d: model Blob field Name (column name): invalid UTF-8 at byte 5 (binary data belongs in a []byte field)", blob.ID)
	require.Eventually(t, func() bool { return e.get(blob).BackendStatus == want }, 30*time.Second, 20*time.Millisecond,
		"not held: %s", e.describe(blob))
	b := e.get(blob)
	require.Equal(t, models.CodeError, b.BackendCode)
	require.Nil(t, b.Policed)
	require.Nil(t, b.Enacted)
	obj, err := e.app.Store.Get(e.ctx, blob.Model, blob.ID)
	require.NoError(t, err)
	require.Equal(t, "plain", obj.(*testmodels.Blob).Name)
	require.Empty(t, e.rec.CallsOf("sync", blob))

	broken.Store(false)
	e.waitInSync(30*time.Second, blob)
	e.settled([]models.Ref{blob})
	require.Len(t, e.rec.CallsOf("sync", blob), 1)
}
