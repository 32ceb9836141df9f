package integration

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync"
	"github.com/tsync/tsync/config"
	"github.com/tsync/tsync/internal/testenv"
	"github.com/tsync/tsync/internal/testmodels"
	"github.com/tsync/tsync/models"
)

func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(body)
}

// The metrics endpoint counts step outcomes, the backlog and the SDK's own
// metrics.
func TestMetricsEndpoint(t *testing.T) {
	t.Parallel()
	addr := testenv.FreeAddress(t)
	e := newEnv(t, func(c *config.Config) { c.MetricsAddress = addr })
	require.Equal(t, "http://"+addr+"/metrics", e.app.MetricsURL)
	var calls atomic.Int32
	e.rec.SetHook(func(ctx context.Context, op string, ref models.Ref, obj models.Object) error {
		switch calls.Add(1) {
		case 1:
			return errors.New("boom")
		case 2:
			return tsync.Deferf("later")
		}
		return nil
	})
	item := e.insert(&testmodels.Item{Name: "m"})
	e.startWorker()
	e.startStarter()
	e.waitInSync(30*time.Second, item)

	want := []string{
		`tsync_steps_total{model="Item",operation="sync",outcome="ok"} 1`,
		`tsync_steps_total{model="Item",operation="sync",outcome="error"} 1`,
		`tsync_steps_total{model="Item",operation="sync",outcome="deferred"} 1`,
		`tsync_step_duration_seconds_count{model="Item",operation="sync"} 3`,
		`tsync_pending_objects{model="Item",operation="sync"}`,
		`tsync_workflow_starts_total`,
		`temporal_activity_execution_latency`,
		`temporal_long_request`,
	}
	var body string
	missing := func() []string {
		var out []string
		for _, w := range want {
			if !strings.Contains(body, w) {
				out = append(out, w)
			}
		}
		return out
	}
	require.Eventually(t, func() bool {
		body = scrape(t, e.app.MetricsURL)
		return len(missing()) == 0
	}, 10*time.Second, 100*time.Millisecond, "missing metrics: %v", missing)
	t.Logf("scraped %d bytes from %s", len(body), e.app.MetricsURL)
}
