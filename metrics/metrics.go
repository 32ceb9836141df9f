// Package metrics holds tsync's Prometheus metrics — syncs, failures,
// deferrals, step durations, the pending backlog — and the Temporal SDK's
// own metrics, on one registry served at /metrics (with other routes, such
// as app's health endpoints, on the same server).
package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.temporal.io/sdk/client"
	temporalotel "go.temporal.io/sdk/contrib/opentelemetry"
)

// Step outcomes, the "outcome" label of tsync_steps_total.
const (
	OutcomeOK        = "ok"
	OutcomeError     = "error"
	OutcomeDeferred  = "deferred"
	OutcomeInnocuous = "innocuous"
)

// Metrics are the metrics of one tsync process. A nil *Metrics records
// nothing, so code can take one optionally.
type Metrics struct {
	// Registry holds every metric, the SDK's included.
	Registry *prometheus.Registry

	steps    *prometheus.CounterVec
	duration *prometheus.HistogramVec
	pending  *prometheus.GaugeVec
	starts   prometheus.Counter
	sdk      client.MetricsHandler
}

// New returns a fresh set of metrics on their own registry; SDK metric
// errors go to log.
func New(log *slog.Logger) (*Metrics, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	reg := prometheus.NewRegistry()
	m := &Metrics{
		Registry: reg,
		steps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tsync_steps_total",
			Help: "Step calls (SyncRecord, DeleteRecord, playbooks, watcher handlers) by model, operation and outcome (ok, error, deferred, innocuous).",
		}, []string{"model", "operation", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tsync_step_duration_seconds",
			Help:    "Duration of step calls, by model and operation.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
		}, []string{"model", "operation"}),
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tsync_pending_objects",
			Help: "Objects pending for sync or deletion found by the starter's last scan, by model and operation.",
		}, []string{"model", "operation"}),
		starts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tsync_workflow_starts_total",
			Help: "Workflow starts requested by the starter (including those that found the object's workflow running).",
		}),
	}
	reg.MustRegister(m.steps, m.duration, m.pending, m.starts,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	exporter, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo())
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter))
	m.sdk = temporalotel.NewMetricsHandler(temporalotel.MetricsHandlerOptions{
		Meter:   provider.Meter("temporal-sdk-go"),
		OnError: func(err error) { log.Warn("temporal sdk metric", "error", err) },
	})
	return m, nil
}

// SDKHandler is the handler to give the Temporal client, so the SDK's
// metrics (workflow and activity task latencies, polls, ...) are served too.
func (m *Metrics) SDKHandler() client.MetricsHandler {
	if m == nil {
		return nil
	}
	return m.sdk
}

// Step records one step call.
func (m *Metrics) Step(model, operation, outcome string, d time.Duration) {
	if m == nil {
		return
	}
	m.steps.WithLabelValues(model, operation, outcome).Inc()
	m.duration.WithLabelValues(model, operation).Observe(d.Seconds())
}

// Pending records the backlog of a model found by a scan.
func (m *Metrics) Pending(model, operation string, n int) {
	if m == nil {
		return
	}
	m.pending.WithLabelValues(model, operation).Set(float64(n))
}

// Started counts one workflow start.
func (m *Metrics) Started() {
	if m == nil {
		return
	}
	m.starts.Inc()
}

// Route is an endpoint served next to /metrics (app's /healthz and
// /readyz): a pattern of http.ServeMux and its handler.
type Route struct {
	Pattern string
	Handler http.Handler
}

// Serve serves /metrics and routes on addr until ctx is done. It returns at
// once with an error when addr cannot be listened on.
func (m *Metrics) Serve(ctx context.Context, addr string, routes ...Route) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics: listen on %s: %w", addr, err)
	}
	return m.ServeListener(ctx, ln, routes...)
}

// ServeListener serves /metrics and routes on ln until ctx is done.
func (m *Metrics) ServeListener(ctx context.Context, ln net.Listener, routes ...Route) error {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry}))
	for _, r := range routes {
		mux.Handle(r.Pattern, r.Handler)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("metrics: %w", err)
	}
	return nil
}
