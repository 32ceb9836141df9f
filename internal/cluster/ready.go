package cluster

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// healthServices are the names the services give their gRPC health
// (grpc.health.v1) status under. The worker service has no gRPC server.
var healthServices = map[string]string{
	"frontend": "temporal.api.workflowservice.v1.WorkflowService",
	"history":  "temporal.api.workflowservice.v1.HistoryService",
	"matching": "temporal.api.workflowservice.v1.MatchingService",
}

// Retention is the workflow retention of the namespace Start registers.
const Retention = 24 * time.Hour

// serviceReady returns a service's readiness check: its gRPC health status
// is SERVING (the history service's once it owns its shards, the
// frontend's once it has joined the membership ring); the worker service,
// which serves no gRPC, is ready once its membership port listens.
func (c *Cluster) serviceReady(service string) func(ctx context.Context) error {
	if service == "worker" {
		hostPort := addr(dialHost(c.opts.Host), c.ports.membership[service])
		return func(ctx context.Context) error {
			conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", hostPort)
			if err != nil {
				return err
			}
			return conn.Close()
		}
	}
	return func(ctx context.Context) error {
		status, err := c.health(ctx, service)
		if err != nil {
			return err
		}
		if status != healthpb.HealthCheckResponse_SERVING {
			return fmt.Errorf("%s health: %s", service, status)
		}
		return nil
	}
}

// answers returns a check that a service's gRPC server answers, whatever
// its health status.
func (c *Cluster) answers(service string) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		_, err := c.health(ctx, service)
		return err
	}
}

// health asks a service for its gRPC health status.
func (c *Cluster) health(ctx context.Context, service string) (healthpb.HealthCheckResponse_ServingStatus, error) {
	conn, err := c.dial(service)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: healthServices[service]})
	if err != nil {
		return 0, err
	}
	return resp.GetStatus(), nil
}

// dial connects to a service's gRPC port (the frontend's with the
// client certificate when it requires mTLS).
func (c *Cluster) dial(service string) (*grpc.ClientConn, error) {
	creds := insecure.NewCredentials()
	if service == "frontend" && c.tls != nil {
		creds = credentials.NewTLS(c.tls.config.Clone())
	}
	target := addr(dialHost(c.opts.Host), c.ports.grpc[service])
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(creds))
	if err != nil {
		return nil, fmt.Errorf("dial %s at %s: %w", service, target, err)
	}
	return conn, nil
}

// uiReady checks that the Web UI server answers its health check.
func (c *Cluster) uiReady(ctx context.Context) error {
	url := "http://" + addr(dialHost(c.opts.Host), c.ports.ui) + "/healthz"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

// registerNamespace registers the namespace (unless it exists) and waits
// until it serves. The server does not create any namespace itself.
func (c *Cluster) registerNamespace(ctx context.Context) error {
	conn, err := c.dial("frontend")
	if err != nil {
		return err
	}
	defer conn.Close()
	svc := workflowservice.NewWorkflowServiceClient(conn)
	var last error
	for {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := svc.RegisterNamespace(rctx, &workflowservice.RegisterNamespaceRequest{
			Namespace:                        c.opts.Namespace,
			Description:                      "registered by tsync's cluster",
			WorkflowExecutionRetentionPeriod: durationpb.New(Retention),
		})
		cancel()
		if err == nil || status.Code(err) == codes.AlreadyExists {
			break
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster: register namespace %s: %w (last error: %v)", c.opts.Namespace, ctx.Err(), last)
		case <-time.After(200 * time.Millisecond):
		}
	}
	return c.waitNamespace(ctx)
}

// waitNamespace waits until the namespace serves through the frontend: it
// describes as registered and its workflows can be listed (a frontend sees
// a namespace registered a moment ago only after it refreshes its
// namespace cache, every 10 s by default).
func (c *Cluster) waitNamespace(ctx context.Context) error {
	conn, err := c.dial("frontend")
	if err != nil {
		return err
	}
	defer conn.Close()
	svc := workflowservice.NewWorkflowServiceClient(conn)
	check := func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		ns, err := svc.DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: c.opts.Namespace})
		if err != nil {
			return err
		}
		if st := ns.GetNamespaceInfo().GetState(); st != enumspb.NAMESPACE_STATE_REGISTERED {
			return fmt.Errorf("namespace is %s", st)
		}
		_, err = svc.ListWorkflowExecutions(ctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: c.opts.Namespace, PageSize: 1})
		return err
	}
	for {
		last := check(ctx)
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster: namespace %s does not serve at %s: %w (last error: %v)", c.opts.Namespace, c.hostPort, ctx.Err(), last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// addr joins a host and a port.
func addr(host string, port int) string { return net.JoinHostPort(host, strconv.Itoa(port)) }
