package app

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"

	"github.com/tsync/tsync/config"
	"github.com/tsync/tsync/internal/workflows"
)

// RegisterSearchAttributes makes sure namespace has the search attributes
// of tsync's workflows (workflows.SearchAttributes), adding those missing.
func RegisterSearchAttributes(ctx context.Context, c client.Client, namespace string) error {
	want := workflows.SearchAttributes()
	missing := func() (map[string]enumspb.IndexedValueType, error) {
		resp, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
		if err != nil {
			return nil, err
		}
		out := map[string]enumspb.IndexedValueType{}
		for name, t := range want {
			have, ok := resp.GetCustomAttributes()[name]
			if !ok {
				out[name] = t
			} else if have != t {
				return nil, fmt.Errorf("search attribute %s is registered as %s, want %s", name, have, t)
			}
		}
		return out, nil
	}
	m, err := missing()
	if err != nil {
		return fmt.Errorf("list search attributes of namespace %s: %w", namespace, err)
	}
	if len(m) == 0 {
		return nil
	}
	if _, err := c.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
		Namespace: namespace, SearchAttributes: m,
	}); err != nil {
		return fmt.Errorf("add search attributes to namespace %s: %w", namespace, err)
	}
	// Wait until they are visible, so the first workflows can use them.
	for range 50 {
		if m, err = missing(); err == nil && len(m) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("search attributes of namespace %s: still missing after adding them: %v", namespace, m)
}

// DialTemporal connects to cfg's Temporal server, failing with a clear
// message when it cannot be reached.
func DialTemporal(ctx context.Context, cfg config.Config, log *slog.Logger) (client.Client, error) {
	return dialTemporal(ctx, cfg, log, nil)
}

// Delays of waitForTemporal between two dials: doubling, capped (a dial
// of a server that is down fails at once or after dialTimeout).
const (
	dialRetryInitial = time.Second
	dialRetryMax     = 5 * time.Second
)

// waitForTemporal is dialTemporal tried again, with a warning naming the
// server and the error, until it succeeds or ctx is done.
func waitForTemporal(ctx context.Context, cfg config.Config, log *slog.Logger, mh client.MetricsHandler) (client.Client, error) {
	wait := dialRetryInitial
	for attempt := 1; ; attempt++ {
		c, err := dialTemporal(ctx, cfg, log, mh)
		if err == nil {
			if attempt > 1 {
				log.Info("temporal is reachable", "host_port", cfg.Temporal.HostPort, "attempts", attempt)
			}
			return c, nil
		}
		if ctx.Err() != nil {
			return nil, err
		}
		log.Warn("waiting for temporal: unreachable, trying again (run `tsync dev start` or set temporal.host_port / TSYNC_TEMPORAL_HOST_PORT)",
			"host_port", cfg.Temporal.HostPort, "attempt", attempt, "retry_in", wait, "error", err)
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(wait):
		}
		wait = min(2*wait, dialRetryMax)
	}
}

// dialTimeout bounds one dial of the Temporal server.
const dialTimeout = 5 * time.Second

func dialTemporal(ctx context.Context, cfg config.Config, log *slog.Logger, mh client.MetricsHandler) (client.Client, error) {
	dctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	c, err := client.DialContext(dctx, client.Options{
		HostPort:       cfg.Temporal.HostPort,
		Namespace:      cfg.Temporal.Namespace,
		Logger:         sdklog.NewStructuredLogger(log.With("component", "temporal")),
		MetricsHandler: mh,
	})
	if err != nil {
		return nil, fmt.Errorf("temporal at %s is unreachable (run `tsync dev start` or set temporal.host_port / TSYNC_TEMPORAL_HOST_PORT): %w", cfg.Temporal.HostPort, err)
	}
	return c, nil
}
