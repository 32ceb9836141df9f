package integration

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/grpc"

	"github.com/tsync/tsync"
	"github.com/tsync/tsync/app"
	"github.com/tsync/tsync/config"
	"github.com/tsync/tsync/internal/testenv"
	"github.com/tsync/tsync/internal/testmodels"
	"github.com/tsync/tsync/internal/workflows"
	"github.com/tsync/tsync/models"
)

// startCounter counts a client's StartWorkflowExecution calls that started
// a run, and those of them whose response carried the run's first workflow
// task (an eager start).
type startCounter struct{ started, eager atomic.Int64 }

// option is the app.Option that counts the starts of the app's client.
func (c *startCounter) option() app.Option {
	return app.WithClientOptions(func(o *client.Options) {
		o.ConnectionOptions.DialOptions = append(o.ConnectionOptions.DialOptions, grpc.WithChainUnaryInterceptor(
			func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
				err := invoker(ctx, method, req, reply, cc, opts...)
				if resp, ok := reply.(*workflowservice.StartWorkflowExecutionResponse); ok && err == nil && resp.GetStarted() {
					c.started.Add(1)
					if resp.GetEagerWorkflowTask() != nil {
						c.eager.Add(1)
					}
				}
				return err
			}))
	})
}

// eagerEnv opens an app of cfg counting its starts with c.
func eagerEnv(t *testing.T, cfg config.Config, c *startCounter) *env {
	t.Helper()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	rec := newRecorder()
	e := openEnv(t, cfg, tsync.Synchronizer{Models: registry(), Steps: []tsync.Step{rec}}, log, c.option())
	e.rec = rec
	return e
}

// insertItems inserts n Items.
func (e *env) insertItems(n int) []models.Ref {
	var refs []models.Ref
	for i := range n {
		refs = append(refs, e.insert(&testmodels.Item{Name: fmt.Sprintf("item-%d", i)}))
	}
	return refs
}

// A process that runs a worker and the starter (`tsync run`) starts its
// objects' workflows eagerly: the server answers each start with the
// run's first workflow task, which this process's worker runs, with no
// trip through the server's matching. Each object's history is what it
// is without (one run, one activity).
func TestRunStartsEagerly(t *testing.T) {
	t.Parallel()
	_, schema := testenv.Schema(t)
	var starts startCounter
	e := eagerEnv(t, testenv.Config(t, temporalServer.HostPort(), schema), &starts)
	refs := e.insertItems(5)
	e.background(e.app.Run)
	e.waitInSync(30*time.Second, refs...)
	require.EqualValues(t, len(refs), starts.started.Load(), "one run started per object")
	require.EqualValues(t, len(refs), starts.eager.Load(), "every start eager")
	for _, ref := range refs {
		id := workflows.WorkflowID(e.cfg.ObserverName, ref)
		require.NoError(t, e.app.Client.GetWorkflow(e.ctx, id, "").Get(e.ctx, nil), "%s", ref)
		h := history(t, e, id, "")
		require.Equal(t, enumspb.EVENT_TYPE_WORKFLOW_TASK_STARTED, h.Events[2].EventType, "%s: the first workflow task", ref)
		require.Equal(t, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED, h.Events[len(h.Events)-1].EventType, "%s", ref)
		require.Equal(t, 12, len(h.Events), "%s: the events of a sync", ref)
	}
}

// A starter process of its own has no worker to hand a first workflow task
// to: it starts the workflows as before, and a worker process runs them.
func TestStarterAloneStartsThroughMatching(t *testing.T) {
	t.Parallel()
	_, schema := testenv.Schema(t)
	var workerStarts, starterStarts startCounter
	cfg := testenv.Config(t, temporalServer.HostPort(), schema)
	w := eagerEnv(t, cfg, &workerStarts)
	s := eagerEnv(t, cfg, &starterStarts)
	refs := s.insertItems(5)
	w.background(w.app.RunWorker)
	s.background(s.app.RunStarter)
	s.waitInSync(30*time.Second, refs...)
	require.EqualValues(t, len(refs), starterStarts.started.Load(), "one run started per object")
	require.Zero(t, starterStarts.eager.Load(), "no start eager")
	require.Zero(t, workerStarts.started.Load(), "the worker starts nothing")
}
