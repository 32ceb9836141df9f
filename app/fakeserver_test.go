package app

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/workflowservice/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/tsync/tsync/internal/testenv/certs"
)

// fakeTemporal is a gRPC server with the few Temporal calls the app makes
// when it dials and registers search attributes, over TLS or not, which
// records what it was sent.
type fakeTemporal struct {
	workflowservice.UnimplementedWorkflowServiceServer
	operatorservice.UnimplementedOperatorServiceServer

	addr string

	mu sync.Mutex
	// headers are the metadata of every call, in order.
	headers []metadata.MD
	// wantKey, when set, is the API key the server requires.
	wantKey string
	// attrs are the registered search attributes; counts are the probe
	// queries received; unmappedCounts is how many probes are refused as
	// the real server does until its cache is refreshed.
	attrs          map[string]enumspb.IndexedValueType
	counts         []string
	unmappedCounts int
}

// startFake serves a fakeTemporal until the test ends, over TLS with
// tlsConfig, or in clear when it is nil.
func startFake(t *testing.T, tlsConfig *tls.Config) *fakeTemporal {
	t.Helper()
	var opts []grpc.ServerOption
	if tlsConfig != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(tlsConfig)))
	}
	f := &fakeTemporal{attrs: map[string]enumspb.IndexedValueType{}}
	opts = append(opts, grpc.UnaryInterceptor(f.intercept))
	srv := grpc.NewServer(opts...)
	workflowservice.RegisterWorkflowServiceServer(srv, f)
	operatorservice.RegisterOperatorServiceServer(srv, f)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	f.addr = ln.Addr().String()
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return f
}

// mTLSServer is the TLS configuration of a server requiring a client
// certificate signed by pki's CA.
func mTLSServer(t *testing.T, pki certs.Files) *tls.Config {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(pki.ServerCertFile, pki.ServerKeyFile)
	require.NoError(t, err)
	ca, err := os.ReadFile(pki.CAFile)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(ca))
	return &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert}
}

func (f *fakeTemporal) intercept(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	f.mu.Lock()
	f.headers = append(f.headers, md)
	want := f.wantKey
	f.mu.Unlock()
	if want != "" && (len(md.Get("authorization")) == 0 || md.Get("authorization")[0] != "Bearer "+want) {
		return nil, status.Error(codes.Unauthenticated, "Request unauthorized.")
	}
	return handler(ctx, req)
}

// received returns the metadata of the calls so far.
func (f *fakeTemporal) received() []metadata.MD {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]metadata.MD(nil), f.headers...)
}

func (f *fakeTemporal) GetSystemInfo(context.Context, *workflowservice.GetSystemInfoRequest) (*workflowservice.GetSystemInfoResponse, error) {
	return &workflowservice.GetSystemInfoResponse{Capabilities: &workflowservice.GetSystemInfoResponse_Capabilities{}}, nil
}

func (f *fakeTemporal) ListSearchAttributes(context.Context, *operatorservice.ListSearchAttributesRequest) (*operatorservice.ListSearchAttributesResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]enumspb.IndexedValueType{}
	for k, v := range f.attrs {
		out[k] = v
	}
	return &operatorservice.ListSearchAttributesResponse{CustomAttributes: out}, nil
}

func (f *fakeTemporal) AddSearchAttributes(_ context.Context, req *operatorservice.AddSearchAttributesRequest) (*operatorservice.AddSearchAttributesResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for k, v := range req.GetSearchAttributes() {
		f.attrs[k] = v
	}
	return &operatorservice.AddSearchAttributesResponse{}, nil
}

// CountWorkflowExecutions refuses the first unmappedCounts queries with the
// text of the real server (v1.29, SQL visibility) while its namespace
// cache is stale.
func (f *fakeTemporal) CountWorkflowExecutions(_ context.Context, req *workflowservice.CountWorkflowExecutionsRequest) (*workflowservice.CountWorkflowExecutionsResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.counts = append(f.counts, req.GetQuery())
	if len(f.counts) <= f.unmappedCounts {
		return nil, status.Error(codes.InvalidArgument, "invalid query: invalid expression: column name 'TsyncModel' is not a valid search attribute")
	}
	return &workflowservice.CountWorkflowExecutionsResponse{}, nil
}
