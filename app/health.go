package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"go.temporal.io/sdk/client"

	"github.com/tsync/tsync/internal/text"
	"github.com/tsync/tsync/metrics"
)

// Health is the liveness and readiness of a tsync process, served with its
// metrics at metrics_address:
//
//	GET /healthz  200 "ok": the process is alive and serves (liveness)
//	GET /readyz   200 when every check passes, else 503 (readiness)
//
// The checks of every process are temporal (the frontend answers the
// client's health check) and postgres (the pool answers a ping); each
// process the app runs adds its own: worker (its SDK worker polls the task
// queue), starter (its loop scanned recently), dispatcher (Redis answers a
// ping). From the moment a shutdown begins (SIGTERM), /readyz answers 503.
// Its body has one line per check, then the verdict, as Kubernetes' own:
//
//	[+]temporal ok
//	[+]postgres ok
//	[-]worker failed: not polling task queue "tsync" (the worker has not started yet)
//	[+]shutdown ok
//	readyz check failed
//
// The results are kept for a second, so that probes (of several kinds, and
// a scraper) do not hammer the servers; each check is bounded by a short
// timeout. A nil *Health serves nothing and is always ready.
type Health struct {
	ttl, timeout time.Duration

	mu     sync.Mutex // guards checks
	checks []Check

	eval    sync.Mutex // one evaluation at a time; guards results, at
	results []CheckResult
	at      time.Time

	shutdown atomic.Bool
}

// Check is one readiness check.
type Check struct {
	// Name names the check in /readyz's body ("temporal").
	Name string
	// Run returns nil when the check passes, else why not. It must return
	// by ctx's deadline.
	Run func(ctx context.Context) error
}

// CheckResult is the outcome of one check: Err is nil when it passed.
type CheckResult struct {
	Name string
	Err  error
}

// Defaults of NewHealth.
const (
	// HealthCacheTTL is how long /readyz reuses its checks' results.
	HealthCacheTTL = time.Second
	// HealthCheckTimeout bounds one check.
	HealthCheckTimeout = 2 * time.Second
)

// NewHealth returns a Health without checks (ready) that reuses results
// for ttl and gives each check timeout.
func NewHealth(ttl, timeout time.Duration) *Health {
	return &Health{ttl: ttl, timeout: timeout}
}

// Set adds check, or replaces the check of the same name (keeping its
// place in the body).
func (h *Health) Set(check Check) {
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if i := slices.IndexFunc(h.checks, func(c Check) bool { return c.Name == check.Name }); i >= 0 {
		h.checks[i] = check
		return
	}
	h.checks = append(h.checks, check)
}

// Shutdown marks the beginning of the process's shutdown: /readyz answers
// 503 from now on, at once (not after the results' TTL).
func (h *Health) Shutdown() {
	if h != nil {
		h.shutdown.Store(true)
	}
}

// errShuttingDown is the shutdown check's failure.
var errShuttingDown = errors.New("shutting down: no new work is taken, work under way may finish")

// Ready runs the checks (or reuses results of less than the TTL) and
// reports whether every one passed and no shutdown has begun, with each
// check's result, the shutdown check last.
func (h *Health) Ready(ctx context.Context) (bool, []CheckResult) {
	if h == nil {
		return true, nil
	}
	results := h.evaluate(ctx)
	var down error
	if h.shutdown.Load() {
		down = errShuttingDown
	}
	results = append(results, CheckResult{Name: "shutdown", Err: down})
	ready := true
	for _, r := range results {
		if r.Err != nil {
			ready = false
		}
	}
	return ready, results
}

// evaluate runs the checks at once, each bounded by the timeout, unless the
// last results are recent enough.
func (h *Health) evaluate(ctx context.Context) []CheckResult {
	h.eval.Lock()
	defer h.eval.Unlock()
	if !h.at.IsZero() && time.Since(h.at) < h.ttl {
		return slices.Clone(h.results)
	}
	h.mu.Lock()
	checks := slices.Clone(h.checks)
	h.mu.Unlock()
	results := make([]CheckResult, len(checks))
	var wg sync.WaitGroup
	for i, c := range checks {
		wg.Go(func() {
			// A probe that hangs up must not fail the results others reuse.
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), h.timeout)
			defer cancel()
			results[i] = CheckResult{Name: c.Name, Err: c.Run(cctx)}
		})
	}
	wg.Wait()
	h.results, h.at = results, time.Now()
	return slices.Clone(results)
}

// Routes are the endpoints /healthz and /readyz, for metrics.ServeListener.
func (h *Health) Routes() []metrics.Route {
	return []metrics.Route{
		{Pattern: "GET /healthz", Handler: http.HandlerFunc(h.serveLive)},
		{Pattern: "GET /readyz", Handler: http.HandlerFunc(h.serveReady)},
	}
}

func (h *Health) serveLive(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	fmt.Fprintln(w, "ok")
}

func (h *Health) serveReady(w http.ResponseWriter, r *http.Request) {
	ready, results := h.Ready(r.Context())
	var b strings.Builder
	for _, res := range results {
		if res.Err == nil {
			fmt.Fprintf(&b, "[+]%s ok\n", res.Name)
		} else {
			fmt.Fprintf(&b, "[-]%s failed: %s\n", res.Name, text.Cut(text.Squeeze(res.Err.Error()), 500))
		}
	}
	status := http.StatusOK
	if ready {
		b.WriteString("readyz check passed\n")
	} else {
		b.WriteString("readyz check failed\n")
		status = http.StatusServiceUnavailable
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(b.String()))
}

// temporalCheck passes when the Temporal frontend at hostPort answers c's
// health check; nil c: not connected yet.
func temporalCheck(c client.Client, hostPort string) Check {
	return Check{Name: "temporal", Run: func(ctx context.Context) error {
		if c == nil {
			return fmt.Errorf("not connected yet to %s (waiting for the server)", hostPort)
		}
		if _, err := c.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
			return fmt.Errorf("%s: %w", hostPort, err)
		}
		return nil
	}}
}

// postgresCheck passes when pool's database answers a ping.
func postgresCheck(pool *pgxpool.Pool) Check {
	return Check{Name: "postgres", Run: pool.Ping}
}

// redisCheck passes when Redis answers a ping.
func redisCheck(rdb *redis.Client) Check {
	return Check{Name: "redis", Run: func(ctx context.Context) error { return rdb.Ping(ctx).Err() }}
}

// pollingCheck passes while *polling is set: the worker of task queue polls.
func pollingCheck(polling *atomic.Int32, taskQueue string) Check {
	return Check{Name: "worker", Run: func(context.Context) error {
		switch polling.Load() {
		case pollingNotYet:
			return fmt.Errorf("not polling task queue %q (the worker has not started yet: is the namespace served?)", taskQueue)
		case pollingStopped:
			return fmt.Errorf("stopped polling task queue %q", taskQueue)
		}
		return nil
	}}
}

// States of a worker for pollingCheck.
const (
	pollingNotYet int32 = iota
	pollingOn
	pollingStopped
)

// progressCheck passes while count has changed within the last window:
// name's loop runs. It counts from now (its creation), and reads the time
// with now.
func progressCheck(name string, count func() int64, window time.Duration, now func() time.Time) Check {
	var mu sync.Mutex
	last, changed := count(), now()
	return Check{Name: name, Run: func(context.Context) error {
		mu.Lock()
		defer mu.Unlock()
		t := now()
		if c := count(); c != last {
			last, changed = c, t
			return nil
		}
		if idle := t.Sub(changed); idle > window {
			return fmt.Errorf("no progress for %s (at most %s expected)", idle.Round(time.Second), window)
		}
		return nil
	}}
}

// starterWindow is how long a starter may go without starting a scan or
// a workflow before it is not ready: several loop intervals, and at least
// the time a scan takes while Temporal times out its starts.
func starterWindow(loopInterval time.Duration) time.Duration {
	return max(2*time.Minute, 10*loopInterval)
}
