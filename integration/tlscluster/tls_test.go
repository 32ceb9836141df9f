// Package tlscluster_test runs tsync against a production-shaped Temporal
// cluster (internal/cluster) whose frontend requires mTLS, with
// certificates the test generates (internal/testenv/certs): a synchronizer
// with the right client certificate registers its search attributes (the
// wait a real server needs: see app.RegisterSearchAttributes) and syncs
// objects; configs without the certificate, with the wrong CA or without
// TLS get one clear error at once; an API key is sent along.
//
// It needs the cluster's binaries (bin/temporal-server and
// bin/temporal-sql-tool, or those in TSYNC_CLUSTER_BIN): without them it
// is skipped, or fails under CI (CI=true).
package tlscluster_test

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/tsync/tsync"
	"github.com/tsync/tsync/app"
	"github.com/tsync/tsync/config"
	"github.com/tsync/tsync/internal/cluster"
	"github.com/tsync/tsync/internal/cluster/clustertest"
	"github.com/tsync/tsync/internal/engine"
	"github.com/tsync/tsync/internal/starter"
	"github.com/tsync/tsync/internal/testenv"
	"github.com/tsync/tsync/internal/testenv/certs"
	"github.com/tsync/tsync/internal/testmodels"
	"github.com/tsync/tsync/internal/workflows"
	"github.com/tsync/tsync/models"
	"github.com/tsync/tsync/worker"
)

// startTLSCluster starts a cluster whose frontend requires a client
// certificate signed by pki's CA, stopped and its databases dropped when
// the test ends.
func startTLSCluster(t *testing.T, pki certs.Files) *cluster.Cluster {
	t.Helper()
	return clustertest.Start(t, "tsync_tls_", cluster.Options{
		TLS: &cluster.TLS{
			CAFile:   pki.CAFile,
			CertFile: pki.ServerCertFile, KeyFile: pki.ServerKeyFile,
			// The cluster's own services present the server's certificate,
			// which is also a client certificate.
			ClientCertFile: pki.ServerCertFile, ClientKeyFile: pki.ServerKeyFile,
			// The frontend's own client (AddSearchAttributes calls it)
			// needs a name to check.
			ServerName: certs.ServerName,
		},
	})
}

func registry() *models.Registry { return testmodels.Registry(testmodels.ChainDiamond()...) }

func TestMTLSCluster(t *testing.T) {
	pki, err := certs.Write(t.TempDir())
	require.NoError(t, err)
	c := startTLSCluster(t, pki)
	hp := c.HostPort()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	_, schema := testenv.Schema(t)
	cfg := testenv.Config(t, hp, schema)
	cfg.Temporal.Namespace = c.Namespace()
	cfg.Temporal.TLSCAFile, cfg.Temporal.TLSCertFile, cfg.Temporal.TLSKeyFile = pki.CAFile, pki.ClientCertFile, pki.ClientKeyFile
	require.NoError(t, cfg.Validate())

	// (b) First the configs the server refuses: each is one error, at once
	// (app.Open does not wait for a server that refuses it, as it does for
	// one that is down). The schema is migrated by then: only Temporal is
	// refused.
	t.Run("refused", func(t *testing.T) {
		noCert := cfg
		noCert.Temporal.TLSCertFile, noCert.Temporal.TLSKeyFile = "", ""
		wrongCA := cfg
		wrongCA.Temporal.TLSCAFile = pki.OtherCAFile
		foreign := cfg
		foreign.Temporal.TLSCertFile, foreign.Temporal.TLSKeyFile = pki.ForeignCertFile, pki.ForeignKeyFile
		plain := cfg
		plain.Temporal.TLSCAFile, plain.Temporal.TLSCertFile, plain.Temporal.TLSKeyFile = "", "", ""
		for _, tt := range []struct {
			name string
			cfg  config.Config
			want string // the whole error, or its start (plain)
		}{
			{"no client certificate", noCert,
				"temporal at " + hp + ": TLS handshake failed: the server requires a client certificate (set temporal.tls_cert_file and temporal.tls_key_file): remote error: tls: certificate required"},
			{"client certificate of another CA", foreign,
				"temporal at " + hp + ": TLS handshake failed: the server refused the client certificate of temporal.tls_cert_file (" + pki.ForeignCertFile +
					"): is it signed by a CA the server trusts, and still valid?: remote error: tls: certificate required"},
			{"wrong CA", wrongCA,
				"temporal at " + hp + ": TLS handshake failed: the server's certificate is not signed by a CA of temporal.tls_ca_file (" + pki.OtherCAFile +
					"): tls: failed to verify certificate: x509: certificate signed by unknown authority"},
			{"no TLS", plain,
				"temporal at " + hp + ": the server requires TLS (set temporal.tls_ca_file to the CA of its certificate, or temporal.tls when a CA of this system signed it; " +
					"for mTLS also temporal.tls_cert_file and temporal.tls_key_file): "},
		} {
			t.Run(tt.name, func(t *testing.T) {
				logs := &testenv.SyncBuffer{}
				octx, cancel := context.WithTimeout(ctx, time.Minute)
				defer cancel()
				a, err := app.Open(octx, tt.cfg, tsync.Synchronizer{Models: registry(), Steps: []tsync.Step{testmodels.NewRecorder(testmodels.ChainDiamond()...)}},
					slog.New(slog.NewTextHandler(logs, nil)))
				require.Nil(t, a)
				require.Error(t, err)
				if tt.name == "no TLS" {
					require.True(t, strings.HasPrefix(err.Error(), tt.want), "got %s", err)
				} else {
					require.EqualError(t, err, tt.want)
				}
				require.NoError(t, octx.Err(), "refused at once, not waited for")
				require.NotContains(t, logs.String(), "waiting for temporal")
				t.Logf("%s: %v", tt.name, err)
			})
		}
	})

	// Before registration, the real server refuses the search attributes
	// both to a visibility query (the probe of registration) and to a
	// start, and both are told apart from other errors.
	raw, err := app.DialTemporal(ctx, cfg, nil)
	require.NoError(t, err)
	defer raw.Close()
	_, err = raw.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Query: "TsyncObjectID = 0"})
	require.Error(t, err)
	require.True(t, starter.SearchAttributesNotServed(err), "probe before registration: %v", err)
	t.Logf("probe before registration: %v", err)
	probeRef := models.Ref{Model: "Site", ID: 1}
	_, err = raw.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: "tsync-tls-probe", TaskQueue: "tsync-tls-probe",
		TypedSearchAttributes: workflows.StartAttributes(cfg.ObserverName, probeRef, engine.OpFor(false)).Typed,
	}, "probe")
	require.Error(t, err)
	require.True(t, starter.SearchAttributesNotServed(err), "start before registration: %v", err)
	t.Logf("start before registration: %v", err)

	// (a) The right certificate: the app registers the search attributes
	// and waits until the namespace serves them; a worker and a starter
	// then sync objects, and no start fails for want of them. (c) An API
	// key is sent with every call (the cluster does not check it).
	cfg.Temporal.APIKey = "tsync-test-key"
	var sent sentKeys
	logs := &testenv.SyncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	rec := testmodels.NewRecorder(testmodels.ChainDiamond()...)
	opened := time.Now()
	a, err := app.Open(ctx, cfg, tsync.Synchronizer{Models: registry(), Steps: []tsync.Step{rec}}, log, app.WithClientOptions(sent.record))
	require.NoError(t, err, "log: %s", logs)
	defer a.Close()
	t.Logf("app.Open took %s", time.Since(opened).Round(time.Millisecond))
	require.True(t, a.Params().SearchAttributes, "registered: %s", logs)
	waited := regexp.MustCompile(`msg="namespace \S+ serves the Tsync\* search attributes after (\S+)".* frontend_after=(\S+) settle=(\S+)`).FindStringSubmatch(logs.String())
	require.NotNil(t, waited, "registration on a fresh namespace waits for it: %s", logs)
	require.Contains(t, logs.String(), fmt.Sprintf(`msg="waiting for namespace %s to serve the Tsync* search attributes (a new registration takes a few seconds on a real server)"`, c.Namespace()))
	t.Logf("search attributes: the frontend served them %s after they were registered; registration returned after %s (settle %s)", waited[2], waited[1], waited[3])
	require.Equal(t, "Bearer tsync-test-key", sent.last(), "the API key travels with the calls")
	require.NotContains(t, logs.String(), "tsync-test-key")

	w, err := worker.New(a.Client, worker.Options{TaskQueue: cfg.Temporal.TaskQueue, StopTimeout: time.Second}, a.Activities())
	require.NoError(t, err)
	require.NoError(t, w.Start())
	defer w.Stop()
	sctx, stopStarter := context.WithCancel(ctx)
	starterDone := make(chan struct{})
	go func() { defer close(starterDone); _ = a.RunStarter(sctx) }()
	defer func() { stopStarter(); <-starterDone }()

	var refs []models.Ref
	insert := func(obj models.Object) models.Ref {
		require.NoError(t, a.Store.Insert(ctx, obj))
		ref := testmodels.RefOf(obj)
		refs = append(refs, ref)
		return ref
	}
	for s := range 2 {
		site := insert(&testmodels.Site{Name: fmt.Sprintf("site-%d", s)})
		for l := range 2 {
			slice := insert(&testmodels.Slice{Name: fmt.Sprintf("slice-%d-%d", s, l), SiteID: site.ID})
			for i := range 2 {
				insert(&testmodels.Instance{Name: fmt.Sprintf("inst-%d-%d-%d", s, l, i), SliceID: slice.ID})
			}
		}
	}
	began := time.Now()
	require.Eventually(t, func() bool {
		for _, r := range refs {
			obj, err := a.Store.Get(ctx, r.Model, r.ID)
			if err != nil {
				return false
			}
			b := obj.SyncState()
			if b.BackendCode != models.CodeOK || b.Enacted == nil || !b.Enacted.Equal(b.Updated) {
				return false
			}
		}
		return true
	}, 2*time.Minute, 100*time.Millisecond, "objects not in sync; log: %s", logs)
	t.Logf("%d objects in sync over mTLS after %s", len(refs), time.Since(began).Round(time.Millisecond))
	require.Empty(t, rec.Violations())
	require.NotContains(t, logs.String(), "scan failed", "no start failed once registration returned")

	// No workflow task failed for want of a search attribute either (the
	// history and matching services' own namespace caches, which the
	// settle time is for). A workflow task failing as UnhandledCommand (a
	// child's result came in while the task ran) is ordinary.
	for _, f := range workflowTaskFailures(ctx, t, a.Client, cfg.Temporal.TaskQueue) {
		require.Contains(t, f, ": UnhandledCommand ", "a workflow task failed")
	}
}

// sentKeys records the authorization header of the client's calls, as an
// interceptor set by the client options hook sees them.
type sentKeys struct {
	mu   sync.Mutex
	keys []string
}

func (s *sentKeys) record(o *client.Options) {
	o.ConnectionOptions.DialOptions = append(o.ConnectionOptions.DialOptions, grpc.WithChainUnaryInterceptor(
		func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			md, _ := metadata.FromOutgoingContext(ctx)
			s.mu.Lock()
			s.keys = append(s.keys, strings.Join(md.Get("authorization"), ","))
			s.mu.Unlock()
			return invoker(ctx, method, req, reply, cc, opts...)
		}))
}

func (s *sentKeys) last() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.keys) == 0 {
		return ""
	}
	return s.keys[len(s.keys)-1]
}

// workflowTaskFailures lists the failed workflow tasks of the workflows of
// taskQueue, as "workflow id: cause".
func workflowTaskFailures(ctx context.Context, t *testing.T, c client.Client, taskQueue string) []string {
	t.Helper()
	var out []string
	var token []byte
	n := 0
	for {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Query: fmt.Sprintf("TaskQueue = %q", taskQueue), NextPageToken: token,
		})
		require.NoError(t, err)
		for _, x := range resp.GetExecutions() {
			n++
			it := c.GetWorkflowHistory(ctx, x.GetExecution().GetWorkflowId(), x.GetExecution().GetRunId(), false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
			for it.HasNext() {
				ev, err := it.Next()
				require.NoError(t, err)
				if f := ev.GetWorkflowTaskFailedEventAttributes(); f != nil {
					out = append(out, fmt.Sprintf("%s: %s %s", x.GetExecution().GetWorkflowId(), f.GetCause(), f.GetFailure().GetMessage()))
				}
			}
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			break
		}
	}
	t.Logf("%d workflows checked for failed workflow tasks: %d found", n, len(out))
	if n == 0 {
		require.Fail(t, "no workflow listed on task queue "+taskQueue)
	}
	return out
}
