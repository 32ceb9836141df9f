package app

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync/internal/testenv"
	"github.com/tsync/tsync/metrics"
)

// serveHealth serves h's routes with metrics, as App does, until the test
// ends, and returns the server's base URL.
func serveHealth(t *testing.T, h *Health) string {
	t.Helper()
	m, err := metrics.New(nil)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.ServeListener(ctx, ln, h.Routes()...) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return "http://" + ln.Addr().String()
}

// get returns the status and body of a GET of url.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}

func pass(context.Context) error { return nil }

// /healthz always answers 200; /readyz lists every check, the failing ones
// with their error on one line, and answers 503 while one fails; /metrics
// is still served next to them.
func TestHealthEndpoints(t *testing.T) {
	h := NewHealth(0, time.Second)
	h.Set(Check{Name: "temporal", Run: pass})
	h.Set(Check{Name: "postgres", Run: func(context.Context) error { return errors.New("connection refused\n  (is it up?)") }})
	base := serveHealth(t, h)

	code, body := get(t, base+"/healthz")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "ok\n", body)

	code, body = get(t, base+"/readyz")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Equal(t, "[+]temporal ok\n[-]postgres failed: connection refused (is it up?)\n[+]shutdown ok\nreadyz check failed\n", body)

	// Set replaces a check in its place.
	h.Set(Check{Name: "postgres", Run: pass})
	h.Set(Check{Name: "worker", Run: pass})
	code, body = get(t, base+"/readyz")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "[+]temporal ok\n[+]postgres ok\n[+]worker ok\n[+]shutdown ok\nreadyz check passed\n", body)

	code, _ = get(t, base+"/metrics")
	require.Equal(t, http.StatusOK, code)
	resp, err := http.Post(base+"/readyz", "text/plain", nil)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)

	// From the start of a shutdown, /readyz fails; /healthz does not.
	h.Shutdown()
	code, body = get(t, base+"/readyz")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Equal(t, "[+]temporal ok\n[+]postgres ok\n[+]worker ok\n"+
		"[-]shutdown failed: shutting down: no new work is taken, work under way may finish\nreadyz check failed\n", body)
	code, _ = get(t, base+"/healthz")
	require.Equal(t, http.StatusOK, code)
}

// Results are reused for the TTL, by concurrent probes too, but a
// shutdown shows at once.
func TestHealthCachesResults(t *testing.T) {
	var runs atomic.Int32
	h := NewHealth(time.Hour, time.Second)
	h.Set(Check{Name: "counted", Run: func(context.Context) error {
		runs.Add(1)
		time.Sleep(20 * time.Millisecond)
		return nil
	}})
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			ready, _ := h.Ready(context.Background())
			require.True(t, ready)
		})
	}
	wg.Wait()
	require.EqualValues(t, 1, runs.Load())

	h.Shutdown()
	ready, results := h.Ready(context.Background())
	require.False(t, ready)
	require.Equal(t, []CheckResult{{Name: "counted"}, {Name: "shutdown", Err: errShuttingDown}}, results)
	require.EqualValues(t, 1, runs.Load())

	// Without a TTL every probe runs the checks.
	h = NewHealth(0, time.Second)
	h.Set(Check{Name: "counted", Run: func(context.Context) error { runs.Add(1); return nil }})
	h.Ready(context.Background())
	h.Ready(context.Background())
	require.EqualValues(t, 3, runs.Load())
}

// A check that hangs fails at the timeout; the others are run beside it.
func TestHealthCheckTimeout(t *testing.T) {
	h := NewHealth(0, 100*time.Millisecond)
	h.Set(Check{Name: "hangs", Run: func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }})
	h.Set(Check{Name: "fine", Run: pass})
	begin := time.Now()
	ready, results := h.Ready(context.Background())
	require.Less(t, time.Since(begin), 10*time.Second)
	require.False(t, ready)
	require.Equal(t, []CheckResult{{Name: "hangs", Err: context.DeadlineExceeded}, {Name: "fine"}, {Name: "shutdown"}}, results)
}

// A nil Health is ready (an app opened by OpenStore has none).
func TestNilHealth(t *testing.T) {
	var h *Health
	h.Set(Check{Name: "x", Run: pass})
	h.Shutdown()
	ready, results := h.Ready(context.Background())
	require.True(t, ready)
	require.Nil(t, results)
}

func TestPollingCheck(t *testing.T) {
	var p atomic.Int32
	c := pollingCheck(&p, "q")
	require.EqualError(t, c.Run(context.Background()), `not polling task queue "q" (the worker has not started yet: is the namespace served?)`)
	p.Store(pollingOn)
	require.NoError(t, c.Run(context.Background()))
	p.Store(pollingStopped)
	require.EqualError(t, c.Run(context.Background()), `stopped polling task queue "q"`)
}

// The starter's check passes while its counter moves within the window.
func TestProgressCheck(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	var count int64
	c := progressCheck("starter", func() int64 { return count }, time.Minute, func() time.Time { return now })
	require.Equal(t, "starter", c.Name)
	now = now.Add(59 * time.Second)
	require.NoError(t, c.Run(context.Background()), "within the window since it began")
	now = now.Add(2 * time.Second)
	require.EqualError(t, c.Run(context.Background()), "no progress for 1m1s (at most 1m0s expected)")
	count++
	require.NoError(t, c.Run(context.Background()))
	now = now.Add(time.Minute)
	require.NoError(t, c.Run(context.Background()))
	now = now.Add(time.Second)
	require.EqualError(t, c.Run(context.Background()), "no progress for 1m1s (at most 1m0s expected)")

	require.Equal(t, 2*time.Minute, starterWindow(time.Second))
	require.Equal(t, 10*time.Minute, starterWindow(time.Minute))
}

// closedPort returns a local address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	port, err := testenv.FreePort()
	require.NoError(t, err)
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

// The PostgreSQL and Redis checks, against the real services and against
// a port where nothing listens.
func TestServiceChecks(t *testing.T) {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, testenv.DatabaseURL())
	require.NoError(t, err)
	defer pool.Close()
	require.NoError(t, postgresCheck(pool).Run(ctx))

	down, err := pgxpool.New(ctx, "postgres://postgres@"+closedPort(t)+"/test?sslmode=disable&connect_timeout=5")
	require.NoError(t, err)
	defer down.Close()
	require.ErrorContains(t, postgresCheck(down).Run(ctx), "connect")

	redisURL := "redis://127.0.0.1:6379/0"
	if u := os.Getenv("TSYNC_TEST_REDIS_URL"); u != "" {
		redisURL = u
	}
	opts, err := redis.ParseURL(redisURL)
	require.NoError(t, err)
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	require.NoError(t, redisCheck(rdb).Run(ctx))
	rdown := redis.NewClient(&redis.Options{Addr: closedPort(t), MaxRetries: -1})
	defer rdown.Close()
	require.ErrorContains(t, redisCheck(rdown).Run(ctx), "connection refused")

	c := temporalCheck(nil, "temporal:7233")
	require.Equal(t, "temporal", c.Name)
	require.EqualError(t, c.Run(ctx), "not connected yet to temporal:7233 (waiting for the server)")
}
