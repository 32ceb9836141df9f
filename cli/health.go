package cli

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// healthCommand asks the process serving this config's metrics_address
// whether it is ready (or alive): the probe of an image without curl
// (Docker's HEALTHCHECK, an exec probe).
func (c *CLI) healthCommand() *cobra.Command {
	var live bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "health",
		Short: "Ask the worker, starter or dispatcher on this host whether it is ready (exit 0) or not (exit 1)",
		Long: `Ask the process serving the configured metrics_address on this host whether
it is ready: GET /readyz (with --live, /healthz). It prints the answer and
exits 0 when it is 200, 1 otherwise (not ready, or no answer). The health
check of a container whose image has no curl: HEALTHCHECK CMD ["` + c.def.Name + `", "health"].`,
		Args:        cobra.NoArgs,
		Annotations: map[string]string{"quiet": "true"},
		RunE: func(cmd *cobra.Command, _ []string) error {
			path := "/readyz"
			if live {
				path = "/healthz"
			}
			url, err := probeURL(c.cfg.MetricsAddress, path)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			code, body, err := probeGet(ctx, url)
			if err != nil {
				return fmt.Errorf("health: %s: %w", url, err)
			}
			fmt.Fprint(c.stdout, body)
			if code != http.StatusOK {
				return fmt.Errorf("health: %s answered %d", url, code)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&live, "live", false, "ask whether the process is alive (/healthz) rather than ready (/readyz)")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Second, "how long to wait for the answer")
	return cmd
}

// probeURL is the URL of path on this host's metrics_address: a listen
// address on all interfaces (":9464", "0.0.0.0:9464") is asked on the
// loopback.
func probeURL(address, path string) (string, error) {
	if address == "" {
		return "", fmt.Errorf("health: metrics_address is not set, so nothing serves %s (set it, or TSYNC_METRICS_ADDRESS=:9464)", path)
	}
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return "", fmt.Errorf("health: metrics_address %q: %w", address, err)
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return "http://" + net.JoinHostPort(host, port) + path, nil
}

// probeGet returns the status and body of a GET of url.
func probeGet(ctx context.Context, url string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var b strings.Builder
	if _, err := io.Copy(&b, io.LimitReader(resp.Body, 64<<10)); err != nil {
		return 0, "", err
	}
	return resp.StatusCode, b.String(), nil
}
