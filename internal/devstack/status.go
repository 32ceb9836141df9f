package devstack

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
)

// Status says what runs at a Temporal dev server's address.
type Status struct {
	// HostPort is the frontend address.
	HostPort string
	// Listening reports whether something accepts connections there.
	Listening bool
	// Healthy reports whether a Temporal client connected and passed a
	// health check there.
	Healthy bool
	// PID is the process started by Start, from the pid file; 0 when
	// there is none, or it is not running any more.
	PID int
	// UIURL is the Web UI's URL for the namespace's workflows.
	UIURL string
	// UIServed reports whether the Web UI's port accepts connections.
	UIServed bool
}

// Owned reports whether the server at HostPort is the one Start started.
func (s Status) Owned() bool { return s.PID != 0 }

// Status reports what runs at t.HostPort, and whether it is the server
// Start started (then UIURL uses the UI port it was started with).
func (t Temporal) Status(ctx context.Context) Status {
	if o, ok := t.Owned(); ok && o.HostPort == t.HostPort {
		t.UIPort = o.UIPort
		s := t.status(ctx)
		s.PID = o.PID
		return s
	}
	return t.status(ctx)
}

func (t Temporal) status(ctx context.Context) Status {
	s := Status{HostPort: t.HostPort, UIURL: t.UIURL()}
	s.Listening = Listening(t.HostPort)
	if s.Listening {
		s.Healthy = CheckHealth(ctx, t.HostPort, t.namespace()) == nil
	}
	if s.UIURL != "" {
		s.UIServed = Listening(t.uiAddr())
	}
	return s
}

// Listening reports whether something accepts TCP connections at hostPort.
func Listening(hostPort string) bool {
	conn, err := net.DialTimeout("tcp", hostPort, 500*time.Millisecond)
	if err != nil {
		return false
	}
	conn.Close()
	return true
}

// CheckHealth connects a Temporal client to hostPort and runs its health
// check.
func CheckHealth(ctx context.Context, hostPort, namespace string) error {
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := client.DialContext(dctx, client.Options{
		HostPort:  hostPort,
		Namespace: namespace,
		Logger:    quietLogger(),
	})
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.CheckHealth(dctx, &client.CheckHealthRequest{}); err != nil {
		return err
	}
	// The namespace must exist too: a fresh server registers it a moment
	// after the frontend answers.
	ns, err := c.WorkflowService().DescribeNamespace(dctx, &workflowservice.DescribeNamespaceRequest{Namespace: namespace})
	if err != nil {
		return fmt.Errorf("namespace %s: %w", namespace, err)
	}
	if st := ns.GetNamespaceInfo().GetState(); st != enumspb.NAMESPACE_STATE_REGISTERED {
		return fmt.Errorf("namespace %s is %s", namespace, st)
	}
	return nil
}

// quietLogger keeps the SDK's connection retries out of the output.
func quietLogger() sdklog.Logger { return sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler)) }
